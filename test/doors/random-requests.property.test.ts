/**
 * Property: against a store that already holds a signed CometBFT proposal, GRANDPA vote and
 * BABE block seal, random requests through any door — any key id, family, chain id, claimed
 * position and payload, including each protocol's encoding of a conflicting message and bytes
 * built to parse as another protocol — never produce two valid signatures by one key over
 * different messages at one position, in any protocol's reading of the signed bytes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { encodeGrandpaSignPayload } from '../../src/protocols/substrate/grandpa.js';
import {
  encodeAuraPreDigest,
  encodeBabePreDigest,
  encodeHeader,
} from '../../src/protocols/substrate/header.js';
import { proposalSignBytes, voteSignBytes } from '../../src/protocols/cometbft/sign-bytes.js';
import { COSMOS, conflictsAmong, openDoors, WESTEND, type Doors } from './fixtures.js';

const h32 = (tag: string) => new Uint8Array(createHash('sha256').update(tag).digest());
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const TIME = { seconds: 1_750_000_000n, nanos: 0 };

const cometProposal = (height: bigint, round: bigint, block: string, chainId: string) =>
  proposalSignBytes({
    height,
    round,
    polRound: -1n,
    blockId: { hash: h32(block), partSetHeader: { total: 1, hash: h32(`${block}/p`) } },
    timestamp: TIME,
    chainId,
  });

const cometVote = (type: number, height: bigint, round: bigint, block: string, chainId: string) =>
  voteSignBytes({
    type,
    height,
    round,
    blockId: { hash: h32(block), partSetHeader: { total: 1, hash: h32(`${block}/p`) } },
    timestamp: TIME,
    chainId,
  });

const header = (engine: 'BABE' | 'aura', slot: bigint, content: string) =>
  encodeHeader({
    parentHash: h32(`parent|${content}`),
    number: 7n,
    stateRoot: h32(`state|${content}`),
    extrinsicsRoot: h32(`x|${content}`),
    digest: [
      {
        kind: 'preRuntime',
        engine,
        data:
          engine === 'BABE'
            ? encodeBabePreDigest({ type: 'secondaryPlain', authorityIndex: 0, slot })
            : encodeAuraPreDigest(slot),
      },
    ],
  });

const stage = fc.constantFrom('propose' as const, 'prevote' as const, 'precommit' as const);
const content = fc.constantFrom('A', 'B', 'C', 'D');
const chainId = fc.constantFrom(COSMOS, WESTEND, 'cosmos-2', 'invented', 'x'.repeat(50));

/** Payloads at the seeded positions (conflicting or identical) and at fresh ones. */
const payload = fc.oneof(
  fc
    .tuple(fc.constantFrom(9n, 10n, 11n), fc.constantFrom(0n, 1n), content, chainId)
    .map(([h, r, b, c]) => cometProposal(h, r, b, c.length <= 50 ? c : COSMOS)),
  fc
    .tuple(fc.constantFrom(1, 2), fc.constantFrom(10n, 11n), content)
    .map(([t, h, b]) => cometVote(t, h, 0n, b, COSMOS)),
  fc
    .tuple(fc.constantFrom(0n, 1n, 2n), fc.constantFrom(4n, 5n, 6n), stage, content, fc.boolean())
    .map(([setId, round, st, c, wide]) =>
      encodeGrandpaSignPayload(
        { stage: st, targetHash: h32(c), targetNumber: 9n, round, setId },
        wide ? 'u64' : 'u32',
      ),
    ),
  fc
    .tuple(
      fc.constantFrom('BABE' as const, 'aura' as const),
      fc.constantFrom(99n, 100n, 101n),
      content,
    )
    .map(([e, slot, c]) => header(e, slot, c)),
  fc.uint8Array({ minLength: 0, maxLength: 120 }),
);

const claimedPosition = fc.option(
  fc.oneof(
    fc.record({ slot: fc.constantFrom('99', '100', '101') }),
    fc.record({
      setId: fc.constantFrom('0', '1'),
      round: fc.constantFrom('5', '6'),
      stage,
    }),
    fc.record({
      height: fc.constantFrom('10', '11'),
      round: fc.constantFrom('0', '1'),
      step: fc.constantFrom('proposal', 'prevote', 'precommit'),
    }),
  ),
  { nil: undefined },
);

