/**
 * The privval protocol spoken between a CometBFT node and its remote signer, for both
 * `tendermint.privval` (CometBFT v0.38) and `cometbft.privval.v1` (CometBFT v1.0). The two
 * share the Message oneof numbering (1..8) and the Vote/Proposal layouts; they differ in
 * PubKeyResponse (a crypto.PublicKey oneof in v0.38, pub_key_bytes + pub_key_type in v1),
 * SignVoteRequest.skip_extension_signing (v1) and SignBytes (v1, fields 9/10).
 *
 * Decoding is strict: wrong wire types, duplicated fields, unknown fields, out-of-range
 * integers and messages with zero or several oneof members are all refused with ProtoError.
 * On the wire each Message is prefixed by its uvarint length.
 */
import {
  ProtoError,
  ProtoReader,
  ProtoWriter,
  lengthDelimited,
  WIRE_BYTES,
  WIRE_VARINT,
} from './proto.js';
import {
  encodeTimestamp,
  proposalSignBytes,
  voteExtensionSignBytes,
  voteSignBytes,
  GO_ZERO_TIME,
  type BlockId,
  type Timestamp,
} from './sign-bytes.js';

export type PrivvalProtocol = 'v0.38' | 'v1';

/** CometBFT's maxRemoteSignerMsgSize: the node refuses anything bigger, and so do we. */
export const MAX_PRIVVAL_MESSAGE_BYTES = 10 * 1024;

export interface RemoteSignerError {
  readonly code: number;
  readonly description: string;
}

export interface PublicKey {
  /** CometBFT's key type name: "ed25519", "secp256k1", "bls12_381". */
  readonly type: string;
  readonly bytes: Uint8Array;
}

export interface Vote {
  readonly type: number;
  readonly height: bigint;
  readonly round: bigint;
  /** All-empty for a nil vote. */
  readonly blockId: BlockId;
  readonly timestamp: Timestamp;
  readonly validatorAddress: Uint8Array;
  readonly validatorIndex: number;
  readonly signature: Uint8Array;
  readonly extension: Uint8Array;
  readonly extensionSignature: Uint8Array;
  /** Fields 11/12 of later cometbft.types.v1 revisions; accepted in v1 only. */
  readonly nonRpExtension?: Uint8Array;
  readonly nonRpExtensionSignature?: Uint8Array;
}

export interface Proposal {
  readonly type: number;
  readonly height: bigint;
  readonly round: bigint;
  readonly polRound: bigint;
  readonly blockId: BlockId;
  readonly timestamp: Timestamp;
  readonly signature: Uint8Array;
}

export type PrivvalMessage =
  | { readonly kind: 'pubKeyRequest'; readonly chainId: string }
  | {
      readonly kind: 'pubKeyResponse';
      readonly pubKey?: PublicKey;
      readonly error?: RemoteSignerError;
    }
  | {
      readonly kind: 'signVoteRequest';
      readonly vote?: Vote;
      readonly chainId: string;
      /** v1 only: the node does not want the extension signed. */
      readonly skipExtensionSigning?: boolean;
    }
  | { readonly kind: 'signedVoteResponse'; readonly vote: Vote; readonly error?: RemoteSignerError }
  | { readonly kind: 'signProposalRequest'; readonly proposal?: Proposal; readonly chainId: string }
  | {
      readonly kind: 'signedProposalResponse';
      readonly proposal: Proposal;
      readonly error?: RemoteSignerError;
    }
  | { readonly kind: 'pingRequest' }
  | { readonly kind: 'pingResponse' }
  | { readonly kind: 'signBytesRequest'; readonly value: Uint8Array }
  | {
      readonly kind: 'signBytesResponse';
      readonly signature: Uint8Array;
      readonly error?: RemoteSignerError;
    };

export type PrivvalMessageKind = PrivvalMessage['kind'];

