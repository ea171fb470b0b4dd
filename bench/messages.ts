/**
 * Real messages for the benches: the guard parses what it signs, so a bench that fed it opaque
 * bytes would measure less than an agent does. GRANDPA votes (Ed25519, 53 bytes) keep the
 * figures comparable with the raw-write baselines, which sign with Ed25519 too.
 */
import { proposalSignBytes } from '../src/protocols/cometbft/sign-bytes.js';
import { encodeGrandpaSignPayload } from '../src/protocols/substrate/grandpa.js';

export const BENCH_CHAIN = 'bench';

/** The n-th prevote of one voter: set 0, round n, a target that changes with n. */
export function grandpaPrevote(n: bigint): Uint8Array {
  const target = new Uint8Array(32);
  new DataView(target.buffer).setBigUint64(0, n);
  return encodeGrandpaSignPayload({
    stage: 'prevote',
    targetHash: target,
    targetNumber: n % 4_000_000_000n,
    round: n,
    setId: 0n,
  });
}

/** A CometBFT proposal for `chainId` at `height`, round 0. */
export function cometbftProposal(chainId: string, height: bigint): Uint8Array {
  const hash = new Uint8Array(32);
  new DataView(hash.buffer).setBigUint64(0, height);
  return proposalSignBytes({
    height,
    round: 0n,
    polRound: -1n,
    blockId: { hash, partSetHeader: { total: 1, hash } },
    timestamp: { seconds: 1_750_000_000n + height, nanos: 0 },
    chainId,
  });
}
