/**
 * Distance, measured (issue 13, item 4): the guard's cost when its three etcd members are in
 * three "regions" with round-trip times of about 20, 80 and 150 ms, next to a raw etcd
 * compare-and-swap at the same distances, in the same run.
 *
 * This kernel has no netem, so distance is a delaying TCP proxy (src/devnet/tcp-proxy.ts) on
 * every link between "hosts", one per ordered pair of members: each member advertises the port
 * of a small router in front of it, which reads who is dialing from the first request's
 * `X-Server-From` header (every raft message etcd sends between peers carries it) and hands the
 * connection to the proxy for that pair (dialer → member), which delays each direction by half
 * the pair's round trip. Raft messages from A to B ride the connection B dialed to A and the
 * reverse the one A dialed to B, so both pair proxies delay the A–B exchange. The peer
 * requests without that header carry no raft message (etcd 3.4: GET /members at boot, GET
 * /version, GET /raft/probing); they go undelayed and are counted.
 *
 * The guard (GuardedSigner.sign of CometBFT proposals on EtcdWatermarkStore) runs next to
 * member 1, in region A: its link to member 1 is direct and its links to members 2 and 3 go
 * through delaying proxies. The raw CAS (Txn: if mod_revision == last then put, same record
 * size) is sent to member 1 too, as the guard's store client prefers its first endpoint.
 * Both sides run one request in flight, in interleaved blocks, with the raft leader placed
 * first in region A (next to the guard) and then in region C (one 80 ms round trip away).
 * Target: guard p50 ≤ 1.25× the raw quorum write at each placement. Reference: Horcrux's
 * published figure, a vote costs 300–800 ms at 100–200 ms RTT.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Etcd3 } from 'etcd3';
import { freePort } from '../src/devnet/free-port.js';
import { TcpProxy } from '../src/devnet/tcp-proxy.js';
import { EtcdClient } from '../src/etcd/client.js';
import { checkEtcdBinary, etcdArgs, EtcdMemberConfigSchema } from '../src/etcd/member.js';
import { Ed25519Key } from '../src/keys/ed25519.js';
import { KeyRing } from '../src/keys/keyring.js';
import { GuardedSigner } from '../src/signer/guarded-signer.js';
import { LocalWatermarks } from '../src/signer/local-watermark.js';
import { openEtcdStore } from '../src/store/etcd.js';
import { encodeRecord } from '../src/store/record-codec.js';
import type { BenchFigure } from './figures.js';
import { cometbftProposal } from './messages.js';

export const needsEtcd = true;

const REGIONS = ['A', 'B', 'C'] as const;
/** Round trips between regions A–B, A–C, B–C in ms (VIGIL_BENCH_DISTANCE_RTT="20,80,150"). */
const [AB, AC, BC] = (process.env.VIGIL_BENCH_DISTANCE_RTT ?? '20,80,150')
  .split(',')
  .map(Number) as [number, number, number];
const RTT: number[][] = [
  [0, AB, AC],
  [AB, 0, BC],
  [AC, BC, 0],
];
/** Operations per side with the leader in region A; a third of it with the leader in C. */
const OPS = Number(process.env.VIGIL_BENCH_DISTANCE_OPS ?? 150);
const BLOCK = 10;
const WARMUP = 5;
const CHAIN = 'bench-distance';
const HORCRUX = 'Horcrux (published): a vote costs 300–800 ms at 100–200 ms RTT';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/**
 * etcd's member id for a member of a new cluster: the first 8 bytes (big-endian) of
 * SHA-1(sorted peer URLs joined + cluster token), as `types.ID.String()` prints it (hex).
 * Checked against the running cluster's member list before anything is measured.
 */
export function etcdMemberId(peerUrls: readonly string[], token: string): string {
  const digest = createHash('sha1')
    .update([...peerUrls].sort().join('') + token)
    .digest();
  return digest.readBigUInt64BE(0).toString(16);
}

/**
 * Listens on a member's advertised peer port and hands each connection to the proxy for its
 * dialer, read from the first request's `X-Server-From` header.
 */
class PeerRouter {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;
  classified = 0;
  unclassified = 0;