const KIND_FIELD: Record<PrivvalMessageKind, number> = {
  pubKeyRequest: 1,
  pubKeyResponse: 2,
  signVoteRequest: 3,
  signedVoteResponse: 4,
  signProposalRequest: 5,
  signedProposalResponse: 6,
  pingRequest: 7,
  pingResponse: 8,
  signBytesRequest: 9,
  signBytesResponse: 10,
};
const FIELD_KIND = new Map(
  Object.entries(KIND_FIELD).map(([k, f]) => [f, k as PrivvalMessageKind]),
);

const PUBLIC_KEY_FIELDS_V038: Record<string, number> = { ed25519: 1, secp256k1: 2 };

export const EMPTY_BLOCK_ID: BlockId = {
  hash: new Uint8Array(),
  partSetHeader: { total: 0, hash: new Uint8Array() },
};

/** A zero Vote, as gogoproto's non-nullable field carries in an error response. */
export function emptyVote(): Vote {
  return {
    type: 0,
    height: 0n,
    round: 0n,
    blockId: EMPTY_BLOCK_ID,
    timestamp: GO_ZERO_TIME,
    validatorAddress: new Uint8Array(),
    validatorIndex: 0,
    signature: new Uint8Array(),
    extension: new Uint8Array(),
    extensionSignature: new Uint8Array(),
  };
}

export function emptyProposal(): Proposal {
  return {
    type: 0,
    height: 0n,
    round: 0n,
    polRound: 0n,
    blockId: EMPTY_BLOCK_ID,
    timestamp: GO_ZERO_TIME,
    signature: new Uint8Array(),
  };
}

// ---------------------------------------------------------------------------------------------
// encoding

function encodeBlockId(b: BlockId): Uint8Array {
  const psh = new ProtoWriter()
    .uint32Field(1, b.partSetHeader.total)
    .bytesField(2, b.partSetHeader.hash)
    .finish();
  return new ProtoWriter().bytesField(1, b.hash).messageField(2, psh, true).finish();
}

/**
 * A RemoteSignerError. Its field is a pointer in CometBFT (`Error *RemoteSignerError`), and the
 * node treats any non-nil error as a failure, so callers emit it even when every field is a
 * default (an empty embedded message is still a present one).
 */
function encodeError(e: RemoteSignerError | undefined): Uint8Array | undefined {
  if (e === undefined) return undefined;
  return new ProtoWriter().int64Field(1, e.code).stringField(2, e.description).finish();
}

export function encodeVote(v: Vote, protocol: PrivvalProtocol): Uint8Array {
  const w = new ProtoWriter()
    .int64Field(1, v.type)
    .int64Field(2, v.height)
    .int64Field(3, v.round)
    .messageField(4, encodeBlockId(v.blockId), true)
    .messageField(5, encodeTimestamp(v.timestamp), true)
    .bytesField(6, v.validatorAddress)
    .int64Field(7, v.validatorIndex)
    .bytesField(8, v.signature)
    .bytesField(9, v.extension)
    .bytesField(10, v.extensionSignature);
  if (protocol === 'v1') {
    w.bytesField(11, v.nonRpExtension ?? new Uint8Array());
    w.bytesField(12, v.nonRpExtensionSignature ?? new Uint8Array());
  }
  return w.finish();
}

export function encodeProposal(p: Proposal): Uint8Array {
  return new ProtoWriter()
    .int64Field(1, p.type)
    .int64Field(2, p.height)
    .int64Field(3, p.round)
    .int64Field(4, p.polRound)
    .messageField(5, encodeBlockId(p.blockId), true)
    .messageField(6, encodeTimestamp(p.timestamp), true)
    .bytesField(7, p.signature)
    .finish();
}

function encodePubKeyResponseBody(
  m: Extract<PrivvalMessage, { kind: 'pubKeyResponse' }>,
  protocol: PrivvalProtocol,
): Uint8Array {
  const w = new ProtoWriter();
  if (protocol === 'v0.38') {
    let pk: Uint8Array = new Uint8Array();
    if (m.pubKey !== undefined) {
      const field = PUBLIC_KEY_FIELDS_V038[m.pubKey.type];
      if (field === undefined)
        throw new ProtoError(`v0.38 cannot carry a ${m.pubKey.type} public key`);
      pk = new ProtoWriter().bytesField(field, m.pubKey.bytes, true).finish();
    }
    // gogoproto non-nullable: the (possibly empty) PublicKey is always written.
    w.messageField(1, pk, true).messageField(2, encodeError(m.error), true);
  } else {
    w.messageField(2, encodeError(m.error), true);
    if (m.pubKey !== undefined) w.bytesField(3, m.pubKey.bytes).stringField(4, m.pubKey.type);
  }
  return w.finish();
}

