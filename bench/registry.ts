/**
 * The node registry over libp2p (issue 15): 50 nodes on loopback — 3 validators committing
 * through a real store (a 3-member etcd cluster on loopback when `etcd` is on PATH, else one
 * SQLite file; the output says which) and 47 peers. Every node bootstraps to the validators,
 * then runs a DHT self-lookup (what kad-dht does to fill its routing table), which connects it
 * to the peers closest to it: the gossip mesh forms over those connections.
 *
 *   registry:  a peer submits its own record to a validator (round-robin) → the store commits
 *              it → validators countersign it through the store → once a quorum has, each
 *              validator's store publisher puts it on the gossip topic → until EVERY node of
 *              the 50 has accepted it into its view (verified: signatures, quorum, seq).
 *   baseline:  a plain gossipsub publish of the same number of bytes (the record with its
 *              last byte flipped: gossipsub ids messages by content) from a validator, on
 *              another topic with no validator, over the same 50 nodes and connections, until
 *              every other node has received it.
 *
 * The two alternate one sample at a time, one in flight, so both see the same machine. The
 * registry figure includes everything a submission waits for; the largest fixed part is the
 * validators' store publisher, which lists the store every 100 ms (service.ts default).
 *
 * Threads. All 50 nodes in one Node thread measured that thread's event loop (delay p50
 * 349 ms, p99 1.4 s) more than the network, and submissions timed out. The peers now run in
 * VIGIL_BENCH_REGISTRY_WORKERS worker threads (default os.availableParallelism(); 0 = all in
 * the main thread, the old setup, for comparison), bench/registry-worker.ts, dealt round-robin.
 * The validators stay in the main thread with the store and the coordination: a validator
 * needs the etcd client and the store (its publisher lists it, the bench reads it back after
 * a failed submission), the coordinator only waits on messages, and three nodes are a small
 * share of the work — so the main thread is one more loop of about the same load as a
 * worker's, without moving the store across threads. Every node reports "accepted record K
 * at t" / "received plain message K at t" with t = performance.timeOrigin + performance.now()
 * (comparable across a process's threads), and a sample's time is the last node's t minus the
 * sender's: the message hop to the coordinator is not in the figure. The event-loop delay of
 * every thread is printed.
 *
 * Memory per node: RSS after the 50 nodes are up and meshed minus RSS before, over 50; the
 * workers are threads of this process, so their heaps are in it (etcd runs in its own
 * processes and is not counted; nothing forces a GC, so it is an upper bound).
 *
 * VIGIL_BENCH_REGISTRY_N (default 40, so p99 is the largest sample) samples a side;
 * VIGIL_BENCH_REGISTRY_PEERS (default 47).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { Registry } from 'prom-client';
import { errorMessage } from '../src/errors.js';
import { Ed25519Key } from '../src/keys/ed25519.js';
import { decodeRecord, validatorSet, type RecordContent } from '../src/registry/record.js';
import { RegistryValidator } from '../src/registry/service.js';
import { EtcdRegistryCells } from '../src/registry/store-etcd.js';
import { SqliteRegistryCells } from '../src/registry/store-sqlite.js';
import { RegistryStore, type RegistryCells } from '../src/registry/store.js';
import { openEtcdStore } from '../src/store/etcd.js';
import { EtcdTestCluster } from '../test/helpers/etcd-cluster.js';
import type { BenchFigure } from './figures.js';
import {
  PLAIN_TOPIC,
  PeerHost,
  WORKER_ROLE,
  instrument,
  meshState,
  nowAbs,
  plainKey,
  type LoopDelay,
  type MeshState,
  type StartResult,
  type SubmitResult,
  type WorkerEvent,
  type WorkerOp,
  type WorkerReply,
  type WorkerSetup,
} from './registry-worker.js';

const N = Number(process.env.VIGIL_BENCH_REGISTRY_N ?? 40);
const PEERS = Number(process.env.VIGIL_BENCH_REGISTRY_PEERS ?? 47);
const WORKERS = Number(process.env.VIGIL_BENCH_REGISTRY_WORKERS ?? availableParallelism());
const WARMUP = 3;
const SAMPLE_TIMEOUT_MS = 30_000;
const LOOPBACK = ['/ip4/127.0.0.1/tcp/0'];
const PREFIX = '/vigil-bench-registry/';

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function seed(tag: number): Uint8Array {
  const s = new Uint8Array(32).fill(tag);
  s[0] = 0xbe;
  return s;
}

/** A sample that did not reach every node in time: counted and reported, the run goes on. */
class SampleTimeout extends Error {}

