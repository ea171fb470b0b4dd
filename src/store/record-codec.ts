/**
 * The stored form of a watermark, the same bytes in every engine: JSON with positions as
 * decimal strings and binary fields as hex. A record that does not decode is treated as the
 * store being unusable, never as "no watermark".
 */
import { VigilError } from '../errors.js';
import { DUTY_FAMILIES, type Watermark } from '../guard/watermark.js';
import { MAX_POSITION } from '../guard/position.js';

const RECORD_VERSION = 1;

export class CorruptRecordError extends VigilError {
  constructor(where: string, detail: string) {
    super(
      'STORE_RECORD_CORRUPT',
      `watermark record ${where} is unreadable: ${detail}`,
      'inspect it with `vigil state show`; Vigil refuses to sign for this scope until it is repaired',
    );
  }
}

export function encodeRecord(w: Watermark): string {
  const hex = (b: Uint8Array | undefined) =>
    b === undefined ? undefined : Buffer.from(b).toString('hex');
  return JSON.stringify({
    v: RECORD_VERSION,
    family: w.family,
    position: w.position.map(String),
    payloadHash: hex(w.payloadHash),
    signature: hex(w.signature),
    signBytes: hex(w.signBytes),
    writer: w.writer,
    updatedAtMs: w.updatedAtMs,
  });
}

export function decodeRecord(text: string, where: string): Watermark {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new CorruptRecordError(where, 'not JSON');
  }
  const r = raw as Record<string, unknown>;
  const fail = (d: string): never => {
    throw new CorruptRecordError(where, d);
  };
  if (typeof r !== 'object' || r === null) fail('not an object');
  if (r.v !== RECORD_VERSION) fail(`unknown record version ${String(r.v)}`);
  if (!DUTY_FAMILIES.includes(r.family as never)) fail(`unknown family ${String(r.family)}`);
  if (!Array.isArray(r.position) || r.position.length === 0) fail('position missing');
  const position = (r.position as unknown[]).map((p) => {
    if (typeof p !== 'string' || !/^\d{1,19}$/.test(p) || BigInt(p) > MAX_POSITION)
      fail(`bad position component ${String(p)}`);
    return BigInt(p as string);
  });
  const bytes = (name: string): Uint8Array | undefined => {
    const v = r[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || !/^([0-9a-f]{2})*$/.test(v)) fail(`${name} is not hex`);
    return new Uint8Array(Buffer.from(v as string, 'hex'));
  };
  const payloadHash = bytes('payloadHash');
  const signature = bytes('signature');
  const signBytes = bytes('signBytes');
  return {
    family: r.family as Watermark['family'],
    position,
    ...(payloadHash ? { payloadHash } : {}),
    ...(signature ? { signature } : {}),
    ...(signBytes ? { signBytes } : {}),
    ...(typeof r.writer === 'string' ? { writer: r.writer } : {}),
    ...(typeof r.updatedAtMs === 'number' ? { updatedAtMs: r.updatedAtMs } : {}),
  };
}
