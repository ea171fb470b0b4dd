/**
 * GRANDPA-style finality votes: (set_id, round, stage) compared lexicographically, so rounds
 * start again from zero only when the authority set id rises.
 */
import { InputError } from '../errors.js';
import type { Decision } from './decision.js';
import { decideHighWatermark, type GuardMode } from './high-watermark.js';
import { checkPositionComponent, type Position } from './position.js';
import type { Watermark } from './watermark.js';

/** In-round order of a GRANDPA voter's messages. */
export const GrandpaStage = { propose: 1n, prevote: 2n, precommit: 3n } as const;
export type GrandpaStageName = keyof typeof GrandpaStage;

export interface GrandpaRequest {
  readonly setId: bigint;
  readonly round: bigint;
  readonly stage: GrandpaStageName;
  readonly payloadHash: Uint8Array;
  readonly mode: GuardMode;
}

export function grandpaPosition(setId: bigint, round: bigint, stage: GrandpaStageName): Position {
  const s = GrandpaStage[stage];
  if (s === undefined) throw new InputError(`unknown GRANDPA stage ${JSON.stringify(stage)}`);
  return [checkPositionComponent('setId', setId), checkPositionComponent('round', round), s];
}

export function decideGrandpa(current: Watermark | undefined, req: GrandpaRequest): Decision {
  const position = grandpaPosition(req.setId, req.round, req.stage);
  return decideHighWatermark(current, position, req.payloadHash, req.mode);
}