function encodeBody(m: PrivvalMessage, protocol: PrivvalProtocol): Uint8Array {
  switch (m.kind) {
    case 'pubKeyRequest':
      return new ProtoWriter().stringField(1, m.chainId).finish();
    case 'pubKeyResponse':
      return encodePubKeyResponseBody(m, protocol);
    case 'signVoteRequest': {
      const w = new ProtoWriter()
        .messageField(1, m.vote && encodeVote(m.vote, protocol), true)
        .stringField(2, m.chainId);
      if (protocol === 'v1') w.boolField(3, m.skipExtensionSigning ?? false);
      else if (m.skipExtensionSigning)
        throw new ProtoError('skip_extension_signing does not exist in v0.38');
      return w.finish();
    }
    case 'signedVoteResponse':
      return new ProtoWriter()
        .messageField(1, encodeVote(m.vote, protocol), true)
        .messageField(2, encodeError(m.error), true)
        .finish();
    case 'signProposalRequest':
      return new ProtoWriter()
        .messageField(1, m.proposal && encodeProposal(m.proposal), true)
        .stringField(2, m.chainId)
        .finish();
    case 'signedProposalResponse':
      return new ProtoWriter()
        .messageField(1, encodeProposal(m.proposal), true)
        .messageField(2, encodeError(m.error), true)
        .finish();
    case 'pingRequest':
    case 'pingResponse':
      return new Uint8Array();
    case 'signBytesRequest':
      return new ProtoWriter().bytesField(1, m.value).finish();
    case 'signBytesResponse':
      return new ProtoWriter()
        .bytesField(1, m.signature)
        .messageField(2, encodeError(m.error), true)
        .finish();
  }
}

/** The privval Message (the oneof wrapper), without the length prefix. */
export function encodePrivvalMessage(m: PrivvalMessage, protocol: PrivvalProtocol): Uint8Array {
  if ((m.kind === 'signBytesRequest' || m.kind === 'signBytesResponse') && protocol !== 'v1') {
    throw new ProtoError(`${m.kind} exists only in cometbft.privval.v1`);
  }
  return new ProtoWriter().messageField(KIND_FIELD[m.kind], encodeBody(m, protocol), true).finish();
}

/** The privval Message with its uvarint length prefix, ready for the wire. */
export function encodePrivvalFrame(m: PrivvalMessage, protocol: PrivvalProtocol): Uint8Array {
  return lengthDelimited(encodePrivvalMessage(m, protocol));
}

// ---------------------------------------------------------------------------------------------
// decoding

type FieldHandler = (r: ProtoReader, wire: number) => void;

/** Reads a message's fields, refusing unknown and repeated ones and wrong wire types. */
function readFields(
  buf: Uint8Array,
  start: number,
  end: number,
  what: string,
  handlers: Record<number, readonly [number, FieldHandler]>,
): void {
  const r = new ProtoReader(buf, start, end);
  const seen = new Set<number>();
  while (!r.done) {
    const { field, wire } = r.tag();
    const h = handlers[field];
    if (h === undefined) throw new ProtoError(`${what}: unknown field ${field}`);
    if (seen.has(field)) throw new ProtoError(`${what}: field ${field} appears twice`);
    seen.add(field);
    if (wire !== h[0])
      throw new ProtoError(`${what}: field ${field} has wire type ${wire}, expected ${h[0]}`);
    h[1](r, wire);
  }
}

function int32(r: ProtoReader, what: string): number {
  const v = BigInt.asIntN(64, r.uvarint());
  if (v < -0x80000000n || v > 0x7fffffffn) throw new ProtoError(`${what} ${v} is not an int32`);
  return Number(v);
}

