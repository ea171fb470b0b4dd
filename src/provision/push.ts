/**
 * `vigil apply` after Terraform: each host's bundle (src/render/bundle.ts) over SSH with the
 * operator's agent. The bundle and the endpoints of the host's WireGuard peers go in one tar
 * stream on the SSH channel into a private stage directory in the operator's home; the host's
 * own install.sh (run as root) checks every sha256 and installs atomically; the stage is
 * removed whatever happened.
 *
 * Host keys are trusted on first use and pinned afterwards in a known_hosts file of the state
 * directory (never the operator's own): a host whose key changed is refused, with how to
 * forget the old key if the machine really was replaced.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { InputError, VigilError, errorMessage } from '../errors.js';
import { ManifestSchema, shQuote, type BundleManifest } from '../render/bundle.js';
import { recordSshPorts } from '../render/ssh-ports.js';

export const KNOWN_HOSTS_FILE = 'known_hosts';

export interface PushOptions {
  /** The plan directory `vigil plan` wrote. */
  readonly out: string;
  /** The state directory: known_hosts lives there. */
  readonly state: string;
  /** Each host's public address (from `terraform output -json`, or given by a test). */
  readonly addresses: ReadonlyMap<string, string>;
  /** Only these hosts (default: every host of the plan). */
  readonly hosts?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Overrides of the topology's SSH user and port (tests; a bastion port forward). */
  readonly sshUser?: string;
  readonly sshPort?: number;
  /** Install under this prefix on the remote side, without sudo (tests). */
  readonly remoteRoot?: string;
  /** The systemctl the remote install calls (tests record calls with a stub). */
  readonly remoteSystemctl?: string;
  readonly log?: (line: string) => void;
  /** Attempts while the host does not answer SSH yet (a new machine still booting, sshd not
   * yet moved to the topology's port): 20, 15 s apart, unless a test says otherwise. */
  readonly connectAttempts?: number;
  readonly connectDelayMs?: number;
}

/** ssh's own failures to reach a host, as opposed to the remote command failing. */
const NOT_YET_REACHABLE =
  /Connection refused|Connection timed out|No route to host|Connection reset|Connection closed by remote host|kex_exchange_identification/;

export interface PushResult {
  readonly host: string;
  readonly address: string;
  /** Host paths the install replaced; empty when the host already had this bundle. */
  readonly changed: readonly string[];
  readonly restarted: readonly string[];
  readonly ran: readonly string[];
  /** Host paths an earlier bundle installed that this one no longer does: deleted. */
  readonly removed: readonly string[];
  /** Units among them, stopped and disabled before their files went. */
  readonly stopped: readonly string[];
}

/** Hosts of a plan directory that have a bundle, sorted. */
export function bundleHosts(out: string): string[] {
  const dir = join(out, 'hosts');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((h) => existsSync(join(dir, h, 'bundle', 'manifest.json')))
    .sort();
}

