import { refuse, type Decision } from './decision.js';
import { comparePositions, formatPosition, type Position } from './position.js';
import type { Watermark } from './watermark.js';

/** `sign` releases a signature; `authorize` grants a duty to a node that signs by itself. */
export type GuardMode = 'sign' | 'authorize';

export function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The rule every family shares: positions only move forward; at the stored position only the
 * request that was already granted is answered again, with what was released then.
 * `sameRequestAtPosition` lets a family widen "the same request" (CometBFT's timestamps).
 */
export function decideHighWatermark(
  current: Watermark | undefined,
  position: Position,
  payloadHash: Uint8Array,
  mode: GuardMode,
  sameRequestAtPosition?: (stored: Watermark) => Decision | undefined,
): Decision {
  if (current === undefined) return { outcome: 'grant' };
  const order = comparePositions(position, current.position);
  if (order > 0) return { outcome: 'grant' };
  if (order < 0) {
    return refuse(
      'regression',
      `position ${formatPosition(position)} is below the watermark ${formatPosition(current.position)}`,
    );
  }
  if (sameBytes(current.payloadHash, payloadHash)) {
    if (mode === 'authorize' || current.signature !== undefined) {
      return { outcome: 'replay', stored: current };
    }
    return refuse(
      'conflict',
      `position ${formatPosition(position)} was recorded without a signature that could be released again`,
    );
  }
  const widened = mode === 'sign' ? sameRequestAtPosition?.(current) : undefined;
  if (widened) return widened;
  return refuse(
    'conflict',
    `a different ${mode === 'sign' ? 'payload was signed' : 'request was granted'} at ${formatPosition(position)}`,
  );
}
