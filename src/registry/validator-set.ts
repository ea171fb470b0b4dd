/**
 * Live validator-set change for the node registry (issue 15): the validator-set record and
 * the chain of them every node keeps. Pure: no I/O, no clock (callers pass `now`).
 *
 * Epoch 0 is the genesis set every node has in its config. Epoch e + 1 is a set record signed
 * by a quorum of the set of epoch e, and bound to it by the digest of e's body, so a record is
 * valid on top of exactly one chain: nodes configured with another genesis set, or holding
 * another epoch e, refuse it.
 *
 * Layout v1 (big-endian integers):
 *
 *   body     = u8 1 | u64 epoch | u64 issuedAtMs | prevDigest[32] | u8 quorum
 *            | u8 n key[32]×n                         (members sorted strictly ascending)
 *   envelope = u8 0x56 ('V') | u16 len body | u8 n (key[32] sig[64])×n   (sorted by key)
 *   signed   = "vigil/registry/validator-set/v1\0" || body
 *   digest   = sha256("vigil/registry/validator-set-digest/v1\0" || body); the genesis set's
 *              body has epoch 0 and issuedAt 0 and an all-zero prevDigest.
 *
 * The envelope's first byte (0x56) is not a node record's layout byte (1 or 2), so set records
 * travel on the records' gossip topic and sync stream and are told apart by it. Canonical:
 * anything but the one encoding of a valid set record is refused, so one set change has one
 * byte string. A node checks an arriving set record in the issue's order: size (and shape),
 * signatures, signers in the previous set and a quorum of them, epoch (see ValidatorSetChain).
 */
import { createHash } from 'node:crypto';
import { verifyEd25519 } from '../keys/ed25519.js';
import {
  LIMITS,
  RegistryError,
  inSet,
  validatorSet,
  type AcceptRules,
  type Countersignature,
  type EpochSet,
  type RegistrySigner,
  type ValidatorSet,
} from './record.js';

export const VALIDATOR_SET_DOMAIN = 'vigil/registry/validator-set/v1\0';
export const VALIDATOR_SET_DIGEST_DOMAIN = 'vigil/registry/validator-set-digest/v1\0';
/** First byte of an encoded set record (node records start with their layout, 1 or 2). */
export const SET_RECORD_MARK = 0x56;
const BODY_LAYOUT = 1;

export const SET_LIMITS = {
  /** 32 members and 32 signatures fit with room to spare (about 4.1 KiB). */
  envelopeBytes: 5120,
  /** How far in the future a set record's issuedAt may be (clock skew). */
  maxSkewMs: 5 * 60_000,
} as const;

/** Default grace of the previous epoch after a change (see AcceptRules). */
export const DEFAULT_EPOCH_GRACE_MS = 15 * 60_000;

/** What the previous set signs. */
export interface SetBody {
  readonly epoch: bigint;
  readonly issuedAtMs: number;
  readonly prevDigest: Uint8Array;
  readonly quorum: number;
  /** Sorted strictly ascending (validatorSet() sorts). */
  readonly members: readonly Uint8Array[];
}

export interface SetRecord extends SetBody {
  readonly bodyBytes: Uint8Array;
  /** By members of the previous epoch's set; sorted by validator key. */
  readonly signatures: readonly Countersignature[];
}

const cmpBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const malformed = (why: string): never => {
  throw new RegistryError('REGISTRY_RECORD_MALFORMED', `validator-set record is malformed: ${why}`);
};

/** Encodes a set body; the members must make a valid set with that quorum. */
export function encodeSetBody(b: SetBody): Uint8Array {
  const set = validatorSet(b.members, b.quorum);
  if (b.epoch < 0n || b.epoch >= 1n << 64n) malformed(`epoch ${b.epoch} out of range`);
  if (!Number.isSafeInteger(b.issuedAtMs) || b.issuedAtMs < 0)
    malformed('issuedAtMs must be a non-negative integer');
  if (b.prevDigest.length !== 32) malformed('the previous digest is 32 bytes');
  const head = Buffer.alloc(1 + 8 + 8);
  head.writeUInt8(BODY_LAYOUT, 0);
  head.writeBigUInt64BE(b.epoch, 1);
  head.writeBigUInt64BE(BigInt(b.issuedAtMs), 9);
  return new Uint8Array(
    Buffer.concat([
      head,
      b.prevDigest,
      Uint8Array.of(set.quorum, set.members.length),
      ...set.members,
    ]),
  );
}

