/** The agent's ring of recent refusals: bounded, newest first, fields cut to a fixed length. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_FIELD_CHARS, RefusalRing } from '../../src/dashboard/refusals.js';

test('keeps the last `capacity` refusals, newest first, whatever the number added', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 80 }), (cap, n) => {
      const ring = new RefusalRing(cap);
      for (let i = 0; i < n; i++) ring.add({ chainId: `c${i}`, keyId: 'k', reason: 'conflict' }, i);
      const seen = ring.recent().map((r) => r.chainId);
      const expected = Array.from({ length: Math.min(cap, n) }, (_, j) => `c${n - 1 - j}`);
      assert.deepEqual(seen, expected);
    }),
  );
});

test('a long invented chain id is cut; missing family and reason are named unknown', () => {
  const ring = new RefusalRing(2);
  ring.add({ chainId: 'x'.repeat(10_000), keyId: 'k' }, 0);
  const [r] = ring.recent();
  assert.equal(r!.chainId.length, MAX_FIELD_CHARS);
  assert.ok(r!.chainId.endsWith('…'));
  assert.equal(r!.family, 'unknown');
  assert.equal(r!.reason, 'unknown');
  assert.equal(r!.at, '1970-01-01T00:00:00.000Z');
  assert.throws(() => new RefusalRing(0), RangeError);
});