export function readManifest(out: string, host: string): BundleManifest {
  const file = join(out, 'hosts', host, 'bundle', 'manifest.json');
  let m: BundleManifest;
  try {
    m = ManifestSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch (err) {
    throw new VigilError(
      'BUNDLE_INVALID',
      `cannot read ${file}: ${errorMessage(err)}`,
      'run `vigil plan` again to render the bundles',
    );
  }
  // Refuse before connecting anywhere: the host would refuse too, after the upload.
  for (const f of m.files) {
    const path = join(out, 'hosts', host, f.source);
    const sum = existsSync(path)
      ? createHash('sha256').update(readFileSync(path)).digest('hex')
      : 'missing';
    if (sum !== f.sha256)
      throw new VigilError(
        'BUNDLE_INVALID',
        `${path} does not match its manifest (${sum === 'missing' ? 'missing' : 'sha256 differs'})`,
        'the plan directory was edited or damaged: run `vigil plan` again',
      );
  }
  return m;
}

/** `PUBKEY HOST:PORT` lines for /etc/wireguard/wg0.endpoints. */
export function endpointsFile(m: BundleManifest, addresses: ReadonlyMap<string, string>): string {
  return m.wireguard.peers
    .flatMap((p) => {
      const a = addresses.get(p.host);
      if (!a) return [];
      return [`${p.publicKey} ${a.includes(':') ? `[${a}]` : a}:${m.wireguard.port}\n`];
    })
    .join('');
}

function sshArgs(knownHosts: string, port: number): string[] {
  return [
    '-F',
    'none',
    '-o',
    'BatchMode=yes',
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=accept-new',
    '-o',
    'HashKnownHosts=no',
    '-o',
    'ConnectTimeout=30',
    '-o',
    'ServerAliveInterval=15',
    '-p',
    String(port),
  ];
}

function knownHostsName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

/** The command run on the host: unpack into a private stage, install as root, clean up. */
function remoteCommand(opts: PushOptions): string {
  const env = [
    ...(opts.remoteRoot ? [`VIGIL_ROOT=${shQuote(opts.remoteRoot)}`] : []),
    ...(opts.remoteSystemctl ? [`VIGIL_SYSTEMCTL=${shQuote(opts.remoteSystemctl)}`] : []),
  ];
  const runner = opts.remoteRoot ? 'env' : 'sudo -n env';
  return [
    'set -eu',
    'umask 077',
    'stage="$HOME/.vigil-stage.$$"',
    'rm -rf "$stage"',
    'mkdir -m 0700 "$stage"',
    'tar -xf - -C "$stage"',
    'rc=0',
    `${runner} ${env.join(' ')} sh "$stage/bundle/install.sh" "$stage" || rc=$?`,
    'rm -rf "$stage"',
    'exit $rc',
  ].join('; ');
}

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  stdinFrom?: { cmd: string; args: string[] },
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    // ssh exits without reading its input when it cannot connect or refuses the host key; the
    // write then fails with EPIPE. The outcome is ssh's exit status and stderr, not this error
    // (unhandled, it crashed the push with a stack trace: seen in push.test.ts).
    child.stdin.on('error', () => undefined);
    if (stdinFrom) {
      const producer = spawn(stdinFrom.cmd, stdinFrom.args, { stdio: ['ignore', 'pipe', 'pipe'] });
      producer.on('error', reject);
      producer.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      producer.stdout.pipe(child.stdin);
    } else child.stdin.end();
    child.on('close', (status) => resolvePromise({ status, stdout, stderr }));
  });
}

export async function pushHost(
  host: string,
  address: string,
  opts: PushOptions,
): Promise<PushResult> {
  const env = opts.env ?? process.env;
  const m = readManifest(opts.out, host);
  // The topology's port first; while a port change is under way, the ports the host was
  // recorded as listening on (src/render/ssh-ports.ts) after it.
  const ports = opts.sshPort
    ? [opts.sshPort]
    : [m.ssh.port, ...m.ssh.ports.filter((p) => p !== m.ssh.port)];
  let port = ports[0]!;
  const user = opts.sshUser ?? m.ssh.user;
  mkdirSync(opts.state, { recursive: true, mode: 0o700 });
  const knownHosts = join(opts.state, KNOWN_HOSTS_FILE);
  const extra = mkdtempSync(join(tmpdir(), 'vigil-push-'));
  try {
    mkdirSync(join(extra, 'bundle'), { mode: 0o700 });
    writeFileSync(join(extra, 'bundle', 'wg0.endpoints'), endpointsFile(m, opts.addresses), {
      mode: 0o600,
    });
    const tarArgs = [
      '-cf',
      '-',
      '-C',
      join(opts.out, 'hosts', host),
      'files',
      'bundle',
      '-C',
      extra,
      'bundle/wg0.endpoints',
    ];
    const attempts = Math.max(1, opts.connectAttempts ?? 20);
    const unreachable = (x: { status: number | null; stderr: string }) =>
      x.status === 255 && NOT_YET_REACHABLE.test(x.stderr);
    /** One round: each port in turn until one answers. */
    const round = async () => {
      let last: Awaited<ReturnType<typeof run>> | undefined;
      for (const p of ports) {
        port = p;
        last = await run(
          'ssh',
          [...sshArgs(knownHosts, p), `${user}@${address}`, remoteCommand(opts)],
          env,
          { cmd: 'tar', args: tarArgs },
        );
        if (!unreachable(last)) break;
      }
      return last!;
    };
    let r = await round();
    for (let i = 1; i < attempts && unreachable(r); i++) {
      opts.log?.(`vigil: ${host} does not answer SSH yet (${i}/${attempts - 1}); retrying`);
      await new Promise((res) => setTimeout(res, opts.connectDelayMs ?? 15_000));
      r = await round();
    }
    if (r.status !== 0) {
      if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/.test(r.stderr))
        throw new VigilError(
          'HOST_KEY_CHANGED',
          `${host} (${address}:${port}) presented a host key other than the one pinned in ${knownHosts}; nothing was sent`,
          `if ${host} was rebuilt on purpose, forget its old key: ssh-keygen -R '${knownHostsName(address, port)}' -f ${knownHosts}`,
        );
      const tail = r.stderr.trim().split('\n').slice(-5).join('\n  ');
      throw new VigilError(
        'PUSH_FAILED',
        `pushing the bundle to ${host} (${user}@${address}:${port}) failed (exit ${r.status}):\n  ${tail}`,
        r.status === 255
          ? 'check the address, that the host finished booting, and that ssh-add -l lists the key the topology authorizes'
          : "read the install output above; the host's files were left as they were for every file not listed as changed",
      );
    }
    // The host's sshd now listens where this bundle says: the next plan may close old ports.
    if (!opts.sshPort) recordSshPorts(opts.state, new Map([[host, m.ssh.ports]]));
    const pick = (prefix: string) =>
      r.stdout
        .split('\n')
        .filter((l) => l.startsWith(prefix))
        .map((l) => l.slice(prefix.length));
    return {
      host,
      address,
      changed: pick('changed: '),
      restarted: pick('restarted: '),
      ran: pick('running: '),
      removed: pick('removed: '),
      stopped: pick('stopped: '),
    };
  } finally {
    rmSync(extra, { recursive: true, force: true });
  }
}

