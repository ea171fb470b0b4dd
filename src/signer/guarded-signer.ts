/**
 * The one path every signature and every duty authorization takes:
 *
 *   request → key binding (protocol, chain) → parse the bytes (position) → sign
 *           → store transaction { local check, rule, write } → durable
 *           → local watermark raised → signature released
 *
 * Nothing reaches the store before the key's binding and the message parser accepted the
 * request. The signature is computed before the transaction but leaves only after the store
 * confirmed a write that records it; a refused request's signature is dropped unseen.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  parseSignBytes,
  voteExtensionSignBytes,
  type Timestamp,
} from '../protocols/cometbft/sign-bytes.js';
import { familyOf } from '../keys/binding.js';
import { InputError, StoreIdentityError, StoreUnavailableError } from '../errors.js';
import {
  comparePositions,
  decide,
  formatPosition,
  positionOf,
  type Decision,
  type DutyFamily,
  type GrandpaStageName,
  type Position,
  type RefusalReason,
  type RuleRequest,
  type Watermark,
} from '../guard/index.js';
import type { KeyRing, KnownKey } from '../keys/keyring.js';
import {
  FencedError,
  type FenceToken,
  type StoreEngine,
  type WatermarkScope,
  type WatermarkStore,
} from '../store/types.js';
import { CorruptRecordError } from '../store/record-codec.js';
import type { LocalWatermarks } from './local-watermark.js';
import { parseSignable } from './signable.js';

interface Common {
  readonly chainId: string;
  /** Configured key id or public key hex. */
  readonly keyId: string;
  /** For an exclusive role: commit only while this leadership is current. */
  readonly fence?: FenceToken;
}

/**
 * What adapters (HTTP API, privval signer) hand to the guard to sign: the bytes exactly as the
 * key's protocol signs them (CometBFT canonical sign bytes, a GRANDPA vote's SCALE payload, an
 * unsealed Substrate header). The position is read from those bytes.
 */
export interface SignRequest extends Common {
  readonly payload: Uint8Array;
  /** CometBFT: a vote extension to sign with a non-nil precommit. */
  readonly extension?: Uint8Array;
  /** What the caller says it is asking for. Checked against the bytes, never used instead. */
  readonly claims?: { readonly family?: DutyFamily; readonly position?: Position };
}
/** A node asking for a duty it will sign itself; `nodeId` makes a retry idempotent. */
export type AuthorizationRequest =
  | (Common & {
      readonly family: 'slot';
      readonly slot: bigint;
      readonly nodeId: string;
      readonly payload?: Uint8Array;
    })
  | (Common & {
      readonly family: 'grandpa';
      readonly setId: bigint;
      readonly round: bigint;
      readonly stage: GrandpaStageName;
      readonly nodeId: string;
      readonly payload?: Uint8Array;
    });

export type GuardResult =
  | {
      readonly outcome: 'granted' | 'replayed';
      readonly watermark: Watermark;
      readonly signature?: Uint8Array;
      /** CometBFT: the node must use this timestamp (the request differed only in time). */
      readonly timestamp?: Timestamp;
      readonly extensionSignature?: Uint8Array;
    }
  | {
      readonly outcome: 'refused';
      readonly reason: RefusalReason;
      readonly message: string;
      readonly watermark?: Watermark;
    };

export interface DecisionObserver {
  onDecision(event: {
    /** Undefined when a request for an unknown key named no family. */
    family: DutyFamily | undefined;
    chainId: string;
    keyId: string;
    outcome: GuardResult['outcome'];
    reason?: RefusalReason;
    message?: string;
    seconds: number;
    watermark?: Watermark;
    /**
     * The store update this request made (absent when it ended before the store): its engine
     * and how long the call took, failures included. Part of `seconds`, not added to it.
     */
    store?: { engine: StoreEngine; seconds: number };
  }): void;
}

export interface GuardedSignerOptions {
  readonly store: WatermarkStore;
  readonly keys: KeyRing;
  readonly local: LocalWatermarks;
  /** Written into each record, so operators can see which agent granted what. */
  readonly agentId: string;
  readonly observer?: DecisionObserver;
}

/** JSON can carry one ("\ud800"); such a chain id has no UTF-8 form, so no scope key. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * What an authorization records: the asking node and what it said it would sign, under a
 * domain of its own so it can never equal the hash of bytes a key signed, and with each part
 * length-prefixed so two (node id, payload) pairs never hash alike. A retry by the same node is
 * recognised; a request by another node is a conflict.
 */
export function authorizationHash(nodeId: string, payload: Uint8Array | undefined): Uint8Array {
  const id = Buffer.from(nodeId, 'utf8');
  const body = payload ?? new Uint8Array();
  const len = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return new Uint8Array(
    createHash('sha256')
      .update('vigil/authorization/v1\0')
      .update(len(id.length))
      .update(id)
      .update(len(body.length))
      .update(body)
      .digest(),
  );
}

type Refusal = Extract<GuardResult, { outcome: 'refused' }>;
const refused = (reason: RefusalReason, message: string): Refusal => ({
  outcome: 'refused',
  reason,
  message,
});

