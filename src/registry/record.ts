/**
 * The node registry's record (issue 15, item 1). Pure: no I/O, no clock (callers pass `now`).
 *
 * A record says who a node is (its Ed25519 libp2p identity), where to reach it (multiaddrs),
 * its role, capabilities and admission flags, and for how long this says so. Three parties
 * sign different things:
 *
 * - the **subject** signs its content: `"vigil/registry/record/v1\0" || content`. The content
 *   names the sequence number it replaces (`prevSeq`, 0 for a first admission), so a signed
 *   submission can be committed once, on top of exactly that version, and a replayed one is
 *   stale;
 * - the **store** gives the record its sequence number when it commits it: the subject's
 *   previous `seq + 1`, inside the commit's transaction (src/registry/store.ts). It counts
 *   commits for one subject and is never read as a time;
 * - **validators** countersign under an *epoch* of the validator set (src/registry/
 *   validator-set.ts): epoch 0, the configured genesis set, signs
 *   `"vigil/registry/countersign/v1\0" || u64 seq || content` (the message of the first
 *   layout, unchanged); a later epoch e signs
 *   `"vigil/registry/countersign/v2\0" || u64 e || u64 seq || content`, so a countersignature
 *   cannot be moved from one epoch to another. Peers accept a record only with
 *   countersignatures from a quorum of the set of an epoch they accept (AcceptRules).
 *
 * Layout v1 (big-endian integers; strings are ASCII with a length prefix):
 *
 *   content  = u8 1 | key[32] | u64 prevSeq | u64 issuedAtMs | u64 expiresAtMs | u32 flags
 *            | u8 len role | u8 n (u8 len capability)×n | u8 n (u16 len address)×n
 *   envelope = u8 1 | u16 len content | sig[64] | u64 seq | u8 n (key[32] sig[64])×n
 *              [ | grant ]   (only when this version changed the subject's flags: see FlagsGrant)
 *
 * Layout v2, used only when some countersignature is of an epoch after 0 (so a genesis-epoch
 * record keeps the v1 bytes it always had): the same, with each countersignature
 * `u64 epoch | key[32] | sig[64]`, sorted by (epoch, key).
 *
 * Canonical: capabilities and countersignatures sorted strictly ascending (so no duplicates),
 * no duplicate address, `seq = prevSeq + 1`, nothing after the last field, every field within
 * its limit; the decoder refuses anything else, so one record has one byte string.
 */
import { isIPv6 } from 'node:net';
import { VigilError } from '../errors.js';
import { verifyEd25519 } from '../keys/ed25519.js';
import { ed25519FromPeerId, peerIdFromEd25519 } from './peer-id.js';

export const RECORD_DOMAIN = 'vigil/registry/record/v1\0';
export const COUNTERSIGN_DOMAIN = 'vigil/registry/countersign/v1\0';
export const COUNTERSIGN_EPOCH_DOMAIN = 'vigil/registry/countersign/v2\0';
export const FLAGS_ADMIN_DOMAIN = 'vigil/registry/flags-admin/v1\0';

const LAYOUT_VERSION = 1;
/** The envelope whose countersignatures name their epoch. */
const EPOCH_LAYOUT_VERSION = 2;
const U64_MAX = (1n << 64n) - 1n;

const FIELD_LIMITS = {
  addresses: 8,
  addressBytes: 256,
  roleBytes: 32,
  capabilities: 16,
  capabilityBytes: 64,
  /** Validators in a set. */
  validators: 32,
  /** Countersignatures on a record: those of two epochs at most (the store drops older). */
  countersignatures: 64,
  /** expiresAt − issuedAt. */
  lifetimeMs: 30 * 24 * 3600 * 1000,
} as const;

/** Layout, subject key, prevSeq, issuedAt, expiresAt, flags. */
const CONTENT_HEAD_BYTES = 1 + 32 + 8 + 8 + 8 + 4;
const MAX_CONTENT_BYTES =
  CONTENT_HEAD_BYTES +
  (1 + FIELD_LIMITS.roleBytes) +
  (1 + FIELD_LIMITS.capabilities * (1 + FIELD_LIMITS.capabilityBytes)) +
  (1 + FIELD_LIMITS.addresses * (2 + FIELD_LIMITS.addressBytes));
/** Layout, subject key, baseSeq, flags, then (key, signature) per validator. */
const MAX_GRANT_BYTES = 1 + 32 + 8 + 4 + 1 + FIELD_LIMITS.validators * (32 + 64);
/** Layout, content length, content, subject signature, seq, then (epoch, key, signature)s. */
const ENVELOPE_HEAD_BYTES = 1 + 2 + 64 + 8 + 1;
/**
 * The largest envelope the layouts can hold within the field limits, so every record that
 * passes them fits: layout 2 (epoch-tagged countersignatures) with content at every limit,
 * 32 validators × two epochs of countersignatures, and a flags grant signed by 32 validators.
 * 13 050 bytes; it was a fixed 8192 before, which such a record exceeded (a node of that
 * version refuses larger envelopes: see the README's mixed-version note).
 */
