/**
 * The privval door: sign requests carrying numbers no CometBFT node produces, or for a chain
 * this signer does not serve, are answered with a RemoteSignerError, never reach the guard and
 * leave the SQLite store file byte-for-byte as it was; the edges of the allowed ranges are
 * signed. Over a real SecretConnection from a scripted node.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  emptyProposal,
  emptyVote,
  encodePrivvalMessage,
  type PrivvalMessage,
  type PrivvalProtocol,
  type Proposal,
  type Vote,
} from '../../../src/protocols/cometbft/privval.js';
import {
  MAX_ROUND,
  MAX_TIMESTAMP_SECONDS,
  MIN_TIMESTAMP_SECONDS,
  proposalProblem,
  voteProblem,
} from '../../../src/chains/cometbft/request-rules.js';
import { GO_ZERO_TIME, type Timestamp } from '../../../src/protocols/cometbft/sign-bytes.js';
import { CHAIN_ID, makeAgent, scriptedNode, storeRows, tempDir, type Agent } from './fixtures.js';

const sha = (n: number) => new Uint8Array(32).fill(n);
const blockId = { hash: sha(1), partSetHeader: { total: 1, hash: sha(2) } };
const T0: Timestamp = { seconds: 1_700_000_000n, nanos: 0 };

const vote = (over: Partial<Vote>): Vote => ({
  ...emptyVote(),
  type: 1,
  height: 100n,
  round: 0n,
  blockId,
  timestamp: T0,
  validatorAddress: new Uint8Array(20),
  ...over,
});

const proposal = (over: Partial<Proposal>): Proposal => ({
  ...emptyProposal(),
  type: 32,
  height: 100n,
  round: 0n,
  polRound: -1n,
  blockId,
  timestamp: T0,
  ...over,
});

/** Requests a CometBFT node never sends, each with what the error must say. */
const hostile: Array<[string, PrivvalMessage, RegExp]> = [
  [
    'round 2^31 (not an int32)',
    { kind: 'signVoteRequest', chainId: CHAIN_ID, vote: vote({ round: MAX_ROUND + 1n }) },
    /Vote\.round 2147483648 is not an int32/,
  ],
  [
    'round 2^40',
    { kind: 'signVoteRequest', chainId: CHAIN_ID, vote: vote({ round: 1n << 40n }) },
    /not an int32/,
  ],
  [
    'negative round',
    { kind: 'signVoteRequest', chainId: CHAIN_ID, vote: vote({ round: -1n }) },
    /round -1 outside 0\.\.2147483647/,
  ],
  [
    'height 0',
    { kind: 'signVoteRequest', chainId: CHAIN_ID, vote: vote({ height: 0n }) },
    /height 0 outside 1\.\./,
  ],
  [
    'negative height',
    { kind: 'signVoteRequest', chainId: CHAIN_ID, vote: vote({ height: -5n }) },
    /height -5 outside 1\.\./,
  ],
  [
    'timestamp in year 10000',
    {
      kind: 'signVoteRequest',
      chainId: CHAIN_ID,
      vote: vote({ timestamp: { seconds: MAX_TIMESTAMP_SECONDS + 1n, nanos: 0 } }),
    },
    /Timestamp\.seconds outside years 1\.\.9999/,
  ],
  [
    'timestamp before year 1',
    {
      kind: 'signVoteRequest',
      chainId: CHAIN_ID,
      vote: vote({ timestamp: { seconds: MIN_TIMESTAMP_SECONDS - 1n, nanos: 0 } }),
    },
    /Timestamp\.seconds outside years 1\.\.9999/,
  ],
  [
    'nanos 10^9',
    {
      kind: 'signVoteRequest',
      chainId: CHAIN_ID,
      vote: vote({ timestamp: { seconds: T0.seconds, nanos: 1_000_000_000 } }),
    },
    /Timestamp\.nanos out of range/,
  ],
  [
    'negative nanos',
    {
      kind: 'signVoteRequest',
      chainId: CHAIN_ID,
      vote: vote({ timestamp: { seconds: T0.seconds, nanos: -1 } }),
    },
    /Timestamp\.nanos out of range/,
  ],
  [
    'vote for another chain',
    { kind: 'signVoteRequest', chainId: 'other-chain', vote: vote({}) },
    /signs for chain "vigil-test-1" on this link, not "other-chain"/,
  ],
  [
    'proposal round 2^31',
    {
      kind: 'signProposalRequest',
      chainId: CHAIN_ID,
      proposal: proposal({ round: MAX_ROUND + 1n }),
    },
    /Proposal\.round 2147483648 is not an int32/,
  ],
  [
    'proposal height 0',
    { kind: 'signProposalRequest', chainId: CHAIN_ID, proposal: proposal({ height: 0n }) },
    /height 0 outside 1\.\./,
  ],
  [
    'proposal pol_round equal to round',
    {
      kind: 'signProposalRequest',
      chainId: CHAIN_ID,
      proposal: proposal({ round: 3n, polRound: 3n }),
    },
    /pol_round 3 outside -1\.\.2/,
  ],
  [
    'proposal timestamp in year 10000',
    {
      kind: 'signProposalRequest',
      chainId: CHAIN_ID,
      proposal: proposal({ timestamp: { seconds: MAX_TIMESTAMP_SECONDS + 1n, nanos: 0 } }),
    },
    /Timestamp\.seconds outside years 1\.\.9999/,
  ],
  [
    'proposal for another chain',
    { kind: 'signProposalRequest', chainId: 'other-chain', proposal: proposal({}) },
    /not "other-chain"/,
  ],
];

