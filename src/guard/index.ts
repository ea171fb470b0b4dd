/**
 * The guard's rules: pure functions from (stored watermark, request) to a decision. No I/O
 * happens here; the signer runs them inside the store's transaction.
 */
import { InputError } from '../errors.js';
import { cometbftPosition, decideCometbft, type CometbftRequest } from './cometbft.js';
import { refuse, type Decision } from './decision.js';
import { decideGrandpa, grandpaPosition, type GrandpaRequest } from './grandpa.js';
import type { Position } from './position.js';
import { decideSlot, slotPosition, type SlotRequest } from './slot.js';
import type { Watermark } from './watermark.js';

export type RuleRequest =
  | ({ readonly family: 'cometbft' } & CometbftRequest)
  | ({ readonly family: 'slot' } & SlotRequest)
  | ({ readonly family: 'grandpa' } & GrandpaRequest);

export function decide(current: Watermark | undefined, req: RuleRequest): Decision {
  try {
    switch (req.family) {
      case 'cometbft':
        return decideCometbft(current, req);
      case 'slot':
        return decideSlot(current, req);
      case 'grandpa':
        return decideGrandpa(current, req);
    }
  } catch (err) {
    if (err instanceof InputError) return refuse('invalid_request', err.message);
    throw err;
  }
}

export * from './decision.js';
export * from './position.js';
export * from './watermark.js';
export {
  CometStep,
  cometbftPosition,
  type CometStepName,
  type CometbftRequest,
} from './cometbft.js';
export {
  GrandpaStage,
  grandpaPosition,
  type GrandpaStageName,
  type GrandpaRequest,
} from './grandpa.js';
export { slotPosition, type SlotRequest } from './slot.js';
export type { GuardMode } from './high-watermark.js';

/** The stored position a request would move the watermark to. */
export function positionOf(req: RuleRequest): Position {
  switch (req.family) {
    case 'cometbft':
      return cometbftPosition(req.height, req.round, req.step);
    case 'slot':
      return slotPosition(req.slot);
    case 'grandpa':
      return grandpaPosition(req.setId, req.round, req.stage);
  }
}
export { describePosition, positionComponents } from './describe.js';