  constructor(
    /** Hex member id → port of the (dialer → this member) proxy. */
    private readonly routes: Map<string, number>,
    /** The member's own peer port, for requests that name no sender. */
    private readonly directPort: number,
  ) {}

  async start(port: number): Promise<void> {
    this.server = createServer((c) => this.accept(c));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = port;
  }

  private accept(client: Socket): void {
    this.sockets.add(client);
    let head = Buffer.alloc(0);
    const onData = (b: Buffer) => {
      head = Buffer.concat([head, b]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0 && head.length < 16 << 10) return;
      client.off('data', onData);
      client.pause();
      const headers = head.subarray(0, end < 0 ? head.length : end).toString('latin1');
      const from = /^x-server-from:\s*([0-9a-f]+)\s*$/im.exec(headers)?.[1];
      const routed = from !== undefined ? this.routes.get(from) : undefined;
      if (routed !== undefined) this.classified++;
      else this.unclassified++;
      const upstream = connect(routed ?? this.directPort, '127.0.0.1');
      this.sockets.add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      upstream.write(head);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    };
    client.on('data', onData);
    client.on('error', () => client.destroy());
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Three etcd members, one per region, with delayed peer links and the guard's client links. */
class DistantCluster {
  readonly procs: ChildProcess[] = [];
  readonly routers: PeerRouter[] = [];
  readonly proxies: TcpProxy[] = [];
  readonly ids: string[] = [];
  /** Client URLs from member 1's region: member 1 direct, the others through delays. */
  guardEndpoints: string[] = [];
  directEndpoints: string[] = [];

  constructor(readonly root: string) {}

  async start(): Promise<void> {
    checkEtcdBinary();
    const n = REGIONS.length;
    const ports: Array<{ client: number; peer: number; advertised: number }> = [];
    for (let i = 0; i < n; i++)
      ports.push({
        client: await freePort(),
        peer: await freePort(),
        advertised: await freePort(),
      });
    const token = `vigil-bench-distance-${process.pid}-${Date.now()}`;
    const advertised = ports.map((p) => `http://127.0.0.1:${p.advertised}`);
    for (const url of advertised) this.ids.push(etcdMemberId([url], token));
    // One proxy per ordered pair (dialer i → member j), half the round trip each way.
    for (let j = 0; j < n; j++) {
      const routes = new Map<string, number>();
      for (let i = 0; i < n; i++) {
        if (i === j) continue;
        const oneWay = RTT[i]![j]! / 2;
        const proxy = new TcpProxy(ports[j]!.peer, '127.0.0.1', undefined, {
          delay: { upstreamMs: oneWay, downstreamMs: oneWay },
        });
        await proxy.start();
        this.proxies.push(proxy);
        routes.set(this.ids[i]!, proxy.port);
      }
      const router = new PeerRouter(routes, ports[j]!.peer);
      await router.start(ports[j]!.advertised);
      this.routers.push(router);
    }
    // The guard sits in region A, next to member 1.
    this.directEndpoints = ports.map((p) => `http://127.0.0.1:${p.client}`);
    this.guardEndpoints = [this.directEndpoints[0]!];
    for (let j = 1; j < n; j++) {
      const oneWay = RTT[0]![j]! / 2;
      const proxy = new TcpProxy(ports[j]!.client, '127.0.0.1', undefined, {
        delay: { upstreamMs: oneWay, downstreamMs: oneWay },
      });
      await proxy.start();
      this.proxies.push(proxy);
      this.guardEndpoints.push(`http://127.0.0.1:${proxy.port}`);
    }
    const initialCluster = Object.fromEntries(
      advertised.map((u, i) => [`region-${REGIONS[i]}`, u]),
    );
    for (let i = 0; i < n; i++) {
      const config = EtcdMemberConfigSchema.parse({
        name: `region-${REGIONS[i]}`,
        dataDir: join(this.root, `m${i + 1}`),
        listenClientUrls: [this.directEndpoints[i]!],
        listenPeerUrls: [`http://127.0.0.1:${ports[i]!.peer}`],
        advertisePeerUrls: [advertised[i]!],
        initialCluster,
        clusterToken: token,
        // Across regions: a heartbeat near the largest round trip, elections well past it.
        heartbeatMs: 150,
        electionMs: 2000,
        logLevel: 'error',
      });
      const proc = spawn('etcd', etcdArgs(config), { stdio: 'ignore' });
      proc.on('error', () => undefined);
      this.procs.push(proc);
    }
    await this.waitHealthy();
    await this.checkIds();
  }

  private async waitHealthy(): Promise<void> {
    const c = new EtcdClient({ endpoints: this.directEndpoints, callTimeoutMs: 1000 });
    try {
      for (let attempt = 0; attempt < 150; attempt++) {
        try {
          await c.get('/health-probe');
          return;
        } catch {
          if (this.procs.every((p) => p.exitCode !== null)) break;
          await sleep(100);
        }
      }
    } finally {
      c.close();
    }
    throw new Error(`the distance bench's etcd cluster did not become healthy`);
  }

  /** The routers route by member id: fail loudly if etcd computes ids otherwise. */
  private async checkIds(): Promise<void> {
    const c = this.member(0);
    try {
      const { members } = await c.cluster.memberList({});
      for (const [i, name] of REGIONS.entries()) {
        const m = members.find((x) => x.name === `region-${name}`);
        const id = m ? BigInt(m.ID).toString(16) : 'missing';
        if (id !== this.ids[i])
          throw new Error(
            `etcd member region-${name} has id ${id}, the routers expected ${this.ids[i]}: peer links would not be delayed`,
          );
      }
    } finally {
      c.close();
    }
  }

  /** An etcd3 client on member `i`'s own client port. */
  member(i: number): Etcd3 {
    return new Etcd3({ hosts: this.directEndpoints[i]!.replace('http://', '') });
  }

  async leader(): Promise<number> {
    const c = this.member(0);
    try {
      const s = await c.maintenance.status({});
      return this.ids.indexOf(BigInt(s.leader).toString(16));
    } finally {
      c.close();
    }
  }

  /** Moves raft leadership to member `target` and waits until member 1 sees it (bounded). */
  async moveLeader(target: number): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const current = await this.leader();
      if (current === target) return;
      if (current >= 0) {
        const c = this.member(current);
        try {
          await c.maintenance.moveLeader({ targetID: BigInt(`0x${this.ids[target]}`).toString() });
        } catch {
          /* an election under way: ask again */
        } finally {
          c.close();
        }
      }
      await sleep(300);
    }
    throw new Error(`could not move the etcd leader to region ${REGIONS[target]}`);
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            p.once('exit', () => resolve());
            p.kill('SIGKILL');
          }),
      ),
    );
    for (const r of this.routers) await r.stop();
    for (const p of this.proxies) await p.stop();
  }
}

