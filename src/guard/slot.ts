/** Slot-based block production (BABE, Aura, Cardano): one block per slot per key, slots only rise. */
import type { Decision } from './decision.js';
import { decideHighWatermark, type GuardMode } from './high-watermark.js';
import { checkPositionComponent, type Position } from './position.js';
import type { Watermark } from './watermark.js';

export interface SlotRequest {
  readonly slot: bigint;
  readonly payloadHash: Uint8Array;
  readonly mode: GuardMode;
}

export function slotPosition(slot: bigint): Position {
  return [checkPositionComponent('slot', slot)];
}

export function decideSlot(current: Watermark | undefined, req: SlotRequest): Decision {
  return decideHighWatermark(current, slotPosition(req.slot), req.payloadHash, req.mode);
}