/** The prepared request: the scope it moves, the rule input, and what the key would sign. */
interface Prepared {
  readonly key: KnownKey;
  readonly family: DutyFamily;
  readonly rule: RuleRequest;
  readonly position: Position;
  /** Absent for authorizations: nothing is signed. */
  readonly message?: Uint8Array;
}

export class GuardedSigner {
  constructor(private readonly opts: GuardedSignerOptions) {}

  /** Signs `req` if the guard grants it; a refusal is a result, not an exception. */
  async sign(req: SignRequest): Promise<GuardResult> {
    return this.run(req, req.claims?.family, () => this.prepareSign(req));
  }

  /** Grants a duty without signing, recorded under the same rules as a signature. */
  async authorize(req: AuthorizationRequest): Promise<GuardResult> {
    return this.run(req, req.family, () => this.prepareAuthorization(req));
  }

  /** The key, its binding and the request's chain: everything checked before any parsing. */
  private boundKey(
    req: Common,
    mode: 'sign' | 'authorize',
    claimedFamily: DutyFamily | undefined,
  ): KnownKey | Refusal {
    const key = this.opts.keys.resolve(req.keyId);
    if (key === undefined)
      return refused(
        'unknown_key',
        `no key ${JSON.stringify(req.keyId)} is configured on this agent`,
      );
    const { binding } = key;
    if (mode === 'sign' && key.signer === undefined)
      return refused(
        'wrong_protocol',
        `key ${JSON.stringify(key.id)} is bound to authorization only (its node signs by itself); nothing is signed with it here`,
      );
    if (mode === 'authorize' && binding.protocol !== 'authorize')
      return refused(
        'wrong_protocol',
        `key ${JSON.stringify(key.id)} is bound to ${binding.protocol} signing; only an authorize key is granted duties its node signs itself`,
      );
    const family = familyOf(binding);
    if (claimedFamily !== undefined && claimedFamily !== family)
      return refused(
        'wrong_protocol',
        `key ${JSON.stringify(key.id)} is bound to ${binding.protocol} (${family} duties), not ${claimedFamily}`,
      );
    if (!binding.chains.has(req.chainId))
      return refused(
        'unknown_chain',
        `key ${JSON.stringify(key.id)} does not serve chain ${JSON.stringify(req.chainId)}`,
      );
    return key;
  }

  private prepareSign(req: SignRequest): Prepared | Refusal {
    const key = this.boundKey(req, 'sign', req.claims?.family);
    if ('outcome' in key) return key;
    const signable = parseSignable(
      key.binding,
      req.chainId,
      req.payload,
      req.extension !== undefined,
    );
    const claimed = req.claims?.position;
    if (claimed !== undefined && comparePositions(claimed, signable.position) !== 0)
      return refused(
        'invalid_request',
        `the request claims ${formatPosition(claimed)}, but the bytes are at ${formatPosition(signable.position)}`,
      );
    return {
      key,
      family: familyOf(key.binding),
      rule: signable.rule,
      position: signable.position,
      message: signable.message,
    };
  }

  private prepareAuthorization(req: AuthorizationRequest): Prepared | Refusal {
    const key = this.boundKey(req, 'authorize', req.family);
    if ('outcome' in key) return key;
    const payloadHash = authorizationHash(req.nodeId, req.payload);
    const rule: RuleRequest =
      req.family === 'slot'
        ? { family: 'slot', slot: req.slot, payloadHash, mode: 'authorize' }
        : {
            family: 'grandpa',
            setId: req.setId,
            round: req.round,
            stage: req.stage,
            payloadHash,
            mode: 'authorize',
          };
    return { key, family: req.family, rule, position: positionOf(rule) };
  }

  private async run(
    req: Common,
    claimedFamily: DutyFamily | undefined,
    prepare: () => Prepared | Refusal,
  ): Promise<GuardResult> {
    const started = performance.now();
    let prepared: Prepared | Refusal;
    try {
      prepared = LONE_SURROGATE.test(req.chainId)
        ? refused(
            'invalid_request',
            'chainId is not well-formed Unicode (it contains a lone UTF-16 surrogate)',
          )
        : prepare();
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      prepared = refused('invalid_request', err.message);
    }
    const timing: { storeSeconds?: number } = {};
    const result = 'outcome' in prepared ? prepared : await this.guard(req, prepared, timing);
    const key = 'outcome' in prepared ? this.opts.keys.resolve(req.keyId) : prepared.key;
    this.opts.observer?.onDecision({
      family: 'outcome' in prepared ? (claimedFamily ?? familyOfKey(key)) : prepared.family,
      chainId: req.chainId,
      keyId: key?.id ?? req.keyId,
      outcome: result.outcome,
      ...(result.outcome === 'refused' ? { reason: result.reason, message: result.message } : {}),
      seconds: (performance.now() - started) / 1000,
      ...(result.watermark ? { watermark: result.watermark } : {}),
      ...(timing.storeSeconds !== undefined
        ? { store: { engine: this.opts.store.engine, seconds: timing.storeSeconds } }
        : {}),
    });
    return result;
  }