const MAX_ENVELOPE_BYTES =
  ENVELOPE_HEAD_BYTES +
  MAX_CONTENT_BYTES +
  FIELD_LIMITS.countersignatures * (8 + 32 + 64) +
  MAX_GRANT_BYTES;

export const LIMITS = {
  /** A whole envelope, countersignatures included; checked before anything is decoded. */
  envelopeBytes: MAX_ENVELOPE_BYTES,
  ...FIELD_LIMITS,
} as const;

export type RegistryErrorCode =
  | 'REGISTRY_RECORD_TOO_LARGE'
  | 'REGISTRY_RECORD_MALFORMED'
  | 'REGISTRY_INVALID_FIELD'
  | 'REGISTRY_BAD_SIGNATURE'
  | 'REGISTRY_UNKNOWN_SIGNER'
  | 'REGISTRY_NO_QUORUM'
  | 'REGISTRY_RECORD_EXPIRED'
  | 'REGISTRY_RECORD_NOT_YET_VALID'
  | 'REGISTRY_SEQ_STALE'
  | 'REGISTRY_SEQ_CONFLICT'
  | 'REGISTRY_FLAGS_IMMUTABLE'
  | 'REGISTRY_NOT_FOUND'
  | 'REGISTRY_COUNTERSIGN_CONFLICT'
  | 'REGISTRY_SUBJECT_MISMATCH'
  | 'REGISTRY_NOT_ADMITTED'
  | 'REGISTRY_RATE_LIMITED'
  | 'REGISTRY_UNAVAILABLE'
  | 'REGISTRY_UNKNOWN_EPOCH'
  | 'REGISTRY_EPOCH_STALE'
  | 'REGISTRY_EPOCH_CONFLICT';

/** Every refusal of the registry: a stable code, and what to do about it where there is one. */
export class RegistryError extends VigilError {
  declare readonly code: RegistryErrorCode;
  constructor(code: RegistryErrorCode, message: string, hint?: string) {
    super(code, message, hint);
  }
}

/** What the subject signs. `flags` is a u32 bit set, fixed at first admission. */
export interface RecordContent {
  readonly subjectKey: Uint8Array;
  readonly prevSeq: bigint;
  readonly issuedAtMs: number;
  readonly expiresAtMs: number;
  readonly flags: number;
  readonly role: string;
  /** Sorted strictly ascending. */
  readonly capabilities: readonly string[];
  readonly addresses: readonly string[];
}

export interface Countersignature {
  readonly validator: Uint8Array;
  readonly signature: Uint8Array;
  /** The validator-set epoch it was made under; absent means 0, the configured genesis set. */
  readonly epoch?: bigint;
}

/** A submission: content as the subject signed it, not yet committed. */
export interface Submission {
  readonly content: RecordContent;
  readonly contentBytes: Uint8Array;
  readonly subjectSignature: Uint8Array;
  readonly peerId: string;
}

/** A committed record: a submission with the sequence number its commit gave it. */
export interface SignedRecord extends Submission {
  readonly seq: bigint;
  /** Sorted strictly ascending by (epoch, validator key). */
  readonly countersignatures: readonly Countersignature[];
  /**
   * The validator-quorum grant that let this version change the subject's flags, carried so
   * that each validator's countersigner can tell an allowed change from a raw write. Bound to
   * this version: same subject, `baseSeq = prevSeq`, `flags = content.flags`.
   */
  readonly flagsGrant?: FlagsGrant;
}

/** The validators whose countersignatures count, and how many make a quorum. */
export interface ValidatorSet {
  readonly members: readonly Uint8Array[];
  readonly quorum: number;
}

/** A validator set at an epoch (0: the configured genesis set). */
export interface EpochSet extends ValidatorSet {
  readonly epoch: bigint;
  /** When the set record was issued (ms; 0 for the genesis set). */
  readonly issuedAtMs: number;
}

/**
 * Which countersignatures a node counts (src/registry/validator-set.ts builds them from the
 * chain of set records it holds):
 *
 * - those of the `current` epoch by its members; a quorum of them attests the record;
 * - while the current epoch's grace lasts, those of the `previous` epoch, but only by
 *   validators that are members of the current set too, against the previous quorum: a record
 *   attested just before a set change stays valid until the new set re-countersigns it, while
 *   a removed validator's countersignature counts for nothing from the change on;
 * - nothing else: an older epoch's countersignature is ignored, a newer epoch's is
 *   REGISTRY_UNKNOWN_EPOCH (the node must fetch the set records first).
 *
 * Flags grants carry no epoch: they must carry a quorum of one of the `known` sets.
 */
export interface AcceptRules {
  readonly current: EpochSet;
  readonly previous?: EpochSet;
  readonly known: readonly ValidatorSet[];
}

