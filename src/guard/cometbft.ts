/**
 * CometBFT consensus signing with FilePV semantics: (height, round, step) never goes back; at
 * the same position the same sign bytes get the stored signature, and sign bytes that differ
 * only in their timestamp get the stored signature and the stored timestamp.
 */
import { InputError } from '../errors.js';
import {
  parseSignBytes,
  signBytesWithoutTimestamp,
  SignedMsgType,
  type ParsedSignBytes,
} from '../protocols/cometbft/sign-bytes.js';
import { refuse, type Decision } from './decision.js';
import { decideHighWatermark, sameBytes } from './high-watermark.js';
import { checkPositionComponent, type Position } from './position.js';
import type { Watermark } from './watermark.js';

export const CometStep = { proposal: 1n, prevote: 2n, precommit: 3n } as const;
export type CometStepName = keyof typeof CometStep;

export function stepOfSignBytes(parsed: ParsedSignBytes): CometStepName {
  if (parsed.type === SignedMsgType.Proposal) return 'proposal';
  return parsed.type === SignedMsgType.Prevote ? 'prevote' : 'precommit';
}

export interface CometbftRequest {
  readonly chainId: string;
  readonly height: bigint;
  readonly round: bigint;
  readonly step: CometStepName;
  readonly signBytes: Uint8Array;
  readonly parsed: ParsedSignBytes;
  readonly payloadHash: Uint8Array;
  /** Whether a vote extension is to be signed with this vote. */
  readonly withExtension: boolean;
}

export function cometbftPosition(height: bigint, round: bigint, step: CometStepName): Position {
  const s = CometStep[step];
  if (s === undefined) throw new InputError(`unknown CometBFT step ${JSON.stringify(step)}`);
  return [checkPositionComponent('height', height), checkPositionComponent('round', round), s];
}

/** CometBFT's Vote.Round and Proposal.Round are int32 (types.proto); canonical sign bytes
 * widen them to sfixed64, so anything above this was not made by a CometBFT node. */
export const MAX_COMET_ROUND = 2n ** 31n - 1n;
/** The range google.protobuf.Timestamp allows (0001-01-01T00:00:00Z to
 * 9999-12-31T23:59:59.999999999Z, per timestamp.proto); CometBFT's Go time stays inside it. */
export const MIN_TIMESTAMP_SECONDS = -62_135_596_800n;
export const MAX_TIMESTAMP_SECONDS = 253_402_300_799n;

/** What no CometBFT node would ask for, whatever the watermark says. */
function outOfRange(p: ParsedSignBytes): string | undefined {
  if (p.height < 1n) return `height ${p.height} is not a CometBFT height (they start at 1)`;
  if (p.round < 0n || p.round > MAX_COMET_ROUND)
    return `round ${p.round} does not fit CometBFT's int32 round`;
  if (p.polRound !== undefined && (p.polRound < -1n || p.polRound >= p.round))
    return `proposal pol_round ${p.polRound} must be -1 or below its round ${p.round}`;
  const t = p.timestamp.seconds;
  if (t < MIN_TIMESTAMP_SECONDS || t > MAX_TIMESTAMP_SECONDS)
    return `timestamp ${t} s is outside the protobuf Timestamp range (years 1 to 9999)`;
  return undefined;
}

/** Checks that the declared position is the one the sign bytes themselves carry. */
function inconsistency(req: CometbftRequest): string | undefined {
  const p = req.parsed;
  const range = outOfRange(p);
  if (range) return range;
  if (p.chainId !== req.chainId)
    return `sign bytes are for chain ${JSON.stringify(p.chainId)}, not ${JSON.stringify(req.chainId)}`;
  if (p.height !== req.height)
    return `sign bytes carry height ${p.height}, request says ${req.height}`;
  if (p.round !== req.round) return `sign bytes carry round ${p.round}, request says ${req.round}`;
  if (stepOfSignBytes(p) !== req.step)
    return `sign bytes are a ${stepOfSignBytes(p)}, request says ${req.step}`;
  if (req.withExtension && (req.step !== 'precommit' || p.blockIdNil)) {
    return 'vote extensions are signed only with a precommit for a block (not nil)';
  }
  return undefined;
}

function differsOnlyInTimestamp(stored: Watermark, req: CometbftRequest): boolean {
  if (stored.signBytes === undefined) return false;
  let storedParsed: ParsedSignBytes;
  try {
    storedParsed = parseSignBytes(stored.signBytes);
  } catch {
    return false;
  }
  return sameBytes(
    signBytesWithoutTimestamp(stored.signBytes, storedParsed),
    signBytesWithoutTimestamp(req.signBytes, req.parsed),
  );
}

export function decideCometbft(current: Watermark | undefined, req: CometbftRequest): Decision {
  const position = cometbftPosition(req.height, req.round, req.step);
  const problem = inconsistency(req);
  if (problem) return refuse('invalid_request', problem);
  return decideHighWatermark(current, position, req.payloadHash, 'sign', (stored) =>
    stored.signature !== undefined && differsOnlyInTimestamp(stored, req)
      ? { outcome: 'replay', stored, useStoredTimestamp: true }
      : undefined,
  );
}
