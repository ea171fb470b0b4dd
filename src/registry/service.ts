/**
 * A running registry node: the parts of src/registry/ put together for one process.
 *
 * - **peer**: libp2p node + distribution + view. It reads the registry and submits its own
 *   record to a validator (`submitOwn`).
 * - **validator**: a peer, plus the store (SQLite or etcd), its countersigner, the submission
 *   protocol and the store publisher.
 *
 * `health()` reports each component for /readyz (src/cli/registry.ts).
 */
import './polyfill.js';
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Registry } from 'prom-client';
import { Ed25519Key } from '../keys/ed25519.js';
import { VigilError } from '../errors.js';
import { Countersigner } from './countersigner.js';
import {
  connectionTrusted,
  followCurrentSet,
  isCurrentValidator,
  type CurrentSet,
} from './current-set.js';
import { RegistryDistribution, StorePublisher, chainFromView } from './distribution.js';
import { createRegistryNode, type RegistryLibp2p } from './node.js';
import {
  encodeSubmission,
  signSubmission,
  type RecordContent,
  type SignedRecord,
  type ValidatorSet,
} from './record.js';
import { peerIdFromEd25519 } from './peer-id.js';
import { RecordRenewer, type RenewEvent, type RenewTuning } from './renew.js';
import {
  SubmitService,
  submitToValidator,
  type AdmissionPolicy,
  type Submitted,
} from './submit.js';
import type { RegistryStore } from './store.js';
import { RegistryView } from './view.js';

export interface ComponentHealth {
  readonly ok: boolean;
  readonly detail: string;
}

export interface RegistryPeerOptions {
  readonly seed: Uint8Array;
  readonly listen: readonly string[];
  /** Multiaddrs (with /p2p/) dialled at start. */
  readonly bootstrap?: readonly string[];
  readonly validators: ValidatorSet;
  readonly viewPath: string;
  readonly metrics: Registry;
  /** libp2p's own metrics into `metrics` too (default true; node.ts: one node per process). */
  readonly libp2pMetrics?: boolean;
  /**
   * Who may connect, both ways: a list of peer ids — those peers plus the validators of the
   * current set (current-set.ts: an added validator gets in, a removed one no longer does, and
   * its open connections are closed on the change) — or a hook asked at each connection
   * (taken as is). Undefined lets anyone in.
   */
  readonly allowList?: readonly string[] | ((peerId: string) => boolean);
  readonly nowMs?: () => number;
  readonly dhtRepublishMs?: number;
  /** Pending background DHT puts at most (distribution.ts, default 1024). */
  readonly dhtQueueLimit?: number;
  /** How long the previous validator-set epoch still counts after a change. */
  readonly epochGraceMs?: number;
  readonly onError?: (err: unknown) => void;
  /** A background DHT put failed or was dropped (default: onError). */
  readonly onDhtPutFailed?: (subject: string, err: unknown) => void;
  /**
   * Re-sign and resubmit this node's own record before it expires (renew.ts); off unless
   * given (`vigil registry run` turns it on; short-lived nodes must not).
   */
  readonly renew?: RenewTuning;
  readonly onRenew?: (e: RenewEvent) => void;
}

export interface RegistryValidatorOptions extends RegistryPeerOptions {
  readonly store: RegistryStore;
  /** The countersigner's own local file. */
  readonly countersignStatePath: string;
  readonly admission?: AdmissionPolicy;
  /**
   * An admission allow-list: these peers and the validators of the current set may submit
   * (ignored when `admission` is given).
   */
  readonly admissionList?: readonly string[];
  readonly ratePoints?: number;
  readonly rateWindowS?: number;
  readonly pollMs?: number;
}

/** How a node reads and writes its own record (a peer: view + a validator; a validator: its store). */
interface OwnRecordAccess {
  current(): Promise<SignedRecord | undefined>;
  submit(content: RecordContent): Promise<Submitted>;
  refresh(): Promise<void>;
}

/** How long one dial of a validator may take (dialValidators). */
const VALIDATOR_DIAL_MS = 5000;

