/**
 * The node registry over libp2p (issue 15): 50 in-process nodes on loopback — 3 validators
 * committing through a real store (a 3-member etcd cluster on loopback when `etcd` is on PATH,
 * else one SQLite file; the output says which) and 47 peers. Every node bootstraps to the
 * validators, then runs a DHT self-lookup (what kad-dht does to fill its routing table), which
 * connects it to the peers closest to it: the gossip mesh forms over those connections.
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
 * Memory per node: RSS after the 50 nodes are up and meshed minus RSS before, over 50 (etcd
 * runs in its own processes and is not counted; nothing forces a GC, so it is an upper bound).
 *
 * VIGIL_BENCH_REGISTRY_N (default 40, so p99 is the largest sample) samples a side; VIGIL_BENCH_REGISTRY_PEERS (default 47).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { errorMessage } from '../src/errors.js';
import { Ed25519Key } from '../src/keys/ed25519.js';
import { GOSSIP_TOPIC } from '../src/registry/distribution.js';
import { decodeRecord, validatorSet, type RecordContent } from '../src/registry/record.js';
import { RegistryPeer, RegistryValidator } from '../src/registry/service.js';
import { EtcdRegistryCells } from '../src/registry/store-etcd.js';
import { SqliteRegistryCells } from '../src/registry/store-sqlite.js';
import { RegistryStore, type RegistryCells } from '../src/registry/store.js';
import { openEtcdStore } from '../src/store/etcd.js';
import { EtcdTestCluster } from '../test/helpers/etcd-cluster.js';
import type { BenchFigure } from './figures.js';

const N = Number(process.env.VIGIL_BENCH_REGISTRY_N ?? 40);
const PEERS = Number(process.env.VIGIL_BENCH_REGISTRY_PEERS ?? 47);
const WARMUP = 3;
const SAMPLE_TIMEOUT_MS = 30_000;
const PLAIN_TOPIC = '/vigil/bench/plain/1.0.0';
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

function etcdOnPath(): boolean {
  return spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Resolves when `count` distinct nodes have reported `key`; one waiter at a time. */
class Arrivals {
  private key = '';
  private readonly seen = new Set<string>();
  private need = 0;
  private resolve: (() => void) | undefined;

  expect(key: string, count: number): Promise<void> {
    this.key = key;
    this.seen.clear();
    this.need = count;
    return new Promise<void>((resolve) => (this.resolve = resolve));
  }

  report(key: string, node: string): void {
    if (key !== this.key || this.seen.has(node)) return;
    this.seen.add(node);
    if (this.seen.size >= this.need) this.resolve?.();
  }

  missing(all: readonly string[]): string[] {
    return all.filter((n) => !this.seen.has(n));
  }
}

