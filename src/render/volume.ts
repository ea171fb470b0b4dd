/**
 * The chain data volume on the host: formatted once, labelled, listed in /etc/fstab and
 * mounted at the chain's database directory by the bundle, before the chain's directories are
 * made and before the node first starts. The node's units require the mount, so after a
 * reboot without the volume the node stays down instead of filling the root disk.
 */
import type { Chain } from '../topology/schema.js';
import { chainDataDir } from './chains.js';

export const DATA_VOLUME_COMMAND = '/usr/local/sbin/vigil-data-volume';

/** ext4 labels are at most 16 bytes: one fixed label, since a host has one data volume. */
export const DATA_VOLUME_LABEL = 'vigil-data';

/**
 * Where the chain's database lives, below the files the bundle itself installs in the chain's
 * directory (CometBFT's config/, Substrate's node key): CometBFT's db_dir (`data` under its
 * home), Substrate's `chains` under --base-path, Cardano's --database-path, dcrd's datadir.
 */
export function dataMountPoint(chain: Chain): string {
  switch (chain.kind) {
    case 'cometbft':
      return `${chainDataDir(chain)}/data`;
    case 'substrate':
      return `${chainDataDir(chain)}/chains`;
    case 'cardano':
      return `${chainDataDir(chain)}/db`;
    case 'decred':
      return '/var/lib/dcrd/data';
  }
}

/**
 * vigil-data-volume LABEL MOUNTPOINT [DEVICE...]: idempotent, and it never formats a device
 * that holds anything. A filesystem with LABEL is used as found. Otherwise the device is the
 * one the provider's names match (globs), or, with none given, the one whole disk with no
 * partition, filesystem or mount; it is formatted only when blkid finds no signature at all
 * (exit status 2). A mount point that already holds files is refused rather than hidden.
 * VIGIL_FSTAB names the fstab to keep the entry in (tests).
 */
export const DATA_VOLUME_SCRIPT = `#!/bin/sh
set -eu
label="$1"; mnt="$2"; shift 2
fstab="\${VIGIL_FSTAB:-/etc/fstab}"
die() { echo "vigil-data-volume: $*" >&2; exit 1; }
if mountpoint -q "$mnt"; then
  [ "$(findmnt -n -o LABEL --mountpoint "$mnt")" = "$label" ] || die "$mnt is already a mount of something else"
  exit 0
fi
if [ -d "$mnt" ] && [ -n "$(ls -A "$mnt")" ]; then
  die "$mnt already holds files on the root disk: stop the node and move them onto the volume by hand"
fi
dev="$(blkid -L "$label" 2>/dev/null || true)"
if [ -z "$dev" ]; then
  # Terraform attaches the volume once the machine exists: give it a few minutes to appear.
  for i in $(seq 1 60); do
    found=""
    if [ $# -gt 0 ]; then
      for g in "$@"; do
        for d in $g; do [ -b "$d" ] && found="$found $(readlink -f "$d")"; done
      done
    else
      for d in $(lsblk -dnpo NAME,TYPE | awk '$2 == "disk" { print $1 }'); do
        [ "$(lsblk -nro NAME "$d" | wc -l)" -eq 1 ] || continue
        [ -z "$(lsblk -nro MOUNTPOINT "$d")" ] || continue
        rc=0; blkid -p "$d" >/dev/null 2>&1 || rc=$?
        [ "$rc" -eq 2 ] && found="$found $d"
      done
    fi
    found="$(echo $found | tr ' ' '\\n' | sort -u | tr '\\n' ' ')"
    [ -n "\${found% }" ] && break
    [ "$i" -lt 60 ] && sleep 3
  done
  set -- $found
  [ $# -eq 1 ] || die "expected one data volume, found $# ($found)"
  dev="$1"
  rc=0; blkid -p "$dev" >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || die "$dev already holds a filesystem or partition table without the label $label: refusing to format it (if it is the data volume: e2label $dev $label)"
  mkfs.ext4 -q -L "$label" "$dev"
fi
grep -q "^LABEL=$label " "$fstab" 2>/dev/null ||
  echo "LABEL=$label $mnt ext4 defaults,nofail,noatime,x-systemd.device-timeout=120s 0 2" >> "$fstab"
mkdir -p "$mnt"
mount -o noatime "$dev" "$mnt"
echo "vigil-data-volume: $dev ($label) mounted at $mnt"
`;

/** A drop-in that keeps a chain unit from starting without its data volume mounted. */
export function requiresMountDropIn(mountPoint: string): string {
  return `[Unit]\nRequiresMountsFor=${mountPoint}\n`;
}
