/**
 * Strict decoding on top of scale-ts. scale-ts is a lenient decoder: it reads from the start of
 * the input's whole ArrayBuffer (not the view), ignores trailing bytes, accepts non-canonical
 * compact integers, returns short arrays when the input ends inside a fixed-size field and
 * crashes with a TypeError on an unknown enum tag. The guard must instead accept exactly one
 * well-formed message, so every codec here checks what scale-ts does not, and `decodeExact`
 * finishes with a re-encoding that must reproduce the input byte for byte.
 */
import {
  Bytes,
  compact,
  createCodec,
  createDecoder,
  u32,
  u64,
  u8,
  type Codec,
  type Decoder,
  type Encoder,
} from 'scale-ts';
import { InputError } from '../../errors.js';

export const U32_MAX = 0xffff_ffffn;
export const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** Raised inside a decoder; `decodeExact` turns it into an InputError naming the message. */
class Malformed extends Error {}

/** Refuses the bytes being decoded, from inside a decoder. */
export function malformed(message: string): never {
  throw new Malformed(message);
}

/** scale-ts keeps its read position in the field `i` of the Uint8Array subclass it decodes. */
function position(input: Uint8Array): number {
  const i = (input as Uint8Array & { i?: unknown }).i;
  if (typeof i !== 'number') throw new Error('scale-ts no longer exposes its read position');
  return i;
}

