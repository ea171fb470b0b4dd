/** GRANDPA sign payloads: real signed precommits, exact layout, strict decoding. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { ed25519 } from '@noble/curves/ed25519.js';
import { InputError } from '../../../src/errors.js';
import {
  decodeGrandpaSignPayload,
  encodeGrandpaSignPayload,
  type GrandpaBlockNumber,
  type GrandpaVote,
} from '../../../src/protocols/substrate/grandpa.js';
import { vectorsDir } from '../../helpers/paths.js';

const fromHex = (s: string) => new Uint8Array(Buffer.from(s.replace(/^0x/, ''), 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

interface PrecommitVector {
  blockNumber: GrandpaBlockNumber;
  vote: {
    stage: 'precommit';
    targetHash: string;
    targetNumber: string;
    round: string;
    setId: string;
  };
  signPayload: string;
  signatures: { authority: string; signature: string }[];
}

const vector = JSON.parse(
  readFileSync(join(vectorsDir(), 'substrate', 'grandpa-precommits.json'), 'utf8'),
) as PrecommitVector;

const vectorVote: GrandpaVote = {
  stage: vector.vote.stage,
  targetHash: fromHex(vector.vote.targetHash),
  targetNumber: BigInt(vector.vote.targetNumber),
  round: BigInt(vector.vote.round),
  setId: BigInt(vector.vote.setId),
};

test('real precommit signatures verify over the payload we encode (smoldot commit vector)', () => {
  const payload = encodeGrandpaSignPayload(vectorVote, vector.blockNumber);
  assert.equal(hex(payload), vector.signPayload.slice(2));
  assert.ok(vector.signatures.length >= 3);
  for (const s of vector.signatures) {
    assert.ok(
      ed25519.verify(fromHex(s.signature), payload, fromHex(s.authority)),
      `signature by ${s.authority} does not verify over our payload`,
    );
  }
  // The same signatures fail on any other stage, round or set id: the fields are really signed.
  for (const other of [
    { ...vectorVote, stage: 'prevote' as const },
    { ...vectorVote, round: vectorVote.round + 1n },
    { ...vectorVote, setId: vectorVote.setId - 1n },
  ]) {
    const s = vector.signatures[0]!;
    assert.ok(
      !ed25519.verify(fromHex(s.signature), encodeGrandpaSignPayload(other), fromHex(s.authority)),
    );
  }
  assert.deepEqual(decodeGrandpaSignPayload(fromHex(vector.signPayload)), vectorVote);
});

test('stage tags follow finality_grandpa::Message: prevote 0, precommit 1, propose 2', () => {
  const base = { ...vectorVote, targetHash: new Uint8Array(32).fill(0xab) };
  const cases: [GrandpaVote['stage'], number][] = [
    ['prevote', 0],
    ['precommit', 1],
    ['propose', 2],
  ];
  for (const [stage, tag] of cases) {
    const bytes = encodeGrandpaSignPayload({ ...base, stage });
    assert.equal(bytes[0], tag);
    assert.equal(bytes.length, 53);
    assert.equal(decodeGrandpaSignPayload(bytes).stage, stage);
  }
  // u64 block numbers: the target number takes 8 bytes, the rest is unchanged.
  const wide = encodeGrandpaSignPayload({ ...base, targetNumber: 1n << 40n }, 'u64');
  assert.equal(wide.length, 57);
  assert.equal(hex(wide.subarray(33, 41)), '0000000000010000');
  assert.equal(decodeGrandpaSignPayload(wide, 'u64').targetNumber, 1n << 40n);
});

test('malformed payloads are refused with a precise InputError', () => {
  const good = fromHex(vector.signPayload);
  const refuse = (bytes: Uint8Array, pattern: RegExp, blockNumber?: GrandpaBlockNumber) =>
    assert.throws(
      () => decodeGrandpaSignPayload(bytes, blockNumber),
      (err: unknown) => err instanceof InputError && pattern.test(err.message),
    );
  refuse(good.subarray(0, 52), /is 53 bytes, got 52/);
  refuse(new Uint8Array([...good, 0]), /is 53 bytes, got 54/);
  refuse(good, /is 57 bytes, got 53/, 'u64');
  refuse(new Uint8Array([3, ...good.subarray(1)]), /unknown tag 3/);
  refuse(new Uint8Array(0), /got 0/);
});

test('encoding refuses values outside their wire types', () => {
  const bad: [Partial<GrandpaVote>, RegExp][] = [
    [{ targetHash: new Uint8Array(31) }, /target hash must be 32 bytes/],
    [{ targetNumber: 1n << 32n }, /target number \(u32\) 4294967296 is outside/],
    [{ targetNumber: -1n }, /outside/],
    [{ round: 1n << 64n }, /round .* is outside/],
    [{ setId: 5 as unknown as bigint }, /set id must be a bigint/],
    [{ stage: 'commit' as GrandpaVote['stage'] }, /unknown GRANDPA vote stage commit/],
  ];
  for (const [patch, pattern] of bad) {
    assert.throws(
      () => encodeGrandpaSignPayload({ ...vectorVote, ...patch }),
      (err: unknown) => err instanceof InputError && pattern.test(err.message),
      String(pattern),
    );
  }
});

const blockNumberArb = fc.constantFrom<GrandpaBlockNumber>('u32', 'u64');
const voteArb = (blockNumber: GrandpaBlockNumber) =>
  fc.record({
    stage: fc.constantFrom<GrandpaVote['stage']>('propose', 'prevote', 'precommit'),
    targetHash: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    targetNumber: fc.bigInt({
      min: 0n,
      max: blockNumber === 'u32' ? 2n ** 32n - 1n : 2n ** 64n - 1n,
    }),
    round: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    setId: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  });

test('property: decode(encode(vote)) is the vote; every prefix and extension is refused', () => {
  fc.assert(
    fc.property(
      blockNumberArb.chain((bn) =>
        fc.tuple(fc.constant(bn), voteArb(bn), fc.integer({ min: 0, max: 255 })),
      ),
      ([bn, vote, extra]) => {
        const bytes = encodeGrandpaSignPayload(vote, bn);
        assert.deepEqual(decodeGrandpaSignPayload(bytes, bn), { ...vote });
        for (let n = 0; n < bytes.length; n++) {
          assert.throws(() => decodeGrandpaSignPayload(bytes.subarray(0, n), bn), InputError);
        }
        assert.throws(
          () => decodeGrandpaSignPayload(new Uint8Array([...bytes, extra]), bn),
          InputError,
        );
      },
    ),
    { numRuns: 200 },
  );
});

test('property: random bytes either are refused or re-encode to exactly themselves', () => {
  fc.assert(
    fc.property(
      blockNumberArb,
      fc.oneof(
        fc.uint8Array({ minLength: 53, maxLength: 53 }),
        fc.uint8Array({ minLength: 57, maxLength: 57 }),
        fc.uint8Array({ maxLength: 80 }),
      ),
      (bn, bytes) => {
        let vote: GrandpaVote;
        try {
          vote = decodeGrandpaSignPayload(bytes, bn);
        } catch (err) {
          assert.ok(err instanceof InputError, String(err));
          return;
        }
        assert.deepEqual(encodeGrandpaSignPayload(vote, bn), bytes);
      },
    ),
    { numRuns: 500 },
  );
});

test('a view into a larger buffer decodes its own bytes, not the buffer start', () => {
  const good = fromHex(vector.signPayload);
  const big = new Uint8Array(good.length + 16).fill(0xff);
  big.set(good, 16);
  assert.deepEqual(decodeGrandpaSignPayload(big.subarray(16)), vectorVote);
});
