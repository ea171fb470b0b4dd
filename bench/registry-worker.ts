/**
 * One worker thread of the registry bench (bench/registry.ts): hosts a share of the peers, so
 * the 50 nodes run on several event loops instead of one.
 *
 * The coordinator (the main thread, which holds the store and the validators) sends requests
 * ({@link WorkerRequest}, each with an id, answered once with {@link WorkerReply}); the worker
 * also sends {@link WorkerEvent}s unasked: "node X accepted record K at t" and "node X
 * received plain message K at t", t from `performance.timeOrigin + performance.now()`, which is
 * comparable across the threads of a process.
 *
 * bench/run.ts imports every module of bench/ in the main thread to look for `run()`: this one
 * exports none and does nothing unless it is started as the bench's worker (workerData.role).
 */
import { multiaddr } from '@multiformats/multiaddr';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { Registry } from 'prom-client';
import { errorMessage } from '../src/errors.js';
import { GOSSIP_TOPIC } from '../src/registry/distribution.js';
import { decodeRecord, validatorSet, type RecordContent } from '../src/registry/record.js';
import { RegistryPeer } from '../src/registry/service.js';

export const WORKER_ROLE = 'vigil-bench-registry-worker';
export const PLAIN_TOPIC = '/vigil/bench/plain/1.0.0';

export interface WorkerSetup {
  readonly role: typeof WORKER_ROLE;
  /** The validators' public keys (the genesis set every node checks records against). */
  readonly validatorKeys: Uint8Array[];
  readonly bootstrap: string[];
  readonly dir: string;
  /** The peers this worker hosts: their index (also their view file name) and seed. */
  readonly peers: { index: number; seed: Uint8Array }[];
}

/** A node's readiness for the gossip mesh: connections/subscribers/plain/mesh/mesh plain. */
export interface MeshState {
  readonly peerId: string;
  readonly ready: boolean;
  readonly detail: string;
  readonly connections: number;
}

export type WorkerOp =
  | { op: 'start' }
  | { op: 'lookup'; concurrency: number; maxConnections?: number }
  | { op: 'mesh' }
  | { op: 'submit'; index: number; content: RecordContent; validator: string }
  | { op: 'loop-start' }
  | { op: 'loop-stop' }
  | { op: 'stop' };
export type WorkerRequest = { id: number } & WorkerOp;

export type WorkerReply = { id: number } & (
  { ok: true; result: unknown } | { ok: false; error: string }
);

export type WorkerEvent =
  | { event: 'accepted'; key: string; peerId: string; at: number }
  | { event: 'plain'; key: string; peerId: string; at: number };

export interface StartResult {
  readonly peers: { index: number; peerId: string }[];
}
export interface SubmitResult {
  readonly seq: bigint;
  /** When the worker called submitOwn, and when the validator's answer came back. */
  readonly sentAt: number;
  readonly answeredAt: number;
}
export interface LoopDelay {
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** Wall-clock milliseconds, sub-millisecond and comparable across a process's threads. */
export const nowAbs = () => performance.timeOrigin + performance.now();

/**
 * The peers of one thread. The worker thread runs one; with VIGIL_BENCH_REGISTRY_WORKERS=0 the
 * coordinator runs one in the main thread (the old one-thread bench, for comparison).
 */
export class PeerHost {
  private readonly peers = new Map<number, RegistryPeer>();
  private readonly loop = monitorEventLoopDelay({ resolution: 10 });

  constructor(
    private readonly setup: WorkerSetup,
    private readonly send: (e: WorkerEvent) => void,
  ) {}

  async handle(req: WorkerOp): Promise<unknown> {
    switch (req.op) {
      case 'start':
        return this.start();
      case 'lookup':
        return this.lookup(req.concurrency, req.maxConnections);
      case 'mesh':
        return [...this.peers.values()].map(meshState);
      case 'submit': {
        const p = this.peers.get(req.index);
        if (!p) throw new Error(`no peer ${req.index} in this worker`);
        const sentAt = nowAbs();
        const r = await p.submitOwn(req.content, [req.validator]);
        return { seq: r.seq, sentAt, answeredAt: nowAbs() } satisfies SubmitResult;
      }
      case 'loop-start':
        this.loop.reset();
        this.loop.enable();
        return undefined;
      case 'loop-stop':
        this.loop.disable();
        return {
          p50Ms: this.loop.percentile(50) / 1e6,
          p99Ms: this.loop.percentile(99) / 1e6,
        } satisfies LoopDelay;
      case 'stop':
        return this.stop();
    }
  }