function etcdOnPath(): boolean {
  return spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * Resolves, with the latest arrival time, when `count` distinct nodes have reported `key`; one
 * waiter at a time.
 */
class Arrivals {
  private key = '';
  private readonly seen = new Set<string>();
  private need = 0;
  private last = 0;
  private resolve: ((last: number) => void) | undefined;

  expect(key: string, count: number): Promise<number> {
    this.key = key;
    this.seen.clear();
    this.need = count;
    this.last = 0;
    return new Promise<number>((resolve) => (this.resolve = resolve));
  }

  report(key: string, node: string, at: number): void {
    if (key !== this.key || this.seen.has(node)) return;
    this.seen.add(node);
    this.last = Math.max(this.last, at);
    if (this.seen.size >= this.need) this.resolve?.(this.last);
  }

  missing(all: readonly string[]): string[] {
    return all.filter((n) => !this.seen.has(n));
  }
}

/** A thread's peers, as the coordinator drives them: a worker thread, or the main thread. */
interface Host {
  readonly label: string;
  request<T>(op: WorkerOp): Promise<T>;
  /** Stops its peers (bounded) and ends the thread; never throws. */
  close(): Promise<void>;
}

class ThreadHost implements Host {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  private dead: Error | undefined;

  constructor(
    readonly label: string,
    setup: WorkerSetup,
    onEvent: (e: WorkerEvent) => void,
    onDeath: (err: Error) => void,
  ) {
    this.worker = new Worker(new URL('./registry-worker.js', import.meta.url), {
      workerData: setup,
    });
    this.worker.on('message', (m: WorkerReply | WorkerEvent) => {
      if ('event' in m) return onEvent(m);
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.ok) p?.resolve(m.result);
      else p?.reject(new Error(`${this.label}: ${m.error}`));
    });
    const die = (err: Error) => {
      if (this.dead) return;
      this.dead = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      onDeath(err);
    };
    this.worker.on('error', (err) => die(new Error(`${this.label} failed: ${errorMessage(err)}`)));
    this.worker.on('exit', (code) => die(new Error(`${this.label} exited (code ${code})`)));
  }

  request<T>(op: WorkerOp): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...op, id });
    });
  }

  async close(): Promise<void> {
    if (!this.dead) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.request({ op: 'stop' }).catch(() => undefined),
        new Promise((r) => (timer = setTimeout(r, 20_000))),
      ]);
      clearTimeout(timer);
    }
    this.dead ??= new Error(`${this.label} closed`);
    await this.worker.terminate();
  }
}

class MainThreadHost implements Host {
  readonly label = 'main thread';
  private readonly host: PeerHost;
  constructor(setup: WorkerSetup, onEvent: (e: WorkerEvent) => void) {
    this.host = new PeerHost(setup, onEvent);
  }
  request<T>(op: WorkerOp): Promise<T> {
    return this.host.handle(op) as Promise<T>;
  }
  async close(): Promise<void> {
    await this.host.stop();
  }
}