/** Pushes each selected host's bundle in turn; stops at the first failure. */
export async function pushBundles(opts: PushOptions): Promise<PushResult[]> {
  const env = opts.env ?? process.env;
  const all = bundleHosts(opts.out);
  if (all.length === 0)
    throw new VigilError(
      'BUNDLE_MISSING',
      `${opts.out} has no host bundles`,
      'run `vigil plan <topology> --out <dir>` (this version of Vigil) first',
    );
  const selected = opts.hosts ?? all;
  const unknown = selected.filter((h) => !all.includes(h));
  if (unknown.length > 0)
    throw new InputError(
      `--hosts names ${unknown.join(', ')}, not in the plan (hosts: ${all.join(', ')})`,
    );
  const missing = selected.filter((h) => !opts.addresses.get(h));
  if (missing.length > 0)
    throw new VigilError(
      'ADDRESS_UNKNOWN',
      `no public address for ${missing.join(', ')}`,
      'run `vigil apply` (without --push-only) so Terraform creates them and reports their addresses',
    );
  if (!env.SSH_AUTH_SOCK)
    throw new VigilError(
      'NO_SSH_AGENT',
      'no SSH agent (SSH_AUTH_SOCK unset): bundles are pushed over SSH with your agent',
      'eval "$(ssh-agent)" and ssh-add the key the topology authorizes',
    );
  const results: PushResult[] = [];
  for (const host of selected) {
    const address = opts.addresses.get(host)!;
    opts.log?.(`vigil: pushing ${host} (${address})`);
    const r = await pushHost(host, address, opts);
    opts.log?.(
      `vigil: ${host}: ${r.changed.length} file(s) changed` +
        (r.restarted.length > 0 ? `, restarted ${r.restarted.join(', ')}` : '') +
        (r.removed.length > 0
          ? `, removed ${r.removed.length} file(s) no longer in the bundle`
          : '') +
        (r.ran.length > 0 ? `, ran ${r.ran.length} setup command(s)` : ''),
    );
    results.push(r);
  }
  return results;
}

const TerraformOutputSchema = z.object({
  public_ipv4: z.object({ value: z.record(z.string(), z.string()) }),
});

/** Hosts' public addresses from `terraform output -json` in the plan's terraform directory. */
export function terraformAddresses(
  terraform: string,
  dir: string,
  env: NodeJS.ProcessEnv = process.env,
): Map<string, string> {
  const r = spawnSync(terraform, ['output', '-json'], { cwd: dir, encoding: 'utf8', env });
  if (r.status !== 0)
    throw new VigilError(
      'TERRAFORM_FAILED',
      `terraform output -json failed in ${dir}: ${(r.stderr || String(r.error)).trim()}`,
      'run `vigil apply` first so the machines and their outputs exist',
    );
  try {
    return new Map(
      Object.entries(TerraformOutputSchema.parse(JSON.parse(r.stdout)).public_ipv4.value),
    );
  } catch (err) {
    throw new VigilError(
      'TERRAFORM_FAILED',
      `terraform output -json in ${dir} has no public_ipv4 map: ${errorMessage(err)}`,
      'run `vigil plan` and `vigil apply` with this version of Vigil',
    );
  }
}
