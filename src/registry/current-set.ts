/**
 * The current validator set (issue 15): from the genesis set in a node's config and the
 * validator-set records the node holds (src/registry/validator-set.ts), which epoch is current,
 * its members and quorum, and whom the node treats as a validator — connects to through an
 * allow-list, admits, submits to, dials. Pure: no I/O, no clock (callers pass `now`).
 *
 * Only a verified chain counts: a set record is taken only as the next epoch of the chain held
 * (signed by a quorum of the set before it, bound to it by its digest), so a record that does
 * not verify, or that names another chain, changes nothing. A member removed in a verified
 * later epoch is never trusted as a validator again (it may still be listed as a plain peer in
 * a connection allow-list or an admission list: those are the operator's own lists).
 */
import { peerIdFromEd25519 } from './peer-id.js';
import { RegistryError, type ValidatorSet } from './record.js';
import { ValidatorSetChain, decodeSetRecord } from './validator-set.js';

export interface CurrentSet {
  readonly epoch: bigint;
  readonly quorum: number;
  /** When the current set's record was issued (0 for the genesis set). */
  readonly issuedAtMs: number;
  /** The current members' peer ids, in key order. */
  readonly members: readonly string[];
  /** Members of the current set that the genesis set does not have. */
  readonly added: readonly string[];
  /** Members of an earlier epoch that the current set does not have: never trusted. */
  readonly removed: readonly string[];
}

/** The current set of a chain of validator sets. */
export function currentSetOf(chain: ValidatorSetChain): CurrentSet {
  const ids = (s: ValidatorSet) => s.members.map((k) => peerIdFromEd25519(k));
  const head = chain.head;
  const members = ids(head);
  const now = new Set(members);
  const genesis = new Set(ids(chain.all()[0]!));
  const ever = new Set(chain.all().flatMap(ids));
  return {
    epoch: head.epoch,
    quorum: head.quorum,
    issuedAtMs: head.issuedAtMs,
    members,
    added: members.filter((m) => !genesis.has(m)),
    removed: [...ever].filter((m) => !now.has(m)),
  };
}

/** Whether `peerId` is a validator now (a member of the current set). */
export function isCurrentValidator(set: CurrentSet, peerId: string): boolean {
  return set.members.includes(peerId);
}

/**
 * Who may connect (both ways) to a node with a connection allow-list: the listed peers and
 * the current validators. A removed validator gets in only if the operator listed it.
 */
export function connectionTrusted(
  set: CurrentSet,
  allowList: readonly string[],
  peerId: string,
): boolean {
  return allowList.includes(peerId) || isCurrentValidator(set, peerId);
}

export interface IgnoredSetRecord {
  /** The epoch the record claims, when it decodes. */
  readonly epoch?: bigint;
  readonly code: string;
  readonly message: string;
}

export interface FollowedSets {
  readonly chain: ValidatorSetChain;
  readonly current: CurrentSet;
  /** The records that did not extend the chain: unverifiable, conflicting, or after a gap. */
  readonly ignored: readonly IgnoredSetRecord[];
}

/**
 * The chain from `genesis` through `records` (in any order, possibly with duplicates, forged
 * or conflicting ones): each epoch's first record that verifies on top of the chain so far is
 * taken; everything else is reported in `ignored` and changes nothing.
 */
export function followSetRecords(
  genesis: ValidatorSet,
  records: Iterable<Uint8Array>,
  nowMs: number,
  graceMs?: number,
): FollowedSets {
  const chain = new ValidatorSetChain(genesis, graceMs);
  const ignored: IgnoredSetRecord[] = [];
  const pending: { epoch: bigint; bytes: Uint8Array }[] = [];
  for (const bytes of records) {
    try {
      pending.push({ epoch: decodeSetRecord(bytes).epoch, bytes });
    } catch (err) {
      ignored.push(ignoredOf(err));
    }
  }
  pending.sort((a, b) => (a.epoch < b.epoch ? -1 : a.epoch > b.epoch ? 1 : 0));
  // Sorted by epoch, one pass takes every record that extends the chain; a record for an
  // epoch after a missing one is a gap.
  for (const p of pending) {
    try {
      const r = chain.offer(p.bytes, nowMs);
      if (r === 'gap')
        ignored.push({
          epoch: p.epoch,
          code: 'REGISTRY_UNKNOWN_EPOCH',
          message: `validator-set epoch ${p.epoch} does not follow the epoch held (${chain.head.epoch})`,
        });
    } catch (err) {
      ignored.push({ ...ignoredOf(err), epoch: p.epoch });
    }
  }
  return { chain, current: currentSetOf(chain), ignored };
}

function ignoredOf(err: unknown): IgnoredSetRecord {
  if (err instanceof RegistryError) return { code: err.code, message: err.message };
  throw err;
}

/**
 * The current set of a live chain, recomputed only when its head moves (the head's epoch only
 * grows, so it keys the cache): what a connection gater asks at every connection.
 */
export function followCurrentSet(chain: ValidatorSetChain): () => CurrentSet {
  let cached = currentSetOf(chain);
  return () => (cached.epoch === chain.head.epoch ? cached : (cached = currentSetOf(chain)));
}