/** The rules of a lone set: its countersignatures at `epoch` (default 0) and nothing else. */
export function rulesOf(set: ValidatorSet | AcceptRules): AcceptRules {
  if ('current' in set) return set;
  const epoch = (set as Partial<EpochSet>).epoch ?? 0n;
  const issuedAtMs = (set as Partial<EpochSet>).issuedAtMs ?? 0;
  return { current: { ...set, epoch, issuedAtMs }, known: [set] };
}

/** Anything that signs with an Ed25519 key (src/keys/ed25519.ts's Ed25519Key does). */
export interface RegistrySigner {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Field checks

const invalid = (msg: string, hint?: string): never => {
  throw new RegistryError('REGISTRY_INVALID_FIELD', msg, hint);
};

const IDENT = /^[a-z][a-z0-9._-]*$/;
const HOSTNAME =
  /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const PORT = /^(0|[1-9]\d{0,4})$/;
const BASE58 = /^[1-9A-HJ-NP-Za-km-z]{10,100}$/;

/** Protocols a registry multiaddr may use, and whether each takes a value. */
const MULTIADDR_PROTOCOLS: Record<string, ((v: string) => boolean) | null> = {
  ip4: (v) => IPV4.test(v),
  ip6: (v) => isIPv6(v) && !v.includes('%'),
  dns: (v) => HOSTNAME.test(v),
  dns4: (v) => HOSTNAME.test(v),
  dns6: (v) => HOSTNAME.test(v),
  dnsaddr: (v) => HOSTNAME.test(v),
  tcp: (v) => PORT.test(v) && Number(v) <= 65535,
  udp: (v) => PORT.test(v) && Number(v) <= 65535,
  p2p: (v) => BASE58.test(v),
  'quic-v1': null,
  tls: null,
  noise: null,
  ws: null,
  wss: null,
  webtransport: null,
  'p2p-circuit': null,
};
const HOST_PROTOCOLS = new Set(['ip4', 'ip6', 'dns', 'dns4', 'dns6', 'dnsaddr']);

/**
 * Checks the shape of one multiaddr string: known protocols, each with a well-formed value,
 * starting with a host; a trailing `/p2p/<id>` must name the subject itself.
 */
export function checkMultiaddr(addr: string, subjectPeerId: string): void {
  const bad = (why: string) =>
    invalid(`address ${JSON.stringify(addr.slice(0, 80))} is not a valid multiaddr: ${why}`);
  if (addr.length === 0 || addr.length > LIMITS.addressBytes)
    bad(`its length must be 1..${LIMITS.addressBytes}`);
  if (!/^[\x21-\x7e]+$/.test(addr)) bad('only printable ASCII is allowed');
  const parts = addr.split('/');
  if (parts[0] !== '') bad('it must start with "/"');
  const names: string[] = [];
  const values: string[] = [];
  for (let i = 1; i < parts.length;) {
    const name = parts[i]!;
    if (!(name in MULTIADDR_PROTOCOLS))
      bad(`unknown or unsupported protocol ${JSON.stringify(name)}`);
    const check = MULTIADDR_PROTOCOLS[name];
    if (check === null) {
      names.push(name);
      values.push('');
      i += 1;
      continue;
    }
    const value = parts[i + 1];
    if (value === undefined || !check!(value)) bad(`bad value for /${name}`);
    names.push(name);
    values.push(value!);
    i += 2;
  }
  if (!HOST_PROTOCOLS.has(names[0]!)) bad('it must start with /ip4, /ip6 or /dns…');
  if (names[names.length - 1] === 'p2p' && values[values.length - 1] !== subjectPeerId)
    bad("its final /p2p/ names another peer than the record's subject");
}

function checkIdent(what: string, v: string, max: number): void {
  if (v.length === 0 || v.length > max || !IDENT.test(v))
    invalid(
      `${what} ${JSON.stringify(v.slice(0, 80))} is not a valid identifier`,
      `lower-case letters, digits, ".", "_" and "-", starting with a letter, at most ${max} characters`,
    );
}

const cmpBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b);
const cmpStr = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Throws REGISTRY_INVALID_FIELD unless `c` is a record content within every limit. */
export function checkContent(c: RecordContent): void {
  if (!(c.subjectKey instanceof Uint8Array) || c.subjectKey.length !== 32)
    invalid('the subject key must be 32 bytes (Ed25519)');
  if (typeof c.prevSeq !== 'bigint' || c.prevSeq < 0n || c.prevSeq >= U64_MAX)
    invalid(`prevSeq ${String(c.prevSeq)} is out of range`);
  for (const [n, v] of [
    ['issuedAtMs', c.issuedAtMs],
    ['expiresAtMs', c.expiresAtMs],
  ] as const)
    if (!Number.isSafeInteger(v) || v < 0) invalid(`${n} must be a non-negative integer`);
  if (c.expiresAtMs <= c.issuedAtMs) invalid('expiresAtMs must be after issuedAtMs');
  if (c.expiresAtMs - c.issuedAtMs > LIMITS.lifetimeMs)
    invalid(`a record may live at most ${LIMITS.lifetimeMs} ms`);
  if (!Number.isInteger(c.flags) || c.flags < 0 || c.flags > 0xffffffff)
    invalid('flags must be a u32');
  checkIdent('role', c.role, LIMITS.roleBytes);
  if (c.capabilities.length > LIMITS.capabilities)
    invalid(`at most ${LIMITS.capabilities} capabilities`);
  c.capabilities.forEach((cap, i) => {
    checkIdent('capability', cap, LIMITS.capabilityBytes);
    if (i > 0 && cmpStr(c.capabilities[i - 1]!, cap) >= 0)
      invalid('capabilities must be sorted and distinct');
  });
  if (c.addresses.length > LIMITS.addresses) invalid(`at most ${LIMITS.addresses} addresses`);
  const peerId = peerIdFromEd25519(c.subjectKey);
  const seen = new Set<string>();
  for (const a of c.addresses) {
    checkMultiaddr(a, peerId);
    if (seen.has(a)) invalid(`address ${a} is listed twice`);
    seen.add(a);
  }
}