export async function run(): Promise<BenchFigure[]> {
  if (!Number.isInteger(WORKERS) || WORKERS < 0)
    throw new Error(`VIGIL_BENCH_REGISTRY_WORKERS must be a whole number ≥ 0, not ${WORKERS}`);
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-registry-'));
  // VIGIL_BENCH_REGISTRY_STORE=sqlite measures the one-host setup even where etcd exists.
  const useEtcd = process.env.VIGIL_BENCH_REGISTRY_STORE !== 'sqlite' && etcdOnPath();
  let cluster: EtcdTestCluster | undefined;
  const validators: RegistryValidator[] = [];
  const hosts: Host[] = [];
  // A worker that dies ends the run at once instead of at the next sample's timeout.
  let died: (err: Error) => void = () => undefined;
  const death = new Promise<never>((_, reject) => (died = reject));
  death.catch(() => undefined);
  const within = async <T>(what: string, p: Promise<T>, missing: () => string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        p,
        death,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new SampleTimeout(`${what}: not within ${SAMPLE_TIMEOUT_MS} ms (${missing()})`),
              ),
            SAMPLE_TIMEOUT_MS,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  };
  try {
    const vKeys = [0, 1, 2].map((i) => Ed25519Key.fromSeed(seed(200 + i)));
    const set = validatorSet(vKeys.map((k) => k.publicKey));
    let cells: () => Promise<RegistryCells>;
    if (useEtcd) {
      cluster = await EtcdTestCluster.start({ size: 3 });
      await (
        await openEtcdStore(cluster.storeConfig({ prefix: PREFIX }), { create: true })
      ).close();
      cells = () => EtcdRegistryCells.open(cluster!.client(2000), { prefix: PREFIX });
    } else {
      const path = join(dir, 'registry.db');
      await new SqliteRegistryCells({ path, create: true }).close();
      cells = async () => new SqliteRegistryCells({ path });
    }
    const store = useEtcd
      ? '3-member etcd cluster on loopback'
      : `one SQLite file (${process.env.VIGIL_BENCH_REGISTRY_STORE === 'sqlite' ? 'VIGIL_BENCH_REGISTRY_STORE=sqlite' : 'etcd is not on PATH'})`;
    const threads =
      WORKERS === 0
        ? 'all in the main thread'
        : `validators in the main thread, peers in ${WORKERS} worker thread(s)`;
    console.log(
      `registry: 3 validators (store: ${store}) + ${PEERS} peers on loopback, ${threads}; ${N} samples a side; load average ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );

    const registryArrivals = new Arrivals();
    const plainArrivals = new Arrivals();
    const onEvent = (e: WorkerEvent) =>
      (e.event === 'accepted' ? registryArrivals : plainArrivals).report(e.key, e.peerId, e.at);

    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    for (let i = 0; i < 3; i++) {
      const v = await RegistryValidator.start({
        seed: seed(200 + i),
        listen: LOOPBACK,
        bootstrap: validators.flatMap((x) => x.addresses.slice(0, 1)),
        validators: set,
        viewPath: join(dir, `v${i}-view.db`),
        metrics: new Registry(),
        // Only one node of a process can have libp2p's metrics (src/registry/node.ts); none
        // here, so every node does the same work.
        libp2pMetrics: false,
        store: new RegistryStore(await cells(), { validators: set }),
        countersignStatePath: join(dir, `v${i}-countersigned.db`),
        // The bench submits far faster than a real node would; the limit is not measured.
        ratePoints: 1000,
      });
      validators.push(v);
      instrument(v, onEvent);
    }
    const bootstrap = validators.map((v) => v.addresses[0]!);
    const peerKeys = Array.from({ length: PEERS }, (_, i) => Ed25519Key.fromSeed(seed(1 + i)));
    // Peer i lives in thread i mod W.
    const shares = Array.from({ length: Math.max(1, WORKERS) }, (_, w) => ({
      role: WORKER_ROLE,
      validatorKeys: vKeys.map((k) => k.publicKey),
      bootstrap,
      dir,
      peers: peerKeys.flatMap((_, i) =>
        i % Math.max(1, WORKERS) === w ? [{ index: i, seed: seed(1 + i) }] : [],
      ),
    })) satisfies WorkerSetup[];
    for (const [w, share] of shares.entries())
      hosts.push(
        WORKERS === 0
          ? new MainThreadHost(share, onEvent)
          : new ThreadHost(`worker ${w + 1}`, share, onEvent, (err) => died(err)),
      );
    const hostOf = (index: number) => hosts[index % hosts.length]!;
    const peerIds: string[] = [];
    for (const r of await within(
      'peers started',
      Promise.all(hosts.map((h) => h.request<StartResult>({ op: 'start' }))),
      () => 'still starting',
    ))
      for (const p of r.peers) peerIds[p.index] = p.peerId;
    const upS = (performance.now() - started) / 1000;
    // Eight lookups in flight in all (as in one thread): they all ask the three validators
    // first. A node that still has only its bootstrap connections after that (its lookup
    // timed out on a busy machine) looks up again, as kad-dht would: otherwise the validators
    // prune it from their gossip mesh and it has no other neighbour to graft.
    const concurrency = Math.ceil(8 / hosts.length);
    await Promise.all(hosts.map((h) => h.request({ op: 'lookup', concurrency })));
    const again: number[] = [];
    const lookupIsolated = async () =>
      (
        await Promise.all(
          hosts.map((h) =>
            h.request<number>({ op: 'lookup', concurrency, maxConnections: validators.length }),
          ),
        )
      ).reduce((a, b) => a + b, 0);
    for (let round = 0; round < 3; round++) {
      const n = await lookupIsolated();
      if (n === 0) break;
      again.push(n);
    }
    const lookupS = (performance.now() - started) / 1000 - upS;
    console.log(
      `  nodes started in ${upS.toFixed(1)} s, DHT self-lookups ${lookupS.toFixed(1)} s${again.length > 0 ? ` (again for nodes with only the validators as neighbours: ${again.join(', ')})` : ''}`,
    );
    const ids = [...validators.map((v) => v.peerId), ...peerIds];

    // Both topics' subscriptions known to every neighbour, then two heartbeats for the mesh.
    const deadline = Date.now() + 30_000;
    let states: MeshState[];
    let nextLookup = Date.now() + 5000;
    for (;;) {
      states = [
        ...validators.map(meshState),
        ...(await Promise.all(hosts.map((h) => h.request<MeshState[]>({ op: 'mesh' })))).flat(),
      ];
      const notReady = states.filter((s) => !s.ready);
      if (notReady.length === 0) break;
      if (Date.now() > deadline)
        throw new Error(
          `registry bench: the gossip mesh did not form within 30 s (${notReady.length} node(s) without a mesh: connections/subscribers/subscribers plain/mesh/mesh plain: ${notReady.map((s) => s.detail).join(' ')})`,
        );
      // Every 5 s, the isolated nodes look up (and re-dial) again.
      if (Date.now() > nextLookup) {
        const n = await lookupIsolated();
        if (n > 0) again.push(n);
        nextLookup = Date.now() + 5000;
      }
      await sleep(100);
    }
    await sleep(2500);
    const setupS = (performance.now() - started) / 1000;
    const degrees = states.map((s) => s.connections).sort((a, b) => a - b);
    const rssAfter = process.memoryUsage().rss;
    const perNodeMiB = (rssAfter - rssBefore) / ids.length / 2 ** 20;
    console.log(
      `  ${ids.length} nodes up and meshed in ${setupS.toFixed(1)} s${again.length > 0 ? ` (lookups repeated for nodes with only the validators as neighbours: ${again.join(', ')})` : ''}; connections per node min ${degrees[0]}, median ${pct(degrees, 50)}, max ${degrees.at(-1)}; RSS +${((rssAfter - rssBefore) / 2 ** 20).toFixed(0)} MiB = ${perNodeMiB.toFixed(1)} MiB per node`,
    );

    const lastSeq = new Map<string, bigint>();
    const failures: string[] = [];
    // Samples (either side) that did not reach every node within SAMPLE_TIMEOUT_MS.
    const unseen: string[] = [];
    const threadOf = new Map<string, string>([
      ...validators.map((v) => [v.peerId, 'main'] as const),
      ...peerIds.map((id, i) => [id, WORKERS === 0 ? 'main' : hostOf(i).label] as const),
    ]);
    const threadsOf = (miss: string[]) => {
      const n = new Map<string, number>();
      for (const id of miss) n.set(threadOf.get(id)!, (n.get(threadOf.get(id)!) ?? 0) + 1);
      return [...n].map(([t, k]) => `${k} in ${t}`).join(', ');
    };
    const registrySample = async (
      i: number,
    ): Promise<{ ms: number; answeredMs: number; bytes: Uint8Array } | undefined> => {
      const index = i % PEERS;
      const peerId = peerIds[index]!;
      const v = validators[i % validators.length]!;
      const prevSeq = lastSeq.get(peerId) ?? 0n;
      const now = Date.now();
      const content: RecordContent = {
        subjectKey: peerKeys[index]!.publicKey,
        prevSeq,
        issuedAtMs: now,
        expiresAtMs: now + 3_600_000,
        flags: 1,
        role: 'worker',
        capabilities: ['oracle', 'relay'],
        addresses: [`/ip4/127.0.0.1/tcp/${4001 + (i % 1000)}`, '/ip4/10.0.0.7/tcp/4001'],
      };
      const key = `${peerId}/${prevSeq + 1n}`;
      const all = registryArrivals.expect(key, ids.length);
      let r: SubmitResult;
      try {
        r = await Promise.race([
          hostOf(index).request<SubmitResult>({
            op: 'submit',
            index,
            content,
            validator: v.peerId,
          }),
          death,
        ]);
      } catch (err) {
        // Counted and reported, not hidden: the next submission of this peer replaces what
        // the store holds now (the failed one may have committed after all).
        failures.push(`${peerId.slice(-6)} → ${v.peerId.slice(-6)}: ${errorMessage(err)}`);
        lastSeq.set(peerId, (await v.store.get(peerId))?.seq ?? prevSeq);
        return undefined;
      }
      if (r.seq !== prevSeq + 1n)
        throw new Error(`registry bench: ${peerId} got seq ${r.seq}, expected ${prevSeq + 1n}`);
      let last: number;
      try {
        last = await within(`record ${key} at every node`, all, () => {
          const miss = registryArrivals.missing(ids);
          // What each validator thinks of the nodes that lack it: connected, gossipsub score.
          const score = (x: RegistryValidator, id: string) =>
            (x.node.services.pubsub as unknown as { getScore(id: string): number }).getScore(id);
          const about = miss.slice(0, 5).map((id) => {
            const views = validators.map(
              (x) =>
                `${x.node.getConnections().some((c) => c.remotePeer.toString() === id) ? 'c' : '-'}${score(x, id).toFixed(0)}`,
            );
            return `${id.slice(-6)} [${views.join(' ')}]`;
          });
          return `${miss.length} node(s) missing it (${threadsOf(miss)}); validators' view of some (connected, score): ${about.join(', ')}`;
        });
      } catch (err) {
        if (!(err instanceof SampleTimeout)) throw err;
        unseen.push(`sample ${i} registry: ${err.message}`);
        lastSeq.set(peerId, r.seq);
        return undefined;
      }
      lastSeq.set(peerId, r.seq);
      return {
        ms: last - r.sentAt,
        answeredMs: r.answeredAt - r.sentAt,
        bytes: v.view.get(peerId)!.bytes,
      };
    };
    const plainSample = async (i: number, like: Uint8Array): Promise<number | undefined> => {
      const from = validators[i % validators.length]!;
      const bytes = Uint8Array.from(like);
      bytes[bytes.length - 1]! ^= 0xff;
      const all = plainArrivals.expect(plainKey(bytes), ids.length - 1);
      const t = nowAbs();
      await from.node.services.pubsub.publish(PLAIN_TOPIC, bytes);
      try {
        const last = await within('plain gossipsub message at every node', all, () => {
          const miss = plainArrivals.missing(ids.filter((x) => x !== from.peerId));
          return `${miss.length} node(s) missing it (${threadsOf(miss)})`;
        });
        return last - t;
      } catch (err) {
        if (!(err instanceof SampleTimeout)) throw err;
        unseen.push(`sample ${i} plain: ${err.message}`);
        return undefined;
      }
    };

    const reg: number[] = [];
    const answered: number[] = [];
    const plain: number[] = [];
    let recordBytes = 0;
    let recordSigs = 0;
    // Each thread's event-loop delay while measuring: part of every figure below.
    const mainLoop = monitorEventLoopDelay({ resolution: 10 });
    mainLoop.enable();
    const workerHosts = WORKERS === 0 ? [] : hosts;
    await Promise.all(workerHosts.map((h) => h.request({ op: 'loop-start' })));
    const loopStarted = performance.now();
    for (let i = 0; i < WARMUP + N; i++) {
      const r = await registrySample(i);
      if (r === undefined) continue;
      const g = await plainSample(i, r.bytes);
      if (g === undefined) continue;
      if ((i + 1) % 20 === 0)
        console.log(
          `  … ${i + 1} samples in ${((performance.now() - loopStarted) / 1000).toFixed(0)} s`,
        );
      recordBytes = r.bytes.length;
      recordSigs = decodeRecord(r.bytes).countersignatures.length;
      if (i < WARMUP) continue;
      reg.push(r.ms);
      answered.push(r.answeredMs);
      plain.push(g);
    }
    mainLoop.disable();
    const loops: [string, LoopDelay][] = [
      [
        WORKERS === 0 ? `main thread (all ${ids.length} nodes)` : 'main thread (3 validators)',
        { p50Ms: mainLoop.percentile(50) / 1e6, p99Ms: mainLoop.percentile(99) / 1e6 },
      ],
    ];
    for (const [w, h] of workerHosts.entries())
      loops.push([
        `${h.label} (${shares[w]!.peers.length} peers)`,
        await h.request<LoopDelay>({ op: 'loop-stop' }),
      ]);
    console.log('  event loop delay while measuring, per thread:');
    for (const [label, d] of loops)
      console.log(
        `    ${label.padEnd(28)} p50 ${d.p50Ms.toFixed(0)} ms, p99 ${d.p99Ms.toFixed(0)} ms`,
      );
    if (failures.length > 0)
      console.log(`  FAILED submissions: ${failures.length}\n    ${failures.join('\n    ')}`);
    if (unseen.length > 0)
      console.log(
        `  NOT AT EVERY NODE within ${SAMPLE_TIMEOUT_MS / 1000} s (sample pair left out): ${unseen.length}\n    ${unseen.join('\n    ')}`,
      );
    if (reg.length === 0) throw new Error('registry bench: no sample pair completed');
    reg.sort((a, b) => a - b);
    answered.sort((a, b) => a - b);
    plain.sort((a, b) => a - b);
    const f = (x: number) => `${x.toFixed(1).padStart(6)} ms`;
    console.log(`  last record ${recordBytes} bytes (with ${recordSigs} countersignature(s))`);
    console.log(
      `  submission → all ${ids.length} views  p50 ${f(pct(reg, 50))}  p99 ${f(pct(reg, 99))}  max ${f(reg.at(-1)!)}`,
    );
    console.log(
      `    of which: answer (commit)  p50 ${f(pct(answered, 50))}  p99 ${f(pct(answered, 99))}`,
    );
    console.log(
      `  plain gossipsub → all ${ids.length - 1}    p50 ${f(pct(plain, 50))}  p99 ${f(pct(plain, 99))}  max ${f(plain.at(-1)!)}   (baseline)`,
    );
    console.log(
      `  ratio                       p50 ${(pct(reg, 50) / pct(plain, 50)).toFixed(1)}×       p99 ${(pct(reg, 99) / pct(plain, 99)).toFixed(1)}×`,
    );
    console.log(
      `  load average at the end ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
    return [
      {
        name: `registry p50 (${useEtcd ? 'etcd' : 'sqlite'})`,
        value: pct(reg, 50),
        unit: 'ms',
        baseline: pct(plain, 50),
        baselineName: 'plain gossipsub',
        ratio: pct(reg, 50) / pct(plain, 50),
      },
      {
        name: `registry p99 (${useEtcd ? 'etcd' : 'sqlite'})`,
        value: pct(reg, 99),
        unit: 'ms',
        baseline: pct(plain, 99),
        baselineName: 'plain gossipsub',
        ratio: pct(reg, 99) / pct(plain, 99),
      },
      { name: 'RSS per registry node', value: perNodeMiB, unit: ' MiB' },
      { name: 'failed submissions', value: failures.length, unit: '' },
      { name: 'samples not at every node', value: unseen.length, unit: '' },
      { name: 'registry worker threads', value: WORKERS, unit: '' },
    ];
  } finally {
    // Peers first (each host stops its own, then its thread ends), then the validators.
    await Promise.all(hosts.map((h) => h.close()));
    for (const v of validators.reverse()) await v.stop().catch(() => undefined);
    await cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
