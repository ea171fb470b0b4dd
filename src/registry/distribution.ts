/**
 * How quorum-attested records reach every node (issue 15, item 4), and how each node keeps its
 * view (src/registry/view.ts).
 *
 * - **gossipsub** topic `/vigil/registry/records/1.0.0`. The topic validator runs verifyRecord
 *   (size, signatures, signers in the set, quorum, expiry): a failure is Reject (the sender is
 *   penalised, nothing is forwarded); a seq not after the one already held — a replay, a stale
 *   version, the same record from a second validator — is Ignore. An accepted record goes into
 *   the view at once.
 * - **kad-DHT** (node.ts: own protocol, validator, highest-seq selector): validators put each
 *   new quorum-attested record under `/vigil-registry/<peer id>` and put it again every
 *   `dhtRepublishMs` (default 12 h, half the DHT's record lifetime) while it has not expired.
 *   A put runs in the background, after the gossip publish: it waits on DHT queries to remote
 *   peers (most of a submission's latency when it was awaited), and gossip is what delivers a
 *   record. The queue is bounded and keyed by subject (a newer version replaces a pending
 *   one); a failed or dropped put is counted, reported, and tried again at the next republish
 *   pass; stop() cancels what is pending. `get` falls back to the DHT for a subject the view
 *   lacks.
 * - **view exchange** (`/vigil/registry/sync/2.0.0`, src/registry/sync.ts): summaries, then
 *   only the records that differ, both ways. A node runs one with a peer when it learns that
 *   the peer subscribed to the records topic (gossipsub's `subscription-change`: after the
 *   connection and identify, and again after every reconnection), and after a publish, with
 *   every known subscriber gossipsub could not send the record to (no outbound stream yet).
 *   That closes the gap a sync on connect left: a validator that publishes before it knows a
 *   new node's subscription does not send it the record, and that node's sync on connect may
 *   have run before the record existed — now the validator's exchange, started when the
 *   subscription arrives, reads its view after the record is in it. It is also how a node
 *   that was offline or partitioned catches up. Nothing is re-broadcast on a timer: an
 *   unchanged record crosses only to a peer whose summary lacks it.
 *
 * Validator-set records (src/registry/validator-set.ts) travel the same ways as records: on
 * the topic, told apart by their first byte; in the DHT under `/vigil-registry-set/<epoch>`
 * (fetched epoch by epoch by a node that starts: fetchSetsFromDht); and first on every sync stream, so a
 * node that missed a set change learns the sets before the records attested under them. A
 * record countersigned under an epoch this node does not know yet is Ignored (not penalised)
 * and the node syncs from the peer that sent it; a set record for an epoch after the next is
 * handled the same way.
 *
 * Validators publish from the store (`StorePublisher`): every `pollMs` they read the set
 * records and list the records; a set record not published yet is published first, then each
 * record whose (seq, attested epoch) is newer than what this node published and that has a
 * quorum under the current rules: a version re-countersigned by a new set goes out again.
 */
import type { PeerId, Stream } from '@libp2p/interface';
import { TopicValidatorResult, type Message, type SubscriptionChangeData } from '@libp2p/gossipsub';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { VigilError, errorMessage } from '../errors.js';
import {
  RegistryError,
  attestation,
  decodeRecord,
  encodeRecord,
  verifyRecordAt,
  type SignedRecord,
  type ValidatorSet,
} from './record.js';
import { ValidatorSetChain, isSetRecordBytes } from './validator-set.js';
import { dhtKey, setDhtKey, type RegistryLibp2p } from './node.js';
import type { RegistryStore } from './store.js';
import {
  SYNC_PROTOCOL,
  syncAsDialer,
  syncAsListener,
  type SyncOutcome,
  type SyncSide,
} from './sync.js';
import type { RegistryView } from './view.js';

/** Epochs below 2^32: (seq, epoch) as one number that orders like the pair. */
const EPOCH_BITS = 32n;

/**
 * Set records' subjects, in the view exchange and the DHT put queue: `validator-set/<epoch>`
 * (no peer id looks like that); epoch 1 is the chain's first record after genesis.
 */
const SET_SUBJECT_PREFIX = 'validator-set/';

/** The subject of the validator-set record of `epoch`. */
function setSubject(epoch: number): string {
  return `${SET_SUBJECT_PREFIX}${epoch}`;
}

