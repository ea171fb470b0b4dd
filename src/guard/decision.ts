import type { Watermark } from './watermark.js';

export const REFUSAL_REASONS = [
  'regression',
  'conflict',
  'invalid_request',
  'store_behind_local',
  'store_unavailable',
  'fenced',
  'unknown_key',
  /** The key is bound to another protocol than the request's. */
  'wrong_protocol',
  /** The key does not serve the request's chain. */
  'unknown_chain',
  /** The store is not the one this agent's watermarks were built against. */
  'store_identity',
  /** This agent's local watermark file cannot be written (full, read-only or gone). */
  'local_unavailable',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/**
 * What a rule answers. `grant`: a new position, sign and record it. `replay`: the request is
 * the one already granted at this position; answer with what was released then.
 */
export type Decision =
  | { readonly outcome: 'grant' }
  | {
      readonly outcome: 'replay';
      readonly stored: Watermark;
      /** CometBFT: set when only the timestamp differed; the caller must use the stored one. */
      readonly useStoredTimestamp?: boolean;
    }
  | { readonly outcome: 'refuse'; readonly reason: RefusalReason; readonly message: string };

export function refuse(reason: RefusalReason, message: string): Decision {
  return { outcome: 'refuse', reason, message };
}