function uint32(r: ProtoReader, what: string): number {
  const v = r.uvarint();
  if (v > 0xffffffffn) throw new ProtoError(`${what} ${v} is not a uint32`);
  return Number(v);
}

function bool(r: ProtoReader, what: string): boolean {
  const v = r.uvarint();
  if (v > 1n) throw new ProtoError(`${what} ${v} is not a bool`);
  return v === 1n;
}

const copy = (b: Uint8Array) => Uint8Array.from(b);

function decodeTimestampMessage(buf: Uint8Array, start: number, end: number): Timestamp {
  let seconds = 0n;
  let nanos = 0;
  readFields(buf, start, end, 'Timestamp', {
    1: [WIRE_VARINT, (r) => (seconds = r.int64())],
    2: [WIRE_VARINT, (r) => (nanos = int32(r, 'Timestamp.nanos'))],
  });
  if (nanos < 0 || nanos > 999_999_999) throw new ProtoError('Timestamp.nanos out of range');
  // Go's time.Time range: 0001-01-01 .. 9999-12-31.
  if (seconds < -62135596800n || seconds > 253402300799n)
    throw new ProtoError('Timestamp.seconds outside years 1..9999');
  return { seconds, nanos };
}

function decodeBlockId(buf: Uint8Array, start: number, end: number): BlockId {
  let hash = new Uint8Array();
  let total = 0;
  let pshHash = new Uint8Array();
  readFields(buf, start, end, 'BlockID', {
    1: [WIRE_BYTES, (r) => (hash = copy(r.bytes()))],
    2: [
      WIRE_BYTES,
      (r) => {
        const { start: s, end: e } = r.bytesRange();
        readFields(buf, s, e, 'PartSetHeader', {
          1: [WIRE_VARINT, (rr) => (total = uint32(rr, 'PartSetHeader.total'))],
          2: [WIRE_BYTES, (rr) => (pshHash = copy(rr.bytes()))],
        });
      },
    ],
  });
  return { hash, partSetHeader: { total, hash: pshHash } };
}

function decodeError(buf: Uint8Array, start: number, end: number): RemoteSignerError {
  let code = 0;
  let description = '';
  readFields(buf, start, end, 'RemoteSignerError', {
    1: [WIRE_VARINT, (r) => (code = int32(r, 'RemoteSignerError.code'))],
    2: [WIRE_BYTES, (r) => (description = r.string())],
  });
  return { code, description };
}

export function decodeVote(
  buf: Uint8Array,
  protocol: PrivvalProtocol,
  start = 0,
  end = buf.length,
): Vote {
  const v = { ...emptyVote() } as { -readonly [K in keyof Vote]: Vote[K] };
  const handlers: Record<number, readonly [number, FieldHandler]> = {
    1: [WIRE_VARINT, (r) => (v.type = int32(r, 'Vote.type'))],
    2: [WIRE_VARINT, (r) => (v.height = r.int64())],
    3: [WIRE_VARINT, (r) => (v.round = BigInt(int32(r, 'Vote.round')))],
    4: [
      WIRE_BYTES,
      (r) => {
        const x = r.bytesRange();
        v.blockId = decodeBlockId(buf, x.start, x.end);
      },
    ],
    5: [
      WIRE_BYTES,
      (r) => {
        const x = r.bytesRange();
        v.timestamp = decodeTimestampMessage(buf, x.start, x.end);
      },
    ],
    6: [WIRE_BYTES, (r) => (v.validatorAddress = copy(r.bytes()))],
    7: [WIRE_VARINT, (r) => (v.validatorIndex = int32(r, 'Vote.validator_index'))],
    8: [WIRE_BYTES, (r) => (v.signature = copy(r.bytes()))],
    9: [WIRE_BYTES, (r) => (v.extension = copy(r.bytes()))],
    10: [WIRE_BYTES, (r) => (v.extensionSignature = copy(r.bytes()))],
  };
  if (protocol === 'v1') {
    handlers[11] = [WIRE_BYTES, (r) => (v.nonRpExtension = copy(r.bytes()))];
    handlers[12] = [WIRE_BYTES, (r) => (v.nonRpExtensionSignature = copy(r.bytes()))];
  }
  readFields(buf, start, end, 'Vote', handlers);
  return v;
}

