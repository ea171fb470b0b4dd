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
 *   `get` falls back to the DHT for a subject the view lacks.
 * - **sync on connect** (`/vigil/registry/sync/1.0.0`): when two nodes connect, each sends the
 *   other its view (bounded frames, a bounded count, each record verified on arrival like a
 *   gossip message). That is how a node that was offline or partitioned catches up, and why no
 *   record is ever re-broadcast on a timer: an unchanged record is sent only to a peer that
 *   just connected.
 *
 * Validator-set records (src/registry/validator-set.ts) travel the same ways as records (not
 * the DHT): on the topic, told apart by their first byte, and first on every sync stream, so a
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
import { TopicValidatorResult, type Message } from '@libp2p/gossipsub';
import { lpStream } from '@libp2p/utils';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { errorMessage } from '../errors.js';
import {
  LIMITS,
  RegistryError,
  attestation,
  decodeRecord,
  encodeRecord,
  verifyRecordAt,
  type SignedRecord,
  type ValidatorSet,
} from './record.js';
import { ValidatorSetChain, isSetRecordBytes } from './validator-set.js';
import { dhtKey, type RegistryLibp2p } from './node.js';
import type { RegistryStore } from './store.js';
import type { RegistryView } from './view.js';

export const GOSSIP_TOPIC = '/vigil/registry/records/1.0.0';
export const SYNC_PROTOCOL = '/vigil/registry/sync/1.0.0';
/** A sync answer carries at most this many records. */
export const MAX_SYNC_RECORDS = 100_000;

export type AcceptResult = 'accepted' | 'stale' | 'rejected';

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
  readonly onError?: (err: unknown) => void;
}

export class RegistryDistribution {
  private readonly nowMs: () => number;
  /** The validator sets this node accepts records under. */
  readonly chain: ValidatorSetChain;
  /** Peers a catch-up sync is running from (one at a time per peer). */
  private readonly catchingUp = new Set<string>();
  private readonly received: Counter<'source' | 'result'>;
  private readonly propagation: Histogram;
  private readonly dhtPutAt = new Map<string, number>();
  private republishTimer: NodeJS.Timeout | undefined;
  private readonly onConnect = (evt: CustomEvent<PeerId>) => {
    void this.syncFrom(evt.detail).catch((err) => this.o.onError?.(err));
  };
  private lastGossipMs = 0;

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
    const view = o.view;
    new Gauge({
      name: 'vigil_registry_records',
      help: "Records in this node's view",
      registers: [o.metrics],
      collect() {
        this.set(view.count());
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
    pubsub.subscribe(GOSSIP_TOPIC);
    await this.o.node.handle(SYNC_PROTOCOL, (stream) => this.serveSync(stream));
    this.o.node.addEventListener('peer:connect', this.onConnect);
    const every = this.o.dhtRepublishMs ?? 12 * 3600_000;
    this.republishTimer = setInterval(
      () => {
        void this.republishDue(every).catch((err) => this.o.onError?.(err));
      },
      Math.max(1000, Math.floor(every / 4)),
    );
    this.republishTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.republishTimer) clearInterval(this.republishTimer);
    this.o.node.removeEventListener('peer:connect', this.onConnect);
    this.o.node.services.pubsub.topicValidators.delete(GOSSIP_TOPIC);
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
    void this.syncFrom(from)
      .catch((err) => this.o.onError?.(err))
      .finally(() => this.catchingUp.delete(from.toString()));
  }

  /**
   * Publishes a quorum-attested record (into the view, on the topic, into the DHT) or a
   * validator-set record (into the chain and the view, on the topic). Does nothing (and
   * answers false) for one that does not verify or is not newer than what is held.
   */
  async publish(bytes: Uint8Array): Promise<boolean> {
    if (this.accept(bytes, 'local') !== 'accepted') return false;
    await this.o.node.services.pubsub.publish(GOSSIP_TOPIC, bytes).catch((err) => {
      // Duplicate: another validator's copy of the same record already went out.
      if (!/duplicate/i.test(errorMessage(err))) this.o.onError?.(err);
    });
    if (!isSetRecordBytes(bytes)) await this.putDht(decodeRecord(bytes).peerId, bytes);
    return true;
  }

  private async putDht(subject: string, bytes: Uint8Array): Promise<void> {
    try {
      for await (const _ of this.o.node.services.dht.put(dhtKey(subject), bytes, {
        signal: AbortSignal.timeout(10_000),
      })) {
        void _;
      }
      this.dhtPutAt.set(subject, this.nowMs());
    } catch (err) {
      this.o.onError?.(err);
    }
  }

  /** Puts again every DHT entry this node put longer than `everyMs` ago, unless expired. */
  async republishDue(everyMs: number): Promise<number> {
    let n = 0;
    const now = this.nowMs();
    for (const [subject, at] of [...this.dhtPutAt]) {
      if (now - at < everyMs) continue;
      const e = this.o.view.get(subject);
      if (!e || now >= e.record.content.expiresAtMs) {
        this.dhtPutAt.delete(subject);
        continue;
      }
      await this.putDht(subject, e.bytes);
      n++;
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

  private async serveSync(stream: Stream): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: LIMITS.envelopeBytes });
    const signal = AbortSignal.timeout(30_000);
    try {
      // The set records first: the records after them may be attested under them.
      for (const set of this.chain.records()) await lp.write(set, { signal });
      const entries = this.o.view.list().slice(0, MAX_SYNC_RECORDS);
      for (const e of entries) await lp.write(e.bytes, { signal });
      await lp.write(new Uint8Array(0), { signal });
      await stream.close({ signal });
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Asks `peer` for its view and accepts what is newer; answers how many records were taken. */
  async syncFrom(peer: PeerId): Promise<number> {
    const signal = AbortSignal.timeout(30_000);
    let stream: Stream;
    try {
      stream = await this.o.node.dialProtocol(peer, SYNC_PROTOCOL, { signal });
    } catch {
      return 0; // not a registry node, or it went away
    }
    const lp = lpStream(stream, { maxDataLength: LIMITS.envelopeBytes });
    let taken = 0;
    try {
      for (let i = 0; i <= MAX_SYNC_RECORDS + this.chain.records().length + 1; i++) {
        const frame = (await lp.read({ signal })).subarray();
        if (frame.length === 0) break;
        if (this.accept(frame, 'sync', peer) === 'accepted') taken++;
      }
      await stream.close({ signal }).catch(() => undefined);
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    }
    return taken;
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
        detail: `${this.o.node.status}, ${peers} connected peer(s), ${this.dhtPutAt.size} entr(ies) put by this node`,
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
    const records = await store.list();
    this.lastOkMs = Date.now();
    this.lastError = undefined;
    let n = 0;
    const sets = store.chain.records();
    for (; this.setsPublished < sets.length; this.setsPublished++)
      if (await this.o.distribution.publish(sets[this.setsPublished]!)) n++;
    const rules = store.chain.rules(Date.now());
    for (const rec of records) {
      let epoch: bigint;
      try {
        epoch = attestation(rec, rules);
      } catch {
        continue; // no quorum yet
      }
      const last = this.published.get(rec.peerId);
      if (last && (last.seq > rec.seq || (last.seq === rec.seq && last.epoch >= epoch))) continue;
      try {
        await this.o.distribution.publish(encodeRecord(rec));
        this.published.set(rec.peerId, { seq: rec.seq, epoch });
        n++;
      } catch (err) {
        if (!(err instanceof RegistryError)) throw err;
      }
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
