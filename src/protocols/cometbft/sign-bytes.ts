/**
 * CometBFT canonical sign bytes (CanonicalVote, CanonicalProposal, CanonicalVoteExtension),
 * identical in tendermint.types (v0.38) and cometbft.types.v1 (v1.0). What a validator key
 * signs is the uvarint length-prefixed encoding of one of these.
 */
import {
  ProtoError,
  ProtoReader,
  ProtoWriter,
  lengthDelimited,
  WIRE_BYTES,
  WIRE_FIXED64,
  WIRE_VARINT,
} from './proto.js';

export const SignedMsgType = { Unknown: 0, Prevote: 1, Precommit: 2, Proposal: 32 } as const;

export interface Timestamp {
  readonly seconds: bigint;
  readonly nanos: number;
}

/** Go's zero time.Time, which CometBFT encodes for votes without a timestamp. */
export const GO_ZERO_TIME: Timestamp = { seconds: -62135596800n, nanos: 0 };

export interface PartSetHeader {
  readonly total: number;
  readonly hash: Uint8Array;
}

export interface BlockId {
  readonly hash: Uint8Array;
  readonly partSetHeader: PartSetHeader;
}

export interface CanonicalVote {
  readonly type: number;
  readonly height: bigint;
  readonly round: bigint;
  /** undefined for a nil vote. */
  readonly blockId?: BlockId;
  readonly timestamp: Timestamp;
  readonly chainId: string;
}

export interface CanonicalProposal {
  readonly height: bigint;
  readonly round: bigint;
  readonly polRound: bigint;
  readonly blockId?: BlockId;
  readonly timestamp: Timestamp;
  readonly chainId: string;
}

export interface CanonicalVoteExtension {
  readonly extension: Uint8Array;
  readonly height: bigint;
  readonly round: bigint;
  readonly chainId: string;
}

export function isZeroBlockId(b: BlockId | undefined): boolean {
  return (
    b === undefined ||
    (b.hash.length === 0 && b.partSetHeader.total === 0 && b.partSetHeader.hash.length === 0)
  );
}

export function encodeTimestamp(t: Timestamp): Uint8Array {
  return new ProtoWriter().int64Field(1, t.seconds).int64Field(2, t.nanos).finish();
}

function encodeCanonicalBlockId(b: BlockId | undefined): Uint8Array | undefined {
  if (isZeroBlockId(b)) return undefined;
  const psh = new ProtoWriter()
    .uint32Field(1, b!.partSetHeader.total)
    .bytesField(2, b!.partSetHeader.hash)
    .finish();
  return new ProtoWriter().bytesField(1, b!.hash).messageField(2, psh, true).finish();
}

export function voteSignBytes(v: CanonicalVote): Uint8Array {
  const body = new ProtoWriter()
    .int64Field(1, v.type)
    .sfixed64Field(2, v.height)
    .sfixed64Field(3, v.round)
    .messageField(4, encodeCanonicalBlockId(v.blockId))
    .messageField(5, encodeTimestamp(v.timestamp), true)
    .stringField(6, v.chainId)
    .finish();
  return lengthDelimited(body);
}

export function proposalSignBytes(p: CanonicalProposal): Uint8Array {
  const body = new ProtoWriter()
    .int64Field(1, SignedMsgType.Proposal)
    .sfixed64Field(2, p.height)
    .sfixed64Field(3, p.round)
    .int64Field(4, p.polRound)
    .messageField(5, encodeCanonicalBlockId(p.blockId))
    .messageField(6, encodeTimestamp(p.timestamp), true)
    .stringField(7, p.chainId)
    .finish();
  return lengthDelimited(body);
}

export function voteExtensionSignBytes(e: CanonicalVoteExtension): Uint8Array {
  const body = new ProtoWriter()
    .bytesField(1, e.extension)
    .sfixed64Field(2, e.height)
    .sfixed64Field(3, e.round)
    .stringField(4, e.chainId)
    .finish();
  return lengthDelimited(body);
}

/** What the guard needs to know about a set of sign bytes, read from the bytes themselves. */
export interface ParsedSignBytes {
  readonly kind: 'vote' | 'proposal';
  readonly type: number;
  readonly height: bigint;
  readonly round: bigint;
  readonly polRound?: bigint;
  readonly blockIdNil: boolean;
  readonly timestamp: Timestamp;
  readonly chainId: string;
  /** Where the timestamp field (tag included) sits in the full sign bytes. */
  readonly timestampRange: { readonly start: number; readonly end: number };
}

function decodeTimestamp(buf: Uint8Array, start: number, end: number): Timestamp {
  const r = new ProtoReader(buf, start, end);
  let seconds = 0n;
  let nanos = 0;
  let last = 0;
  while (!r.done) {
    const { field, wire } = r.tag();
    if (field <= last || wire !== WIRE_VARINT) throw new ProtoError('malformed timestamp');
    last = field;
    if (field === 1) seconds = r.int64();
    else if (field === 2) nanos = Number(BigInt.asIntN(32, r.uvarint()));
    else throw new ProtoError(`unknown timestamp field ${field}`);
  }
  if (nanos < 0 || nanos > 999_999_999) throw new ProtoError('timestamp nanos out of range');
  return { seconds, nanos };
}