function decodeSetBody(bytes: Uint8Array): SetBody {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 1 + 8 + 8 + 32 + 2) malformed('truncated body');
  if (b[0] !== BODY_LAYOUT) malformed('unknown body layout');
  const epoch = b.readBigUInt64BE(1);
  const issued = b.readBigUInt64BE(9);
  if (issued > BigInt(Number.MAX_SAFE_INTEGER)) malformed('issuedAt out of range');
  const prevDigest = new Uint8Array(b.subarray(17, 49));
  const quorum = b[49]!;
  const n = b[50]!;
  if (b.length !== 51 + 32 * n) malformed('the member list does not match its length');
  const members: Uint8Array[] = [];
  for (let i = 0; i < n; i++) members.push(new Uint8Array(b.subarray(51 + 32 * i, 83 + 32 * i)));
  for (let i = 1; i < n; i++)
    if (cmpBytes(members[i - 1]!, members[i]!) >= 0)
      malformed('members are not sorted, or one is repeated');
  try {
    validatorSet(members, quorum);
  } catch (err) {
    if (err instanceof RegistryError) malformed(err.message);
    throw err;
  }
  return { epoch, issuedAtMs: Number(issued), prevDigest, quorum, members };
}

/** What the previous set's validators sign. */
export function setSignMessage(bodyBytes: Uint8Array): Uint8Array {
  return new Uint8Array(Buffer.concat([Buffer.from(VALIDATOR_SET_DOMAIN, 'latin1'), bodyBytes]));
}

/** The digest the next set record names as its `prevDigest`. */
export function setDigest(bodyBytes: Uint8Array): Uint8Array {
  return new Uint8Array(
    createHash('sha256')
      .update(Buffer.from(VALIDATOR_SET_DIGEST_DOMAIN, 'latin1'))
      .update(bodyBytes)
      .digest(),
  );
}

/** The body of the genesis set (epoch 0), the root of every chain. */
export function genesisBody(set: ValidatorSet): Uint8Array {
  return encodeSetBody({
    epoch: 0n,
    issuedAtMs: 0,
    prevDigest: new Uint8Array(32),
    quorum: set.quorum,
    members: set.members,
  });
}

/** One validator's signature on a proposed set body. */
export function signSetBody(bodyBytes: Uint8Array, validator: RegistrySigner): Countersignature {
  return {
    validator: Uint8Array.from(validator.publicKey),
    signature: validator.sign(setSignMessage(bodyBytes)),
  };
}

/** A set record from its body and signatures (sorted here, one per validator kept). */
export function setRecord(
  bodyBytes: Uint8Array,
  signatures: readonly Countersignature[],
): SetRecord {
  const body = decodeSetBody(bodyBytes);
  const byKey = new Map<string, Countersignature>();
  for (const s of signatures) byKey.set(hex(s.validator), s);
  const sorted = [...byKey.values()].sort((a, b) => cmpBytes(a.validator, b.validator));
  if (sorted.length > LIMITS.validators) malformed('too many signatures');
  return { ...body, bodyBytes: Uint8Array.from(bodyBytes), signatures: sorted };
}

export function encodeSetRecord(r: SetRecord): Uint8Array {
  if (r.signatures.length > LIMITS.validators) malformed('too many signatures');
  const head = Buffer.alloc(3);
  head.writeUInt8(SET_RECORD_MARK, 0);
  head.writeUInt16BE(r.bodyBytes.length, 1);
  return new Uint8Array(
    Buffer.concat([
      head,
      r.bodyBytes,
      Uint8Array.of(r.signatures.length),
      ...r.signatures.flatMap((s) => [s.validator, s.signature]),
    ]),
  );
}

export const isSetRecordBytes = (bytes: Uint8Array) => bytes[0] === SET_RECORD_MARK;

/** Size and shape only; signatures are checked by verifySetRecord. */
export function decodeSetRecord(bytes: Uint8Array): SetRecord {
  if (bytes.length > SET_LIMITS.envelopeBytes)
    throw new RegistryError(
      'REGISTRY_RECORD_TOO_LARGE',
      `validator-set record of ${bytes.length} bytes is over the ${SET_LIMITS.envelopeBytes}-byte limit`,
    );
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 4 || b[0] !== SET_RECORD_MARK) malformed('not a validator-set record');
  const len = b.readUInt16BE(1);
  if (b.length < 3 + len + 1) malformed('truncated');
  const bodyBytes = new Uint8Array(b.subarray(3, 3 + len));
  const body = decodeSetBody(bodyBytes);
  const n = b[3 + len]!;
  if (n > LIMITS.validators) malformed('too many signatures');
  if (b.length !== 4 + len + 96 * n) malformed('the signatures do not match their count');
  const signatures: Countersignature[] = [];
  for (let i = 0; i < n; i++) {
    const at = 4 + len + 96 * i;
    const validator = new Uint8Array(b.subarray(at, at + 32));
    const signature = new Uint8Array(b.subarray(at + 32, at + 96));
    if (i > 0 && cmpBytes(signatures[i - 1]!.validator, validator) >= 0)
      malformed('signatures are not sorted by validator, or one is repeated');
    signatures.push({ validator, signature });
  }
  return { ...body, bodyBytes, signatures };
}

