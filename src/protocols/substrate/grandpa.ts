/**
 * The bytes a Substrate GRANDPA voter signs with its ed25519 key.
 *
 * polkadot-sdk `sp_consensus_grandpa::localized_payload_with_buffer` encodes the tuple
 * `(message, round, set_id)` with `round: u64` and `set_id: u64`. `message` is the
 * `finality_grandpa::Message` enum, whose SCALE tags follow its declaration order: Prevote = 0,
 * Precommit = 1, PrimaryPropose = 2; each variant is `{ target_hash, target_number }` with the
 * chain's hash (32 bytes on every Substrate relay chain) and its BlockNumber as a fixed-width
 * integer (not compact): 53 bytes in all with u32 block numbers, 57 with u64.
 */
import { createCodec, createDecoder, type Codec, type Decoder } from 'scale-ts';
import { InputError } from '../../errors.js';
import { concat, decodeExact, fixedBytes, fixedUint, taggedUnion } from './scale.js';

export type GrandpaBlockNumber = 'u32' | 'u64';
export type GrandpaVoteStage = 'propose' | 'prevote' | 'precommit';

export interface GrandpaVote {
  readonly stage: GrandpaVoteStage;
  /** 32 bytes. */
  readonly targetHash: Uint8Array;
  readonly targetNumber: bigint;
  /** u64 */
  readonly round: bigint;
  /** u64 */
  readonly setId: bigint;
}

const STAGE_TAGS: ReadonlyMap<GrandpaVoteStage, number> = new Map([
  ['prevote', 0],
  ['precommit', 1],
  ['propose', 2],
]);

type Target = { stage: GrandpaVoteStage; targetHash: Uint8Array; targetNumber: bigint };

function payloadCodec(blockNumber: GrandpaBlockNumber): Codec<GrandpaVote> {
  const hash = fixedBytes(32, 'target hash');
  const number = fixedUint(blockNumber === 'u32' ? 4 : 8, `target number (${blockNumber})`);
  const variant =
    (stage: GrandpaVoteStage): Decoder<Target> =>
    (input) => ({ stage, targetHash: hash.dec(input), targetNumber: number.dec(input) });
  const message = taggedUnion<Target>(
    'GRANDPA message',
    new Map([...STAGE_TAGS].map(([stage, tag]) => [tag, variant(stage)])),
    (t) => {
      const tag = STAGE_TAGS.get(t.stage);
      if (tag === undefined) throw new InputError(`unknown GRANDPA vote stage ${String(t.stage)}`);
      return [tag, concat([hash.enc(t.targetHash), number.enc(t.targetNumber)])];
    },
  );
  const round = fixedUint(8, 'round');
  const setId = fixedUint(8, 'set id');
  return createCodec(
    (vote: GrandpaVote) =>
      concat([message.enc(vote), round.enc(vote.round), setId.enc(vote.setId)]),
    createDecoder((input) => {
      const m = message.dec(input);
      return { ...m, round: round.dec(input), setId: setId.dec(input) };
    }),
  );
}

const CODECS: Record<GrandpaBlockNumber, Codec<GrandpaVote>> = {
  u32: payloadCodec('u32'),
  u64: payloadCodec('u64'),
};

function codecFor(blockNumber: GrandpaBlockNumber): Codec<GrandpaVote> {
  const codec = CODECS[blockNumber];
  if (!codec)
    throw new InputError(
      `GRANDPA block number type must be u32 or u64, got ${String(blockNumber)}`,
    );
  return codec;
}

/** The bytes Substrate's GRANDPA voter signs with its ed25519 key: SCALE of (message, round, set_id). */
export function decodeGrandpaSignPayload(
  bytes: Uint8Array,
  blockNumber: GrandpaBlockNumber = 'u32',
): GrandpaVote {
  const codec = codecFor(blockNumber);
  const expected = 1 + 32 + (blockNumber === 'u32' ? 4 : 8) + 8 + 8;
  if (bytes instanceof Uint8Array && bytes.length !== expected) {
    throw new InputError(
      `GRANDPA sign payload (${blockNumber} block numbers) is ${expected} bytes, got ${bytes.length}`,
    );
  }
  const vote = decodeExact(`GRANDPA sign payload`, codec, bytes);
  return {
    stage: vote.stage,
    targetHash: vote.targetHash,
    targetNumber: vote.targetNumber,
    round: vote.round,
    setId: vote.setId,
  };
}

export function encodeGrandpaSignPayload(
  vote: GrandpaVote,
  blockNumber: GrandpaBlockNumber = 'u32',
): Uint8Array {
  if (typeof vote !== 'object' || vote === null)
    throw new InputError('a GRANDPA vote must be an object');
  return codecFor(blockNumber)[0](vote);
}