  private async start(): Promise<StartResult> {
    const set = validatorSet(this.setup.validatorKeys);
    // Eight at a time per worker, in key order (as the one-thread bench did).
    const list = this.setup.peers;
    for (let i = 0; i < list.length; i += 8)
      await Promise.all(
        list.slice(i, i + 8).map(async ({ index, seed }) => {
          const p = await RegistryPeer.start({
            seed,
            listen: ['/ip4/127.0.0.1/tcp/0'],
            bootstrap: this.setup.bootstrap,
            validators: set,
            viewPath: `${this.setup.dir}/p${index}-view.db`,
            metrics: new Registry(),
            // Only one node of a process can have libp2p's metrics (src/registry/node.ts).
            libp2pMetrics: false,
          });
          this.peers.set(index, p);
          instrument(p, this.send);
        }),
      );
    return {
      peers: [...this.peers].map(([index, p]) => ({ index, peerId: p.peerId })),
    };
  }

  /**
   * The DHT self-lookup every kad-dht node makes to fill its routing table: it dials the nodes
   * closest to it, and those connections carry the gossip mesh (not only the star around the
   * validators the bootstrap list makes). `concurrency` at a time; only the nodes with at most
   * `maxConnections` connections when given (a repeated lookup, as kad-dht repeats its own).
   * Answers how many nodes looked up.
   */
  private async lookup(concurrency: number, maxConnections?: number): Promise<number> {
    const peers = [...this.peers.values()].filter(
      (p) => maxConnections === undefined || p.node.getPeers().length <= maxConnections,
    );
    for (let i = 0; i < peers.length; i += concurrency)
      await Promise.all(
        peers.slice(i, i + concurrency).map(async (p) => {
          // A node that lost even its bootstrap connections dials them again first, as
          // `vigil registry run` does (daemon.ts re-dials its bootstrap list).
          if (p.node.getPeers().length === 0)
            await Promise.all(
              this.setup.bootstrap.map((a) => p.node.dial(multiaddr(a)).catch(() => undefined)),
            );
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
    return peers.length;
  }

  async stop(): Promise<void> {
    this.loop.disable();
    const peers = [...this.peers.values()].reverse();
    this.peers.clear();
    await Promise.all(peers.map((p) => p.stop().catch(() => undefined)));
  }
}

/** Reports every record this node accepts, and every plain message it receives. */
export function instrument(n: RegistryPeer, send: (e: WorkerEvent) => void): void {
  // Every path into a view (gossip, sync, DHT) goes through accept(): its 'accepted' is
  // the moment this node has the record.
  const accept = n.distribution.accept.bind(n.distribution);
  n.distribution.accept = (bytes, source, ...rest) => {
    const r = accept(bytes, source, ...rest);
    if (r === 'accepted') {
      const at = nowAbs();
      const rec = decodeRecord(bytes);
      send({ event: 'accepted', key: `${rec.peerId}/${rec.seq}`, peerId: n.peerId, at });
    }
    return r;
  };
  const pubsub = n.node.services.pubsub;
  pubsub.subscribe(PLAIN_TOPIC);
  pubsub.addEventListener('message', (evt) => {
    if (evt.detail.topic !== PLAIN_TOPIC) return;
    const at = nowAbs();
    send({ event: 'plain', key: plainKey(evt.detail.data), peerId: n.peerId, at });
  });
}

/** What identifies a plain message: its bytes (every sample's differ). */
export function plainKey(data: Uint8Array): string {
  return Buffer.from(data).toString('hex');
}

/** The implementation has getMeshPeers; the GossipSub interface type does not list it. */
export function meshSize(n: RegistryPeer, topic: string): number {
  return (n.node.services.pubsub as unknown as { getMeshPeers(t: string): string[] }).getMeshPeers(
    topic,
  ).length;
}

/** Both topics' subscriptions known to a neighbour, and a mesh on each. */
export function meshState(n: RegistryPeer): MeshState {
  const ps = n.node.services.pubsub;
  const counts = [
    n.node.getPeers().length,
    ps.getSubscribers(GOSSIP_TOPIC).length,
    ps.getSubscribers(PLAIN_TOPIC).length,
    meshSize(n, GOSSIP_TOPIC),
    meshSize(n, PLAIN_TOPIC),
  ];
  return {
    peerId: n.peerId,
    ready: counts.slice(1).every((c) => c > 0),
    detail: `…${n.peerId.slice(-6)} ${counts.join('/')}`,
    connections: counts[0]!,
  };
}

const setup = workerData as WorkerSetup | undefined;
if (parentPort && setup?.role === WORKER_ROLE) {
  const port = parentPort;
  const host = new PeerHost(setup, (e) => port.postMessage(e));
  port.on('message', (req: WorkerRequest) => {
    host.handle(req).then(
      (result) => port.postMessage({ id: req.id, ok: true, result } satisfies WorkerReply),
      (err: unknown) =>
        port.postMessage({ id: req.id, ok: false, error: errorMessage(err) } satisfies WorkerReply),
    );
  });
}
