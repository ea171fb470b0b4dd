import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  GO_ZERO_TIME,
  parseSignBytes,
  proposalSignBytes,
  signBytesWithoutTimestamp,
  voteExtensionSignBytes,
  voteSignBytes,
  formatTimestamp,
  parseTimestamp,
  SignedMsgType,
} from '../../../src/protocols/cometbft/sign-bytes.js';
import { vectorsDir } from '../../helpers/paths.js';

interface VoteVector {
  chain_id: string;
  vote: { height: number; round: number; type: string };
  hex: string;
}

const vectors = JSON.parse(
  readFileSync(join(vectorsDir(), 'cometbft', 'vote-sign-bytes.json'), 'utf8'),
) as { cases: VoteVector[] };

const typeOf = (label: string): number => Number(/\((\d+)\)/.exec(label)![1]);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('vote sign bytes match every shared vector', () => {
  assert.ok(vectors.cases.length >= 3);
  for (const c of vectors.cases) {
    const bytes = voteSignBytes({
      type: typeOf(c.vote.type),
      height: BigInt(c.vote.height),
      round: BigInt(c.vote.round),
      timestamp: GO_ZERO_TIME,
      chainId: c.chain_id,
    });
    assert.equal(hex(bytes), c.hex, JSON.stringify(c.vote));
  }
});

test('parseSignBytes reads the vectors back and refuses the unknown message type', () => {
  for (const c of vectors.cases) {
    const bytes = Buffer.from(c.hex, 'hex');
    const type = typeOf(c.vote.type);
    if (type === 0) {
      assert.throws(() => parseSignBytes(bytes), /message type 0/);
      continue;
    }
    const parsed = parseSignBytes(bytes);
    assert.equal(parsed.kind, 'vote');
    assert.equal(parsed.type, type);
    assert.equal(parsed.height, BigInt(c.vote.height));
    assert.equal(parsed.round, BigInt(c.vote.round));
    assert.equal(parsed.blockIdNil, true);
    assert.deepEqual(parsed.timestamp, GO_ZERO_TIME);
    assert.equal(parsed.chainId, c.chain_id);
  }
});

const blockIdArb = fc.option(
  fc.record({
    hash: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    partSetHeader: fc.record({
      total: fc.integer({ min: 1, max: 0xffffffff }),
      hash: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    }),
  }),
  { nil: undefined },
);
const tsArb = fc.record({
  seconds: fc.bigInt({ min: -62135596800n, max: 253402300799n }),
  nanos: fc.integer({ min: 0, max: 999_999_999 }),
});
const chainArb = fc.stringMatching(/^[a-z0-9-]{1,30}$/);

test('property: vote and proposal sign bytes parse back to what was encoded', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(1, 2, 32),
      fc.bigInt({ min: 0n, max: (1n << 62n) - 1n }),
      fc.bigInt({ min: 0n, max: 0x7fffffffn }),
      fc.bigInt({ min: -1n, max: 0x7fffffffn }),
      blockIdArb,
      tsArb,
      chainArb,
      (type, height, round, polRound, blockId, timestamp, chainId) => {
        const bytes =
          type === SignedMsgType.Proposal
            ? proposalSignBytes({ height, round, polRound, blockId, timestamp, chainId })
            : voteSignBytes({ type, height, round, blockId, timestamp, chainId });
        const p = parseSignBytes(bytes);
        assert.equal(p.kind, type === 32 ? 'proposal' : 'vote');
        assert.equal(p.type, type);
        assert.equal(p.height, height);
        assert.equal(p.round, round);
        assert.equal(p.blockIdNil, blockId === undefined);
        assert.deepEqual(p.timestamp, { ...timestamp });
        assert.equal(p.chainId, chainId);
        if (type === 32) assert.equal(p.polRound ?? 0n, polRound);
      },
    ),
    { numRuns: 300 },
  );
});

test('property: sign bytes differing only in time are equal without the timestamp', () => {
  fc.assert(
    fc.property(tsArb, tsArb, blockIdArb, chainArb, (t1, t2, blockId, chainId) => {
      const a = voteSignBytes({ type: 2, height: 5n, round: 0n, blockId, timestamp: t1, chainId });
      const b = voteSignBytes({ type: 2, height: 5n, round: 0n, blockId, timestamp: t2, chainId });
      const c = voteSignBytes({ type: 2, height: 6n, round: 0n, blockId, timestamp: t2, chainId });
      const strip = (x: Uint8Array) => hex(signBytesWithoutTimestamp(x, parseSignBytes(x)));
      assert.equal(strip(a), strip(b));
      assert.notEqual(strip(a), strip(c));
    }),
    { numRuns: 200 },
  );
});

test('parseSignBytes refuses trailing bytes, a wrong prefix and fields out of order', () => {
  const good = voteSignBytes({
    type: 1,
    height: 1n,
    round: 0n,
    timestamp: GO_ZERO_TIME,
    chainId: 'c',
  });
  assert.throws(() => parseSignBytes(Buffer.concat([good, Buffer.from([0])])), /length prefix/);
  assert.throws(() => parseSignBytes(good.subarray(0, good.length - 1)), /length prefix/);
  // chain id (field 6) before the timestamp (field 5)
  const body = Buffer.from('0801' + '320163' + '2a00', 'hex');
  assert.throws(
    () => parseSignBytes(Buffer.concat([Buffer.from([body.length]), body])),
    /canonical order/,
  );
});

test('vote extension sign bytes have the canonical layout', () => {
  const b = voteExtensionSignBytes({
    extension: new TextEncoder().encode('extension'),
    height: 3n,
    round: 2n,
    chainId: 'test_chain_id',
  });
  // fields 1 (bytes), 2 and 3 (sfixed64), 4 (string), length-prefixed
  assert.equal(
    hex(b),
    '2c' +
      '0a09' +
      hex(new TextEncoder().encode('extension')) +
      '110300000000000000' +
      '190200000000000000' +
      '220d' +
      hex(new TextEncoder().encode('test_chain_id')),
  );
});

test('timestamps format and parse as RFC 3339', () => {
  const t = parseTimestamp('2019-10-13T16:14:44Z');
  assert.deepEqual(t, { seconds: 1570983284n, nanos: 0 });
  assert.equal(formatTimestamp(t), '2019-10-13T16:14:44Z');
  assert.equal(formatTimestamp({ seconds: 1n, nanos: 500_000_000 }), '1970-01-01T00:00:01.5Z');
  assert.throws(() => parseTimestamp('2019-10-13 16:14:44'));
});
