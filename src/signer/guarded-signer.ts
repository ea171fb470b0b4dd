/**
 * The one path every signature and every duty authorization takes:
 *
 *   request → rule inputs → store transaction { local check, rule, sign, write } → durable
 *           → local watermark raised → signature released
 *
 * A signature is computed inside the transaction (Ed25519 is deterministic, so an engine that
 * retries computes the same one) but returned only after the store confirmed the write.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  parseSignBytes,
  voteExtensionSignBytes,
  type Timestamp,
} from '../protocols/cometbft/sign-bytes.js';
import { InputError, StoreIdentityError, StoreUnavailableError } from '../errors.js';
import {
  comparePositions,
  decide,
  formatPosition,
  positionOf,
  type CometStepName,
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
  type WatermarkScope,
  type WatermarkStore,
} from '../store/types.js';
import { CorruptRecordError } from '../store/record-codec.js';
import type { LocalWatermarks } from './local-watermark.js';

interface Common {
  readonly chainId: string;
  /** Configured key id or public key hex. */
  readonly keyId: string;
  /** For an exclusive role: commit only while this leadership is current. */
  readonly fence?: FenceToken;
}

/** What adapters (HTTP API, privval signer, supervisor) hand to the guard. */
export type GuardedRequest =
  | (Common & {
      readonly family: 'cometbft';
      readonly height: bigint;
      readonly round: bigint;
      readonly step: CometStepName;
      /** Canonical sign bytes, length-prefixed, exactly as the key signs them. */
      readonly signBytes: Uint8Array;
      /** A vote extension to sign with a non-nil precommit. */
      readonly extension?: Uint8Array;
    })
  | (Common & { readonly family: 'slot'; readonly slot: bigint; readonly payload: Uint8Array })
  | (Common & {
      readonly family: 'grandpa';
      readonly setId: bigint;
      readonly round: bigint;
      readonly stage: GrandpaStageName;
      readonly payload: Uint8Array;
    });

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
    family: DutyFamily;
    chainId: string;
    keyId: string;
    outcome: GuardResult['outcome'];
    reason?: RefusalReason;
    message?: string;
    seconds: number;
    watermark?: Watermark;
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

const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

/** Authorizations hash their requester, never their payload alone, so a retry by the same
 * node is recognised and a request by another node is a conflict. */
function authorizationHash(nodeId: string, payload: Uint8Array | undefined): Uint8Array {
  return new Uint8Array(
    createHash('sha256')
      .update('vigil/authorize\0')
      .update(nodeId)
      .update('\0')
      .update(payload ?? new Uint8Array())
      .digest(),
  );
}

export class GuardedSigner {
  constructor(private readonly opts: GuardedSignerOptions) {}

  /** Signs `req` if the guard grants it; a refusal is a result, not an exception. */
  async sign(req: GuardedRequest): Promise<GuardResult> {
    return this.run(req, 'sign', () => this.signRuleRequest(req));
  }

  /** Grants a duty without signing, recorded under the same rules as a signature. */
  async authorize(req: AuthorizationRequest): Promise<GuardResult> {
    return this.run(req, 'authorize', () => {
      const payloadHash = authorizationHash(req.nodeId, req.payload);
      return req.family === 'slot'
        ? { family: 'slot', slot: req.slot, payloadHash, mode: 'authorize' }
        : {
            family: 'grandpa',
            setId: req.setId,
            round: req.round,
            stage: req.stage,
            payloadHash,
            mode: 'authorize',
          };
    });
  }

  private signRuleRequest(req: GuardedRequest): RuleRequest {
    if (req.family === 'cometbft') {
      const parsed = parseSignBytes(req.signBytes);
      return {
        family: 'cometbft',
        chainId: req.chainId,
        height: req.height,
        round: req.round,
        step: req.step,
        signBytes: req.signBytes,
        parsed,
        payloadHash: sha256(req.signBytes),
        withExtension: req.extension !== undefined,
      };
    }
    if (req.family === 'slot')
      return { family: 'slot', slot: req.slot, payloadHash: sha256(req.payload), mode: 'sign' };
    return {
      family: 'grandpa',
      setId: req.setId,
      round: req.round,
      stage: req.stage,
      payloadHash: sha256(req.payload),
      mode: 'sign',
    };
  }