export class RegistryPeer {
  readonly key: Ed25519Key;
  protected renewer: RecordRenewer | undefined;
  /** The current validator set (current-set.ts), following the distribution's chain. */
  readonly currentSet: () => CurrentSet;
  private readonly unfollow: () => void;
  protected constructor(
    readonly node: RegistryLibp2p,
    readonly view: RegistryView,
    readonly distribution: RegistryDistribution,
    protected readonly options: RegistryPeerOptions,
    /** Whether a peer may be connected, both ways (undefined: anyone). */
    private readonly allowed: ((peerId: string) => boolean) | undefined,
  ) {
    this.key = Ed25519Key.fromSeed(options.seed);
    this.currentSet = followCurrentSet(distribution.chain);
    // Called inside the gossip validator or a sync: the network work runs after it.
    this.unfollow = distribution.chain.onChange(() =>
      setImmediate(() => void this.onSetChange().catch((err) => this.options.onError?.(err))),
    );
  }

  static async start(o: RegistryPeerOptions): Promise<RegistryPeer> {
    const parts = await startPeerParts(o);
    const peer = new RegistryPeer(parts.node, parts.view, parts.distribution, o, parts.allowed);
    await peer.dialBootstrap();
    peer.fetchLateSets();
    peer.startRenewer();
    return peer;
  }

  /**
   * A new validator set: connections to peers no longer allowed (a removed validator that no
   * allow-list names) are closed, and the validators of the new set dialled.
   */
  private async onSetChange(): Promise<void> {
    if (this.allowed)
      await Promise.all(
        this.node
          .getPeers()
          .filter((p) => !this.allowed!(p.toString()))
          .map((p) => this.node.hangUp(p).catch((err) => this.options.onError?.(err))),
      );
    await this.dialValidators();
  }

  /** Where to reach a validator: the addresses of its own record in the view, with /p2p/. */
  private validatorAddrs(id: string): string[] {
    const rec = this.view.get(id)?.record;
    return (rec?.content.addresses ?? []).map((a) => (a.includes('/p2p/') ? a : `${a}/p2p/${id}`));
  }

  /**
   * Dials every validator of the current set this node is not connected to, at the addresses
   * of its own record in the view (a validator added by a set change is in no config); answers
   * how many it reached. One bounded dial per address, tried in turn.
   */
  async dialValidators(): Promise<number> {
    const connected = new Set(this.node.getPeers().map(String));
    const todo = this.currentSet().members.filter((id) => id !== this.peerId && !connected.has(id));
    const reached = await Promise.all(
      todo.map(async (id) => {
        for (const a of this.validatorAddrs(id)) {
          try {
            await this.node.dial(multiaddr(a), { signal: AbortSignal.timeout(VALIDATOR_DIAL_MS) });
            return true;
          } catch (err) {
            this.options.onError?.(err);
          }
        }
        return false;
      }),
    );
    return reached.filter(Boolean).length;
  }

  /**
   * Where to submit: the current validators (never this node), those connected first as peer
   * ids, the others at the addresses of their records (or by peer id, if the view has none).
   */
  validatorTargets(): string[] {
    const connected = new Set(this.node.getPeers().map(String));
    const ids = this.currentSet().members.filter((id) => id !== this.peerId);
    return [
      ...ids.filter((id) => connected.has(id)),
      ...ids
        .filter((id) => !connected.has(id))
        .flatMap((id) => {
          const addrs = this.validatorAddrs(id);
          return addrs.length > 0 ? addrs : [id];
        }),
    ];
  }

  protected ownRecord(): OwnRecordAccess {
    return {
      current: async () => this.view.get(this.peerId)?.record,
      submit: (content) => this.submitOwn(content, this.validatorTargets()),
      // A stale answer: the view lags a commit; one exchange with a validator catches up.
      refresh: async () => {
        const connected = new Set(this.node.getPeers().map(String));
        for (const id of this.currentSet().members.filter(
          (v) => v !== this.peerId && connected.has(v),
        )) {
          try {
            await this.distribution.syncWith(peerIdFromString(id));
            return;
          } catch {
            // the next one
          }
        }
      },
    };
  }