async function within<T>(what: string, p: Promise<T>, missing: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what}: not within ${SAMPLE_TIMEOUT_MS} ms (${missing()})`)),
          SAMPLE_TIMEOUT_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function run(): Promise<BenchFigure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-registry-'));
  // VIGIL_BENCH_REGISTRY_STORE=sqlite measures the one-host setup even where etcd exists.
  const useEtcd = process.env.VIGIL_BENCH_REGISTRY_STORE !== 'sqlite' && etcdOnPath();
  let cluster: EtcdTestCluster | undefined;
  const nodes: RegistryPeer[] = [];
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
    console.log(
      `registry: 3 validators (store: ${store}) + ${PEERS} peers, in process on loopback; ${N} samples a side`,
    );

    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    const validators: RegistryValidator[] = [];
    for (let i = 0; i < 3; i++) {
      validators.push(
        await RegistryValidator.start({
          seed: seed(200 + i),
          listen: LOOPBACK,
          bootstrap: validators.flatMap((v) => v.addresses.slice(0, 1)),
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
        }),
      );
      nodes.push(validators[i]!);
    }
    const bootstrap = validators.map((v) => v.addresses[0]!);
    // Started eight at a time (one by one takes a minute on 2 busy cores), in key order.
    const peers: RegistryPeer[] = [];
    for (let i = 0; i < PEERS; i += 8) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(8, PEERS - i) }, (_, j) =>
          RegistryPeer.start({
            seed: seed(1 + i + j),
            listen: LOOPBACK,
            bootstrap,
            validators: set,
            viewPath: join(dir, `p${i + j}-view.db`),
            metrics: new Registry(),
            libp2pMetrics: false,
          }),
        ),
      );
      peers.push(...batch);
      nodes.push(...batch);
    }
    const upS = (performance.now() - started) / 1000;
    // The DHT self-lookup every kad-dht node makes to fill its routing table: it dials the
    // nodes closest to it, and those connections carry the gossip mesh (not only the star
    // around the validators the bootstrap list makes).
    // Eight at a time: a lookup waits mostly on other nodes' answers.
    for (let i = 0; i < peers.length; i += 8)
      await Promise.all(
        peers.slice(i, i + 8).map(async (p) => {
          try {
            for await (const _ of p.node.services.dht.getClosestPeers(
              p.node.peerId.toMultihash().bytes,
              { signal: AbortSignal.timeout(5000) },
            ))
              void _;
          } catch {
            // A lookup that times out still leaves the connections it made.
          }
        }),
      );
    const lookupS = (performance.now() - started) / 1000 - upS;
    console.log(`  nodes started in ${upS.toFixed(1)} s, DHT self-lookups ${lookupS.toFixed(1)} s`);
    const ids = nodes.map((n) => n.peerId);
    const registryArrivals = new Arrivals();
    const plainArrivals = new Arrivals();
    for (const n of nodes) {
      // Every path into a view (gossip, sync, DHT, a validator's own publish) goes through
      // accept(): its 'accepted' is the moment that node has the record.
      const accept = n.distribution.accept.bind(n.distribution);
      n.distribution.accept = (bytes, source) => {
        const r = accept(bytes, source);
        if (r === 'accepted') {
          const rec = decodeRecord(bytes);
          registryArrivals.report(`${rec.peerId}/${rec.seq}`, n.peerId);
        }
        return r;
      };
      const pubsub = n.node.services.pubsub;
      pubsub.subscribe(PLAIN_TOPIC);
      pubsub.addEventListener('message', (evt) => {
        if (evt.detail.topic !== PLAIN_TOPIC) return;
        plainArrivals.report(Buffer.from(evt.detail.data).toString('hex'), n.peerId);
      });
    }
    // The implementation has getMeshPeers; the GossipSub interface type does not list it.
    const mesh = (n: RegistryPeer, topic: string) =>
      (n.node.services.pubsub as unknown as { getMeshPeers(t: string): string[] }).getMeshPeers(
        topic,
      ).length;
    // Both topics' subscriptions known to every neighbour, then two heartbeats for the mesh.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const notReady = nodes.filter((n) => {
        const ps = n.node.services.pubsub;
        return !(
          ps.getSubscribers(GOSSIP_TOPIC).length > 0 &&
          ps.getSubscribers(PLAIN_TOPIC).length > 0 &&
          mesh(n, GOSSIP_TOPIC) > 0 &&
          mesh(n, PLAIN_TOPIC) > 0
        );
      });
      const ready = notReady.length === 0;
      if (ready) break;
      if (Date.now() > deadline) {
        const state = notReady.map((n) => {
          const ps = n.node.services.pubsub;
          return `${n.node.getPeers().length}/${ps.getSubscribers(GOSSIP_TOPIC).length}/${ps.getSubscribers(PLAIN_TOPIC).length}/${mesh(n, GOSSIP_TOPIC)}/${mesh(n, PLAIN_TOPIC)}`;
        });
        throw new Error(
          `registry bench: the gossip mesh did not form within 30 s (${notReady.length} node(s) without a mesh: connections/subscribers/subscribers plain/mesh/mesh plain: ${state.join(' ')})`,
        );
      }
      await sleep(100);
    }
    await sleep(2500);
    const setupS = (performance.now() - started) / 1000;
    const degrees = nodes.map((n) => n.node.getPeers().length).sort((a, b) => a - b);
    const rssAfter = process.memoryUsage().rss;
    const perNodeMiB = (rssAfter - rssBefore) / nodes.length / 2 ** 20;
    console.log(
      `  ${nodes.length} nodes up and meshed in ${setupS.toFixed(1)} s; connections per node min ${degrees[0]}, median ${pct(degrees, 50)}, max ${degrees.at(-1)}; RSS +${((rssAfter - rssBefore) / 2 ** 20).toFixed(0)} MiB = ${perNodeMiB.toFixed(1)} MiB per node`,
    );

    const lastSeq = new Map<string, bigint>();
    const failures: string[] = [];
    const registrySample = async (
      i: number,
    ): Promise<{ ms: number; answeredMs: number; bytes: Uint8Array } | undefined> => {
      const p = peers[i % peers.length]!;
      const v = validators[i % validators.length]!;
      const prevSeq = lastSeq.get(p.peerId) ?? 0n;
      const now = Date.now();
      const content: RecordContent = {
        subjectKey: p.key.publicKey,
        prevSeq,
        issuedAtMs: now,
        expiresAtMs: now + 3_600_000,
        flags: 1,
        role: 'worker',
        capabilities: ['oracle', 'relay'],
        addresses: [`/ip4/127.0.0.1/tcp/${4001 + (i % 1000)}`, '/ip4/10.0.0.7/tcp/4001'],
      };
      const key = `${p.peerId}/${prevSeq + 1n}`;
      const all = registryArrivals.expect(key, nodes.length);
      const t = performance.now();
      let r;
      try {
        r = await p.submitOwn(content, [v.peerId]);
      } catch (err) {
        // Counted and reported, not hidden: the next submission of this peer replaces what
        // the store holds now (the failed one may have committed after all).
        failures.push(`${p.peerId.slice(-6)} → ${v.peerId.slice(-6)}: ${errorMessage(err)}`);
        lastSeq.set(p.peerId, (await v.store.get(p.peerId))?.seq ?? prevSeq);
        return undefined;
      }
      const answeredMs = performance.now() - t;
      if (r.seq !== prevSeq + 1n)
        throw new Error(`registry bench: ${p.peerId} got seq ${r.seq}, expected ${prevSeq + 1n}`);
      await within(`record ${key} at every node`, all, () => {
        const miss = registryArrivals.missing(ids);
        // What each validator thinks of the nodes that lack it: connected, gossipsub score.
        const score = (x: RegistryPeer, id: string) =>
          (x.node.services.pubsub as unknown as { getScore(id: string): number }).getScore(id);
        const about = miss.slice(0, 5).map((id) => {
          const views = validators.map(
            (x) =>
              `${x.node.getConnections().some((c) => c.remotePeer.toString() === id) ? 'c' : '-'}${score(x, id).toFixed(0)}`,
          );
          return `${id.slice(-6)} [${views.join(' ')}]`;
        });
        return `${miss.length} node(s) missing it; validators' view of some (connected, score): ${about.join(', ')}`;
      });
      const ms = performance.now() - t;
      lastSeq.set(p.peerId, r.seq);
      return { ms, answeredMs, bytes: v.view.get(p.peerId)!.bytes };
    };
    const plainSample = async (i: number, like: Uint8Array): Promise<number> => {
      const from = validators[i % validators.length]!;
      const bytes = Uint8Array.from(like);
      bytes[bytes.length - 1]! ^= 0xff;
      const key = Buffer.from(bytes).toString('hex');
      const all = plainArrivals.expect(key, nodes.length - 1);
      const t = performance.now();
      await from.node.services.pubsub.publish(PLAIN_TOPIC, bytes);
      await within('plain gossipsub message at every node', all, () => {
        const miss = plainArrivals.missing(ids.filter((x) => x !== from.peerId));
        return `${miss.length} node(s) missing it`;
      });
      return performance.now() - t;
    };

    const reg: number[] = [];
    const answered: number[] = [];
    const plain: number[] = [];
    let recordBytes = 0;
    let recordSigs = 0;
    // All 50 nodes share this one event loop: its delay is part of every figure below.
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const loopStarted = performance.now();
    for (let i = 0; i < WARMUP + N; i++) {
      const r = await registrySample(i);
      if (r === undefined) continue;
      const g = await plainSample(i, r.bytes);
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
    loopDelay.disable();
    console.log(
      `  event loop delay while measuring (${nodes.length} nodes, one thread): p50 ${(loopDelay.percentile(50) / 1e6).toFixed(0)} ms, p99 ${(loopDelay.percentile(99) / 1e6).toFixed(0)} ms`,
    );
    if (failures.length > 0)
      console.log(`  FAILED submissions: ${failures.length}\n    ${failures.join('\n    ')}`);
    reg.sort((a, b) => a - b);
    answered.sort((a, b) => a - b);
    plain.sort((a, b) => a - b);
    const f = (x: number) => `${x.toFixed(1).padStart(6)} ms`;
    console.log(`  last record ${recordBytes} bytes (with ${recordSigs} countersignature(s))`);
    console.log(
      `  submission → all ${nodes.length} views  p50 ${f(pct(reg, 50))}  p99 ${f(pct(reg, 99))}  max ${f(reg.at(-1)!)}`,
    );
    console.log(
      `    of which: answer (commit)  p50 ${f(pct(answered, 50))}  p99 ${f(pct(answered, 99))}`,
    );
    console.log(
      `  plain gossipsub → all ${nodes.length - 1}    p50 ${f(pct(plain, 50))}  p99 ${f(pct(plain, 99))}  max ${f(plain.at(-1)!)}   (baseline)`,
    );
    console.log(
      `  ratio                       p50 ${(pct(reg, 50) / pct(plain, 50)).toFixed(1)}×       p99 ${(pct(reg, 99) / pct(plain, 99)).toFixed(1)}×`,
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
    ];
  } finally {
    for (const n of nodes.reverse()) await n.stop().catch(() => undefined);
    await cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