interface Placement {
  readonly leader: number;
  readonly guard: number[];
  readonly raw: number[];
}

export async function run(): Promise<BenchFigure[]> {
  const root = mkdtempSync(join(tmpdir(), 'vigil-bench-distance-'));
  const cluster = new DistantCluster(root);
  let raw: Etcd3 | undefined;
  let store: Awaited<ReturnType<typeof openEtcdStore>> | undefined;
  let local: LocalWatermarks | undefined;
  try {
    await cluster.start();
    await cluster.moveLeader(0);
    store = await openEtcdStore(
      { endpoints: cluster.guardEndpoints, prefix: '/vigil-bench-distance/' },
      { create: true },
    );
    local = new LocalWatermarks(join(root, 'local.db'));
    local.bindStore(store.identity);
    const key = Ed25519Key.fromSeed(new Uint8Array(32).fill(44));
    const keys = new KeyRing();
    keys.add({
      id: 'bench-cometbft',
      scopeKeyId: key.publicKeyHex,
      signer: key,
      binding: { protocol: 'cometbft', chains: new Set([CHAIN]) },
    });
    const signer = new GuardedSigner({ store, keys, local, agentId: 'bench' });
    raw = cluster.member(0);
    const rawClient = raw;
    let height = 0n;
    const guardOp = async () => {
      const r = await signer.sign({
        chainId: CHAIN,
        keyId: 'bench-cometbft',
        payload: cometbftProposal(CHAIN, ++height),
      });
      if (r.outcome !== 'granted') throw new Error(`guard refused: ${JSON.stringify(r)}`);
    };
    const rawKey = '/vigil-bench-distance-raw';
    const record = encodeRecord({
      family: 'cometbft',
      position: [1_000_000n, 0n, 1n],
      payloadHash: new Uint8Array(32).fill(1),
      signature: key.sign(new Uint8Array(96).fill(7)),
      writer: 'bench',
      updatedAtMs: Date.now(),
    });
    let rawRev = 0n;
    const rawOp = async () => {
      const res = await rawClient
        .if(rawKey, 'Mod', '==', rawRev.toString())
        .then(rawClient.put(rawKey).value(record))
        .commit();
      if (!res.succeeded) throw new Error('raw CAS lost a race it cannot lose');
      rawRev = BigInt(res.header.revision);
    };

    const measure = async (leader: number, ops: number): Promise<Placement> => {
      await cluster.moveLeader(leader);
      for (let i = 0; i < WARMUP; i++) {
        await guardOp();
        await rawOp();
      }
      const guard: number[] = [];
      const rawTimes: number[] = [];
      for (let b = 0; b * BLOCK < ops; b++) {
        // Interleaved blocks, alternating which side goes first.
        const sides = b % 2 === 0 ? ([guardOp, rawOp] as const) : ([rawOp, guardOp] as const);
        for (const op of sides) {
          const into = op === guardOp ? guard : rawTimes;
          for (let i = 0; i < BLOCK && b * BLOCK + i < ops; i++) {
            const t = performance.now();
            await op();
            into.push(performance.now() - t);
          }
        }
      }
      const now = await cluster.leader();
      if (now !== leader)
        throw new Error(`the leader moved to region ${REGIONS[now] ?? '?'} during the run`);
      return {
        leader,
        guard: guard.sort((x, y) => x - y),
        raw: rawTimes.sort((x, y) => x - y),
      };
    };

    const placements = [
      await measure(0, OPS),
      await measure(2, Math.max(BLOCK, Math.round(OPS / 3))),
    ];

    console.log(
      `distance: 3 etcd members in regions A, B, C; round trips A–B ${AB} ms, A–C ${AC} ms, B–C ${BC} ms ` +
        `(delaying proxies, one per ordered pair); guard and raw client in region A, next to member 1`,
    );
    const figures: BenchFigure[] = [];
    for (const p of placements) {
      const where = `leader ${REGIONS[p.leader]}`;
      const g50 = pct(p.guard, 50);
      const r50 = pct(p.raw, 50);
      const g99 = pct(p.guard, 99);
      const r99 = pct(p.raw, 99);
      const ok = g50 <= 1.25 * r50;
      console.log(
        `  ${where}: ${p.guard.length} CometBFT proposals through the guard, ${p.raw.length} raw CAS, interleaved in blocks of ${BLOCK}`,
      );
      console.log(`    guard p50 ${g50.toFixed(1)} ms  p99 ${g99.toFixed(1)} ms`);
      console.log(`    raw   p50 ${r50.toFixed(1)} ms  p99 ${r99.toFixed(1)} ms`);
      console.log(
        `    ratio p50 ${(g50 / r50).toFixed(2)}×  p99 ${(g99 / r99).toFixed(2)}×  (target p50 ≤ 1.25× raw quorum write: ${ok ? 'met' : 'NOT MET'})`,
      );
      const base = { unit: 'ms', baselineName: 'raw etcd CAS' } as const;
      figures.push(
        {
          ...base,
          name: `distance guard p50 (${where})`,
          value: g50,
          baseline: r50,
          ratio: g50 / r50,
          target: '≤ 1.25× raw quorum write',
          ok,
        },
        {
          ...base,
          name: `distance guard p99 (${where})`,
          value: g99,
          baseline: r99,
          ratio: g99 / r99,
        },
      );
    }
    const links = cluster.routers.map((r) => `${r.classified}/${r.unclassified}`).join(', ');
    console.log(
      `  peer connections routed to a pair's delay / undelayed (/members, /version, /raft/probing), per member: ${links}`,
    );
    console.log(`  reference: ${HORCRUX}`);
    return figures;
  } finally {
    raw?.close();
    await store?.close();
    local?.close();
    await cluster.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