/** The epoch a sync subject names, if it is a validator-set subject. */
function setEpochOf(subject: string): number | undefined {
  if (!subject.startsWith(SET_SUBJECT_PREFIX)) return undefined;
  const n = Number(subject.slice(SET_SUBJECT_PREFIX.length));
  return Number.isSafeInteger(n) && n >= 1 ? n : undefined;
}

/** The version the view exchange compares: seq first, then the attested epoch. */
export function recordVersion(seq: bigint, epoch: bigint): bigint {
  return (seq << EPOCH_BITS) | (epoch & ((1n << EPOCH_BITS) - 1n));
}

export const GOSSIP_TOPIC = '/vigil/registry/records/1.0.0';
export { MAX_SYNC_RECORDS, SYNC_PROTOCOL } from './sync.js';
/** DHT puts waiting to run, at most (one per subject). */
export const DEFAULT_DHT_QUEUE = 1024;
/** View exchanges one node runs at once; more wait their turn. */
const SYNC_CONCURRENCY = 4;
const SYNC_TIMEOUT_MS = 30_000;
const DHT_PUT_TIMEOUT_MS = 10_000;

export type AcceptResult = 'accepted' | 'stale' | 'rejected';
export type DhtPutResult = 'ok' | 'failed' | 'dropped' | 'cancelled';

export interface DistributionOptions {
  readonly node: RegistryLibp2p;
  readonly view: RegistryView;
  /** The genesis validator set (epoch 0). */
  readonly validators: ValidatorSet;
  /** The node's chain of validator sets; default: one from `validators` and the view's sets. */
  readonly chain?: ValidatorSetChain;
  readonly metrics: Registry;
  readonly nowMs?: () => number;
  /** Validators only: how often their DHT entries are put again (default 12 h). */
  readonly dhtRepublishMs?: number;
  /** DHT puts waiting at most (default 1024); past it the oldest pending one is dropped. */
  readonly dhtQueueLimit?: number;
  readonly onError?: (err: unknown) => void;
  /** A background DHT put that failed or was dropped (default: onError). */
  readonly onDhtPutFailed?: (subject: string, err: unknown) => void;
}

export class RegistryDistribution {
  private readonly nowMs: () => number;
  /** The validator sets this node accepts records under. */
  readonly chain: ValidatorSetChain;
  /** Peers a catch-up sync is running from (one at a time per peer). */
  private readonly catchingUp = new Set<string>();
  private readonly received: Counter<'source' | 'result'>;
  private readonly propagation: Histogram;
  private readonly dhtPuts: Counter<'result'>;
  private readonly syncs: Counter<'initiator' | 'result'>;
  /** When this node last put each subject it put (0: due again, e.g. after a failed put). */
  private readonly dhtPutAt = new Map<string, number>();
  /** Pending DHT puts by subject, oldest first (Map keeps insertion order). */
  private readonly dhtQueue = new Map<string, Uint8Array>();
  private dhtWorker: Promise<void> | undefined;
  private readonly dhtAbort = new AbortController();
  private republishTimer: NodeJS.Timeout | undefined;
  /** Peers an exchange is wanted with, and those running. */
  private readonly syncWanted = new Set<string>();
  private readonly syncRunning = new Map<string, Promise<void>>();
  private readonly syncAbort = new AbortController();
  private stopped = false;
  private readonly onSubscriptionChange = (evt: CustomEvent<SubscriptionChangeData>) => {
    const { peerId, subscriptions } = evt.detail;
    if (subscriptions.some((s) => s.topic === GOSSIP_TOPIC && s.subscribe))
      this.scheduleSync(peerId);
  };
  private lastGossipMs = 0;
  /**
   * This node's side of a view exchange. The summary comes from the view's version index and
   * the chain's set records, and only the bodies sent are read (view v4), so an exchange costs
   * in proportion to what differs, not to the view's size.
   */
  private readonly side: SyncSide = {
    versions: () => {
      // The validator-set records first, in epoch order: the records after them may be
      // attested under them. A set record is present or absent, never newer.
      const sets = this.chain.records().map((_, i) => ({ subject: setSubject(i + 1), seq: 1n }));
      // A record's version is (seq, attested epoch): a version re-countersigned by a new set
      // replaces the same seq attested under an older one, so the exchange must see it newer.
      const records = this.o.view
        .summary(this.nowMs())
        .map((v) => ({ subject: v.subject, seq: recordVersion(v.seq, v.epoch) }));
      return [...sets, ...records];
    },
    bytesOf: (subjects) => {
      const sets = this.chain.records();
      return subjects.flatMap((subject) => {
        const epoch = setEpochOf(subject);
        if (epoch === undefined) return this.o.view.bytesOf([subject]);
        const bytes = sets[epoch - 1];
        return bytes ? [bytes] : [];
      });
    },
    records: () => {
      const versions = this.side.versions!();
      const bytes = this.side.bytesOf!(versions.map((v) => v.subject));
      return versions.flatMap((v, i) => (bytes[i] ? [{ ...v, bytes: bytes[i] }] : []));
    },
    accept: (bytes) => this.accept(bytes, 'sync') === 'accepted',
  };

