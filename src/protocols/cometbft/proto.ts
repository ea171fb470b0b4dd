/**
 * The small part of the protobuf wire format that CometBFT's canonical sign bytes and privval
 * messages use: varints, 64-bit fixed integers and length-delimited fields. Decoding is strict:
 * every read is bounds-checked and malformed input raises ProtoError, never a partial value.
 */
import { InputError } from '../../errors.js';

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_BYTES = 2;
export const WIRE_FIXED32 = 5;

export class ProtoError extends InputError {
  constructor(message: string) {
    super(message, undefined, 'PROTO_MALFORMED');
  }
}

const U64_MASK = (1n << 64n) - 1n;

export class ProtoReader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** Unsigned varint of at most 64 bits. */
  uvarint(): bigint {
    let result = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoError('truncated varint');
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) {
        if (i === 9 && b > 1) throw new ProtoError('varint overflows 64 bits');
        return result;
      }
    }
    throw new ProtoError('varint longer than 10 bytes');
  }

  /** A varint read as a JavaScript number, for lengths and tags; refuses values above `max`. */
  uvarintNumber(max = Number.MAX_SAFE_INTEGER): number {
    const v = this.uvarint();
    if (v > BigInt(max)) throw new ProtoError(`value ${v} exceeds ${max}`);
    return Number(v);
  }

  /** int64 encoded as a two's-complement varint. */
  int64(): bigint {
    return BigInt.asIntN(64, this.uvarint());
  }

  sfixed64(): bigint {
    if (this.end - this.pos < 8) throw new ProtoError('truncated fixed64');
    const view = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8);
    this.pos += 8;
    return view.getBigInt64(0, true);
  }

  fixed32(): number {
    if (this.end - this.pos < 4) throw new ProtoError('truncated fixed32');
    const view = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4);
    this.pos += 4;
    return view.getUint32(0, true);
  }

  tag(): { field: number; wire: number } {
    const key = this.uvarintNumber(0xffffffff);
    const field = key >>> 3;
    if (field === 0) throw new ProtoError('field number 0');
    return { field, wire: key & 7 };
  }

  /** The bounds of a length-delimited field's content; the reader moves past it. */
  bytesRange(): { start: number; end: number } {
    const len = this.uvarintNumber();
    // Checked after the prefix is read: the prefix's own bytes are not part of the content.
    if (len > this.end - this.pos) throw new ProtoError('length-delimited field runs past its end');
    const start = this.pos;
    this.pos += len;
    return { start, end: this.pos };
  }

  bytes(): Uint8Array {
    const { start, end } = this.bytesRange();
    return this.buf.subarray(start, end);
  }

  string(): string {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes());
    } catch (err) {
      if (err instanceof ProtoError) throw err;
      throw new ProtoError('string field is not valid UTF-8');
    }
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.uvarint();
        return;
      case WIRE_FIXED64:
        if (this.end - this.pos < 8) throw new ProtoError('truncated fixed64');
        this.pos += 8;
        return;
      case WIRE_BYTES:
        this.bytesRange();
        return;
      case WIRE_FIXED32:
        if (this.end - this.pos < 4) throw new ProtoError('truncated fixed32');
        this.pos += 4;
        return;
      default:
        throw new ProtoError(`unsupported wire type ${wire}`);
    }
  }
}

export class ProtoWriter {
  private chunks: number[] = [];

  uvarint(value: bigint | number): this {
    let v = BigInt(value) & U64_MASK;
    while (v >= 0x80n) {
      this.chunks.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.chunks.push(Number(v));
    return this;
  }

  private key(field: number, wire: number): this {
    return this.uvarint((field << 3) | wire);
  }

  /** proto3 int64/int32/enum field; zero is omitted as proto3 requires. */
  int64Field(field: number, value: bigint | number): this {
    if (BigInt(value) === 0n) return this;
    return this.key(field, WIRE_VARINT).uvarint(BigInt.asUintN(64, BigInt(value)));
  }

  uint32Field(field: number, value: number): this {
    if (value === 0) return this;
    return this.key(field, WIRE_VARINT).uvarint(value);
  }

  boolField(field: number, value: boolean): this {
    if (!value) return this;
    return this.key(field, WIRE_VARINT).uvarint(1);
  }

  sfixed64Field(field: number, value: bigint): this {
    if (value === 0n) return this;
    this.key(field, WIRE_FIXED64);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigInt64(0, value, true);
    this.chunks.push(...b);
    return this;
  }

  /** bytes/string field; empty is omitted unless `always` (non-nullable embedded messages). */
  bytesField(field: number, value: Uint8Array, always = false): this {
    if (value.length === 0 && !always) return this;
    this.key(field, WIRE_BYTES).uvarint(value.length);
    for (const b of value) this.chunks.push(b);
    return this;
  }

  stringField(field: number, value: string): this {
    return this.bytesField(field, new TextEncoder().encode(value));
  }

  /** An embedded message; `always` keeps an empty one (gogoproto non-nullable fields). */
  messageField(field: number, message: Uint8Array | undefined, always = false): this {
    if (message === undefined) return this;
    return this.bytesField(field, message, always);
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

/** Prefixes a message with its uvarint length, as CometBFT's MarshalDelimited does. */
export function lengthDelimited(message: Uint8Array): Uint8Array {
  const prefix = new ProtoWriter().uvarint(message.length).finish();
  const out = new Uint8Array(prefix.length + message.length);
  out.set(prefix);
  out.set(message, prefix.length);
  return out;
}