/** Builds the validator set; the quorum defaults to a majority of it. */
export function validatorSet(members: readonly Uint8Array[], quorum?: number): ValidatorSet {
  if (members.length === 0 || members.length > LIMITS.validators)
    invalid(`a validator set has 1..${LIMITS.validators} members, got ${members.length}`);
  const keys = members.map((k) => {
    if (k.length !== 32) invalid('a validator key is 32 bytes (Ed25519)');
    return Uint8Array.from(k);
  });
  keys.sort(cmpBytes);
  for (let i = 1; i < keys.length; i++)
    if (cmpBytes(keys[i - 1]!, keys[i]!) === 0) invalid('a validator is listed twice');
  const q = quorum ?? Math.floor(keys.length / 2) + 1;
  if (!Number.isInteger(q) || q < 1 || q > keys.length)
    invalid(`the quorum must be an integer in 1..${keys.length}, got ${String(quorum)}`);
  return { members: keys, quorum: q };
}

export const inSet = (set: ValidatorSet, key: Uint8Array) =>
  set.members.some((m) => cmpBytes(m, key) === 0);

// ---------------------------------------------------------------------------------------------
// Encoding

class Writer {
  private readonly chunks: Uint8Array[] = [];
  u8(v: number) {
    this.chunks.push(Uint8Array.of(v));
  }
  u16(v: number) {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    this.chunks.push(b);
  }
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    this.chunks.push(b);
  }
  u64(v: bigint) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    this.chunks.push(b);
  }
  bytes(v: Uint8Array) {
    this.chunks.push(v);
  }
  str8(v: string) {
    this.u8(v.length);
    this.chunks.push(Buffer.from(v, 'latin1'));
  }
  str16(v: string) {
    this.u16(v.length);
    this.chunks.push(Buffer.from(v, 'latin1'));
  }
  done(): Uint8Array {
    return new Uint8Array(Buffer.concat(this.chunks));
  }
}

const malformed = (why: string): never => {
  throw new RegistryError('REGISTRY_RECORD_MALFORMED', `registry record is malformed: ${why}`);
};

class Reader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}
  private take(n: number): Buffer {
    if (this.at + n > this.buf.length) malformed('truncated');
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  u8() {
    return this.take(1)[0]!;
  }
  u16() {
    return this.take(2).readUInt16BE();
  }
  u32() {
    return this.take(4).readUInt32BE();
  }
  u64() {
    return this.take(8).readBigUInt64BE();
  }
  bytes(n: number) {
    return new Uint8Array(this.take(n));
  }
  ascii(n: number) {
    const b = this.take(n);
    if (!b.every((c) => c >= 0x20 && c < 0x7f)) malformed('a string is not printable ASCII');
    return b.toString('latin1');
  }
  remaining() {
    return this.buf.length - this.at;
  }
  end() {
    if (this.at !== this.buf.length) malformed(`${this.buf.length - this.at} trailing byte(s)`);
  }
}

const u64ms = (v: bigint, what: string) => {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) malformed(`${what} out of range`);
  return Number(v);
};

export function encodeContent(c: RecordContent): Uint8Array {
  checkContent(c);
  const w = new Writer();
  w.u8(LAYOUT_VERSION);
  w.bytes(c.subjectKey);
  w.u64(c.prevSeq);
  w.u64(BigInt(c.issuedAtMs));
  w.u64(BigInt(c.expiresAtMs));
  w.u32(c.flags);
  w.str8(c.role);
  w.u8(c.capabilities.length);
  for (const cap of c.capabilities) w.str8(cap);
  w.u8(c.addresses.length);
  for (const a of c.addresses) w.str16(a);
  return w.done();
}

