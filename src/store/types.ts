import { VigilError } from '../errors.js';
import type { DutyFamily, Watermark } from '../guard/watermark.js';

/** One watermark per (chain, key, duty family). `keyId` is the public key in hex, never a
 * configured name, so two agents that name one key differently still share its watermark. */
export interface WatermarkScope {
  readonly chainId: string;
  readonly keyId: string;
  readonly family: DutyFamily;
}

export function scopeId(scope: WatermarkScope): string {
  return [scope.chainId, scope.keyId, scope.family].map(encodeURIComponent).join('/');
}

export function parseScopeId(id: string): WatermarkScope {
  const parts = id.split('/').map(decodeURIComponent);
  if (parts.length !== 3) throw new Error(`malformed scope id ${JSON.stringify(id)}`);
  return { chainId: parts[0]!, keyId: parts[1]!, family: parts[2] as DutyFamily };
}

export interface StoreUpdate<T> {
  /** The watermark to commit, or nothing to leave the store as it is. */
  readonly write?: Watermark;
  readonly result: T;
}

export type StoreEngine = 'sqlite' | 'etcd';

/**
 * Which store this is. Created once, by an explicit operator act (`vigil state init`), so an
 * agent can tell its store from a replaced, restored-empty or different one: an agent never
 * creates a store by itself, and a store reached under a remembered path or endpoint is
 * trusted only if it still carries the identity the agent's local watermark was built against.
 */
export interface StoreIdentity {
  /** Random id (uuid) written once when the store is initialised; never rewritten. */
  readonly storeId: string;
  readonly engine: StoreEngine;
  /** ISO time of initialisation, informational. */
  readonly createdAt: string;
}

/** Opening a store: without `create`, a store that was never initialised is refused. */
export interface OpenStoreOptions {
  /** Initialise the store if it has no identity yet (an operator act: `vigil state init`,
   * `vigil up`, tests). Idempotent: an initialised store keeps its identity. */
  readonly create?: boolean;
  /** With `create`: also give an identity to a store written by a Vigil from before store
   * identities (SQLite schema 1–2), whose watermarks the operator vouches for. */
  readonly adoptExisting?: boolean;
}

/**
 * Proof of leadership of an exclusive role: the token the engine gave the current holder (the
 * etcd revision that created the leader key; the SQLite lease row's counter). A write carrying
 * it commits only while that exact holding is current, so a deposed leader that wakes up late
 * is stopped by the store itself, whatever it believes.
 */
export interface FenceToken {
  readonly role: string;
  readonly token: bigint;
  /**
   * etcd: the cluster that issued the token. Revisions start over in a rebuilt cluster and
   * can repeat after a restore from a snapshot, so a revision alone does not name one
   * holding; the etcd store fences a token without one, or from another cluster. Absent on
   * SQLite, whose counter lives in the same file as the watermarks.
   */
  readonly clusterId?: bigint;
}

export interface UpdateOptions {
  readonly fence?: FenceToken;
}

/** The role's leadership moved on (or lapsed): the fenced write was not committed. */
export class FencedError extends VigilError {
  constructor(
    readonly fence: FenceToken,
    detail: string,
  ) {
    super(
      'FENCED',
      `write fenced off: role ${JSON.stringify(fence.role)} is no longer held with token ${fence.token}${fence.clusterId === undefined ? '' : ` of etcd cluster ${fence.clusterId.toString(16)}`}: ${detail}`,
      'this agent lost leadership of the role; nothing was written and it must stop acting for it',
    );
  }
}

/**
 * Where watermarks live. Engines differ (one SQLite file, an etcd cluster) but make the same
 * promise: `update` reads the current watermark, lets `decide` look at it and commits what
 * `decide` returns atomically with that read, and resolves only once the write is durable.
 * Any doubt (unreachable, timed out, not confirmed) rejects with StoreUnavailableError.
 * With `options.fence`, the commit also requires that holding to be current (else FencedError),
 * checked in the same transaction as the write.
 */
export interface WatermarkStore {
  readonly engine: StoreEngine;
  /** The identity read when the store was opened; every update re-checks that it still holds. */
  readonly identity: StoreIdentity;
  /** `decide` must be pure: an engine may call it again after losing a race. */
  update<T>(
    scope: WatermarkScope,
    decide: (current: Watermark | undefined) => StoreUpdate<T>,
    options?: UpdateOptions,
  ): Promise<T>;
  get(scope: WatermarkScope): Promise<Watermark | undefined>;
  list(): Promise<Array<{ scope: WatermarkScope; watermark: Watermark }>>;
  /** Resolves when the store answers reads; used by readiness checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
