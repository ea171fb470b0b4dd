/**
 * Runs one local etcd member from Debian's `etcd-server` binary, configured from Vigil's own
 * config, with mutual TLS on the client and peer ports whenever certificates are given.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { VigilError } from '../errors.js';

const url = z.string().regex(/^https?:\/\/[^\s,]+:\d{1,5}$/, 'expected http(s)://host:port');

export const EtcdMemberConfigSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9._-]{1,63}$/),
    dataDir: z.string().min(1),
    /** Addresses to listen on for clients and for peers. */
    listenClientUrls: z.array(url).min(1),
    listenPeerUrls: z.array(url).min(1),
    /** Addresses others dial; default to the listen addresses. */
    advertiseClientUrls: z.array(url).min(1).optional(),
    advertisePeerUrls: z.array(url).min(1).optional(),
    /** Every member's name and advertised peer URL, this one included. */
    initialCluster: z.record(z.string(), url),
    initialClusterState: z.enum(['new', 'existing']).default('new'),
    clusterToken: z.string().min(1).default('vigil'),
    /** Mutual TLS: the cluster CA and this member's certificate (server and peer usage). */
    tls: z
      .object({
        ca: z.string().min(1),
        cert: z.string().min(1),
        key: z.string().min(1),
        peerCert: z.string().min(1).optional(),
        peerKey: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    /** Raft timing; etcd's defaults (100/1000) suit a LAN, raise them across regions. */
    heartbeatMs: z.number().int().min(10).max(5000).default(100),
    electionMs: z.number().int().min(50).max(50_000).default(1000),
    binary: z.string().min(1).default('etcd'),
    logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('warn'),
  })
  .strict()
  .refine((c) => c.name in c.initialCluster, {
    message: 'initialCluster must contain this member',
    path: ['initialCluster'],
  })
  .refine((c) => c.electionMs >= 5 * c.heartbeatMs, {
    message: 'electionMs should be at least 5 × heartbeatMs',
    path: ['electionMs'],
  })
  .refine(
    (c) =>
      !c.tls || [...c.listenClientUrls, ...c.listenPeerUrls].every((u) => u.startsWith('https://')),
    {
      message: 'with tls, every URL must be https://',
      path: ['tls'],
    },
  );

export type EtcdMemberConfig = z.output<typeof EtcdMemberConfigSchema>;

export class EtcdMissingError extends VigilError {
  constructor(binary: string) {
    super(
      'ETCD_MISSING',
      `the etcd binary ${JSON.stringify(binary)} was not found`,
      'install it with `sudo apt-get install etcd-server` (Debian/Ubuntu), or set binary: to its path',
    );
  }
}

/**
 * Relative paths in a config file mean "next to the file", as everywhere in Vigil; etcd would
 * read them against whatever directory `vigil etcd` was started from.
 */
export function resolveMemberPaths(config: EtcdMemberConfig, baseDir: string): EtcdMemberConfig {
  const at = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const t = config.tls;
  return {
    ...config,
    dataDir: at(config.dataDir),
    // A bare command name is looked up on the PATH; only a path with a slash is a file.
    binary: config.binary.includes('/') ? at(config.binary) : config.binary,
    ...(t
      ? {
          tls: {
            ca: at(t.ca),
            cert: at(t.cert),
            key: at(t.key),
            ...(t.peerCert !== undefined ? { peerCert: at(t.peerCert) } : {}),
            ...(t.peerKey !== undefined ? { peerKey: at(t.peerKey) } : {}),
          },
        }
      : {}),
  };
}