  /** A node that starts late takes the set records it missed from the DHT (in the background). */
  protected fetchLateSets(): void {
    void this.distribution.fetchSetsFromDht().catch((err) => this.options.onError?.(err));
  }

  protected startRenewer(): void {
    const tuning = this.options.renew;
    if (!tuning) return;
    const own = this.ownRecord();
    this.renewer = new RecordRenewer({
      ...tuning,
      current: () => own.current(),
      submit: (c) => own.submit(c),
      refresh: () => own.refresh(),
      metrics: this.options.metrics,
      ...(this.options.nowMs ? { nowMs: this.options.nowMs } : {}),
      ...(this.options.onRenew ? { onEvent: this.options.onRenew } : {}),
    });
    this.renewer.start();
  }

  get peerId(): string {
    return this.node.peerId.toString();
  }

  get addresses(): string[] {
    return this.node.getMultiaddrs().map(String);
  }

  protected async dialBootstrap(): Promise<void> {
    await Promise.all(
      (this.options.bootstrap ?? []).map((a) =>
        this.node.dial(multiaddr(a)).catch((err) => this.options.onError?.(err)),
      ),
    );
  }

  /**
   * Signs `content` (its subject must be this node) and submits it to the first validator of
   * `validators` (peer ids or multiaddrs) that answers.
   */
  async submitOwn(content: RecordContent, validators: readonly string[]): Promise<Submitted> {
    const bytes = encodeSubmission(signSubmission(content, this.key));
    let last: unknown;
    for (const v of validators) {
      try {
        const target = v.startsWith('/') ? multiaddr(v) : peerIdFromString(v);
        return await submitToValidator(this.node, target, bytes);
      } catch (err) {
        last = err;
        // A refusal is the registry's answer: another validator would give the same one. Not
        // so from a node that is no longer a validator (removed by a set change).
        const code = (err as { code?: string }).code;
        if (code !== 'REGISTRY_UNAVAILABLE' && code !== NOT_A_VALIDATOR) throw err;
      }
    }
    throw last;
  }

  health(): Record<string, ComponentHealth> {
    return { ...this.distribution.health() };
  }

  async stop(): Promise<void> {
    this.unfollow();
    await this.renewer?.stop();
    await this.distribution.stop();
    await this.node.stop();
    this.view.close();
  }
}

async function startPeerParts(o: RegistryPeerOptions) {
  const view = new RegistryView(o.viewPath);
  const nowMs = o.nowMs ?? Date.now;
  // The validator sets this node accepts records under: the genesis set and what the view
  // kept of later ones; the gossip topic, sync and the DHT all check against it.
  const chain = chainFromView(o.validators, view, nowMs(), o.epochGraceMs, o.onError);
  const current = followCurrentSet(chain);
  const list = o.allowList;
  const allowed =
    list === undefined
      ? undefined
      : typeof list === 'function'
        ? list
        : (peerId: string) => connectionTrusted(current(), list, peerId);
  const node = await createRegistryNode({
    seed: o.seed,
    listen: o.listen,
    validators: o.validators,
    rules: () => chain.rules(nowMs()),
    setChain: () => chain,
    metrics: o.metrics,
    ...(o.libp2pMetrics !== undefined ? { libp2pMetrics: o.libp2pMetrics } : {}),
    ...(allowed ? { allowList: allowed } : {}),
    ...(o.nowMs ? { nowMs: o.nowMs } : {}),
  });
  const distribution = new RegistryDistribution({
    node,
    view,
    validators: o.validators,
    chain,
    metrics: o.metrics,
    ...(o.nowMs ? { nowMs: o.nowMs } : {}),
    ...(o.dhtRepublishMs ? { dhtRepublishMs: o.dhtRepublishMs } : {}),
    ...(o.dhtQueueLimit ? { dhtQueueLimit: o.dhtQueueLimit } : {}),
    ...(o.onError ? { onError: o.onError } : {}),
    ...(o.onDhtPutFailed ? { onDhtPutFailed: o.onDhtPutFailed } : {}),
  });
  await distribution.start();
  return { node, view, distribution, allowed };
}

