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
 * The steps of a migration, in order: VIGIL_DATA_VOLUME_KILL_AT=<step> makes the script
 * SIGKILL itself as that step begins (the crash test injects a crash at every one).
 */
export const DATA_VOLUME_MIGRATION_STEPS = [
  'stop',
  'format',
  'mount-temp',
  'copy',
  'verify',
  'commit',
  'relabel',
  'mount',
  'clean',
  'start',
] as const;

/**
 * vigil-data-volume [--units 'UNIT...'] LABEL MOUNTPOINT [DEVICE...]: idempotent, and it
 * never formats a device that holds anything it did not make. A filesystem with LABEL is used
 * as found. Otherwise the device is the one the provider's names match (globs), or, with none
 * given, the one whole disk with no partition, filesystem or mount; it is formatted only when
 * blkid finds no signature at all (exit status 2).
 *
 * A mount point that already holds files on the root disk (a volume added to a running host)
 * is migrated, crash-safe: the UNITs (the chain's units, the watchdog first) are stopped, the
 * ones that were active recorded; the volume is formatted with a staging label (LABEL cut to
 * 11 bytes + "-copy": a device with it holds only an unfinished copy, so a re-run formats it
 * again), mounted in a state directory beside the mount point, filled with `cp -a` and
 * verified (paths, types, modes, owners, sizes, link targets, and the sha256 of every file).
 * The commit is one rename of the fstab, which then mounts the volume by UUID: before it a
 * boot uses the data on the root disk, after it the verified volume, never neither (the
 * units' RequiresMountsFor= keeps them down without the mount). Then the label becomes LABEL,
 * the volume is mounted, the old copy below the mount point is deleted (through a bind mount
 * of the filesystem that holds it) and the recorded units that are enabled are started (a
 * supervised node is left to its watchdog). A re-run after a crash at any step completes it.
 * VIGIL_FSTAB names the fstab to keep the entry in and VIGIL_SYSTEMCTL the systemctl (tests).
 */
