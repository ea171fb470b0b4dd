/**
 * The devnet's local etcd: three members (by default) from the installed `etcd` binary, on
 * loopback with free ports and data dirs under the devnet's work dir. Each agent reaches
 * every member through its own TCP proxy, so one agent's store links can be cut without
 * touching the others. Members can be SIGKILLed and restarted on the same data dir (a crash
 * and a reboot), and paused with SIGSTOP/SIGCONT (a stalled disk or VM).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { VigilError } from '../errors.js';
import { EtcdClient } from '../etcd/client.js';
import {
  checkEtcdBinary,
  etcdArgs,
  EtcdMemberConfigSchema,
  type EtcdMemberConfig,
} from '../etcd/member.js';
import { freePort } from './free-port.js';
import { TcpProxy } from './tcp-proxy.js';

export interface DevnetEtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly config: EtcdMemberConfig;
  proc: ChildProcess | undefined;
  paused: boolean;
}

export interface EtcdClusterOptions {
  /** Data dirs go under here (`etcd/<member>`); kept between runs unless `fresh`. */
  readonly dir: string;
  readonly size?: number;
  readonly binary?: string;
  /** Wipe earlier data dirs first (the ports, and so the peer URLs, change every run). */
  readonly fresh?: boolean;
  readonly healthyTimeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class DevnetEtcdCluster {
  /** Per agent name: one proxy per member, in member order. */
  private readonly agentLinks = new Map<string, TcpProxy[]>();

  private constructor(
    readonly members: DevnetEtcdMember[],
    private readonly binary: string,
  ) {}

  /** Starts the members and waits for a linearizable read; throws ETCD_MISSING without etcd. */
  static async start(opts: EtcdClusterOptions): Promise<DevnetEtcdCluster> {
    const binary = opts.binary ?? 'etcd';
    checkEtcdBinary(binary);
    const size = opts.size ?? 3;
    const root = join(opts.dir, 'etcd');
    // Ports are new every run and etcd keeps its peer URLs in its data dir: start clean.
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    const ports: Array<{ client: number; peer: number }> = [];
    for (let i = 0; i < size; i++) ports.push({ client: await freePort(), peer: await freePort() });
    const initialCluster = Object.fromEntries(
      ports.map((p, i) => [`etcd-${i + 1}`, `http://127.0.0.1:${p.peer}`]),
    );
    // One token for all members: the cluster id is derived from it.
    const clusterToken = `vigil-devnet-${process.pid}-${Date.now()}`;
    const members = ports.map((p, i): DevnetEtcdMember => {
      const name = `etcd-${i + 1}`;
      return {
        name,
        clientPort: p.client,
        config: EtcdMemberConfigSchema.parse({
          name,
          dataDir: join(root, name),
          listenClientUrls: [`http://127.0.0.1:${p.client}`],
          listenPeerUrls: [`http://127.0.0.1:${p.peer}`],
          initialCluster,
          clusterToken,
          // Loopback has no latency to absorb: quick elections keep failovers short.
          heartbeatMs: 50,
          electionMs: 500,
          binary,
          logLevel: process.env.VIGIL_DEVNET_ETCD_DEBUG ? 'info' : 'error',
        }),
        proc: undefined,
        paused: false,
      };
    });
    const cluster = new DevnetEtcdCluster(members, binary);
    try {
      for (let i = 0; i < size; i++) await cluster.startMember(i);
      await cluster.waitHealthy(opts.healthyTimeoutMs ?? 20_000);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  get endpoints(): string[] {
    return this.members.map((m) => `http://127.0.0.1:${m.clientPort}`);
  }

  private alive(m: DevnetEtcdMember): boolean {
    return m.proc !== undefined && m.proc.exitCode === null && m.proc.signalCode === null;
  }

  /** The agents' proxies in front of member `i`. */
  private linksTo(i: number): TcpProxy[] {
    return [...this.agentLinks.values()].map((links) => links[i]!);
  }

  /** Starts (or restarts, on its existing data dir) member `i`; no-op while it runs. */
  async startMember(i: number): Promise<void> {
    const m = this.members[i]!;
    if (this.alive(m)) return;
    await Promise.all(this.linksTo(i).map((l) => l.acceptAgain()));
    m.paused = false;
    m.proc = spawn(this.binary, etcdArgs(m.config), {
      stdio: process.env.VIGIL_DEVNET_ETCD_DEBUG ? 'inherit' : 'ignore',
    });
    // A failed spawn is reported on the child; without a listener it would crash the devnet.
    m.proc.on('error', () => undefined);
  }

  /** SIGKILL: the member dies mid-write, as in a power cut. */
  async killMember(i: number): Promise<void> {
    const m = this.members[i]!;
    const proc = m.proc;
    if (!proc || !this.alive(m)) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      if (m.paused) proc.kill('SIGCONT');
      proc.kill('SIGKILL');
      m.paused = false;
    });
    // Its host stays up: the agents' dials to it are refused, not accepted and dropped.
    await Promise.all(this.linksTo(i).map((l) => l.refuse()));
  }

  pauseMember(i: number): void {
    const m = this.members[i]!;
    if (!this.alive(m)) return;
    m.proc!.kill('SIGSTOP');
    m.paused = true;
  }

  resumeMember(i: number): void {
    const m = this.members[i]!;
    if (!this.alive(m)) return;
    m.proc!.kill('SIGCONT');
    m.paused = false;
  }

  /** The endpoints agent `agent` puts in its store config: its own proxy to each member. */
  async endpointsFor(agent: string): Promise<string[]> {
    let links = this.agentLinks.get(agent);
    if (!links) {
      links = this.members.map((m) => new TcpProxy(m.clientPort));
      this.agentLinks.set(agent, links);
      for (const [i, l] of links.entries()) {
        await l.start();
        if (!this.alive(this.members[i]!)) await l.refuse();
      }
    }
    return links.map((l) => `http://127.0.0.1:${l.port}`);
  }

  /** Cuts every link between one agent and the cluster for `ms`. */
  cutAgent(agent: string, ms: number): void {
    for (const l of this.agentLinks.get(agent) ?? []) l.cut(ms);
  }

  /** Waits until a linearizable read succeeds through the members' own ports. */
  async waitHealthy(timeoutMs: number): Promise<void> {
    const client = new EtcdClient({ endpoints: this.endpoints, callTimeoutMs: 500 });
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        try {
          await client.get('/vigil-devnet/health-probe');
          return;
        } catch (err) {
          if (this.members.every((m) => !this.alive(m)))
            throw new VigilError(
              'DEVNET_ETCD_EXITED',
              'every etcd member exited during startup',
              'run the etcd binary by hand with the same flags to see why (a port in use?)',
            );
          if (Date.now() > deadline)
            throw new VigilError(
              'DEVNET_ETCD_UNHEALTHY',
              `the devnet etcd cluster (${this.endpoints.join(', ')}) did not answer a read within ${timeoutMs} ms: ${(err as Error).message}`,
              'check that loopback ports can be bound and that the etcd binary works',
            );
          await sleep(100);
        }
      }
    } finally {
      client.close();
    }
  }

  async stop(): Promise<void> {
    for (const links of this.agentLinks.values()) await Promise.all(links.map((l) => l.stop()));
    await Promise.all(this.members.map((_, i) => this.killMember(i)));
  }
}