/** The refusal of a node that runs as a validator but is not in the current set. */
export const NOT_A_VALIDATOR = 'REGISTRY_NOT_A_VALIDATOR';

export class RegistryValidator extends RegistryPeer {
  private constructor(
    node: RegistryLibp2p,
    view: RegistryView,
    distribution: RegistryDistribution,
    options: RegistryValidatorOptions,
    allowed: ((peerId: string) => boolean) | undefined,
    readonly store: RegistryStore,
    readonly countersigner: Countersigner,
    readonly submit: SubmitService,
    readonly publisher: StorePublisher,
  ) {
    super(node, view, distribution, options, allowed);
  }

  static override async start(o: RegistryValidatorOptions): Promise<RegistryValidator> {
    // The store's set records first: a validator added by a set change countersigns from the
    // start.
    await o.store.refreshSets();
    const { node, view, distribution, allowed } = await startPeerParts(o);
    const self = Ed25519Key.fromSeed(o.seed).publicKey;
    const selfId = peerIdFromEd25519(self);
    const storeSet = followCurrentSet(o.store.chain);
    const netSet = followCurrentSet(distribution.chain);
    /** The newer of the sets the store and the network have shown this node. */
    const current = () => {
      const a = storeSet();
      const b = netSet();
      return a.epoch >= b.epoch ? a : b;
    };
    const list = o.admissionList;
    // A node removed from the set refuses submissions (the client tries the next validator);
    // then the configured admission, or the admission list plus the current validators.
    const admission: AdmissionPolicy = async (peer) => {
      const set = current();
      if (!isCurrentValidator(set, selfId))
        throw new VigilError(
          NOT_A_VALIDATOR,
          `${selfId} is not in the validator set of epoch ${set.epoch}: it takes no submissions`,
          'submit to a validator of the current set (`vigil registry validators`)',
        );
      if (o.admission) return o.admission(peer);
      if (list) return list.includes(peer.toString()) || isCurrentValidator(set, peer.toString());
      return true;
    };
    const countersigner = new Countersigner({
      store: o.store,
      signer: Ed25519Key.fromSeed(o.seed),
      statePath: o.countersignStatePath,
      metrics: o.metrics,
      pollMs: o.pollMs ?? 100,
      ...(o.nowMs ? { nowMs: o.nowMs } : {}),
      ...(o.onError ? { onError: o.onError } : {}),
    });
    const submit = new SubmitService({
      node,
      store: o.store,
      metrics: o.metrics,
      admission,
      ...(o.ratePoints ? { ratePoints: o.ratePoints } : {}),
      ...(o.rateWindowS ? { rateWindowS: o.rateWindowS } : {}),
    });
    const publisher = new StorePublisher({
      store: o.store,
      distribution,
      pollMs: o.pollMs ?? 100,
      ...(o.onError ? { onError: o.onError } : {}),
    });
    countersigner.start();
    await submit.start();
    publisher.start();
    const v = new RegistryValidator(
      node,
      view,
      distribution,
      o,
      allowed,
      o.store,
      countersigner,
      submit,
      publisher,
    );
    await v.dialBootstrap();
    v.fetchLateSets();
    v.startRenewer();
    return v;
  }

  /** A validator's own record goes straight through its store: it is the commit path. */
  protected override ownRecord(): OwnRecordAccess {
    return {
      current: () => this.store.get(this.peerId),
      submit: (content) => this.store.submit(encodeSubmission(signSubmission(content, this.key))),
      refresh: async () => undefined,
    };
  }

  override health(): Record<string, ComponentHealth> {
    return {
      store: this.publisher.health(),
      ...this.distribution.health(),
      submission: this.submit.health(),
    };
  }

  override async stop(): Promise<void> {
    await this.renewer?.stop();
    await this.publisher.stop();
    await this.submit.stop().catch(() => undefined);
    await this.countersigner.stop();
    await super.stop();
    await this.store.close();
  }
}
