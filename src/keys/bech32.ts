/**
 * Bech32 (BIP-173), the encoding of Cosmos addresses (`cosmosvalcons1…`). Written here because
 * no maintained bech32 library is among Vigil's dependencies yet (@scure/base would be the one
 * to adopt); it is checked against BIP-173's own test vectors and against published Cosmos
 * addresses. Only the original bech32 checksum: Cosmos does not use bech32m.
 */
import { InputError } from '../errors.js';

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
/** BIP-173's length limit; Cosmos addresses and legacy pubkeys stay well within it. */
const MAX_LENGTH = 90;

function polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = (((chk & 0x1ffffff) << 5) ^ v) >>> 0;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk = (chk ^ GENERATOR[i]!) >>> 0;
  }
  return chk;
}

function hrpExpand(hrp: string): number[] {
  const codes = [...hrp].map((c) => c.charCodeAt(0));
  return [...codes.map((c) => c >>> 5), 0, ...codes.map((c) => c & 31)];
}

function checksum(hrp: string, words: number[]): number[] {
  const mod = polymod([...hrpExpand(hrp), ...words, 0, 0, 0, 0, 0, 0]) ^ 1;
  return Array.from({ length: 6 }, (_, i) => (mod >>> (5 * (5 - i))) & 31);
}

/** Regroups bits (8 → 5 to encode, 5 → 8 to decode); decoding refuses non-zero padding. */
function convertBits(data: ArrayLike<number>, from: number, to: number, pad: boolean): number[] {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const max = (1 << to) - 1;
  for (let i = 0; i < data.length; i++) {
    acc = (acc << from) | data[i]!;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >>> bits) & max);
    }
    acc &= (1 << bits) - 1;
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & max);
  } else if (bits >= from || acc !== 0) {
    throw new InputError('bech32: invalid padding');
  }
  return out;
}

function checkHrp(hrp: string): void {
  if (hrp.length === 0 || !/^[\x21-\x7e]+$/.test(hrp)) {
    throw new InputError(
      `bech32 prefix ${JSON.stringify(hrp)} is not 1 or more printable ASCII characters`,
      'use a chain prefix such as cosmosvalcons',
      'INVALID_BECH32_PREFIX',
    );
  }
  if (hrp !== hrp.toLowerCase()) {
    throw new InputError(
      `bech32 prefix ${JSON.stringify(hrp)} is not lower case`,
      `use ${hrp.toLowerCase()}`,
      'INVALID_BECH32_PREFIX',
    );
  }
}

export function bech32Encode(hrp: string, bytes: Uint8Array): string {
  checkHrp(hrp);
  const words = convertBits(bytes, 8, 5, true);
  const out = `${hrp}1${[...words, ...checksum(hrp, words)].map((w) => CHARSET[w]).join('')}`;
  if (out.length > MAX_LENGTH) {
    throw new InputError(
      `bech32: ${out.length} characters, more than ${MAX_LENGTH}`,
      'use a shorter prefix',
      'INVALID_BECH32_PREFIX',
    );
  }
  return out;
}

/** Decodes and checks a bech32 string; throws InputError on any defect (BIP-173's rules). */
export function bech32Decode(text: string): { prefix: string; bytes: Uint8Array } {
  if (text.length > MAX_LENGTH) throw new InputError(`bech32: longer than ${MAX_LENGTH}`);
  if (!/^[\x21-\x7e]+$/.test(text)) throw new InputError('bech32: character out of range');
  if (text !== text.toLowerCase() && text !== text.toUpperCase())
    throw new InputError('bech32: mixed case');
  const lower = text.toLowerCase();
  const sep = lower.lastIndexOf('1');
  if (sep < 1 || sep + 7 > lower.length)
    throw new InputError('bech32: no prefix, or too short a checksum');
  const hrp = lower.slice(0, sep);
  const words = [...lower.slice(sep + 1)].map((c) => CHARSET.indexOf(c));
  if (words.some((w) => w < 0)) throw new InputError('bech32: invalid data character');
  if (polymod([...hrpExpand(hrp), ...words]) !== 1) throw new InputError('bech32: bad checksum');
  return { prefix: hrp, bytes: new Uint8Array(convertBits(words.slice(0, -6), 5, 8, false)) };
}
