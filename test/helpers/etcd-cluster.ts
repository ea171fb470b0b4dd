/**
 * A real etcd cluster on loopback for tests and benchmarks: N members with free ports and temp
 * data dirs, optionally with mutual TLS from our own PKI. Every member is killed by its pid in
 * `close()`; members can be killed, paused and restarted individually.
 */
import { freePort } from '../../src/devnet/free-port.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdClient } from '../../src/etcd/client.js';
import { EtcdMemberConfigSchema, etcdArgs, type EtcdMemberConfig } from '../../src/etcd/member.js';
import { initCa, issueCert } from '../../src/etcd/pki.js';
import type { EtcdStoreConfigInput } from '../../src/store/etcd.js';

export function etcdAvailable(): boolean {
  const r = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  return !r.error && r.status === 0;
}

/** For `describe(..., { skip: etcdSkip() })`: loud when skipping, fatal when etcd is required. */
export function etcdSkip(): string | false {
  if (etcdAvailable()) return false;
  if (process.env.VIGIL_REQUIRE_ETCD === '1')
    throw new Error('VIGIL_REQUIRE_ETCD=1 but the etcd binary is not on PATH');
  const msg = 'etcd binary not on PATH: SKIPPING etcd tests (apt-get install etcd-server)';
  console.error(`\n!!! ${msg} !!!\n`);
  return msg;
}

export { freePort };

export interface ClusterTls {
  readonly dir: string;
  readonly ca: string;
  /** A client certificate from the cluster CA. */
  readonly client: { cert: string; key: string };
}

export interface EtcdTestMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly config: EtcdMemberConfig;
  proc: ChildProcess | undefined;
}

export class EtcdTestCluster {
  private constructor(
    readonly root: string,
    readonly members: EtcdTestMember[],
    readonly tls: ClusterTls | undefined,
  ) {}

  static async start(options: { size?: number; tls?: boolean } = {}): Promise<EtcdTestCluster> {
    const size = options.size ?? 3;
    const root = mkdtempSync(join(tmpdir(), 'vigil-etcd-'));
    const scheme = options.tls ? 'https' : 'http';
    let tls: ClusterTls | undefined;
    if (options.tls) {
      const dir = join(root, 'pki');
      await initCa(dir);
      await issueCert(dir, {
        name: 'member',
        kind: 'server',
        ips: ['127.0.0.1'],
        dns: ['localhost'],
      });
      const client = await issueCert(dir, { name: 'agent', kind: 'client' });
      tls = { dir, ca: join(dir, 'ca.crt'), client: { cert: client.cert, key: client.key } };
    }
    const ports = [];
    for (let i = 0; i < size; i++) ports.push({ client: await freePort(), peer: await freePort() });
    const initialCluster = Object.fromEntries(
      ports.map((p, i) => [`m${i}`, `${scheme}://127.0.0.1:${p.peer}`]),
    );
    const members: EtcdTestMember[] = ports.map((p, i) => {
      const config = EtcdMemberConfigSchema.parse({
        name: `m${i}`,
        dataDir: join(root, `m${i}`),
        listenClientUrls: [`${scheme}://127.0.0.1:${p.client}`],
        listenPeerUrls: [`${scheme}://127.0.0.1:${p.peer}`],
        initialCluster,
        clusterToken: `vigil-test-${process.pid}`,
        // Quick elections keep the failure tests short; loopback has no latency to absorb.
        heartbeatMs: 50,
        electionMs: 500,
        logLevel: 'error',
        ...(tls
          ? {
              tls: {
                ca: tls.ca,
                cert: join(tls.dir, 'member.crt'),
                key: join(tls.dir, 'member.key'),
              },
            }
          : {}),
      });
      return {
        name: `m${i}`,
        clientUrl: `${scheme}://127.0.0.1:${p.client}`,
        config,
        proc: undefined,
      };
    });
    const cluster = new EtcdTestCluster(root, members, tls);
    try {
      for (let i = 0; i < size; i++) cluster.startMember(i);
      await cluster.waitHealthy();
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /** Store config for agents of this cluster. */
  storeConfig(overrides: Partial<EtcdStoreConfigInput> = {}): EtcdStoreConfigInput {
    return {
      endpoints: this.endpoints,
      ...(this.tls ? { tls: { ca: this.tls.ca, ...this.tls.client } } : {}),
      prefix: '/vigil-test/',
      ...overrides,
    };
  }

  client(timeoutMs = 1000): EtcdClient {
    return new EtcdClient({
      endpoints: this.endpoints,
      ...(this.tls ? { tls: { ca: this.tls.ca, ...this.tls.client } } : {}),
      callTimeoutMs: timeoutMs,
    });
  }

  startMember(i: number): void {
    const m = this.members[i]!;
    if (m.proc && m.proc.exitCode === null && m.proc.signalCode === null) return;
    m.proc = spawn('etcd', etcdArgs(m.config), { stdio: 'ignore' });
  }

  killMember(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const m = this.members[i]!;
    const proc = m.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      proc.once('exit', () => resolve());
      process.kill(proc.pid!, signal);
    });
  }

  /** Index of the current raft leader, asking every live member. */
  async leaderIndex(): Promise<number> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const c = this.client(500);
      try {
        const statuses = await c.statusAll();
        const ok = statuses.filter(
          (s): s is Extract<typeof s, { memberId: string }> => 'memberId' in s,
        );
        const leader = ok.find((s) => s.leaderId !== '0' && s.memberId === s.leaderId);
        if (leader) return this.endpoints.indexOf(leader.endpoint);
      } finally {
        c.close();
      }
      await sleep(100);
    }
    throw new Error('no etcd leader elected');
  }

  /** Waits until a linearizable read succeeds (bounded: 15 s). */
  async waitHealthy(): Promise<void> {
    const c = this.client(500);
    try {
      for (let attempt = 0; attempt < 150; attempt++) {
        try {
          await c.get('/health-probe');
          return;
        } catch {
          await sleep(100);
        }
      }
    } finally {
      c.close();
    }
    throw new Error(`etcd cluster at ${this.endpoints.join(',')} did not become healthy`);
  }

  async close(): Promise<void> {
    for (const m of this.members) {
      // A SIGSTOPped member ignores SIGKILL's exit until continued on some kernels' views.
      if (m.proc?.pid && m.proc.exitCode === null && m.proc.signalCode === null) {
        try {
          process.kill(m.proc.pid, 'SIGCONT');
        } catch {
          /* already gone */
        }
      }
      await this.killMember(this.members.indexOf(m));
    }
    rmSync(this.root, { recursive: true, force: true });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