export function decodeProposal(buf: Uint8Array, start = 0, end = buf.length): Proposal {
  const p = { ...emptyProposal() } as { -readonly [K in keyof Proposal]: Proposal[K] };
  readFields(buf, start, end, 'Proposal', {
    1: [WIRE_VARINT, (r) => (p.type = int32(r, 'Proposal.type'))],
    2: [WIRE_VARINT, (r) => (p.height = r.int64())],
    3: [WIRE_VARINT, (r) => (p.round = BigInt(int32(r, 'Proposal.round')))],
    4: [WIRE_VARINT, (r) => (p.polRound = BigInt(int32(r, 'Proposal.pol_round')))],
    5: [
      WIRE_BYTES,
      (r) => {
        const x = r.bytesRange();
        p.blockId = decodeBlockId(buf, x.start, x.end);
      },
    ],
    6: [
      WIRE_BYTES,
      (r) => {
        const x = r.bytesRange();
        p.timestamp = decodeTimestampMessage(buf, x.start, x.end);
      },
    ],
    7: [WIRE_BYTES, (r) => (p.signature = copy(r.bytes()))],
  });
  return p;
}

function decodePublicKeyOneof(buf: Uint8Array, start: number, end: number): PublicKey | undefined {
  let key: PublicKey | undefined;
  const set = (type: string) => (r: ProtoReader) => {
    if (key !== undefined) throw new ProtoError('PublicKey has more than one key');
    key = { type, bytes: copy(r.bytes()) };
  };
  readFields(buf, start, end, 'PublicKey', {
    1: [WIRE_BYTES, set('ed25519')],
    2: [WIRE_BYTES, set('secp256k1')],
  });
  return key;
}