/** Anything at all: every field drawn on its own, so most combinations are hostile. */
const hostile = fc.record({
  door: fc.constantFrom('http-sign' as const, 'http-authorize' as const, 'guard' as const),
  keyId: fc.constantFrom('val', 'gran', 'babe', 'auth', 'PUB:val', 'PUB:gran', 'PUB:babe', 'nope'),
  family: fc.constantFrom('cometbft' as const, 'slot' as const, 'grandpa' as const),
  chainId,
  payload,
  position: claimedPosition,
  nodeId: fc.constantFrom('node-1', 'node-2'),
});

/** A request an honest node of that key would send, at a seeded or a fresh position: these
 * are granted or replayed, so the property also watches real signatures leave. */
const coherent = fc.oneof(
  fc.tuple(fc.constantFrom(10n, 11n, 12n), fc.constantFrom(0n, 1n), content).map(([h, r, b]) => ({
    door: 'http-sign' as const,
    keyId: 'val',
    family: 'cometbft' as const,
    chainId: COSMOS,
    payload: cometProposal(h, r, b, COSMOS),
    position: undefined,
    nodeId: 'node-1',
  })),
  fc.tuple(fc.constantFrom(5n, 6n, 7n), stage, content).map(([round, st, c]) => ({
    door: 'guard' as const,
    keyId: 'gran',
    family: 'grandpa' as const,
    chainId: WESTEND,
    payload: encodeGrandpaSignPayload({
      stage: st,
      targetHash: h32(c),
      targetNumber: 9n,
      round,
      setId: 1n,
    }),
    position: undefined,
    nodeId: 'node-1',
  })),
  fc.tuple(fc.constantFrom(100n, 101n, 102n, 103n), content).map(([slot, c]) => ({
    door: 'http-sign' as const,
    keyId: 'babe',
    family: 'slot' as const,
    chainId: WESTEND,
    payload: header('BABE', slot, c),
    position: { slot: String(slot) },
    nodeId: 'node-1',
  })),
);

const request = fc.oneof(hostile, coherent);

let doors: Doors;

before(async () => {
  doors = await openDoors();
  const seeded = [
    {
      family: 'cometbft',
      keyId: 'val',
      chainId: COSMOS,
      payload: cometProposal(10n, 0n, 'A', COSMOS),
    },
    {
      family: 'grandpa',
      keyId: 'gran',
      chainId: WESTEND,
      payload: encodeGrandpaSignPayload({
        stage: 'prevote',
        targetHash: h32('A'),
        targetNumber: 9n,
        round: 5n,
        setId: 1n,
      }),
    },
    { family: 'slot', keyId: 'babe', chainId: WESTEND, payload: header('BABE', 100n, 'A') },
  ];
  for (const s of seeded) {
    const r = await doors.post('/v1/sign', { ...s, payload: hex(s.payload) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
});

after(async () => {
  await doors.close();
});

test('random requests through every door never yield two signed messages at one position', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 12 }), async (requests) => {
      for (const r of requests) {
        const keyId = r.keyId.startsWith('PUB:')
          ? doors.publicKeyHex(r.keyId.slice(4) as 'val')
          : r.keyId;
        if (r.door === 'guard') {
          const result = await doors.guard.sign({
            chainId: r.chainId,
            keyId,
            payload: r.payload,
            claims: { family: r.family },
          });
          if (result.outcome !== 'refused' && result.signature)
            doors.released.push({
              door: 'guard',
              keyHex: doors.keys.resolve(keyId)!.scopeKeyId,
              payload: r.payload,
              signature: result.signature,
            });
          continue;
        }
        const body = {
          family: r.family,
          keyId,
          chainId: r.chainId,
          payload: hex(r.payload),
          ...(r.position ? { position: r.position } : {}),
          ...(r.door === 'http-authorize' ? { nodeId: r.nodeId } : {}),
        };
        const res = await doors.post(r.door === 'http-sign' ? '/v1/sign' : '/v1/authorize', body);
        assert.ok(res.status < 500, `${res.status}: ${JSON.stringify(res.body)}`);
        if (r.door === 'http-authorize')
          assert.equal(res.body.signature, undefined, 'an authorization never carries a signature');
      }
      assert.deepEqual(conflictsAmong(doors.released), []);
    }),
    { numRuns: 80 },
  );
  // Not vacuous: besides the three seeded ones, fresh positions were signed (and replays released).
  assert.ok(doors.released.length > 10, `only ${doors.released.length} signatures released`);
});