  private async guard(
    req: Common,
    prepared: Prepared,
    timing: { storeSeconds?: number },
  ): Promise<GuardResult> {
    const { key, family, rule, position, message } = prepared;
    const scope: WatermarkScope = { chainId: req.chainId, keyId: key.scopeKeyId, family };
    // Positions this agent releases now could not reach its own file: the tripwire against a
    // store reset would not survive a restart. Refuse until they can (the file retries itself).
    if (!this.opts.local.writable) {
      const state = this.opts.local.state;
      return {
        outcome: 'refused',
        reason: 'local_unavailable',
        message: `this agent's local watermark file ${this.opts.local.path} cannot be written: ${state.writable ? 'it was closed' : state.reason}; nothing is signed until it can`,
      };
    }
    const local = this.opts.local.get(scope);
    const signBytes = rule.family === 'cometbft' ? rule.signBytes : undefined;
    // Signed before the transaction, released only after it commits: holding the store's write
    // lock through an sr25519 signature (milliseconds in JavaScript) would stall every other
    // agent on the store, and a retried transaction must record the signature it releases.
    const signature = message !== undefined ? key.signer!.sign(message) : undefined;

    let outcome: { decision: Decision; watermark?: Watermark };
    try {
      // The store must be the one this agent's local watermark was built against.
      // (An etcd store reached without a quorum at start has no identity yet: the getter
      // refuses as unavailable, and the first identity read binds a never-bound agent.)
      const identity = this.opts.store.identity;
      this.opts.local.bindStore(identity);
      this.opts.local.checkStore(identity);
      const storeStarted = performance.now();
      const update = this.opts.store.update<{ decision: Decision; watermark?: Watermark }>(
        scope,
        (current) => {
          if (
            local !== undefined &&
            (current === undefined || comparePositions(local, current.position) > 0)
          ) {
            return {
              result: {
                decision: {
                  outcome: 'refuse',
                  reason: 'store_behind_local',
                  message:
                    `the store's watermark ${current ? formatPosition(current.position) : '(none)'} is behind this agent's ` +
                    `own ${formatPosition(local)}: the store was reset or restored from an old backup. Restore it to at ` +
                    `least ${formatPosition(local)} (vigil state import) before signing again`,
                },
                ...(current ? { watermark: current } : {}),
              },
            };
          }
          const decision = decide(current, rule);
          if (decision.outcome !== 'grant')
            return { result: { decision, ...(current ? { watermark: current } : {}) } };
          const write: Watermark = {
            family,
            position,
            payloadHash: rule.payloadHash,
            ...(signature !== undefined ? { signature } : {}),
            ...(signBytes !== undefined ? { signBytes } : {}),
            writer: this.opts.agentId,
            updatedAtMs: Date.now(),
          };
          return { write, result: { decision, watermark: write } };
        },
        req.fence ? { fence: req.fence } : undefined,
      );
      try {
        outcome = await update;
      } finally {
        timing.storeSeconds = (performance.now() - storeStarted) / 1000;
      }
    } catch (err) {
      if (err instanceof StoreIdentityError) return refused('store_identity', err.message);
      if (err instanceof StoreUnavailableError) return refused('store_unavailable', err.message);
      if (err instanceof FencedError) return refused('fenced', err.message);
      // An unreadable record is a store that cannot vouch for this scope: refuse like one, so
      // callers, metrics and logs see a refusal with the repair hint instead of a crash.
      if (err instanceof CorruptRecordError) return refused('store_unavailable', err.message);
      throw err;
    }

    const { decision, watermark } = outcome;
    if (decision.outcome === 'refuse') {
      return { ...refused(decision.reason, decision.message), ...(watermark ? { watermark } : {}) };
    }
    // The write is durable; only now may anything leave.
    this.opts.local.raise(scope, position);
    const stored = decision.outcome === 'replay' ? decision.stored : watermark!;
    const extension = (req as SignRequest).extension;
    return {
      outcome: decision.outcome === 'grant' ? 'granted' : 'replayed',
      watermark: stored,
      ...(stored.signature && message !== undefined ? { signature: stored.signature } : {}),
      ...(decision.outcome === 'replay' && decision.useStoredTimestamp && stored.signBytes
        ? { timestamp: parseSignBytes(stored.signBytes).timestamp }
        : {}),
      ...(extension !== undefined && rule.family === 'cometbft'
        ? {
            // Extensions are not consensus-critical and may legitimately differ; like FilePV,
            // they are signed afresh with every granted or replayed precommit.
            extensionSignature: key.signer!.sign(
              voteExtensionSignBytes({
                extension,
                height: rule.height,
                round: rule.round,
                chainId: req.chainId,
              }),
            ),
          }
        : {}),
    };
  }
}

function familyOfKey(key: KnownKey | undefined): DutyFamily | undefined {
  return key ? familyOf(key.binding) : undefined;
}
