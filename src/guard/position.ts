import { InputError } from '../errors.js';

/** Heights, rounds, slots and set ids are signed 64-bit on every chain we guard. */
export const MAX_POSITION = (1n << 63n) - 1n;

/** A point in a duty's order: a tuple compared lexicographically, e.g. (height, round, step). */
export type Position = readonly bigint[];

export function checkPositionComponent(name: string, value: bigint): bigint {
  if (typeof value !== 'bigint') throw new InputError(`${name} must be an integer`);
  if (value < 0n) throw new InputError(`${name} must not be negative (got ${value})`);
  if (value > MAX_POSITION) throw new InputError(`${name} must be at most 2^63-1 (got ${value})`);
  return value;
}

/** Parses a decimal string (as positions travel in JSON) into a checked bigint. */
export function parsePositionComponent(name: string, text: string): bigint {
  if (!/^(0|[1-9][0-9]{0,18})$/.test(text)) {
    throw new InputError(`${name} must be a decimal integer string without sign or leading zeros`);
  }
  return checkPositionComponent(name, BigInt(text));
}

export function comparePositions(a: Position, b: Position): -1 | 0 | 1 {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    // A missing component sorts first, so (h) < (h, 0).
    const x = a[i] ?? -1n;
    const y = b[i] ?? -1n;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

export function formatPosition(p: Position): string {
  return `(${p.join(', ')})`;
}