const safeVerify = (key: Uint8Array, msg: Uint8Array, sig: Uint8Array) => {
  try {
    return verifyEd25519(key, msg, sig);
  } catch {
    return false;
  }
};

/**
 * Checks `bytes` as the set record that follows `prev` (whose body is `prevBody`), in this
 * order: size and shape; every signature; every signer in `prev`; a quorum of `prev`; the
 * epoch (`prev.epoch + 1`), the digest of `prev`, and an issuedAt after `prev`'s and not in
 * the future. Answers the new epoch's set.
 */
export function verifySetRecord(
  bytes: Uint8Array,
  prev: EpochSet,
  prevBody: Uint8Array,
  nowMs: number,
): { record: SetRecord; set: EpochSet } {
  const r = decodeSetRecord(bytes);
  const msg = setSignMessage(r.bodyBytes);
  for (const s of r.signatures)
    if (!safeVerify(s.validator, msg, s.signature))
      throw new RegistryError(
        'REGISTRY_BAD_SIGNATURE',
        `validator-set epoch ${r.epoch}: the signature of ${hex(s.validator)} does not verify`,
      );
  for (const s of r.signatures)
    if (!inSet(prev, s.validator))
      throw new RegistryError(
        'REGISTRY_UNKNOWN_SIGNER',
        `validator-set epoch ${r.epoch}: signed by ${hex(s.validator)}, which is not in the set of epoch ${prev.epoch}`,
      );
  if (r.signatures.length < prev.quorum)
    throw new RegistryError(
      'REGISTRY_NO_QUORUM',
      `validator-set epoch ${r.epoch}: ${r.signatures.length} signature(s), the quorum of epoch ${prev.epoch} is ${prev.quorum} of ${prev.members.length}`,
      'a set change needs a quorum of the current set: gather more signatures with `vigil registry set-sign`',
    );
  if (r.epoch !== prev.epoch + 1n)
    throw new RegistryError(
      r.epoch <= prev.epoch ? 'REGISTRY_EPOCH_STALE' : 'REGISTRY_UNKNOWN_EPOCH',
      `validator-set record of epoch ${r.epoch} does not follow epoch ${prev.epoch}`,
    );
  if (cmpBytes(r.prevDigest, setDigest(prevBody)) !== 0)
    throw new RegistryError(
      'REGISTRY_EPOCH_CONFLICT',
      `validator-set epoch ${r.epoch} names another epoch ${prev.epoch} than the one this node holds`,
      'the nodes disagree on the genesis set or on a past set change; compare `vigil registry set-show`',
    );
  if (r.issuedAtMs <= prev.issuedAtMs || r.issuedAtMs > nowMs + SET_LIMITS.maxSkewMs)
    throw new RegistryError(
      'REGISTRY_INVALID_FIELD',
      `validator-set epoch ${r.epoch}: issued at ${r.issuedAtMs}, not after epoch ${prev.epoch} (${prev.issuedAtMs}) and by now`,
      "check the proposer's clock",
    );
  return {
    record: r,
    set: { members: r.members, quorum: r.quorum, epoch: r.epoch, issuedAtMs: r.issuedAtMs },
  };
}

export type OfferResult = 'accepted' | 'duplicate' | 'gap';

/**
 * The chain of validator sets a node holds: the genesis set from its config, then each set
 * record it verified, in epoch order. `offer` takes the next one; `rules(now)` says which
 * countersignatures count now (record.ts, AcceptRules).
 */
export class ValidatorSetChain {
  private readonly sets: EpochSet[];
  private readonly bodies: Uint8Array[];
  private readonly encoded: Uint8Array[] = [];
  private readonly listeners = new Set<(set: EpochSet) => void>();