function decodeBody(
  kind: PrivvalMessageKind,
  buf: Uint8Array,
  start: number,
  end: number,
  protocol: PrivvalProtocol,
): PrivvalMessage {
  const range = (r: ProtoReader) => r.bytesRange();
  switch (kind) {
    case 'pubKeyRequest': {
      let chainId = '';
      readFields(buf, start, end, 'PubKeyRequest', {
        1: [WIRE_BYTES, (r) => (chainId = r.string())],
      });
      return { kind, chainId };
    }
    case 'pubKeyResponse': {
      let pubKey: PublicKey | undefined;
      let error: RemoteSignerError | undefined;
      let bytes: Uint8Array | undefined;
      let type: string | undefined;
      const errorField: readonly [number, FieldHandler] = [
        WIRE_BYTES,
        (r) => {
          const x = range(r);
          error = decodeError(buf, x.start, x.end);
        },
      ];
      if (protocol === 'v0.38') {
        readFields(buf, start, end, 'PubKeyResponse', {
          1: [
            WIRE_BYTES,
            (r) => {
              const x = range(r);
              pubKey = decodePublicKeyOneof(buf, x.start, x.end);
            },
          ],
          2: errorField,
        });
      } else {
        readFields(buf, start, end, 'PubKeyResponse', {
          2: errorField,
          3: [WIRE_BYTES, (r) => (bytes = copy(r.bytes()))],
          4: [WIRE_BYTES, (r) => (type = r.string())],
        });
        if (bytes !== undefined || type !== undefined)
          pubKey = { type: type ?? '', bytes: bytes ?? new Uint8Array() };
      }
      return { kind, ...(pubKey ? { pubKey } : {}), ...(error ? { error } : {}) };
    }
    case 'signVoteRequest': {
      let vote: Vote | undefined;
      let chainId = '';
      let skip: boolean | undefined;
      const handlers: Record<number, readonly [number, FieldHandler]> = {
        1: [
          WIRE_BYTES,
          (r) => {
            const x = range(r);
            vote = decodeVote(buf, protocol, x.start, x.end);
          },
        ],
        2: [WIRE_BYTES, (r) => (chainId = r.string())],
      };
      if (protocol === 'v1')
        handlers[3] = [WIRE_VARINT, (r) => (skip = bool(r, 'skip_extension_signing'))];
      readFields(buf, start, end, 'SignVoteRequest', handlers);
      return {
        kind,
        ...(vote ? { vote } : {}),
        chainId,
        ...(skip !== undefined ? { skipExtensionSigning: skip } : {}),
      };
    }
    case 'signProposalRequest': {
      let proposal: Proposal | undefined;
      let chainId = '';
      readFields(buf, start, end, 'SignProposalRequest', {
        1: [
          WIRE_BYTES,
          (r) => {
            const x = range(r);
            proposal = decodeProposal(buf, x.start, x.end);
          },
        ],
        2: [WIRE_BYTES, (r) => (chainId = r.string())],
      });
      return { kind, ...(proposal ? { proposal } : {}), chainId };
    }
    case 'signedVoteResponse':
    case 'signedProposalResponse': {
      let vote: Vote = emptyVote();
      let proposal: Proposal = emptyProposal();
      let error: RemoteSignerError | undefined;
      readFields(
        buf,
        start,
        end,
        kind === 'signedVoteResponse' ? 'SignedVoteResponse' : 'SignedProposalResponse',
        {
          1: [
            WIRE_BYTES,
            (r) => {
              const x = range(r);
              if (kind === 'signedVoteResponse') vote = decodeVote(buf, protocol, x.start, x.end);
              else proposal = decodeProposal(buf, x.start, x.end);
            },
          ],
          2: [
            WIRE_BYTES,
            (r) => {
              const x = range(r);
              error = decodeError(buf, x.start, x.end);
            },
          ],
        },
      );
      return kind === 'signedVoteResponse'
        ? { kind, vote, ...(error ? { error } : {}) }
        : { kind, proposal, ...(error ? { error } : {}) };
    }
    case 'pingRequest':
    case 'pingResponse':
      readFields(buf, start, end, kind, {});
      return { kind };
    case 'signBytesRequest': {
      let value = new Uint8Array();
      readFields(buf, start, end, 'SignBytesRequest', {
        1: [WIRE_BYTES, (r) => (value = copy(r.bytes()))],
      });
      return { kind, value };
    }
    case 'signBytesResponse': {
      let signature = new Uint8Array();
      let error: RemoteSignerError | undefined;
      readFields(buf, start, end, 'SignBytesResponse', {
        1: [WIRE_BYTES, (r) => (signature = copy(r.bytes()))],
        2: [
          WIRE_BYTES,
          (r) => {
            const x = range(r);
            error = decodeError(buf, x.start, x.end);
          },
        ],
      });
      return { kind, signature, ...(error ? { error } : {}) };
    }
  }
}

/** Decodes one privval Message (the oneof wrapper, no length prefix). */
export function decodePrivvalMessage(buf: Uint8Array, protocol: PrivvalProtocol): PrivvalMessage {
  const r = new ProtoReader(buf);
  if (r.done) throw new ProtoError('empty privval message: no member of the oneof is set');
  const { field, wire } = r.tag();
  const kind = FIELD_KIND.get(field);
  if (kind === undefined || (protocol === 'v0.38' && field > 8))
    throw new ProtoError(`privval message field ${field} is not part of the ${protocol} protocol`);
  if (wire !== WIRE_BYTES) throw new ProtoError(`privval message field ${field} is not a message`);
  const { start, end } = r.bytesRange();
  if (!r.done)
    throw new ProtoError(
      'privval message carries more than one member of its oneof, or trailing bytes',
    );
  return decodeBody(kind, buf, start, end, protocol);
}

/**
 * Reads one length-prefixed message from the front of `buf`. Returns undefined when more bytes
 * are needed, and refuses a declared length above `maxBytes` as soon as the prefix is complete.
 */