/** The etcd command line for `config` (flags only, no environment). */
export function etcdArgs(config: EtcdMemberConfig): string[] {
  const advClient = config.advertiseClientUrls ?? config.listenClientUrls;
  const advPeer = config.advertisePeerUrls ?? config.listenPeerUrls;
  const args = [
    `--name=${config.name}`,
    `--data-dir=${config.dataDir}`,
    `--listen-client-urls=${config.listenClientUrls.join(',')}`,
    `--advertise-client-urls=${advClient.join(',')}`,
    `--listen-peer-urls=${config.listenPeerUrls.join(',')}`,
    `--initial-advertise-peer-urls=${advPeer.join(',')}`,
    `--initial-cluster=${Object.entries(config.initialCluster)
      .map(([n, u]) => `${n}=${u}`)
      .join(',')}`,
    `--initial-cluster-state=${config.initialClusterState}`,
    `--initial-cluster-token=${config.clusterToken}`,
    `--heartbeat-interval=${config.heartbeatMs}`,
    `--election-timeout=${config.electionMs}`,
    '--logger=zap',
    `--log-level=${config.logLevel}`,
  ];
  if (config.tls) {
    const t = config.tls;
    args.push(
      `--trusted-ca-file=${t.ca}`,
      `--cert-file=${t.cert}`,
      `--key-file=${t.key}`,
      '--client-cert-auth=true',
      `--peer-trusted-ca-file=${t.ca}`,
      `--peer-cert-file=${t.peerCert ?? t.cert}`,
      `--peer-key-file=${t.peerKey ?? t.key}`,
      '--peer-client-cert-auth=true',
    );
  }
  return args;
}

/** Throws EtcdMissingError unless `binary --version` runs. */
export function checkEtcdBinary(binary = 'etcd'): string {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new EtcdMissingError(binary);
  return /etcd Version: (\S+)/.exec(r.stdout)?.[1] ?? 'unknown';
}

export interface MemberSupervisorEvents {
  onStart?(pid: number): void;
  /**
   * The first etcd process exited before `startupGraceMs`: a flag, a certificate or the data
   * dir is wrong, and restarting cannot fix that. The supervisor gives up.
   */
  onStartupFailure?(code: number | null, signal: NodeJS.Signals | null): void;
  onExit?(
    code: number | null,
    signal: NodeJS.Signals | null,
    restartInMs: number | undefined,
  ): void;
}

/**
 * Keeps one etcd process running: restarts it after a crash with a growing delay (capped),
 * and stops it with SIGTERM (SIGKILL after 10 s) on `stop()`.
 */
export class EtcdMemberSupervisor {
  private child: ChildProcess | undefined;
  private stopping = false;
  private restartDelayMs = 500;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Whether some etcd process of this supervisor outlived the startup grace period. */
  private startedOnce = false;

  constructor(
    private readonly config: EtcdMemberConfig,
    private readonly events: MemberSupervisorEvents = {},
    private readonly stdio: 'inherit' | 'ignore' = 'inherit',
    private readonly startupGraceMs = 5000,
  ) {}

  start(): void {
    checkEtcdBinary(this.config.binary);
    this.spawnOnce();
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private spawnOnce(): void {
    const startedAt = Date.now();
    const child = spawn(this.config.binary, etcdArgs(this.config), { stdio: this.stdio });
    this.child = child;
    if (child.pid !== undefined) this.events.onStart?.(child.pid);
    child.on('exit', (code, signal) => {
      this.child = undefined;
      if (this.stopping) {
        this.events.onExit?.(code, signal, undefined);
        return;
      }
      // An exit code soon after the first start is etcd refusing its flags, certificates or
      // data dir; a signal (an OOM kill, an operator's kill) is not, and is restarted.
      if (
        !this.startedOnce &&
        signal === null &&
        code !== 0 &&
        Date.now() - startedAt < this.startupGraceMs
      ) {
        this.stopping = true;
        this.events.onExit?.(code, signal, undefined);
        this.events.onStartupFailure?.(code, signal);
        return;
      }
      this.startedOnce = true;
      // A member that ran for a while gets a quick restart; a crash loop backs off.
      this.restartDelayMs =
        Date.now() - startedAt > 60_000 ? 500 : Math.min(this.restartDelayMs * 2, 30_000);
      this.events.onExit?.(code, signal, this.restartDelayMs);
      this.restartTimer = setTimeout(() => this.spawnOnce(), this.restartDelayMs);
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const killTimer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(killTimer);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}
