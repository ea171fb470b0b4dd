import type { Position } from './position.js';

/** The duty families Vigil guards; each has its own position shape and rule module. */
export const DUTY_FAMILIES = ['cometbft', 'slot', 'grandpa'] as const;
export type DutyFamily = (typeof DUTY_FAMILIES)[number];

/**
 * The high-watermark of one (chain, key, duty family): the last position granted and what was
 * granted there, so an identical request can be answered again instead of refused.
 */
export interface Watermark {
  readonly family: DutyFamily;
  readonly position: Position;
  /** sha256 of the signed payload (or of the authorization identity). Absent after a bare import. */
  readonly payloadHash?: Uint8Array;
  /** The signature released for that payload. Absent for authorizations. */
  readonly signature?: Uint8Array;
  /** CometBFT only: the canonical sign bytes, needed for timestamp-only replays and export. */
  readonly signBytes?: Uint8Array;
  /** Which agent wrote it, for operators reading the store. */
  readonly writer?: string;
  /** Wall-clock time of the write in ms, informational only: no rule reads it. */
  readonly updatedAtMs?: number;
}
