/** Every watermark survives the stored form and a real SQLite file unchanged. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import { MAX_POSITION, type Watermark } from '../../src/guard/index.js';
import { DUTY_FAMILIES } from '../../src/guard/watermark.js';
import { decodeRecord, encodeRecord } from '../../src/store/record-codec.js';
import { SqliteWatermarkStore } from '../../src/store/sqlite.js';
import type { WatermarkScope } from '../../src/store/types.js';
import { tempDir } from '../helpers/guard-fixtures.js';

const component = fc.oneof(
  fc.constantFrom(0n, 1n, MAX_POSITION, MAX_POSITION - 1n),
  fc.bigInt({ min: 0n, max: MAX_POSITION }),
);
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

const watermark: fc.Arbitrary<Watermark> = fc
  .record(
    {
      family: fc.constantFrom(...DUTY_FAMILIES),
      position: fc.array(component, { minLength: 1, maxLength: 3 }),
      payloadHash: bytes(32),
      signature: bytes(64),
      signBytes: fc.uint8Array({ minLength: 1, maxLength: 300 }),
      writer: fc.string({ maxLength: 40 }),
      updatedAtMs: fc.integer({ min: 0, max: 2 ** 47 }),
    },
    { requiredKeys: ['family', 'position'] },
  )
  .map((w) => ({ ...w }) as Watermark); // fast-check builds null-prototype objects

const scope: fc.Arbitrary<WatermarkScope> = fc.record({
  chainId: fc.oneof(
    fc.string({ minLength: 1, maxLength: 30 }),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 10 }),
  ),
  keyId: fc.string({ minLength: 1, maxLength: 64 }),
  family: fc.constantFrom(...DUTY_FAMILIES),
});

describe('watermark records', () => {
  let dir: string;
  let cleanup: () => void;
  before(() => ({ dir, cleanup } = tempDir('vigil-record-')));
  after(() => cleanup());

  it('encode → decode is the identity', () => {
    fc.assert(
      fc.property(watermark, (w) => assert.deepEqual(decodeRecord(encodeRecord(w), 'x'), w)),
      { numRuns: 500 },
    );
  });

  it('a real SQLite file returns what was written, under any scope text', async () => {
    const store = SqliteWatermarkStore.open({ path: join(dir, 'prop.db'), create: true });
    try {
      await fc.assert(
        fc.asyncProperty(scope, watermark, async (s, w) => {
          await store.update(s, () => ({ write: w, result: null }));
          assert.deepEqual(await store.get(s), w);
          const listed = (await store.list()).find(
            (e) =>
              e.scope.chainId === s.chainId &&
              e.scope.keyId === s.keyId &&
              e.scope.family === s.family,
          );
          assert.deepEqual(listed?.watermark, w);
        }),
        { numRuns: 150 },
      );
    } finally {
      await store.close();
    }
  });
});
