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
import { Countersigner } from './countersigner.js';
import { RegistryDistribution, StorePublisher, chainFromView } from './distribution.js';
import { createRegistryNode, type RegistryLibp2p } from './node.js';
import {
  encodeSubmission,
  signSubmission,
  type RecordContent,
  type ValidatorSet,
} from './record.js';
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
  readonly allowList?: readonly string[] | ((peerId: string) => boolean);
  readonly nowMs?: () => number;
  readonly dhtRepublishMs?: number;
  /** How long the previous validator-set epoch still counts after a change. */
  readonly epochGraceMs?: number;
  readonly onError?: (err: unknown) => void;
}

export interface RegistryValidatorOptions extends RegistryPeerOptions {
  readonly store: RegistryStore;
  /** The countersigner's own local file. */
  readonly countersignStatePath: string;
  readonly admission?: AdmissionPolicy;
  readonly ratePoints?: number;
  readonly rateWindowS?: number;
  readonly pollMs?: number;
}

export class RegistryPeer {
  readonly key: Ed25519Key;
  protected constructor(
    readonly node: RegistryLibp2p,
    readonly view: RegistryView,
    readonly distribution: RegistryDistribution,
    protected readonly options: RegistryPeerOptions,
  ) {
    this.key = Ed25519Key.fromSeed(options.seed);
  }

  static async start(o: RegistryPeerOptions): Promise<RegistryPeer> {
    const parts = await startPeerParts(o);
    const peer = new RegistryPeer(parts.node, parts.view, parts.distribution, o);
    await peer.dialBootstrap();
    return peer;
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
        // A refusal is the registry's answer: another validator would give the same one.
        if ((err as { code?: string }).code !== 'REGISTRY_UNAVAILABLE') throw err;
      }
    }
    throw last;
  }

  health(): Record<string, ComponentHealth> {
    return { ...this.distribution.health() };
  }

  async stop(): Promise<void> {
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
  const node = await createRegistryNode({
    seed: o.seed,
    listen: o.listen,
    validators: o.validators,
    rules: () => chain.rules(nowMs()),
    metrics: o.metrics,
    ...(o.libp2pMetrics !== undefined ? { libp2pMetrics: o.libp2pMetrics } : {}),
    ...(o.allowList ? { allowList: o.allowList } : {}),
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
    ...(o.onError ? { onError: o.onError } : {}),
  });
  await distribution.start();
  return { node, view, distribution };
}

export class RegistryValidator extends RegistryPeer {
  private constructor(
    node: RegistryLibp2p,
    view: RegistryView,
    distribution: RegistryDistribution,
    options: RegistryValidatorOptions,
    readonly store: RegistryStore,
    readonly countersigner: Countersigner,
    readonly submit: SubmitService,
    readonly publisher: StorePublisher,
  ) {
    super(node, view, distribution, options);
  }

  static override async start(o: RegistryValidatorOptions): Promise<RegistryValidator> {
    // The store's set records first: a validator added by a set change countersigns from the
    // start.
    await o.store.refreshSets();
    const { node, view, distribution } = await startPeerParts(o);
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
      ...(o.admission ? { admission: o.admission } : {}),
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
      o.store,
      countersigner,
      submit,
      publisher,
    );
    await v.dialBootstrap();
    return v;
  }

  override health(): Record<string, ComponentHealth> {
    return {
      store: this.publisher.health(),
      ...this.distribution.health(),
      submission: this.submit.health(),
    };
  }

  override async stop(): Promise<void> {
    await this.publisher.stop();
    await this.submit.stop().catch(() => undefined);
    await this.countersigner.stop();
    await super.stop();
    await this.store.close();
  }
}