  constructor(private readonly o: DistributionOptions) {
    this.nowMs = o.nowMs ?? Date.now;
    this.chain = o.chain ?? chainFromView(o.validators, o.view, this.nowMs(), undefined, o.onError);
    this.received = new Counter({
      name: 'vigil_registry_records_received_total',
      help: 'Registry records received, by source (gossip, sync, dht) and result',
      labelNames: ['source', 'result'],
      registers: [o.metrics],
    });
    this.propagation = new Histogram({
      name: 'vigil_registry_propagation_seconds',
      help: "From a record's issuedAt (signed by its node when it submitted) to its acceptance here",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [o.metrics],
    });
    this.dhtPuts = new Counter({
      name: 'vigil_registry_dht_puts_total',
      help: 'Background DHT puts of records by this node, by result (ok, failed, dropped: queue full, cancelled: shutdown)',
      labelNames: ['result'],
      registers: [o.metrics],
    });
    this.syncs = new Counter({
      name: 'vigil_registry_syncs_total',
      help: 'View exchanges with other nodes, by who started them (self, peer) and result (ok, failed)',
      labelNames: ['initiator', 'result'],
      registers: [o.metrics],
    });
    const view = o.view;
    new Gauge({
      name: 'vigil_registry_records',
      help: "Records in this node's view",
      registers: [o.metrics],
      collect() {
        this.set(view.count());
      },
    });
    const queue = this.dhtQueue;
    new Gauge({
      name: 'vigil_registry_dht_put_queue',
      help: 'DHT puts waiting to run on this node',
      registers: [o.metrics],
      collect() {
        this.set(queue.size);
      },
    });
  }

  async start(): Promise<void> {
    const pubsub = this.o.node.services.pubsub;
    pubsub.topicValidators.set(GOSSIP_TOPIC, (peer: PeerId, msg: Message) => {
      const r = this.accept(msg.data, 'gossip', peer);
      if (r === 'accepted') this.lastGossipMs = this.nowMs();
      return r === 'accepted'
        ? TopicValidatorResult.Accept
        : r === 'stale'
          ? TopicValidatorResult.Ignore
          : TopicValidatorResult.Reject;
    });
    await this.o.node.handle(SYNC_PROTOCOL, (stream) => this.serveSync(stream));
    pubsub.addEventListener('subscription-change', this.onSubscriptionChange);
    pubsub.subscribe(GOSSIP_TOPIC);
    const every = this.o.dhtRepublishMs ?? 12 * 3600_000;
    this.republishTimer = setInterval(
      () => this.republishDue(every),
      Math.max(1000, Math.floor(every / 4)),
    );
    this.republishTimer.unref();
  }

