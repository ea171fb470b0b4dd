/**
 * What a sign request from a CometBFT node may carry, checked at the privval door before the
 * guard sees it, so a node sending numbers no CometBFT node produces gets a precise
 * RemoteSignerError and nothing reaches the store. Pure: no I/O.
 *
 * The codec already refuses a round that is not an int32 and a timestamp outside the range
 * below while decoding; these rules state the same bounds for the values the door hands on,
 * so they hold whatever built the request.
 */
import type { Proposal, Vote } from '../../protocols/cometbft/privval.js';
import { SignedMsgType, type Timestamp } from '../../protocols/cometbft/sign-bytes.js';

/** Vote.round and Proposal.round are `int32` in CometBFT's types.proto. */
export const MAX_ROUND = 0x7fffffffn;
/** int64, the proto type of heights. */
export const MAX_HEIGHT = (1n << 63n) - 1n;

/**
 * google.protobuf.Timestamp's valid range, 0001-01-01T00:00:00Z up to 9999-12-31T23:59:59.
 * 999999999Z. A node encodes vote and proposal times with gogoproto's stdtime, whose
 * `TimestampProto` refuses anything outside it (gogo/protobuf types/timestamp.go,
 * `validateTimestamp`: seconds in [-62135596800, 253402300800), nanos in [0, 1e9)), so no
 * CometBFT node can send it. The lower end is Go's zero time, which a node does encode for an
 * unset time, so it stays allowed.
 */
export const MIN_TIMESTAMP_SECONDS = -62135596800n;
export const MAX_TIMESTAMP_SECONDS = 253402300799n;

function timestampProblem(t: Timestamp): string | undefined {
  if (t.seconds < MIN_TIMESTAMP_SECONDS || t.seconds > MAX_TIMESTAMP_SECONDS)
    return `timestamp seconds ${t.seconds} outside 0001-01-01..9999-12-31 (${MIN_TIMESTAMP_SECONDS}..${MAX_TIMESTAMP_SECONDS})`;
  if (!Number.isInteger(t.nanos) || t.nanos < 0 || t.nanos > 999_999_999)
    return `timestamp nanos ${t.nanos} outside 0..999999999`;
  return undefined;
}

function heightRoundProblem(height: bigint, round: bigint): string | undefined {
  if (height < 1n || height > MAX_HEIGHT) return `height ${height} outside 1..${MAX_HEIGHT}`;
  if (round < 0n || round > MAX_ROUND) return `round ${round} outside 0..${MAX_ROUND} (int32)`;
  return undefined;
}

/** Why a vote cannot be signed as it stands, or undefined when its fields are in range. */
export function voteProblem(vote: Vote): string | undefined {
  if (vote.type !== SignedMsgType.Prevote && vote.type !== SignedMsgType.Precommit)
    return `vote type ${vote.type} is neither prevote (1) nor precommit (2)`;
  return heightRoundProblem(vote.height, vote.round) ?? timestampProblem(vote.timestamp);
}

/** Why a proposal cannot be signed as it stands, or undefined when its fields are in range. */
export function proposalProblem(p: Proposal): string | undefined {
  if (p.type !== SignedMsgType.Proposal) return `proposal type ${p.type} is not 32`;
  const hr = heightRoundProblem(p.height, p.round);
  if (hr) return hr;
  // CometBFT's Proposal.ValidateBasic: -1 ≤ pol_round < round.
  if (p.polRound < -1n || p.polRound >= p.round)
    return `pol_round ${p.polRound} outside -1..${p.round - 1n} (it must precede round ${p.round})`;
  return timestampProblem(p.timestamp);
}
