/**
 * Registry writes through Vigil's store (issue 15, item 2). The rules live here, once; the
 * engines (store-sqlite.ts, store-etcd.ts) only give an atomic read-modify-write of one
 * subject's stored record bytes, the same promise as WatermarkStore.update.
 *
 * - **submit**: the subject's signature and expiry are checked first; then, inside one
 *   transaction for that subject, the submission must replace exactly the current version
 *   (`prevSeq` = the stored seq, else REGISTRY_SEQ_STALE or REGISTRY_SEQ_CONFLICT) and the
 *   commit gives it `seq = stored seq + 1`. Flags are set at the first admission; a later
 *   submission with other flags is refused (REGISTRY_FLAGS_IMMUTABLE) unless it carries a
 *   flags grant signed by a quorum of validators for that subject, that base seq and those
 *   flags. Submitting the very content already stored answers its seq again (a retry after a
 *   lost answer is not an error).
 * - **countersign**: a validator adds its countersignature over (content, seq) under the
 *   current validator-set epoch to the stored record, in one transaction that checks the seq is
 *   still the current one. Countersignatures of epochs before the previous one are dropped, and
 *   the previous epoch's once the current one has a quorum (peers would not count them).
 * - **commitSet**: a validator-set change (src/registry/validator-set.ts) is verified against
 *   the set chain held in the store (signed by a quorum of the current set, the next epoch, on
 *   top of the current set's digest) and appended in one transaction that refuses it if
 *   another change took that epoch first (REGISTRY_EPOCH_CONFLICT) or the epoch is not the
 *   next one (REGISTRY_EPOCH_STALE).
 */
import {
  RegistryError,
  canonicalGrant,
  countersign as makeCountersignature,
  decodeRecord,
  encodeRecord,
  subjectMessage,
  verifyFlagsGrant,
  verifySubmission,
  withCommit,
  type FlagsGrant,
  type RegistrySigner,
  type SignedRecord,
  type Submission,
  type EpochSet,
  type ValidatorSet,
} from './record.js';
import { verifyEd25519 } from '../keys/ed25519.js';
import { ValidatorSetChain, decodeSetRecord, verifySetRecord } from './validator-set.js';

/** One subject's stored record, read and replaced atomically. */
export interface RegistryCells {
  readonly engine: 'sqlite' | 'etcd';
  /**
   * Reads the subject's stored bytes, calls `decide` on them and writes what it returns, all
   * in one transaction; resolves once the write is durable. `decide` must be pure: an engine
   * may call it again after losing a race.
   */
  update<T>(
    subject: string,
    decide: (current: Uint8Array | undefined) => { write?: Uint8Array; result: T },
  ): Promise<T>;
  get(subject: string): Promise<Uint8Array | undefined>;
  list(): Promise<Array<{ subject: string; bytes: Uint8Array }>>;
  /** The committed validator-set records (epochs 1..), in epoch order. */
  readSets(): Promise<Uint8Array[]>;
  /**
   * Appends the set record of `epoch` in one transaction, on top of `prev` (the stored record of
   * `epoch - 1`; none for epoch 1). Answers 'duplicate' if these very bytes are stored at
   * `epoch`; throws REGISTRY_EPOCH_CONFLICT if other bytes are, REGISTRY_EPOCH_STALE if the
   * stored chain does not end at `epoch - 1` with `prev`.
   */
  appendSet(
    epoch: bigint,
    bytes: Uint8Array,
    prev: Uint8Array | undefined,
  ): Promise<'committed' | 'duplicate'>;
  close(): Promise<void>;
}

export interface Committed {
  readonly seq: bigint;
  /** The same content was already stored at this seq: nothing was written. */
  readonly duplicate: boolean;
}

export interface RegistryStoreOptions {
  /** The genesis set (epoch 0); later sets come from the store's set records. */
  readonly validators: ValidatorSet;
  /** How long the previous epoch still counts after a set change (validator-set.ts default). */
  readonly epochGraceMs?: number;
  /** Wall clock for expiry checks; tests pass their own. */
  readonly nowMs?: () => number;
}

