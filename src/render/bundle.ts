/**
 * A host's bundle: everything it needs besides its bootstrap user data, installed after boot
 * by `vigil apply` over SSH (src/provision/push.ts). In the plan directory:
 *
 *   hosts/<name>/files/<path with / as __>   the payload, one file per host file (the review copies)
 *   hosts/<name>/bundle/manifest.json        path, mode, owner, sha256 of each; users, packages, commands
 *   hosts/<name>/bundle/SHA256SUMS           the same sums in `sha256sum --check` form
 *   hosts/<name>/bundle/install.sh           the installer run as root on the host
 *
 * The installer is generated per host (no parsing on the host: POSIX sh and coreutils only).
 * It checks every staged file's sha256 before touching anything, replaces a file (write beside
 * it, then rename) only when its content, mode or owner differ, reloads systemd when a unit
 * changed, restarts only running units one of whose files changed, and runs each setup command
 * once per distinct command line. So a re-push of an unchanged bundle changes nothing. What an
 * earlier bundle installed and this one no longer does is removed (units stopped and disabled
 * first), from a list of installed paths the host keeps in /var/lib/vigil-bundle (root-only).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Plan, PlannedHost } from '../topology/plan.js';
import type { RenderedFile } from './chains.js';
import type { HostRender } from './cloud-init.js';
import { WG_ENDPOINTS_FILE } from './network.js';
import { SSHD_CONFIG_PATH, SSHD_RELOAD_COMMAND } from './ssh.js';

export const BUNDLE_FORMAT = 1;

/** Where each host file's payload sits under hosts/<name>/. */
export function payloadName(hostPath: string): string {
  return `files/${hostPath.replace(/^\//, '').replace(/\//g, '__')}`;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export const ManifestSchema = z.object({
  format: z.literal(BUNDLE_FORMAT),
  fleet: z.string(),
  host: z.string(),
  /** `port` is the topology's; `ports` all sshd listens on (previous ones while moving). */
  ssh: z.object({
    user: z.string(),
    port: z.number().int(),
    ports: z.array(z.number().int()).min(1),
  }),
  users: z.array(
    z.object({
      name: z.string(),
      uid: z.number().int().optional(),
      homedir: z.string().optional(),
      createHome: z.boolean(),
    }),
  ),
  packages: z.array(z.string()),
  files: z.array(
    z.object({
      path: z.string(),
      source: z.string(),
      mode: z.string().regex(/^0[0-7]{3}$/),
      owner: z.string(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      restarts: z.array(z.string()),
    }),
  ),
  commands: z.array(z.array(z.string())),
  wireguard: z.object({
    port: z.number().int(),
    peers: z.array(z.object({ host: z.string(), publicKey: z.string() })),
  }),
});
export type BundleManifest = z.infer<typeof ManifestSchema>;

/** Single-quoted for sh. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const UNIT_DIR = '/etc/systemd/system/';

/**
 * The units to restart when a file changes: the packaged units the file names itself, the
 * unit it defines (or a drop-in of), and every rendered unit whose text names the file or a
 * directory holding it (at least three levels deep, so /etc/vigil alone restarts nothing).
 */
function restartsFor(file: RenderedFile, files: readonly RenderedFile[]): string[] {
  const out = new Set(file.restarts ?? []);
  if (file.path.startsWith(UNIT_DIR)) {
    const rest = file.path.slice(UNIT_DIR.length);
    const unit = rest.includes('/') ? rest.split('/')[0]!.replace(/\.d$/, '') : rest;
    out.add(unit);
  } else {
    const parts = file.path.split('/');
    const prefixes = [file.path];
    for (let i = parts.length - 1; i >= 4; i--) prefixes.push(parts.slice(0, i).join('/'));
    for (const u of files) {
      if (!u.path.startsWith(UNIT_DIR) || u.path.slice(UNIT_DIR.length).includes('/')) continue;
      if (
        prefixes.some((p) =>
          new RegExp(`${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w.-])`).test(u.content),
        )
      )
        out.add(u.path.slice(UNIT_DIR.length));
    }
  }
  return [...out].sort();
}

export function bundleManifest(plan: Plan, host: PlannedHost, r: HostRender): BundleManifest {
  const t = plan.topology;
  return {
    format: BUNDLE_FORMAT,
    fleet: t.name,
    host: host.name,
    ssh: { user: t.ssh.user, port: t.ssh.port, ports: [...host.sshPorts] },
    users: r.setup.users.map((u) => ({
      name: u.name,
      ...(u.uid !== undefined ? { uid: u.uid } : {}),
      ...(u.homedir !== undefined ? { homedir: u.homedir } : {}),
      createHome: u.createHome,
    })),
    packages: [...r.setup.packages],
    files: r.files.map((f) => ({
      path: f.path,
      source: payloadName(f.path),
      mode: f.permissions,
      owner: f.owner,
      sha256: sha256(f.content),
      restarts: restartsFor(f, r.files),
    })),
    commands: r.setup.commands.map((c) => [...c]),
    wireguard: {
      port: t.vpn.port,
      peers: plan.hosts
        .filter((p) => p.name !== host.name)
        .map((p) => ({ host: p.name, publicKey: p.wireguard.publicKey })),
    },
  };
}

export function sha256sums(m: BundleManifest): string {
  return m.files.map((f) => `${f.sha256}  ${f.source}\n`).join('');
}

/** A command's marker name: the same command line is run once, a changed one runs again. */
export function commandKey(argv: readonly string[]): string {
  return sha256(JSON.stringify(argv)).slice(0, 16);
}

/** Where the host keeps the list of paths the last installed bundle put there (root-only). */
export const INSTALLED_LIST = '/var/lib/vigil-bundle/installed';

/** Every path the bundle installs on the host, sorted: what the next bundle may prune. */
export function installedPaths(m: BundleManifest): string[] {
  return [...new Set([...m.files.map((f) => f.path), WG_ENDPOINTS_FILE])].sort();
}

/**
 * Prune: what the previous bundle installed (its list, kept on the host) and this one does
 * not is removed, a unit stopped and disabled first so nothing keeps running from a deleted
 * file. Only paths on that list are ever removed: a file the bundle never installed (the
 * operator's, a package's) is left alone. The new list replaces the old one only after the
 * removals, so an install that fails half way prunes again on the next push.
 */
function pruneLines(paths: readonly string[]): string[] {
  const units = ['service', 'timer', 'socket', 'path', 'mount']
    .map((k) => `${UNIT_DIR}*.${k}`)
    .join('|');
  return [
    '# Prune what the previous bundle installed and this one does not.',
    `list="$root${INSTALLED_LIST}"`,
    '(umask 077 && mkdir -p "$(dirname "$list")")',
    'cat > "$list.new" <<\'VIGIL_INSTALLED\'',
    ...paths,
    'VIGIL_INSTALLED',
    'if [ -f "$list" ]; then',
    '  while IFS= read -r old; do',
    '    case "$old" in /*) ;; *) continue ;; esac',
    '    if grep -Fxq -e "$old" "$list.new"; then continue; fi',
    '    case "$old" in',
    `      ${UNIT_DIR}*/*) ;;`,
    `      ${units})`,
    '        "$systemctl" disable --now "$(basename "$old")" || true',
    '        echo "stopped: $(basename "$old")" ;;',
    '    esac',
    '    if [ -e "$root$old" ] || [ -L "$root$old" ]; then rm -f "$root$old"; fi',
    '    changed="$changed$old "',
    '    echo "removed: $old"',
    '  done < "$list"',
    'fi',
    'mv -f "$list.new" "$list"',
    '',
  ];
}

/**
 * Waits for cloud-init's last stage (install.sh runs it before touching apt). `cloud-init
 * status --wait` alone is not enough: cloud-init 22.4 (Debian 12) reports `status: error` and
 * ends the wait as soon as one stage has failed, while the final stage (package_update,
 * package_upgrade) still holds the apt lock; the first push then failed with "Could not get
 * lock /var/lib/apt/lists/lock" (found by booting a rendered host, test/vm). The end of the
 * final stage is result.json in cloud-init's run directory, present only on a boot cloud-init
 * runs on (`enabled`). At most 30 minutes. VIGIL_CLOUD_INIT_RUN moves the run directory (tests).
 */
export const CLOUD_INIT_WAIT: readonly string[] = [
  'if command -v cloud-init >/dev/null 2>&1; then',
  '  cloud-init status --wait >/dev/null 2>&1 || true',
  '  ci_run="${VIGIL_CLOUD_INIT_RUN:-/run/cloud-init}"',
  '  ci_wait=0',
  '  while [ -e "$ci_run/enabled" ] && [ ! -e "$ci_run/result.json" ] && [ "$ci_wait" -lt 1800 ]; do',
  '    sleep 1; ci_wait=$((ci_wait + 1))',
  '  done',
  'fi',
];

export function installScript(m: BundleManifest): string {
  const q = shQuote;
  const lines = [
    '#!/bin/sh',
    `# Vigil bundle installer for ${m.host}. Generated by vigil plan; vigil apply runs it as root:`,
    '#   sh install.sh STAGE     (STAGE holds files/ and bundle/ as vigil apply copied them)',
    '# VIGIL_ROOT=<dir> installs under <dir> and skips users, packages, ownership and commands',
    '# (tests); VIGIL_SYSTEMCTL names the systemctl to call.',
    'set -eu',
    'stage="$1"',
    'root="${VIGIL_ROOT:-}"',
    'systemctl="${VIGIL_SYSTEMCTL:-systemctl}"',
    'done_dir="$root/var/lib/vigil-bundle/done"',
    // Secrets are written through temporary files: never readable by others, not for a moment.
    'umask 077',
    'full=true',
    '[ -z "$root" ] || full=false',
    '',
    '# Nothing is installed from a damaged or incomplete bundle.',
    '(cd "$stage" && sha256sum --check --strict --quiet bundle/SHA256SUMS)',
    '',
  ];
  lines.push(
    '# The first push may come while cloud-init still upgrades packages (it holds the apt lock).',
    'if $full; then',
    ...CLOUD_INIT_WAIT.map((l) => `  ${l}`),
    'fi',
    '',
  );
  if (m.users.length > 0 || m.packages.length > 0) {
    lines.push('if $full; then');
    for (const u of m.users) {
      const args = [
        'useradd',
        '--system',
        ...(u.uid !== undefined ? ['--uid', String(u.uid)] : []),
        '--shell',
        '/usr/sbin/nologin',
        ...(u.homedir ? ['--home-dir', u.homedir] : []),
        u.createHome ? '--create-home' : '--no-create-home',
        u.name,
      ];
      lines.push(`  id -u ${q(u.name)} >/dev/null 2>&1 || ${args.map(q).join(' ')}`);
    }
    if (m.packages.length > 0)
      lines.push(
        '  missing=""',
        `  for p in ${m.packages.map(q).join(' ')}; do`,
        `    dpkg-query -W -f='\${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"`,
        '  done',
        '  if [ -n "$missing" ]; then',
        '    apt-get update -q',
        '    # shellcheck disable=SC2086',
        '    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing',
        '  fi',
      );
    lines.push('fi', '');
  }
  lines.push(
    'changed=" "',
    '# put SOURCE PATH MODE OWNER: replace PATH (by rename) unless it already is exactly that.',
    'put() {',
    '  src="$stage/$1"; dest="$root$2"',
    '  if [ -f "$dest" ] && cmp -s "$src" "$dest" && [ "$(stat -c %a "$dest")" = "$(printf %o "$3")" ] &&',
    '    { ! $full || [ "$(stat -c %U:%G "$dest")" = "$4" ]; }; then return 0; fi',
    '  dir="$(dirname "$dest")"',
    '  [ -d "$dir" ] || (umask 022 && mkdir -p "$dir")',
    '  tmp="$dest.vigil-new"',
    '  rm -f "$tmp"',
    '  cp "$src" "$tmp"',
    '  chmod "$3" "$tmp"',
    '  if $full; then chown "$4" "$tmp"; fi',
    '  mv -f "$tmp" "$dest"',
    '  changed="$changed$2 "',
    '  echo "changed: $2"',
    '}',
    'changed_any() {',
    '  for f in "$@"; do case "$changed" in *" $f "*) return 0 ;; esac; done',
    '  return 1',
    '}',
    '',
  );
  for (const f of m.files) lines.push(`put ${q(f.source)} ${q(f.path)} ${f.mode} ${q(f.owner)}`);
  lines.push(
    "# Peers' public addresses, written by vigil apply next to the bundle.",
    `if [ -f "$stage/bundle/wg0.endpoints" ]; then put bundle/wg0.endpoints ${WG_ENDPOINTS_FILE} 0600 root:root; fi`,
    '',
    ...pruneLines(installedPaths(m)),
    `case "$changed" in *" ${UNIT_DIR}"*) "$systemctl" daemon-reload ;; esac`,
  );
  const byUnit = new Map<string, string[]>();
  for (const f of m.files)
    for (const u of f.restarts) byUnit.set(u, [...(byUnit.get(u) ?? []), f.path]);
  for (const [unit, paths] of [...byUnit.entries()].sort(([a], [b]) => (a < b ? -1 : 1)))
    lines.push(
      // try-restart: a unit not running yet (first push) is started by the commands below.
      `if changed_any ${paths.map(q).join(' ')}; then "$systemctl" try-restart ${q(unit)}; echo "restarted: ${unit}"; fi`,
    );
  if (m.files.some((f) => f.path === SSHD_CONFIG_PATH))
    lines.push(
      '# sshd takes a changed port or key policy only once `sshd -t` accepts it.',
      `if changed_any ${SSHD_CONFIG_PATH}; then if $full; then ${SSHD_RELOAD_COMMAND}; fi; echo "reloaded: sshd"; fi`,
    );
  lines.push(
    `if $full && changed_any ${WG_ENDPOINTS_FILE} && ip link show wg0 >/dev/null 2>&1; then /usr/local/sbin/vigil-wg-endpoints; fi`,
    '',
    '# once KEY COMMAND...: each distinct command line runs once (markers in $done_dir).',
    'once() {',
    '  key="$1"; shift',
    '  [ -e "$done_dir/$key" ] && return 0',
    '  echo "running: $*"',
    '  "$@"',
    '  mkdir -p "$done_dir"',
    '  : > "$done_dir/$key"',
    '}',
  );
  if (m.commands.length > 0) {
    lines.push('if $full; then');
    for (const c of m.commands) lines.push(`  once ${commandKey(c)} ${c.map(q).join(' ')}`);
    lines.push('fi');
  }
  lines.push('');
  return lines.join('\n');
}