/**
 * Reads canonical vote or proposal sign bytes. Strict: fields must be in canonical order with
 * the expected wire types and nothing unknown, so two encodings that mean the same thing are
 * the same bytes, and cutting out the timestamp leaves a meaningful comparison.
 */
export function parseSignBytes(signBytes: Uint8Array): ParsedSignBytes {
  const outer = new ProtoReader(signBytes);
  const len = outer.uvarintNumber(signBytes.length);
  if (outer.pos + len !== signBytes.length) {
    throw new ProtoError('sign bytes length prefix does not match their size');
  }
  const r = new ProtoReader(signBytes, outer.pos);
  // Peek at the type to know which layout follows; it is always the first field when present.
  let type = 0;
  let height = 0n;
  let round = 0n;
  let polRound: bigint | undefined;
  let blockIdNil = true;
  let timestamp: Timestamp | undefined;
  let timestampRange = { start: 0, end: 0 };
  let chainId = '';
  let last = 0;
  let isProposal = false;
  while (!r.done) {
    const fieldStart = r.pos;
    const { field, wire } = r.tag();
    if (field <= last) throw new ProtoError(`field ${field} out of canonical order`);
    last = field;
    if (field === 1) {
      if (wire !== WIRE_VARINT) throw new ProtoError('type has wrong wire type');
      type = r.uvarintNumber(0x7fffffff);
      isProposal = type === SignedMsgType.Proposal;
      continue;
    }
    if (field === 2 || field === 3) {
      if (wire !== WIRE_FIXED64) throw new ProtoError('height/round must be sfixed64');
      const v = r.sfixed64();
      if (field === 2) height = v;
      else round = v;
      continue;
    }
    const blockIdField = isProposal ? 5 : 4;
    const timestampField = isProposal ? 6 : 5;
    const chainIdField = isProposal ? 7 : 6;
    if (isProposal && field === 4) {
      if (wire !== WIRE_VARINT) throw new ProtoError('pol_round has wrong wire type');
      polRound = r.int64();
    } else if (field === blockIdField) {
      if (wire !== WIRE_BYTES) throw new ProtoError('block_id has wrong wire type');
      r.bytesRange();
      blockIdNil = false;
    } else if (field === timestampField) {
      if (wire !== WIRE_BYTES) throw new ProtoError('timestamp has wrong wire type');
      const range = r.bytesRange();
      timestamp = decodeTimestamp(signBytes, range.start, range.end);
      timestampRange = { start: fieldStart, end: range.end };
    } else if (field === chainIdField) {
      if (wire !== WIRE_BYTES) throw new ProtoError('chain_id has wrong wire type');
      chainId = r.string();
    } else {
      throw new ProtoError(
        `unknown field ${field} in canonical ${isProposal ? 'proposal' : 'vote'}`,
      );
    }
  }
  if (type !== SignedMsgType.Prevote && type !== SignedMsgType.Precommit && !isProposal) {
    throw new ProtoError(
      `sign bytes have message type ${type}; expected prevote, precommit or proposal`,
    );
  }
  if (timestamp === undefined) throw new ProtoError('sign bytes carry no timestamp');
  return {
    kind: isProposal ? 'proposal' : 'vote',
    type,
    height,
    round,
    ...(polRound !== undefined ? { polRound } : {}),
    blockIdNil,
    timestamp,
    chainId,
    timestampRange,
  };
}

/**
 * The sign bytes' body with the timestamp field cut out: equal iff two requests differ only in
 * time. The length prefix is left out too, since it changes with the timestamp's encoded length
 * (nanos 0 is omitted, nanos 1 is not).
 */
export function signBytesWithoutTimestamp(
  signBytes: Uint8Array,
  parsed: ParsedSignBytes,
): Uint8Array {
  const { start, end } = parsed.timestampRange;
  const bodyStart = new ProtoReader(signBytes);
  bodyStart.uvarint();
  const out = new Uint8Array(signBytes.length - bodyStart.pos - (end - start));
  out.set(signBytes.subarray(bodyStart.pos, start));
  out.set(signBytes.subarray(end), start - bodyStart.pos);
  return out;
}

/** RFC 3339 with nanoseconds, as CometBFT prints times. */
export function formatTimestamp(t: Timestamp): string {
  const ms = t.seconds * 1000n;
  const iso = new Date(Number(ms)).toISOString().replace(/\.\d{3}Z$/, '');
  return t.nanos === 0
    ? `${iso}Z`
    : `${iso}.${String(t.nanos).padStart(9, '0').replace(/0+$/, '')}Z`;
}

export function parseTimestamp(text: string): Timestamp {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(text);
  if (!m) throw new ProtoError(`timestamp ${JSON.stringify(text)} is not RFC 3339 UTC (…Z)`);
  const ms = Date.parse(`${m[1]}Z`);
  if (Number.isNaN(ms))
    throw new ProtoError(`timestamp ${JSON.stringify(text)} is not a valid date`);
  return { seconds: BigInt(ms) / 1000n, nanos: m[2] ? Number(m[2].padEnd(9, '0')) : 0 };
}