for (const protocol of ['v0.38', 'v1'] as const satisfies readonly PrivvalProtocol[]) {
  describe(`privval door (${protocol})`, () => {
    let dir: ReturnType<typeof tempDir>;
    let agent: Agent;
    let node: Awaited<ReturnType<typeof scriptedNode>>;
    let storePath: string;
    before(async () => {
      dir = tempDir();
      storePath = join(dir.path, 'store.db');
      node = await scriptedNode(protocol);
      agent = makeAgent(dir.path, 'a');
      await agent.start([node.address], protocol);
      await node.ready;
      // One granted vote, so the store holds a watermark the hostile requests could move.
      const first = await node.request({
        kind: 'signVoteRequest',
        chainId: CHAIN_ID,
        vote: vote({ height: 50n }),
      });
      assert.ok(first.kind === 'signedVoteResponse' && !first.error);
    });
    after(async () => {
      await agent.close();
      node.close();
      dir.remove();
    });

    for (const [name, request, message] of hostile) {
      it(`${name}: RemoteSignerError code 1, guard not asked, store file unchanged`, async () => {
        const rowsBefore = storeRows(storePath);
        const decisionsBefore = agent.decisions.length;
        const response = await node.requestBytes(encodePrivvalMessage(request, protocol));
        const expectedKind =
          request.kind === 'signVoteRequest' ? 'signedVoteResponse' : 'signedProposalResponse';
        assert.equal(response.kind, expectedKind);
        const r = response as Extract<
          PrivvalMessage,
          { kind: 'signedVoteResponse' | 'signedProposalResponse' }
        >;
        assert.equal(r.error?.code, 1, JSON.stringify(r.error));
        assert.match(r.error!.description, message);
        const signature = 'vote' in r ? r.vote.signature : r.proposal.signature;
        assert.equal(signature.length, 0);
        assert.equal(agent.decisions.length, decisionsBefore);
        assert.equal(storeRows(storePath), rowsBefore);
        // The link stays up for the next (honest) request.
        assert.deepEqual(await node.request({ kind: 'pingRequest' }), { kind: 'pingResponse' });
      });
    }

    it('signs at the edges: round 2^31-1, Go zero time, 9999-12-31T23:59:59.999999999Z', async () => {
      const edges: Vote[] = [
        vote({ height: 200n, round: MAX_ROUND }),
        vote({ height: 201n, timestamp: GO_ZERO_TIME }),
        vote({ height: 202n, timestamp: { seconds: MAX_TIMESTAMP_SECONDS, nanos: 999_999_999 } }),
      ];
      for (const v of edges) {
        const rowsBefore = storeRows(storePath);
        const r = await node.request({ kind: 'signVoteRequest', chainId: CHAIN_ID, vote: v });
        assert.ok(r.kind === 'signedVoteResponse');
        assert.equal(r.error, undefined, JSON.stringify(r.error));
        assert.equal(r.vote.signature.length, 64);
        assert.notEqual(storeRows(storePath), rowsBefore, 'a grant is written to the store');
      }
      const p = await node.request({
        kind: 'signProposalRequest',
        chainId: CHAIN_ID,
        proposal: proposal({ height: 203n, round: MAX_ROUND, polRound: MAX_ROUND - 1n }),
      });
      assert.ok(p.kind === 'signedProposalResponse' && !p.error && p.proposal.signature.length);
    });

    it('drops a link whose undecodable message is not a sign request', async () => {
      // A PubKeyRequest (field 1) whose chain id is a varint instead of a string.
      await assert.rejects(node.requestBytes(Uint8Array.of(0x0a, 0x02, 0x08, 0x01)), /closed/);
    });
  });
}