const eq = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export class RegistryStore {
  private readonly nowMs: () => number;
  /** The validator sets committed in the store, as last read (refreshSets). */
  readonly chain: ValidatorSetChain;

  constructor(
    readonly cells: RegistryCells,
    options: RegistryStoreOptions,
  ) {
    this.chain = new ValidatorSetChain(options.validators, options.epochGraceMs);
    this.nowMs = options.nowMs ?? Date.now;
  }

  /** The current validator set (the newest epoch read from the store). */
  get validators(): EpochSet {
    return this.chain.head;
  }

  /** Reads the set records committed since the last read; answers the current epoch. */
  async refreshSets(): Promise<bigint> {
    const records = await this.cells.readSets();
    const now = this.nowMs();
    for (const bytes of records.slice(Number(this.chain.head.epoch)))
      if (this.chain.offer(bytes, now) !== 'accepted')
        throw new RegistryError(
          'REGISTRY_RECORD_MALFORMED',
          'the validator-set records in the store do not follow one another',
          'someone wrote to the registry outside Vigil',
        );
    return this.chain.head.epoch;
  }

  /**
   * Commits a validator-set change (an encoded set record signed by a quorum of the current
   * set). Answers the new epoch, and whether it was already committed.
   */
  async commitSet(bytes: Uint8Array): Promise<{ epoch: bigint; duplicate: boolean }> {
    await this.refreshSets();
    const rec = decodeSetRecord(bytes);
    const head = this.chain.head;
    if (rec.epoch <= head.epoch) {
      const held = this.chain.records()[Number(rec.epoch) - 1];
      if (rec.epoch > 0n && held && eq(decodeSetRecord(held).bodyBytes, rec.bodyBytes))
        return { epoch: rec.epoch, duplicate: true };
      throw new RegistryError(
        'REGISTRY_EPOCH_STALE',
        `validator-set epoch ${rec.epoch} is not after the committed epoch ${head.epoch}`,
        'propose the change again on top of the current set (`vigil registry set-propose`)',
      );
    }
    verifySetRecord(bytes, head, this.chain.headBody(), this.nowMs());
    const prev = head.epoch === 0n ? undefined : this.chain.records()[Number(head.epoch) - 1];
    const r = await this.cells.appendSet(rec.epoch, bytes, prev);
    await this.refreshSets();
    return { epoch: rec.epoch, duplicate: r === 'duplicate' };
  }

  /**
   * Commits a subject's self-signed submission (encoded, as it arrives from the network) and
   * answers the seq it was given. `flagsGrant` is the admin operation that lets it change the
   * subject's flags.
   */
  async submit(bytes: Uint8Array, options: { flagsGrant?: FlagsGrant } = {}): Promise<Committed> {
    const s = verifySubmission(bytes, { nowMs: this.nowMs() });
    const grant = options.flagsGrant;
    if (grant) this.checkGrant(s, grant);
    return this.cells.update<Committed>(s.peerId, (current) => {
      const cur = current === undefined ? undefined : decodeStored(current, s.peerId);
      if (cur && eq(cur.contentBytes, s.contentBytes))
        return { result: { seq: cur.seq, duplicate: true } };
      const curSeq = cur?.seq ?? 0n;
      if (s.content.prevSeq < curSeq)
        throw new RegistryError(
          'REGISTRY_SEQ_STALE',
          `${s.peerId}: the submission replaces seq ${s.content.prevSeq}, but seq ${curSeq} is already committed`,
          'read the current record and sign a submission that replaces it',
        );
      if (s.content.prevSeq > curSeq)
        throw new RegistryError(
          'REGISTRY_SEQ_CONFLICT',
          `${s.peerId}: the submission replaces seq ${s.content.prevSeq}, which was never committed (current: ${curSeq})`,
        );
      if (cur && cur.content.flags !== s.content.flags && !grant)
        throw new RegistryError(
          'REGISTRY_FLAGS_IMMUTABLE',
          `${s.peerId}: flags are ${cur.content.flags} since admission; the submission asks for ${s.content.flags}`,
          'flags change only with a flags grant signed by a quorum of validators',
        );
      const seq = curSeq + 1n;
      // The grant (checked above, bound to this version) is kept with it, so every validator's
      // countersigner can check a change of flags was allowed (src/registry/countersigner.ts)
      // against the version it last countersigned, whatever is stored just before.
      const rec = withCommit(s, seq);
      const write = encodeRecord(grant ? { ...rec, flagsGrant: canonicalGrant(grant) } : rec);
      return { write, result: { seq, duplicate: false } };
    });
  }

  private checkGrant(s: Submission, g: FlagsGrant): void {
    verifyFlagsGrant(g, this.validators);
    if (!eq(g.subjectKey, s.content.subjectKey) || g.baseSeq !== s.content.prevSeq)
      throw new RegistryError(
        'REGISTRY_SEQ_CONFLICT',
        `${s.peerId}: the flags grant is for another subject or another base seq (${g.baseSeq}, the submission replaces ${s.content.prevSeq})`,
      );
    if (g.flags !== s.content.flags)
      throw new RegistryError(
        'REGISTRY_FLAGS_IMMUTABLE',
        `${s.peerId}: the flags grant allows flags ${g.flags}, the submission asks for ${s.content.flags}`,
      );
  }

  /**
   * A validator countersigns the subject's committed record at `seq` and the countersignature
   * is stored with it. Refused if `seq` is no longer (or not yet) the current one, if the key
   * is not in the validator set, if the stored record's subject signature does not verify, or
   * if it has expired. Countersigning twice is a no-op. With `expectContent`, also refused
   * (REGISTRY_COUNTERSIGN_CONFLICT) unless the stored content is exactly those bytes: the
   * countersigner checks a version and must sign that version, not one written since.
   */
  async countersign(
    subject: string,
    seq: bigint,
    validator: RegistrySigner,
    options: { expectContent?: Uint8Array; epoch?: bigint } = {},
  ): Promise<SignedRecord> {
    const epoch = options.epoch ?? this.chain.head.epoch;
    if (epoch > this.chain.head.epoch) await this.refreshSets();
    const set = this.chain.at(epoch);
    if (!set)
      throw new RegistryError(
        'REGISTRY_UNKNOWN_EPOCH',
        `validator-set epoch ${epoch} is not committed (the current epoch is ${this.chain.head.epoch})`,
      );
    if (epoch < this.chain.head.epoch)
      throw new RegistryError(
        'REGISTRY_EPOCH_STALE',
        `validator-set epoch ${epoch} is over: the current epoch is ${this.chain.head.epoch}`,
        'countersign under the current epoch',
      );
    if (!set.members.some((m) => eq(m, validator.publicKey)))
      throw new RegistryError(
        'REGISTRY_UNKNOWN_SIGNER',
        `key ${hex(validator.publicKey)} is not in the registry's validator set (epoch ${epoch})`,
      );
    const previous = this.chain.at(epoch - 1n);
    const nowMs = this.nowMs();
    return this.cells.update(subject, (current) => {
      if (current === undefined)
        throw new RegistryError('REGISTRY_NOT_FOUND', `${subject}: no record in the registry`);
      const rec = decodeStored(current, subject);
      if (rec.seq !== seq)
        throw new RegistryError(
          seq < rec.seq ? 'REGISTRY_SEQ_STALE' : 'REGISTRY_SEQ_CONFLICT',
          `${subject}: asked to countersign seq ${seq}, the committed seq is ${rec.seq}`,
        );
      if (options.expectContent && !eq(options.expectContent, rec.contentBytes))
        throw new RegistryError(
          'REGISTRY_COUNTERSIGN_CONFLICT',
          `${subject}: the content stored at seq ${seq} is not the one that was checked; not countersigning it`,
          'someone wrote to the registry outside Vigil',
        );
      if (
        !verifyEd25519(
          rec.content.subjectKey,
          subjectMessage(rec.contentBytes),
          rec.subjectSignature,
        )
      )
        throw new RegistryError(
          'REGISTRY_BAD_SIGNATURE',
          `${subject}: the stored record's subject signature does not verify; not countersigning it`,
          'someone wrote to the registry outside Vigil',
        );
      if (nowMs >= rec.content.expiresAtMs)
        throw new RegistryError('REGISTRY_RECORD_EXPIRED', `${subject}: seq ${seq} has expired`);
      if (
        rec.countersignatures.some(
          (c) => (c.epoch ?? 0n) === epoch && eq(c.validator, validator.publicKey),
        )
      )
        return { result: rec };
      let sigs = [...rec.countersignatures, makeCountersignature(rec, validator, epoch)];
      // Keep what peers may still count: this epoch's, and the previous epoch's (by members
      // kept in this set) until this epoch has a quorum.
      sigs = sigs.filter((c) => (c.epoch ?? 0n) >= epoch - 1n);
      const atEpoch = sigs.filter((c) => (c.epoch ?? 0n) === epoch).length;
      if (atEpoch >= set.quorum || !previous) sigs = sigs.filter((c) => (c.epoch ?? 0n) === epoch);
      else
        sigs = sigs.filter(
          (c) => (c.epoch ?? 0n) === epoch || set.members.some((m) => eq(m, c.validator)),
        );
      const updated = withCommit(rec, rec.seq, sigs);
      return { write: encodeRecord(updated), result: updated };
    });
  }

  async get(subject: string): Promise<SignedRecord | undefined> {
    const bytes = await this.cells.get(subject);
    return bytes === undefined ? undefined : decodeStored(bytes, subject);
  }

  async list(): Promise<SignedRecord[]> {
    return (await this.cells.list()).map((r) => decodeStored(r.bytes, r.subject));
  }

  /** Every stored record as stored: subject and bytes, for a reader that decodes what changed. */
  listStored(): Promise<Array<{ subject: string; bytes: Uint8Array }>> {
    return this.cells.list();
  }

  /** One stored record decoded, checked to be filed under its own subject. */
  decodeStored(bytes: Uint8Array, subject: string): SignedRecord {
    return decodeStored(bytes, subject);
  }

  close(): Promise<void> {
    return this.cells.close();
  }
}

/** A stored record that does not decode, or is filed under another subject, is corruption. */
function decodeStored(bytes: Uint8Array, subject: string): SignedRecord {
  let rec: SignedRecord;
  try {
    rec = decodeRecord(bytes);
  } catch (err) {
    throw new RegistryError(
      'REGISTRY_RECORD_MALFORMED',
      `the stored registry record of ${subject} is unreadable: ${err instanceof Error ? err.message : String(err)}`,
      'someone wrote to the registry outside Vigil',
    );
  }
  if (rec.peerId !== subject)
    throw new RegistryError(
      'REGISTRY_RECORD_MALFORMED',
      `the registry record stored under ${subject} is ${rec.peerId}'s`,
      'someone wrote to the registry outside Vigil',
    );
  return rec;
}