  private async run(
    req: GuardedRequest | AuthorizationRequest,
    mode: 'sign' | 'authorize',
    toRule: () => RuleRequest,
  ): Promise<GuardResult> {
    const started = performance.now();
    const key = this.opts.keys.resolve(req.keyId);
    let result: GuardResult;
    if (key === undefined) {
      result = {
        outcome: 'refused',
        reason: 'unknown_key',
        message: `no key ${JSON.stringify(req.keyId)} is configured on this agent`,
      };
    } else if (mode === 'sign' && key.signer === undefined) {
      result = {
        outcome: 'refused',
        reason: 'unknown_key',
        message: `key ${JSON.stringify(key.id)} is configured for authorization only; this agent holds no private key for it`,
      };
    } else {
      result = await this.guard(req, key, mode, toRule);
    }
    this.opts.observer?.onDecision({
      family: req.family,
      chainId: req.chainId,
      keyId: key?.id ?? req.keyId,
      outcome: result.outcome,
      ...(result.outcome === 'refused' ? { reason: result.reason, message: result.message } : {}),
      seconds: (performance.now() - started) / 1000,
      ...(result.watermark ? { watermark: result.watermark } : {}),
    });
    return result;
  }

  private async guard(
    req: GuardedRequest | AuthorizationRequest,
    key: KnownKey,
    mode: 'sign' | 'authorize',
    toRule: () => RuleRequest,
  ): Promise<GuardResult> {
    let rule: RuleRequest;
    let position: Position;
    try {
      rule = toRule();
      position = positionOf(rule);
    } catch (err) {
      if (err instanceof InputError)
        return { outcome: 'refused', reason: 'invalid_request', message: err.message };
      throw err;
    }
    if (LONE_SURROGATE.test(req.chainId)) {
      return {
        outcome: 'refused',
        reason: 'invalid_request',
        message: 'chainId is not well-formed Unicode (it contains a lone UTF-16 surrogate)',
      };
    }
    const scope: WatermarkScope = {
      chainId: req.chainId,
      keyId: key.scopeKeyId,
      family: req.family,
    };
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
    const payload =
      req.family === 'cometbft' ? req.signBytes : 'payload' in req ? req.payload : undefined;

    let outcome: { decision: Decision; watermark?: Watermark };
    try {
      outcome = await this.opts.store.update<{ decision: Decision; watermark?: Watermark }>(
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
            family: req.family,
            position,
            payloadHash: rule.payloadHash,
            ...(mode === 'sign' && payload !== undefined
              ? { signature: key.signer!.sign(payload) }
              : {}),
            ...(req.family === 'cometbft' ? { signBytes: req.signBytes } : {}),
            writer: this.opts.agentId,
            updatedAtMs: Date.now(),
          };
          return { write, result: { decision, watermark: write } };
        },
        req.fence ? { fence: req.fence } : undefined,
      );
    } catch (err) {
      if (err instanceof StoreIdentityError) {
        return { outcome: 'refused', reason: 'store_identity', message: err.message };
      }
      if (err instanceof StoreUnavailableError) {
        return { outcome: 'refused', reason: 'store_unavailable', message: err.message };
      }
      if (err instanceof FencedError) {
        return { outcome: 'refused', reason: 'fenced', message: err.message };
      }
      // An unreadable record is a store that cannot vouch for this scope: refuse like one, so
      // callers, metrics and logs see a refusal with the repair hint instead of a crash.
      if (err instanceof CorruptRecordError) {
        return { outcome: 'refused', reason: 'store_unavailable', message: err.message };
      }
      throw err;
    }

    const { decision, watermark } = outcome;
    if (decision.outcome === 'refuse') {
      return {
        outcome: 'refused',
        reason: decision.reason,
        message: decision.message,
        ...(watermark ? { watermark } : {}),
      };
    }
    // The write is durable; only now may anything leave.
    this.opts.local.raise(scope, position);
    const stored = decision.outcome === 'replay' ? decision.stored : watermark!;
    const extension = req.family === 'cometbft' ? req.extension : undefined;
    return {
      outcome: decision.outcome === 'grant' ? 'granted' : 'replayed',
      watermark: stored,
      ...(stored.signature && mode === 'sign' ? { signature: stored.signature } : {}),
      ...(decision.outcome === 'replay' && decision.useStoredTimestamp && stored.signBytes
        ? { timestamp: parseSignBytes(stored.signBytes).timestamp }
        : {}),
      ...(extension !== undefined && req.family === 'cometbft'
        ? {
            // Extensions are not consensus-critical and may legitimately differ; like FilePV,
            // they are signed afresh with every granted or replayed precommit.
            extensionSignature: key.signer!.sign(
              voteExtensionSignBytes({
                extension,
                height: req.height,
                round: req.round,
                chainId: req.chainId,
              }),
            ),
          }
        : {}),
    };
  }
}