export const DATA_VOLUME_SCRIPT = `#!/bin/sh
set -eu
units=""
if [ "\${1:-}" = "--units" ]; then units="$2"; shift 2; fi
label="$1"; mnt="$2"; shift 2
fstab="\${VIGIL_FSTAB:-/etc/fstab}"
systemctl="\${VIGIL_SYSTEMCTL:-systemctl}"
staging="$(printf %.11s "$label")-copy"
state="$(dirname "$mnt")/.$(basename "$mnt").vigil-migrate"
opts="defaults,nofail,noatime,x-systemd.device-timeout=120s 0 2"
die() { echo "vigil-data-volume: $*" >&2; exit 1; }
step() {
  [ "\${VIGIL_DATA_VOLUME_KILL_AT:-}" != "$1" ] || kill -KILL $$
  echo "vigil-data-volume: $1"
}
# The device field of the fstab line that mounts $mnt, if there is one.
fstab_spec() { [ -f "$fstab" ] && awk -v m="$mnt" '$1 !~ /^#/ && $2 == m { print $1; exit }' "$fstab"; }
# fstab_set LINE: the fstab with LINE as the only line for $mnt, replaced in one rename.
fstab_set() {
  { [ -f "$fstab" ] && awk -v m="$mnt" '$1 ~ /^#/ || $2 != m' "$fstab"; echo "$1"; } > "$fstab.vigil-new"
  sync "$fstab.vigil-new"
  mv -f "$fstab.vigil-new" "$fstab"
  sync "$(dirname "$fstab")"
}
start_units() {
  [ -f "$state/units" ] || return 0
  for u in $(cat "$state/units"); do
    if "$systemctl" is-enabled --quiet "$u"; then "$systemctl" start "$u"; fi
  done
}
# Never rm -r in $state: a directory there may still be a mount point after a crash.
drop_state() {
  rm -f "$state/units" "$state/old.list" "$state/new.list" "$state/old.sums" "$state/new.sums"
  rmdir "$state/volume" "$state/under" "$state" 2>/dev/null || true
}
# Before the commit: the data on the root disk stays in use; the units come back.
fail() {
  echo "vigil-data-volume: $*" >&2
  if mountpoint -q "$state/volume"; then umount "$state/volume"; fi
  start_units
  drop_state
  exit 1
}
listing() {
  (cd "$1" && find . -path ./lost+found -prune -o -type d -printf '%p\\t%y\\t%m\\t%U:%G\\n' \\
    -o -printf '%p\\t%y\\t%m\\t%U:%G\\t%s\\t%l\\n' | LC_ALL=C sort)
}
sums() {
  (cd "$1" && find . -path ./lost+found -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum)
}
# After the volume is mounted: delete the old copy below it, then start the units.
finish() {
  step clean
  src="$(findmnt -n -o TARGET -T "$(dirname "$mnt")")"
  mkdir -p "$state/under"
  mountpoint -q "$state/under" || mount --bind "$src" "$state/under"
  old="$state/under\${mnt#"\${src%/}"}"
  if [ -d "$old" ]; then
    [ "$(stat -c %d "$old")" != "$(stat -c %d "$mnt/.")" ] || die "$old is on the volume: not deleting it"
    find "$old" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +
  fi
  umount "$state/under"
  step start
  start_units
  drop_state
  echo "vigil-data-volume: $mnt migrated onto the volume ($label)"
}

if mountpoint -q "$mnt"; then
  cur="$(findmnt -n -o LABEL --mountpoint "$mnt")"
  # A boot between the commit and the relabel mounted the volume by UUID.
  if [ "$cur" = "$staging" ] && [ -d "$state" ]; then
    e2label "$(findmnt -n -o SOURCE --mountpoint "$mnt")" "$label"
    cur="$label"
  fi
  [ "$cur" = "$label" ] || die "$mnt is already a mount of something else"
  if [ -d "$state" ]; then finish; fi
  exit 0
fi

spec="$(fstab_spec || true)"
if [ -n "$spec" ]; then
  # fstab mounts a volume here (committed): mount it, never format another disk in its place.
  dev=""
  for i in $(seq 1 60); do
    dev="$(findfs "$spec" 2>/dev/null || true)"
    [ -n "$dev" ] && break
    [ "$i" -lt 60 ] && sleep 3
  done
  [ -n "$dev" ] || die "$fstab mounts $spec at $mnt, but no such device is attached"
  if [ -d "$state" ]; then
    if mountpoint -q "$state/volume"; then umount "$state/volume"; fi
    cur="$(blkid -p -s LABEL -o value "$dev" || true)"
    if [ "$cur" != "$label" ]; then
      [ "$cur" = "$staging" ] || die "$dev is labelled '$cur', neither $label nor $staging"
      step relabel
      e2label "$dev" "$label"
    fi
  elif [ -d "$mnt" ] && [ -n "$(ls -A "$mnt")" ]; then
    die "$mnt already holds files on the root disk and $fstab mounts $spec over it: move them aside first"
  fi
  mkdir -p "$mnt"
  step mount
  mount -o noatime "$dev" "$mnt"
  if [ -d "$state" ]; then finish; fi
  echo "vigil-data-volume: $dev ($label) mounted at $mnt"
  exit 0
fi

migrate=false
if [ -d "$mnt" ] && [ -n "$(ls -A "$mnt")" ]; then migrate=true; fi
dev="$(blkid -L "$label" 2>/dev/null || true)"
if [ -n "$dev" ] && $migrate; then
  die "$dev is labelled $label but $mnt already holds files on the root disk: refusing to hide either (move one aside, or remove the label: e2label $dev '')"
fi
fresh=""
if [ -z "$dev" ] && $migrate; then
  # An unfinished copy of ours from an interrupted run: formatted again below.
  dev="$(blkid -L "$staging" 2>/dev/null || true)"
  [ -z "$dev" ] || fresh="$dev"
fi
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
  fresh="$dev"
  if ! $migrate; then mkfs.ext4 -q -L "$label" "$dev"; fi
fi

if ! $migrate; then
  fstab_set "LABEL=$label $mnt ext4 $opts"
  mkdir -p "$mnt"
  mount -o noatime "$dev" "$mnt"
  echo "vigil-data-volume: $dev ($label) mounted at $mnt"
  exit 0
fi

echo "vigil-data-volume: moving $mnt from the root disk onto $dev"
mkdir -p "$state"
step stop
if [ -n "$units" ]; then
  # Recorded before they stop, so that a re-run after a crash starts them again.
  { [ -f "$state/units" ] && cat "$state/units"
    for u in $units; do if "$systemctl" is-active --quiet "$u"; then echo "$u"; fi; done
  } | awk 'NF && !seen[$0]++' > "$state/units.new"
  mv -f "$state/units.new" "$state/units"
  "$systemctl" stop $units
fi
step format
if mountpoint -q "$state/volume"; then umount "$state/volume"; fi
mkfs.ext4 -q -L "$staging" "$fresh"
mkdir -p "$state/volume"
step mount-temp
mount -o noatime "$dev" "$state/volume"
step copy
need="$(du -sxk "$mnt" | cut -f1)"
avail="$(df -Pk "$state/volume" | awk 'NR == 2 { print $4 }')"
[ "$need" -lt "$avail" ] || fail "$mnt holds $need KiB, the volume has $avail KiB free: give hosts[].disk more"
cp -a "$mnt/." "$state/volume/"
step verify
listing "$mnt" > "$state/old.list"
listing "$state/volume" > "$state/new.list"
cmp -s "$state/old.list" "$state/new.list" || fail "the copy on $dev differs from $mnt (paths, modes, owners or sizes): the root disk stays in use"
sums "$mnt" > "$state/old.sums"
sums "$state/volume" > "$state/new.sums"
cmp -s "$state/old.sums" "$state/new.sums" || fail "the copy on $dev differs from $mnt (sha256): the root disk stays in use"
sync -f "$state/volume/."
step commit
uuid="$(blkid -p -s UUID -o value "$dev")"
[ -n "$uuid" ] || fail "$dev has no filesystem UUID"
fstab_set "UUID=$uuid $mnt ext4 $opts"
"$systemctl" daemon-reload
step relabel
umount "$state/volume"
e2label "$dev" "$label"
step mount
mount -o noatime "$dev" "$mnt"
finish
`;

/** A drop-in that keeps a chain unit from starting without its data volume mounted. */
export function requiresMountDropIn(mountPoint: string): string {
  return `[Unit]\nRequiresMountsFor=${mountPoint}\n`;
}