  constructor(
    genesis: ValidatorSet,
    /** How long the previous epoch's countersignatures still count after a change. */
    readonly graceMs: number = DEFAULT_EPOCH_GRACE_MS,
  ) {
    const g = validatorSet(genesis.members, genesis.quorum);
    this.sets = [{ ...g, epoch: 0n, issuedAtMs: 0 }];
    this.bodies = [genesisBody(g)];
  }

  /** The newest set. */
  get head(): EpochSet {
    return this.sets[this.sets.length - 1]!;
  }

  /** The set of `epoch`, if this node has it. */
  at(epoch: bigint): EpochSet | undefined {
    return epoch < 0n || epoch >= BigInt(this.sets.length) ? undefined : this.sets[Number(epoch)];
  }

  /** Every set from the genesis on. */
  all(): readonly EpochSet[] {
    return this.sets;
  }

  /** The set records after the genesis, encoded, in epoch order (what sync sends first). */
  records(): readonly Uint8Array[] {
    return this.encoded;
  }

  /** The body of the head set: what a proposal for the next epoch names the digest of. */
  headBody(): Uint8Array {
    return this.bodies[this.bodies.length - 1]!;
  }

  /** Called with each new head. */
  onChange(fn: (set: EpochSet) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Takes a set record: 'accepted' if it is the next epoch and verifies; 'duplicate' if this
   * very record is held; 'gap' if it is for an epoch after the next (fetch the ones between).
   * Throws the RegistryError of a record that does not verify, or that is another record for
   * an epoch already held (REGISTRY_EPOCH_CONFLICT).
   */
  offer(bytes: Uint8Array, nowMs: number): OfferResult {
    const r = decodeSetRecord(bytes);
    const held = this.at(r.epoch);
    if (held && r.epoch > 0n) {
      if (Buffer.compare(this.encoded[Number(r.epoch) - 1]!, bytes) === 0) return 'duplicate';
      // The same body with other (also valid) signatures is the same change.
      if (Buffer.compare(this.bodies[Number(r.epoch)]!, r.bodyBytes) === 0) return 'duplicate';
      throw new RegistryError(
        'REGISTRY_EPOCH_CONFLICT',
        `another validator-set record for epoch ${r.epoch} is already held`,
        'a quorum of validators signed two different set changes for one epoch',
      );
    }
    if (r.epoch === 0n)
      throw new RegistryError('REGISTRY_EPOCH_STALE', 'epoch 0 is the configured genesis set');
    if (r.epoch > this.head.epoch + 1n) return 'gap';
    const { set } = verifySetRecord(bytes, this.head, this.headBody(), nowMs);
    this.sets.push(set);
    this.bodies.push(r.bodyBytes);
    this.encoded.push(Uint8Array.from(bytes));
    for (const fn of this.listeners) fn(set);
    return 'accepted';
  }

  /** The countersignatures that count at `nowMs` (the previous epoch only in its grace). */
  rules(nowMs: number): AcceptRules {
    const current = this.head;
    const previous =
      this.sets.length > 1 && nowMs < current.issuedAtMs + this.graceMs
        ? this.sets[this.sets.length - 2]
        : undefined;
    return { current, ...(previous ? { previous } : {}), known: this.sets };
  }

  /** Whether `key` is a member of the head set. */
  isMember(key: Uint8Array): boolean {
    return inSet(this.head, key);
  }
}

/**
 * A proposal for the next epoch on top of `chain`: the head's members with `add` added and
 * `remove` removed, the quorum given or a majority.
 */
export function proposeNextSet(
  chain: ValidatorSetChain,
  change: {
    add?: readonly Uint8Array[];
    remove?: readonly Uint8Array[];
    quorum?: number;
    issuedAtMs: number;
  },
): Uint8Array {
  const head = chain.head;
  const keep = head.members.filter((m) => !(change.remove ?? []).some((r) => cmpBytes(r, m) === 0));
  for (const r of change.remove ?? [])
    if (!inSet(head, r))
      throw new RegistryError(
        'REGISTRY_INVALID_FIELD',
        `${hex(r)} is not in the validator set of epoch ${head.epoch}`,
      );
  for (const a of change.add ?? [])
    if (inSet(head, a))
      throw new RegistryError(
        'REGISTRY_INVALID_FIELD',
        `${hex(a)} is already in the validator set of epoch ${head.epoch}`,
      );
  const set = validatorSet([...keep, ...(change.add ?? [])], change.quorum);
  return encodeSetBody({
    epoch: head.epoch + 1n,
    issuedAtMs: change.issuedAtMs,
    prevDigest: setDigest(chain.headBody()),
    quorum: set.quorum,
    members: set.members,
  });
}

export { decodeSetBody };
