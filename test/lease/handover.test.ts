/** The successor's waiting rule and the handover record's codec (pure). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  decodeHandover,
  encodeHandover,
  successorWaitMs,
  type HandoverRecord,
} from '../../src/lease/handover.js';

const record = fc.oneof(
  fc.record({
    state: fc.constant('held' as const),
    holder: fc.string(),
    ttlMs: fc.integer({ min: 1, max: 600_000 }),
  }),
  fc.record({ state: fc.constant('stopped' as const), holder: fc.string(), token: fc.string() }),
);

describe('handover record', () => {
  it('property: only a recorded confirmed stop lets the successor start without a full TTL', () => {
    fc.assert(
      fc.property(
        fc.option(record, { nil: undefined }),
        fc.integer({ min: 1, max: 600_000 }),
        (prev: HandoverRecord | undefined, ttl) => {
          const wait = successorWaitMs(prev, ttl);
          if (prev?.state === 'stopped') assert.equal(wait, 0);
          else assert.ok(wait >= ttl && wait >= (prev?.ttlMs ?? 0));
        },
      ),
    );
  });

  it('property: encode/decode round-trips; anything unreadable decodes to "no record" (wait)', () => {
    fc.assert(
      fc.property(record, (r) => assert.deepEqual(decodeHandover(encodeHandover(r)), { ...r })),
    );
    for (const bad of ['', 'held', '{"state":"stopped"}', '{"state":"gone","holder":"A"}'])
      assert.equal(decodeHandover(bad), undefined);
    assert.equal(successorWaitMs(decodeHandover('garbage'), 2000), 2000);
  });
});