function readContent(r: Reader): RecordContent {
  if (r.u8() !== LAYOUT_VERSION) malformed('unknown content layout version');
  const subjectKey = r.bytes(32);
  const prevSeq = r.u64();
  const issuedAtMs = u64ms(r.u64(), 'issuedAt');
  const expiresAtMs = u64ms(r.u64(), 'expiresAt');
  const flags = r.u32();
  const roleLen = r.u8();
  if (roleLen > LIMITS.roleBytes) malformed('role too long');
  const role = r.ascii(roleLen);
  const nCaps = r.u8();
  if (nCaps > LIMITS.capabilities) malformed('too many capabilities');
  const capabilities: string[] = [];
  for (let i = 0; i < nCaps; i++) {
    const len = r.u8();
    if (len > LIMITS.capabilityBytes) malformed('capability too long');
    capabilities.push(r.ascii(len));
  }
  const nAddrs = r.u8();
  if (nAddrs > LIMITS.addresses) malformed('too many addresses');
  const addresses: string[] = [];
  for (let i = 0; i < nAddrs; i++) {
    const len = r.u16();
    if (len > LIMITS.addressBytes) malformed('address too long');
    addresses.push(r.ascii(len));
  }
  const content = {
    subjectKey,
    prevSeq,
    issuedAtMs,
    expiresAtMs,
    flags,
    role,
    capabilities,
    addresses,
  };
  try {
    checkContent(content);
  } catch (err) {
    if (err instanceof RegistryError) malformed(err.message);
    throw err;
  }
  return content;
}

/** Decodes content bytes, refusing anything but the canonical encoding of a valid content. */
export function decodeContent(bytes: Uint8Array): RecordContent {
  const r = new Reader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const c = readContent(r);
  r.end();
  return c;
}

const domain = (d: string) => Buffer.from(d, 'latin1');

/** What the subject signs. */
export function subjectMessage(contentBytes: Uint8Array): Uint8Array {
  return new Uint8Array(Buffer.concat([domain(RECORD_DOMAIN), contentBytes]));
}

/** What a validator countersigns: the content at one sequence number, under one epoch. */
export function countersignMessage(
  contentBytes: Uint8Array,
  seq: bigint,
  epoch: bigint = 0n,
): Uint8Array {
  const s = Buffer.alloc(8);
  s.writeBigUInt64BE(seq);
  if (epoch === 0n)
    return new Uint8Array(Buffer.concat([domain(COUNTERSIGN_DOMAIN), s, contentBytes]));
  const e = Buffer.alloc(8);
  e.writeBigUInt64BE(epoch);
  return new Uint8Array(Buffer.concat([domain(COUNTERSIGN_EPOCH_DOMAIN), e, s, contentBytes]));
}

const epochOf = (c: Countersignature) => c.epoch ?? 0n;

/** Countersignature order: by epoch, then by validator key. */
export function cmpCountersignatures(a: Countersignature, b: Countersignature): number {
  const ea = epochOf(a);
  const eb = epochOf(b);
  return ea < eb ? -1 : ea > eb ? 1 : cmpBytes(a.validator, b.validator);
}

/** The subject signs its content: a submission ready for the store. */
export function signSubmission(content: RecordContent, subject: RegistrySigner): Submission {
  if (cmpBytes(subject.publicKey, content.subjectKey) !== 0)
    invalid("the signing key is not the record's subject", 'a node signs only its own record');
  const contentBytes = encodeContent(content);
  return {
    content,
    contentBytes,
    subjectSignature: subject.sign(subjectMessage(contentBytes)),
    peerId: peerIdFromEd25519(content.subjectKey),
  };
}

export function encodeSubmission(s: Submission): Uint8Array {
  const w = new Writer();
  w.u8(LAYOUT_VERSION);
  w.u16(s.contentBytes.length);
  w.bytes(s.contentBytes);
  w.bytes(s.subjectSignature);
  return w.done();
}

/** The record as committed with `seq` and `countersignatures` (sorted here). */
export function withCommit(
  s: Submission,
  seq: bigint,
  countersignatures: readonly Countersignature[] = [],
): SignedRecord {
  if (seq !== s.content.prevSeq + 1n)
    throw new RegistryError(
      'REGISTRY_SEQ_CONFLICT',
      `${s.peerId}: a submission replacing seq ${s.content.prevSeq} can only be committed as seq ${s.content.prevSeq + 1n}, not ${seq}`,
    );
  const sorted = [...countersignatures].sort(cmpCountersignatures);
  return { ...s, seq, countersignatures: sorted };
}

export function encodeRecord(r: SignedRecord): Uint8Array {
  if (r.countersignatures.length > LIMITS.countersignatures) invalid('too many countersignatures');
  const epochs = r.countersignatures.some((c) => epochOf(c) !== 0n);
  const w = new Writer();
  w.u8(epochs ? EPOCH_LAYOUT_VERSION : LAYOUT_VERSION);
  w.u16(r.contentBytes.length);
  w.bytes(r.contentBytes);
  w.bytes(r.subjectSignature);
  w.u64(r.seq);
  w.u8(r.countersignatures.length);
  for (const c of r.countersignatures) {
    if (epochs) w.u64(epochOf(c));
    w.bytes(c.validator);
    w.bytes(c.signature);
  }
  if (r.flagsGrant) {
    checkGrantBinding(r.flagsGrant, r, invalid);
    writeGrant(w, r.flagsGrant);
  }
  return w.done();
}