describe('door rules (pure)', () => {
  const inRangeTimestamp = fc.record({
    seconds: fc.bigInt(MIN_TIMESTAMP_SECONDS, MAX_TIMESTAMP_SECONDS),
    nanos: fc.integer({ min: 0, max: 999_999_999 }),
  });
  const validVote = fc.record({
    type: fc.constantFrom(1, 2),
    height: fc.bigInt(1n, (1n << 63n) - 1n),
    round: fc.bigInt(0n, MAX_ROUND),
    timestamp: inRangeTimestamp,
  });

  it('accepts every vote and proposal inside the bounds', () => {
    fc.assert(
      fc.property(validVote, (v) => voteProblem(vote(v)) === undefined),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(validVote, fc.bigInt(-1n, MAX_ROUND), (v, pol) => {
        const round = v.round > pol ? v.round : pol + 1n;
        if (round > MAX_ROUND) return true;
        return (
          proposalProblem(
            proposal({ height: v.height, round, polRound: pol, timestamp: v.timestamp }),
          ) === undefined
        );
      }),
      { numRuns: 500 },
    );
  });

  it('refuses a vote with any one field out of bounds, naming that field', () => {
    const outOfRange = fc.oneof(
      fc.bigInt(-(1n << 63n), 0n).map((height) => [{ height }, /^height /] as const),
      fc
        .oneof(fc.bigInt(-(1n << 63n), -1n), fc.bigInt(MAX_ROUND + 1n, 1n << 63n))
        .map((round) => [{ round }, /^round /] as const),
      fc
        .oneof(
          fc.bigInt(-(1n << 63n), MIN_TIMESTAMP_SECONDS - 1n),
          fc.bigInt(MAX_TIMESTAMP_SECONDS + 1n, (1n << 63n) - 1n),
        )
        .map((seconds) => [{ timestamp: { seconds, nanos: 0 } }, /^timestamp seconds /] as const),
      fc
        .oneof(fc.integer({ max: -1 }), fc.integer({ min: 1_000_000_000 }))
        .map((nanos) => [{ timestamp: { seconds: 0n, nanos } }, /^timestamp nanos /] as const),
      fc
        .integer()
        .filter((t) => t !== 1 && t !== 2)
        .map((type) => [{ type }, /^vote type /] as const),
    );
    fc.assert(
      fc.property(validVote, outOfRange, (v, [bad, message]) => {
        const problem = voteProblem(vote({ ...v, ...bad }));
        return problem !== undefined && message.test(problem);
      }),
      { numRuns: 1000 },
    );
  });
});