function need(input: Uint8Array, n: number, what: string): void {
  const at = position(input);
  if (at + n > input.length) {
    throw new Malformed(
      `${what} needs ${n} bytes at offset ${at}, but the input ends at ${input.length}`,
    );
  }
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** Exactly `n` bytes, refused on encode when the value has another length. */
export function fixedBytes(n: number, what: string): Codec<Uint8Array> {
  const inner = Bytes(n);
  const enc: Encoder<Uint8Array> = (value) => {
    if (!(value instanceof Uint8Array) || value.length !== n) {
      throw new InputError(`${what} must be ${n} bytes, got ${describeLength(value)}`);
    }
    return inner.enc(value);
  };
  const dec = createDecoder((input) => {
    need(input, n, what);
    return inner.dec(input);
  });
  return createCodec(enc, dec);
}

function describeLength(value: unknown): string {
  return value instanceof Uint8Array ? String(value.length) : typeof value;
}

/** A SCALE compact integer in its shortest form, as a bigint no larger than `max`. */
export function canonicalCompact(max: bigint, what: string): Codec<bigint> {
  const enc: Encoder<bigint> = (value) => {
    checkRange(value, max, what);
    return compact.enc(value);
  };
  const dec = createDecoder((input) => {
    const start = position(input);
    need(input, 1, what);
    const mode = input[start]! & 3;
    const length = mode === 0 ? 1 : mode === 1 ? 2 : mode === 2 ? 4 : (input[start]! >>> 2) + 5;
    need(input, length, what);
    const value = BigInt(compact.dec(input));
    const shortest = compact.enc(value);
    if (shortest.length !== length) {
      throw new Malformed(
        `${what} at offset ${start} is a non-canonical compact integer (${length} bytes where ${shortest.length} suffice)`,
      );
    }
    if (value > max) throw new Malformed(`${what} ${value} at offset ${start} exceeds ${max}`);
    return value;
  });
  return createCodec(enc, dec);
}

export function checkRange(value: unknown, max: bigint, what: string): asserts value is bigint {
  if (typeof value !== 'bigint')
    throw new InputError(`${what} must be a bigint, got ${typeof value}`);
  if (value < 0n || value > max) throw new InputError(`${what} ${value} is outside 0..${max}`);
}

/** A fixed-width little-endian integer as a bigint (u32 or u64 on the wire). */
export function fixedUint(width: 4 | 8, what: string): Codec<bigint> {
  const max = width === 4 ? U32_MAX : U64_MAX;
  const enc: Encoder<bigint> = (value) => {
    checkRange(value, max, what);
    return width === 4 ? u32.enc(Number(value)) : u64.enc(value);
  };
  const dec = createDecoder((input) => {
    need(input, width, what);
    return width === 4 ? BigInt(u32.dec(input)) : u64.dec(input);
  });
  return createCodec(enc, dec);
}

/** `Vec<u8>`: compact length then the bytes; the length may not run past the input. */
export function lengthPrefixedBytes(what: string): Codec<Uint8Array> {
  const length = canonicalCompact(BigInt(Number.MAX_SAFE_INTEGER), `${what} length`);
  const enc: Encoder<Uint8Array> = (value) => {
    if (!(value instanceof Uint8Array)) throw new InputError(`${what} must be a Uint8Array`);
    return Bytes().enc(value);
  };
  const dec = createDecoder((input) => {
    const n = Number(length.dec(input));
    need(input, n, what);
    return Bytes(n).dec(input);
  });
  return createCodec(enc, dec);
}

/** `Vec<T>` whose declared count cannot exceed the bytes left (each item takes at least one). */
export function boundedVector<T>(item: Codec<T>, what: string): Codec<T[]> {
  const count = canonicalCompact(BigInt(Number.MAX_SAFE_INTEGER), `${what} count`);
  const enc: Encoder<T[]> = (values) => {
    if (!Array.isArray(values)) throw new InputError(`${what} must be an array`);
    return concat([count.enc(BigInt(values.length)), ...values.map((v) => item.enc(v))]);
  };
  const dec = createDecoder((input) => {
    const n = Number(count.dec(input));
    need(input, n, `${what} of ${n} items`);
    const out: T[] = [];
    for (let k = 0; k < n; k++) out.push(item.dec(input));
    return out;
  });
  return createCodec(enc, dec);
}

/**
 * An enum as SCALE writes it: one tag byte, then the variant. scale-ts' own Enum crashes on a
 * tag it does not know; here an unknown tag is a precise refusal.
 */
export function taggedUnion<T>(
  what: string,
  variants: ReadonlyMap<number, Decoder<T>>,
  encode: (value: T) => [tag: number, body: Uint8Array],
): Codec<T> {
  const enc: Encoder<T> = (value) => {
    const [tag, body] = encode(value);
    return concat([u8.enc(tag), body]);
  };
  const dec = createDecoder((input) => {
    const at = position(input);
    need(input, 1, `${what} tag`);
    const tag = u8.dec(input);
    const variant = variants.get(tag);
    if (!variant) {
      const known = [...variants.keys()].join(', ');
      throw new Malformed(`${what} at offset ${at} has unknown tag ${tag} (known: ${known})`);
    }
    return variant(input);
  });
  return createCodec(enc, dec);
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * Decodes exactly one `what` from `bytes`: no byte missing, none left over, and the encoding
 * canonical (re-encoding the value gives back the input).
 */
/** One wrapped decoder per codec: building it on every call cost a visible share of a parse. */
const withLength = new WeakMap<Codec<unknown>, (bytes: Uint8Array) => readonly [unknown, number]>();

function decoderWithLength<T>(codec: Codec<T>): (bytes: Uint8Array) => readonly [T, number] {
  let run = withLength.get(codec as Codec<unknown>);
  if (run === undefined) {
    run = createDecoder((input) => {
      const v = codec.dec(input);
      return [v, position(input)] as const;
    });
    withLength.set(codec as Codec<unknown>, run);
  }
  return run as (bytes: Uint8Array) => readonly [T, number];
}

export function decodeExact<T>(what: string, codec: Codec<T>, bytes: Uint8Array): T {
  if (!(bytes instanceof Uint8Array)) throw new InputError(`${what}: expected bytes`);
  // A fresh buffer: scale-ts decodes from offset 0 of the underlying ArrayBuffer.
  const own = new Uint8Array(bytes);
  let value: T;
  let consumed: number;
  try {
    [value, consumed] = decoderWithLength(codec)(own);
  } catch (err) {
    if (err instanceof Malformed) throw new InputError(`${what}: ${err.message}`);
    if (err instanceof InputError) throw err;
    // DataView reads past the end raise RangeError; nothing else is expected here.
    if (err instanceof RangeError) throw new InputError(`${what}: the input ends early`);
    throw err;
  }
  if (consumed !== bytes.length) {
    throw new InputError(
      `${what}: ${bytes.length - consumed} trailing bytes after a ${consumed}-byte message`,
    );
  }
  const again = codec.enc(value);
  if (Buffer.compare(Buffer.from(again), Buffer.from(bytes)) !== 0) {
    throw new InputError(`${what}: the encoding is not canonical`);
  }
  return value;
}