function readSubmission(r: Reader, layouts: readonly number[] = [LAYOUT_VERSION]): Submission {
  if (!layouts.includes(r.u8())) malformed('unknown envelope layout version');
  const len = r.u16();
  const contentBytes = r.bytes(len);
  const content = decodeContent(contentBytes);
  const subjectSignature = r.bytes(64);
  return { content, contentBytes, subjectSignature, peerId: peerIdFromEd25519(content.subjectKey) };
}

function checkSize(bytes: Uint8Array): Reader {
  if (bytes.length > LIMITS.envelopeBytes)
    throw new RegistryError(
      'REGISTRY_RECORD_TOO_LARGE',
      `registry record of ${bytes.length} bytes is over the ${LIMITS.envelopeBytes}-byte limit`,
    );
  return new Reader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/** Decodes a submission (size and shape only; signatures are checked by verifySubmission). */
export function decodeSubmission(bytes: Uint8Array): Submission {
  const r = checkSize(bytes);
  const s = readSubmission(r);
  r.end();
  return s;
}

/** Decodes a committed record (size and shape only; signatures are checked by verifyRecord). */
export function decodeRecord(bytes: Uint8Array): SignedRecord {
  const r = checkSize(bytes);
  const epochs = bytes[0] === EPOCH_LAYOUT_VERSION;
  const s = readSubmission(r, [LAYOUT_VERSION, EPOCH_LAYOUT_VERSION]);
  const seq = r.u64();
  if (seq !== s.content.prevSeq + 1n) malformed(`seq ${seq} is not prevSeq + 1`);
  const n = r.u8();
  if (n > LIMITS.countersignatures) malformed('too many countersignatures');
  const countersignatures: Countersignature[] = [];
  for (let i = 0; i < n; i++) {
    const epoch = epochs ? r.u64() : undefined;
    const validator = r.bytes(32);
    const signature = r.bytes(64);
    const c = epoch === undefined ? { validator, signature } : { validator, signature, epoch };
    if (i > 0 && cmpCountersignatures(countersignatures[i - 1]!, c) >= 0)
      malformed('countersignatures are not sorted by (epoch, validator), or one is repeated');
    countersignatures.push(c);
  }
  if (epochs && countersignatures.every((c) => epochOf(c) === 0n))
    malformed('layout 2 is only for countersignatures of an epoch after 0');
  if (r.remaining() === 0) {
    r.end();
    return { ...s, seq, countersignatures };
  }
  const flagsGrant = readGrant(r);
  r.end();
  checkGrantBinding(flagsGrant, s, malformed);
  return { ...s, seq, countersignatures, flagsGrant };
}

// ---------------------------------------------------------------------------------------------
// Verification

const safeVerify = (key: Uint8Array, msg: Uint8Array, sig: Uint8Array) => {
  try {
    return verifyEd25519(key, msg, sig);
  } catch {
    return false;
  }
};

function checkSubjectSignature(s: Submission): void {
  if (!safeVerify(s.content.subjectKey, subjectMessage(s.contentBytes), s.subjectSignature))
    throw new RegistryError(
      'REGISTRY_BAD_SIGNATURE',
      `${s.peerId}: the subject's signature does not verify`,
    );
}

export interface TimeCheck {
  /** The verifier's wall clock, ms since the epoch. */
  readonly nowMs: number;
  /** How far in the future `issuedAt` may be (clock skew); default 5 minutes. */
  readonly maxSkewMs?: number;
}

function checkTime(c: RecordContent, peerId: string, t: TimeCheck): void {
  if (t.nowMs >= c.expiresAtMs)
    throw new RegistryError(
      'REGISTRY_RECORD_EXPIRED',
      `${peerId}: the record expired at ${new Date(c.expiresAtMs).toISOString()}`,
      'the node must submit a fresh record',
    );
  if (c.issuedAtMs > t.nowMs + (t.maxSkewMs ?? 5 * 60_000))
    throw new RegistryError(
      'REGISTRY_RECORD_NOT_YET_VALID',
      `${peerId}: the record is issued at ${new Date(c.issuedAtMs).toISOString()}, in the future`,
      "check the node's clock",
    );
}

/** A submission before the store takes it: size, the subject's signature, expiry. */
export function verifySubmission(bytes: Uint8Array, t: TimeCheck): Submission {
  const s = decodeSubmission(bytes);
  checkSubjectSignature(s);
  checkTime(s.content, s.peerId, t);
  return s;
}

export interface VerifyOptions extends TimeCheck {
  /** A lone set (its epoch, default 0), or the rules of a node's chain of set records. */
  readonly validators: ValidatorSet | AcceptRules;
  /** The highest sequence number already accepted for this subject, if any. */
  readonly lastSeq?: bigint;
}

const hexKey = (k: Uint8Array) => Buffer.from(k).toString('hex');

/**
 * The epoch at which `rec` is attested under `rules` (see AcceptRules), checking in this order:
 * every countersignature's epoch is known (REGISTRY_UNKNOWN_EPOCH), every countersigner of the
 * current or previous epoch is in that epoch's set (REGISTRY_UNKNOWN_SIGNER), then a quorum
 * (REGISTRY_NO_QUORUM). Signatures are not checked here (verifyRecord does, before).
 */
export function attestation(rec: SignedRecord, rules: AcceptRules): bigint {
  const { current, previous } = rules;
  for (const c of rec.countersignatures)
    if (epochOf(c) > current.epoch)
      throw new RegistryError(
        'REGISTRY_UNKNOWN_EPOCH',
        `${rec.peerId}: countersigned under validator-set epoch ${epochOf(c)}; this node knows epochs up to ${current.epoch}`,
        'the node fetches the validator-set records from the peer that sent it (sync)',
      );
  let now = 0;
  let before = 0;
  for (const c of rec.countersignatures) {
    const e = epochOf(c);
    if (e === current.epoch) {
      if (!inSet(current, c.validator))
        throw new RegistryError(
          'REGISTRY_UNKNOWN_SIGNER',
          `${rec.peerId}: countersigned by ${hexKey(c.validator)}, which is not in the validator set (epoch ${current.epoch})`,
        );
      now++;
    } else if (previous && e === previous.epoch) {
      if (!inSet(previous, c.validator))
        throw new RegistryError(
          'REGISTRY_UNKNOWN_SIGNER',
          `${rec.peerId}: countersigned by ${hexKey(c.validator)}, which is not in the validator set of epoch ${previous.epoch}`,
        );
      // A validator removed at the change has no power from then on, not even in the grace.
      if (inSet(current, c.validator)) before++;
    }
  }
  if (now >= current.quorum) return current.epoch;
  if (previous && before >= previous.quorum) return previous.epoch;
  throw new RegistryError(
    'REGISTRY_NO_QUORUM',
    `${rec.peerId}: ${now} countersignature(s) of epoch ${current.epoch}, the quorum is ${current.quorum} of ${current.members.length}` +
      (previous
        ? `; ${before} of epoch ${previous.epoch} by validators still in the set, its quorum is ${previous.quorum}`
        : ''),
  );
}

/**
 * What a peer runs before accepting a record, in this order: size (and shape), signatures
 * (the subject's and every countersignature), every countersigner in its epoch's validator
 * set, a quorum of one accepted epoch, expiry, sequence. Answers the record and the epoch it
 * is attested at; throws the RegistryError of the first check that fails.
 */
export function verifyRecordAt(
  bytes: Uint8Array,
  o: VerifyOptions,
): { record: SignedRecord; epoch: bigint } {
  const rec = decodeRecord(bytes);
  checkSubjectSignature(rec);
  for (const c of rec.countersignatures)
    if (
      !safeVerify(
        c.validator,
        countersignMessage(rec.contentBytes, rec.seq, epochOf(c)),
        c.signature,
      )
    )
      throw new RegistryError(
        'REGISTRY_BAD_SIGNATURE',
        `${rec.peerId}: the countersignature of ${hexKey(c.validator)} does not verify`,
      );
  const rules = rulesOf(o.validators);
  if (rec.flagsGrant) verifyFlagsGrantIn(rec.flagsGrant, rules.known);
  const epoch = attestation(rec, rules);
  checkTime(rec.content, rec.peerId, o);
  if (o.lastSeq !== undefined && rec.seq <= o.lastSeq)
    throw new RegistryError(
      'REGISTRY_SEQ_STALE',
      `${rec.peerId}: seq ${rec.seq} is not after the accepted seq ${o.lastSeq}`,
    );
  return { record: rec, epoch };
}

/** verifyRecordAt without the epoch. */
export function verifyRecord(bytes: Uint8Array, o: VerifyOptions): SignedRecord {
  return verifyRecordAt(bytes, o).record;
}

/** A validator's countersignature on a committed record, under `epoch` (default 0). */
export function countersign(
  rec: SignedRecord,
  validator: RegistrySigner,
  epoch: bigint = 0n,
): Countersignature {
  const c = {
    validator: Uint8Array.from(validator.publicKey),
    signature: validator.sign(countersignMessage(rec.contentBytes, rec.seq, epoch)),
  };
  return epoch === 0n ? c : { ...c, epoch };
}

// ---------------------------------------------------------------------------------------------
// Admin: changing a node's flags after its admission

/**
 * The only way a subject's flags change after its first admission: a quorum of validators
 * signs `"vigil/registry/flags-admin/v1\0" || key[32] || u64 baseSeq || u32 flags`, allowing
 * the subject's submission that replaces `baseSeq` to carry `flags`.
 *
 *   grant = u8 1 | key[32] | u64 baseSeq | u32 flags | u8 n (key[32] sig[64])×n
 */
export interface FlagsGrant {
  readonly subjectKey: Uint8Array;
  readonly baseSeq: bigint;
  readonly flags: number;
  readonly signatures: readonly Countersignature[];
}

export function flagsGrantMessage(subjectKey: Uint8Array, baseSeq: bigint, flags: number) {
  const w = new Writer();
  w.bytes(domain(FLAGS_ADMIN_DOMAIN));
  w.bytes(subjectKey);
  w.u64(baseSeq);
  w.u32(flags);
  return w.done();
}

const GRANT_LAYOUT_VERSION = 1;

/** A grant in canonical form: signatures sorted by validator, one per validator. */
export function canonicalGrant(g: FlagsGrant): FlagsGrant {
  const byKey = new Map<string, Countersignature>();
  for (const sig of g.signatures) byKey.set(Buffer.from(sig.validator).toString('hex'), sig);
  const signatures = [...byKey.values()].sort((a, b) => cmpBytes(a.validator, b.validator));
  if (signatures.length > LIMITS.validators) invalid('too many flags grant signatures');
  return {
    subjectKey: Uint8Array.from(g.subjectKey),
    baseSeq: g.baseSeq,
    flags: g.flags,
    signatures,
  };
}

function writeGrant(w: Writer, g: FlagsGrant): void {
  const c = canonicalGrant(g);
  w.u8(GRANT_LAYOUT_VERSION);
  w.bytes(c.subjectKey);
  w.u64(c.baseSeq);
  w.u32(c.flags);
  w.u8(c.signatures.length);
  for (const sig of c.signatures) {
    w.bytes(sig.validator);
    w.bytes(sig.signature);
  }
}

function readGrant(r: Reader): FlagsGrant {
  if (r.u8() !== GRANT_LAYOUT_VERSION) malformed('unknown flags grant layout version');
  const subjectKey = r.bytes(32);
  const baseSeq = r.u64();
  const flags = r.u32();
  const n = r.u8();
  if (n > LIMITS.validators) malformed('too many flags grant signatures');
  const signatures: Countersignature[] = [];
  for (let i = 0; i < n; i++) {
    const validator = r.bytes(32);
    const signature = r.bytes(64);
    if (i > 0 && cmpBytes(signatures[i - 1]!.validator, validator) >= 0)
      malformed('flags grant signatures are not sorted by validator, or one is repeated');
    signatures.push({ validator, signature });
  }
  return { subjectKey, baseSeq, flags, signatures };
}

/** A grant carried by a record must be for that very version. */
function checkGrantBinding(g: FlagsGrant, s: Submission, fail: (why: string) => never): void {
  if (
    cmpBytes(g.subjectKey, s.content.subjectKey) !== 0 ||
    g.baseSeq !== s.content.prevSeq ||
    g.flags !== s.content.flags
  )
    fail('the flags grant it carries is not for this subject, base seq and flags');
}

/** One validator's signature on a flags change. */
export function signFlagsGrant(
  subjectKey: Uint8Array,
  baseSeq: bigint,
  flags: number,
  validator: RegistrySigner,
): Countersignature {
  return {
    validator: Uint8Array.from(validator.publicKey),
    signature: validator.sign(flagsGrantMessage(subjectKey, baseSeq, flags)),
  };
}

/** Checks a flags grant's signatures, signers and quorum (the same order as verifyRecord). */
export function verifyFlagsGrant(g: FlagsGrant, set: ValidatorSet): void {
  const msg = flagsGrantMessage(g.subjectKey, g.baseSeq, g.flags);
  const seen = new Set<string>();
  for (const s of g.signatures)
    if (!safeVerify(s.validator, msg, s.signature))
      throw new RegistryError('REGISTRY_BAD_SIGNATURE', 'a flags grant signature does not verify');
  for (const s of g.signatures) {
    if (!inSet(set, s.validator))
      throw new RegistryError(
        'REGISTRY_UNKNOWN_SIGNER',
        `a flags grant is signed by ${Buffer.from(s.validator).toString('hex')}, not in the validator set`,
      );
    seen.add(Buffer.from(s.validator).toString('hex'));
  }
  if (seen.size < set.quorum)
    throw new RegistryError(
      'REGISTRY_NO_QUORUM',
      `a flags grant carries ${seen.size} distinct validator signature(s), the quorum is ${set.quorum}`,
      'a change of flags after admission needs a quorum of validators',
    );
}

/**
 * A grant carried by a record: a quorum of one of `sets` (grants name no epoch; a version
 * committed under an earlier set keeps the grant that set signed). The first set's refusal is
 * thrown when none has a quorum.
 */
export function verifyFlagsGrantIn(g: FlagsGrant, sets: readonly ValidatorSet[]): void {
  let first: unknown;
  for (const set of sets)
    try {
      verifyFlagsGrant(g, set);
      return;
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      first ??= err;
    }
  throw (
    first ??
    new RegistryError('REGISTRY_NO_QUORUM', 'no validator set to check a flags grant against')
  );
}

export { ed25519FromPeerId, peerIdFromEd25519 };