export function takeDelimited(
  buf: Uint8Array,
  maxBytes = MAX_PRIVVAL_MESSAGE_BYTES,
): { message: Uint8Array; consumed: number } | undefined {
  let len = 0;
  let shift = 0;
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i]!;
    if (i >= 5) throw new ProtoError('message length prefix is longer than 5 bytes');
    len += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) {
      if (len > maxBytes)
        throw new ProtoError(`message of ${len} bytes exceeds the maximum of ${maxBytes}`);
      const start = i + 1;
      if (buf.length - start < len) return undefined;
      return { message: buf.subarray(start, start + len), consumed: start + len };
    }
  }
  if (buf.length >= 5) throw new ProtoError('message length prefix is longer than 5 bytes');
  return undefined;
}

/** Accepts hex with or without the uvarint length prefix (as `vigil cometbft decode` does). */
export function decodePrivvalHex(
  hex: string,
  protocol: PrivvalProtocol,
): { message: PrivvalMessage; lengthPrefixed: boolean } {
  const clean = hex.trim().replace(/^0x/i, '').replace(/\s+/g, '');
  if (clean.length === 0 || clean.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(clean))
    throw new ProtoError('expected an even number of hexadecimal digits');
  const bytes = new Uint8Array(Buffer.from(clean, 'hex'));
  let firstError: unknown;
  try {
    return { message: decodePrivvalMessage(bytes, protocol), lengthPrefixed: false };
  } catch (err) {
    firstError = err;
  }
  try {
    const framed = takeDelimited(bytes, Number.MAX_SAFE_INTEGER);
    if (framed && framed.consumed === bytes.length)
      return { message: decodePrivvalMessage(framed.message, protocol), lengthPrefixed: true };
  } catch {
    // Report the error of the unprefixed reading, the more common form.
  }
  throw firstError;
}

// ---------------------------------------------------------------------------------------------
// sign bytes of decoded messages

/** What the validator key signs for `vote` on `chainId`. */
export function signBytesOfVote(vote: Vote, chainId: string): Uint8Array {
  return voteSignBytes({
    type: vote.type,
    height: vote.height,
    round: vote.round,
    blockId: vote.blockId,
    timestamp: vote.timestamp,
    chainId,
  });
}

/** What the validator key signs for `proposal` on `chainId` (the type is always 32). */
export function signBytesOfProposal(proposal: Proposal, chainId: string): Uint8Array {
  return proposalSignBytes({
    height: proposal.height,
    round: proposal.round,
    polRound: proposal.polRound,
    blockId: proposal.blockId,
    timestamp: proposal.timestamp,
    chainId,
  });
}

export function extensionSignBytesOfVote(vote: Vote, chainId: string): Uint8Array {
  return voteExtensionSignBytes({
    extension: vote.extension,
    height: vote.height,
    round: vote.round,
    chainId,
  });
}

// ---------------------------------------------------------------------------------------------
// readable JSON

const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

function readableTimestamp(t: Timestamp): string {
  // Avoids Date for years outside what it prints well (Go's zero time included).
  const ms = Number(t.seconds) * 1000;
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return `${t.seconds}s+${t.nanos}ns`;
  const iso = d.toISOString().replace(/\.\d{3}Z$/, '');
  const frac = t.nanos === 0 ? '' : `.${String(t.nanos).padStart(9, '0').replace(/0+$/, '')}`;
  return `${iso}${frac}Z`;
}

function readable(value: unknown, key = ''): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return hexOf(value);
  if (Array.isArray(value)) return value.map((v) => readable(v));
  if (value !== null && typeof value === 'object') {
    if (key === 'timestamp') return readableTimestamp(value as Timestamp);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, readable(v, k)]));
  }
  return value;
}

const TYPE_NAMES: Record<number, string> = {
  0: 'unknown',
  1: 'prevote',
  2: 'precommit',
  32: 'proposal',
};

/** A JSON-friendly view: bigints as strings, bytes as hex, times as RFC 3339. */
export function privvalMessageToJson(m: PrivvalMessage): unknown {
  const out = readable(m) as Record<string, unknown>;
  const nameType = (o: unknown) => {
    if (o && typeof o === 'object' && 'type' in o) {
      const t = (o as { type: number }).type;
      (o as Record<string, unknown>).typeName = TYPE_NAMES[t] ?? `type ${t}`;
    }
  };
  nameType(out.vote);
  nameType(out.proposal);
  return out;
}