  /**
   * Stops taking work, cancels the pending DHT puts (the one running is aborted) and the view
   * exchanges, and waits for both to end.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.republishTimer) clearInterval(this.republishTimer);
    const pubsub = this.o.node.services.pubsub;
    pubsub.removeEventListener('subscription-change', this.onSubscriptionChange);
    pubsub.topicValidators.delete(GOSSIP_TOPIC);
    this.dhtPuts.inc({ result: 'cancelled' }, this.dhtQueue.size);
    this.dhtQueue.clear();
    this.syncWanted.clear();
    this.dhtAbort.abort(new VigilError('REGISTRY_STOPPING', 'the registry node is stopping'));
    this.syncAbort.abort(new VigilError('REGISTRY_STOPPING', 'the registry node is stopping'));
    await this.dhtWorker;
    await Promise.all(this.syncRunning.values());
    await this.o.node.unhandle(SYNC_PROTOCOL).catch(() => undefined);
  }

  /**
   * Verifies a record and keeps it if it is newer than the one held: the check every path
   * (gossip, sync, DHT, local publish) goes through.
   */
  accept(
    bytes: Uint8Array,
    source: 'gossip' | 'sync' | 'dht' | 'local',
    from?: PeerId,
  ): AcceptResult {
    const nowMs = this.nowMs();
    if (isSetRecordBytes(bytes)) return this.acceptSet(bytes, source, nowMs, from);
    let rec: SignedRecord;
    let epoch: bigint;
    try {
      ({ record: rec, epoch } = verifyRecordAt(bytes, {
        validators: this.chain.rules(nowMs),
        nowMs,
      }));
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'REGISTRY_UNKNOWN_EPOCH') {
        // Attested under a set change this node has not seen: not the sender's fault.
        this.received.inc({ source, result: 'unknown_epoch' });
        this.catchUp(from);
        return 'stale';
      }
      this.received.inc({ source, result: 'rejected' });
      return 'rejected';
    }
    const held = this.o.view.held(rec.peerId);
    if (
      held !== undefined &&
      (rec.seq < held.seq || (rec.seq === held.seq && epoch <= held.epoch))
    ) {
      this.received.inc({ source, result: 'stale' });
      return 'stale';
    }
    if (!this.o.view.put(rec, bytes, nowMs, epoch)) {
      this.received.inc({ source, result: 'stale' });
      return 'stale';
    }
    this.received.inc({ source, result: 'accepted' });
    if (source !== 'local')
      this.propagation.observe(Math.max(0, nowMs - rec.content.issuedAtMs) / 1000);
    return 'accepted';
  }

  /** A validator-set record: the next epoch joins the chain and the view. */
  private acceptSet(
    bytes: Uint8Array,
    source: 'gossip' | 'sync' | 'dht' | 'local',
    nowMs: number,
    from: PeerId | undefined,
  ): AcceptResult {
    let r;
    try {
      r = this.chain.offer(bytes, nowMs);
    } catch {
      this.received.inc({ source, result: 'rejected' });
      return 'rejected';
    }
    if (r === 'gap') {
      this.received.inc({ source, result: 'unknown_epoch' });
      this.catchUp(from);
      return 'stale';
    }
    if (r === 'duplicate') {
      this.received.inc({ source, result: 'stale' });
      return 'stale';
    }
    this.o.view.putSet(this.chain.head.epoch, bytes);
    this.received.inc({ source, result: 'accepted' });
    return 'accepted';
  }

  /** Fetches the sender's sets and records (the sync stream), once at a time per peer. */
  private catchUp(from: PeerId | undefined): void {
    if (!from || this.catchingUp.has(from.toString())) return;
    this.catchingUp.add(from.toString());
    void this.syncWith(from)
      .catch((err) => this.o.onError?.(err))
      .finally(() => this.catchingUp.delete(from.toString()));
  }

  /**
   * Publishes a quorum-attested record (into the view, on the topic, then into the DHT in the
   * background) or a validator-set record (into the chain and the view, on the topic). Does
   * nothing (and answers false) for one that does not verify or is not newer than what is held.
   * Resolves once the gossip publish is done, not the DHT put.
   */
  async publish(bytes: Uint8Array): Promise<boolean> {
    if (this.accept(bytes, 'local') !== 'accepted') return false;
    const pubsub = this.o.node.services.pubsub;
    try {
      // floodPublish (node.ts): sent to every known subscriber with an outbound stream, so
      // the subscribers left out are exactly those gossipsub could not reach yet.
      const { recipients } = await pubsub.publish(GOSSIP_TOPIC, bytes);
      const sent = new Set(recipients.map(String));
      for (const p of pubsub.getSubscribers(GOSSIP_TOPIC))
        if (!sent.has(p.toString())) this.scheduleSync(p);
    } catch (err) {
      // Duplicate: another validator's copy of the same record already went out.
      if (!/duplicate/i.test(errorMessage(err))) this.o.onError?.(err);
    }
    // Set records go into the DHT under their epoch (node.ts), for nodes that start late.
    if (isSetRecordBytes(bytes)) this.queueDhtPut(setSubject(Number(this.chain.head.epoch)), bytes);
    else this.queueDhtPut(decodeRecord(bytes).peerId, bytes);
    return true;
  }

  /** Queues a background DHT put of `bytes` under `subject`, replacing a pending one. */
  private queueDhtPut(subject: string, bytes: Uint8Array): void {
    if (this.stopped) return;
    this.dhtQueue.delete(subject);
    this.dhtQueue.set(subject, bytes);
    const limit = this.o.dhtQueueLimit ?? DEFAULT_DHT_QUEUE;
    while (this.dhtQueue.size > limit) {
      const [oldest] = this.dhtQueue.keys();
      this.dhtQueue.delete(oldest!);
      this.dhtPuts.inc({ result: 'dropped' });
      // Due again: the next republish pass puts it (gossip has delivered it meanwhile).
      this.dhtPutAt.set(oldest!, 0);
      this.reportPutFailure(
        oldest!,
        new VigilError(
          'REGISTRY_DHT_QUEUE_FULL',
          `the DHT put queue is full (${limit}): the put of ${oldest} waits for the next republish pass`,
        ),
      );
    }
    this.dhtWorker ??= this.drainDhtQueue().finally(() => (this.dhtWorker = undefined));
  }

  private reportPutFailure(subject: string, err: unknown): void {
    try {
      (this.o.onDhtPutFailed ?? ((_s: string, e: unknown) => this.o.onError?.(e)))(subject, err);
    } catch {
      // a reporting hook that throws must not stop the queue
    }
  }

  /** Runs the queued puts one at a time; never rejects. */
  private async drainDhtQueue(): Promise<void> {
    while (!this.stopped && this.dhtQueue.size > 0) {
      const [subject, bytes] = this.dhtQueue.entries().next().value!;
      this.dhtQueue.delete(subject);
      const signal = AbortSignal.any([
        this.dhtAbort.signal,
        AbortSignal.timeout(DHT_PUT_TIMEOUT_MS),
      ]);
      try {
        const epoch = setEpochOf(subject);
        const key = epoch === undefined ? dhtKey(subject) : setDhtKey(BigInt(epoch));
        for await (const _ of this.o.node.services.dht.put(key, bytes, { signal })) void _;
        this.dhtPutAt.set(subject, this.nowMs());
        this.dhtPuts.inc({ result: 'ok' });
      } catch (err) {
        if (this.stopped) {
          this.dhtPuts.inc({ result: 'cancelled' });
          return;
        }
        this.dhtPutAt.set(subject, 0);
        this.dhtPuts.inc({ result: 'failed' });
        this.reportPutFailure(
          subject,
          new VigilError(
            'REGISTRY_DHT_PUT',
            `the DHT put of ${subject} failed: ${errorMessage(err)}`,
            'it is tried again at the next republish pass; gossip and the view exchange deliver the record meanwhile',
          ),
        );
      }
    }
  }

  /** Resolves when no DHT put is pending or running (tests, the benchmark, a clean stop). */
  async dhtIdle(): Promise<void> {
    while (this.dhtWorker) await this.dhtWorker;
  }

  /**
   * Queues again every DHT entry this node put longer than `everyMs` ago (or whose put
   * failed), unless expired; answers how many it queued.
   */
  republishDue(everyMs: number): number {
    let n = 0;
    const now = this.nowMs();
    for (const [subject, at] of [...this.dhtPutAt]) {
      if (at !== 0 && now - at < everyMs) continue;
      const epoch = setEpochOf(subject);
      if (epoch !== undefined) {
        // A set record never expires.
        const bytes = this.chain.records()[epoch - 1];
        if (bytes && !this.dhtQueue.has(subject)) {
          this.queueDhtPut(subject, bytes);
          n++;
        }
        continue;
      }
      const e = this.o.view.get(subject);
      if (!e || now >= e.record.content.expiresAtMs) {
        this.dhtPutAt.delete(subject);
        continue;
      }
      if (this.dhtQueue.has(subject)) continue;
      this.queueDhtPut(subject, e.bytes);
      n++;
    }
    return n;
  }

  /**
   * Fetches the set records after this node's head from the DHT, epoch by epoch (each checked
   * against the chain so far by the DHT validator and again here), until one is not found or
   * `maxEpochs` were taken: how a node that starts late, or a short-lived node, learns the
   * current set without a sync. Answers how many epochs it took.
   */
  async fetchSetsFromDht(
    options: { timeoutMs?: number; maxEpochs?: number } = {},
  ): Promise<number> {
    let n = 0;
    for (; n < (options.maxEpochs ?? 64) && !this.stopped; n++) {
      const next = this.chain.head.epoch + 1n;
      try {
        for await (const ev of this.o.node.services.dht.get(setDhtKey(next), {
          signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
        }))
          if (ev.name === 'VALUE') this.accept(ev.value, 'dht');
      } catch {
        // Not found, or no peer answered in time.
      }
      if (this.chain.head.epoch < next) break;
    }
    return n;
  }

  /** A subject's record: the view's, else the best verified one found in the DHT. */
  async get(
    subject: string,
    options: { timeoutMs?: number } = {},
  ): Promise<SignedRecord | undefined> {
    const held = this.o.view.get(subject);
    if (held) return held.record;
    try {
      for await (const ev of this.o.node.services.dht.get(dhtKey(subject), {
        signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
      }))
        if (ev.name === 'VALUE') this.accept(ev.value, 'dht');
    } catch {
      // Not found, or no peer answered in time: the view says what we have.
    }
    return this.o.view.get(subject)?.record;
  }

  /**
   * Wants a view exchange with `peer`: run now if fewer than SYNC_CONCURRENCY are running,
   * else when one ends. Asked again while one with that peer runs, it runs once more after,
   * since what this node holds may have changed since that one read its view.
   */
  private scheduleSync(peer: PeerId | string): void {
    if (this.stopped) return;
    this.syncWanted.add(peer.toString());
    this.pumpSyncs();
  }

  private pumpSyncs(): void {
    for (const id of [...this.syncWanted]) {
      if (this.stopped || this.syncRunning.size >= SYNC_CONCURRENCY) return;
      if (this.syncRunning.has(id)) continue;
      this.syncWanted.delete(id);
      const run = this.exchange(id)
        .then(() => undefined)
        .finally(() => {
          this.syncRunning.delete(id);
          this.pumpSyncs();
        });
      this.syncRunning.set(id, run);
    }
  }

  /** An exchange with `peer` started by this node; never rejects. */
  private async exchange(peer: string): Promise<SyncOutcome | undefined> {
    const target = this.o.node.getPeers().find((p) => p.toString() === peer);
    if (!target) return undefined; // it went away; its next subscription asks again
    try {
      return await this.syncWith(target);
    } catch (err) {
      if (!this.stopped) this.o.onError?.(err);
      return undefined;
    }
  }

  /**
   * Runs a view exchange with `peer` (sync.ts): both end with the newer of each record.
   * Answers how many records this node took and gave; throws if the exchange failed.
   */
  async syncWith(peer: PeerId): Promise<SyncOutcome> {
    const signal = AbortSignal.any([this.syncAbort.signal, AbortSignal.timeout(SYNC_TIMEOUT_MS)]);
    let stream: Stream | undefined;
    try {
      stream = await this.o.node.dialProtocol(peer, SYNC_PROTOCOL, { signal });
      const out = await syncAsDialer(stream, this.side, signal);
      this.syncs.inc({ initiator: 'self', result: 'ok' });
      return out;
    } catch (err) {
      this.syncs.inc({ initiator: 'self', result: 'failed' });
      stream?.abort(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  }

  private async serveSync(stream: Stream): Promise<void> {
    const signal = AbortSignal.any([this.syncAbort.signal, AbortSignal.timeout(SYNC_TIMEOUT_MS)]);
    try {
      await syncAsListener(stream, this.side, signal);
      this.syncs.inc({ initiator: 'peer', result: 'ok' });
    } catch (err) {
      this.syncs.inc({ initiator: 'peer', result: 'failed' });
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }

  health(): { gossip: { ok: boolean; detail: string }; dht: { ok: boolean; detail: string } } {
    const pubsub = this.o.node.services.pubsub;
    const subscribed = pubsub.getTopics().includes(GOSSIP_TOPIC);
    const topicPeers = pubsub.getSubscribers(GOSSIP_TOPIC).length;
    const peers = this.o.node.getPeers().length;
    return {
      gossip: {
        ok: subscribed,
        detail: `${subscribed ? 'subscribed' : 'not subscribed'}, ${topicPeers} topic peer(s)${this.lastGossipMs ? `, last record ${new Date(this.lastGossipMs).toISOString()}` : ''}`,
      },
      dht: {
        ok: this.o.node.status === 'started',
        detail: `${this.o.node.status}, ${peers} connected peer(s), ${this.dhtPutAt.size} entr(ies) put by this node, ${this.dhtQueue.size} put(s) pending`,
      },
    };
  }
}

export interface StorePublisherOptions {
  readonly store: RegistryStore;
  readonly distribution: RegistryDistribution;
  readonly pollMs?: number;
  readonly onError?: (err: unknown) => void;
}

/**
 * A validator's loop from the store to the network: publishes each record version once, as
 * soon as it carries a quorum of countersignatures.
 */
export class StorePublisher {
  private readonly published = new Map<string, { seq: bigint; epoch: bigint }>();
  /**
   * Each subject's stored bytes when a pass last decided about them (published, older than
   * what was published, or short of a quorum). Whether a record is attested changes only with
   * its bytes (a countersignature added) or with the validator set, so a pass verifies only
   * what changed since the last one, and starts over when the set's epoch moves.
   */
  private readonly examined = new Map<string, Uint8Array>();
  private examinedEpoch = -1n;
  private setsPublished = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastOkMs = 0;
  private lastError: string | undefined;

  constructor(private readonly o: StorePublisherOptions) {}

  start(): void {
    const tick = () => {
      this.running ??= this.scan()
        .then(() => undefined)
        .catch((err) => {
          this.lastError = errorMessage(err);
          this.o.onError?.(err);
        })
        .finally(() => (this.running = undefined));
    };
    this.timer = setInterval(tick, this.o.pollMs ?? 200);
    this.timer.unref();
    tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** One pass over the store; answers how many records it published. */
  async scan(): Promise<number> {
    const store = this.o.store;
    await store.refreshSets();
    const stored = await store.listStored();
    this.lastOkMs = Date.now();
    this.lastError = undefined;
    let n = 0;
    const sets = store.chain.records();
    for (; this.setsPublished < sets.length; this.setsPublished++)
      if (await this.o.distribution.publish(sets[this.setsPublished]!)) n++;
    if (store.chain.head.epoch !== this.examinedEpoch) {
      this.examined.clear();
      this.examinedEpoch = store.chain.head.epoch;
    }
    const rules = store.chain.rules(Date.now());
    for (const { subject, bytes } of stored) {
      const before = this.examined.get(subject);
      if (before && Buffer.compare(before, bytes) === 0) continue;
      const rec = store.decodeStored(bytes, subject);
      let epoch: bigint;
      try {
        epoch = attestation(rec, rules);
      } catch {
        this.examined.set(subject, bytes);
        continue; // no quorum yet
      }
      const last = this.published.get(rec.peerId);
      if (last && (last.seq > rec.seq || (last.seq === rec.seq && last.epoch >= epoch))) {
        this.examined.set(subject, bytes);
        continue;
      }
      try {
        await this.o.distribution.publish(encodeRecord(rec));
        this.published.set(rec.peerId, { seq: rec.seq, epoch });
        n++;
      } catch (err) {
        if (!(err instanceof RegistryError)) throw err;
      }
      this.examined.set(subject, bytes);
    }
    return n;
  }

  health(): { ok: boolean; detail: string } {
    return this.lastError === undefined
      ? { ok: this.lastOkMs > 0, detail: this.lastOkMs ? 'store readable' : 'not read yet' }
      : { ok: false, detail: this.lastError };
  }
}

/** The genesis set and the set records the view holds (a restarted node keeps its epochs). */
export function chainFromView(
  genesis: ValidatorSet,
  view: RegistryView,
  nowMs: number,
  graceMs?: number,
  onError?: (err: unknown) => void,
): ValidatorSetChain {
  const chain = new ValidatorSetChain(genesis, graceMs);
  for (const bytes of view.sets())
    try {
      chain.offer(bytes, nowMs);
    } catch (err) {
      onError?.(err);
      break;
    }
  return chain;
}
