/**
 * Any sequence of requests applied through `decide` (writing what the signer would write on a
 * grant) never grants two different payloads at one position and never grants at or below the
 * highest position already granted.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  comparePositions,
  decide,
  formatPosition,
  positionOf,
  type RuleRequest,
  type Watermark,
} from '../../src/guard/index.js';
import { parseSignBytes } from '../../src/protocols/cometbft/sign-bytes.js';
import { cometRule, grandpaRule, sha256, slotRule } from '../helpers/guard-fixtures.js';

const hex = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString('hex') : '-');

/** The body of the sign bytes (no length prefix) with the timestamp field cut out. */
function stripTimestamp(signBytes: Uint8Array): string {
  const { start, end } = parseSignBytes(signBytes).timestampRange;
  let bodyStart = 0;
  while ((signBytes[bodyStart]! & 0x80) !== 0) bodyStart++;
  bodyStart++;
  return hex(signBytes.subarray(bodyStart, start)) + '|' + hex(signBytes.subarray(end));
}

const small = (max: number) => fc.integer({ min: 0, max }).map(BigInt);

const slotReq: fc.Arbitrary<RuleRequest> = fc
  .record({
    slot: small(6),
    payload: fc.constantFrom('a', 'b'),
    mode: fc.constantFrom('sign', 'authorize'),
  })
  .map(({ slot, payload, mode }) => slotRule(slot, `${mode}:${payload}`, mode));

const grandpaReq: fc.Arbitrary<RuleRequest> = fc
  .record({
    setId: small(2),
    round: small(3),
    stage: fc.constantFrom('propose', 'prevote', 'precommit'),
    payload: fc.constantFrom('a', 'b'),
    mode: fc.constantFrom('sign', 'authorize'),
  })
  .map(({ setId, round, stage, payload, mode }) =>
    grandpaRule(setId, round, stage, `${mode}:${payload}`, mode),
  );

const cometReq: fc.Arbitrary<RuleRequest> = fc
  .record({
    height: fc.integer({ min: 1, max: 3 }).map(BigInt),
    round: small(2),
    step: fc.constantFrom('proposal', 'prevote', 'precommit'),
    block: fc.constantFrom(1, 2, 0),
    ts: fc.constantFrom(
      { seconds: 1_700_000_000n, nanos: 5 },
      { seconds: 1_700_000_000n, nanos: 999_999_999 },
      { seconds: 1_700_000_001n, nanos: 0 },
    ),
    withExtension: fc.boolean(),
  })
  .map(({ height, round, step, block, ts, withExtension }) =>
    cometRule(
      { height, round, step, ...(block === 0 ? { nil: true } : { block }), timestamp: ts },
      { withExtension },
    ),
  );

function applySequence(reqs: readonly RuleRequest[]): void {
  let current: Watermark | undefined;
  const grantedAt = new Map<string, { payloadHash: string; signature: string; req: RuleRequest }>();
  for (const req of reqs) {
    const position = positionOf(req);
    const key = formatPosition(position);
    const d = decide(current, req);
    if (d.outcome === 'grant') {
      assert.ok(
        current === undefined || comparePositions(position, current.position) > 0,
        `granted ${key} at or below the watermark ${current && formatPosition(current.position)}`,
      );
      assert.ok(!grantedAt.has(key), `second grant at ${key}`);
      // Stand-in for a signature: unique per payload, so a replay can be traced to its grant.
      const signature = sha256(req.payloadHash);
      grantedAt.set(key, { payloadHash: hex(req.payloadHash), signature: hex(signature), req });
      current = {
        family: req.family,
        position,
        payloadHash: req.payloadHash,
        ...('mode' in req && req.mode === 'authorize' ? {} : { signature }),
        ...(req.family === 'cometbft' ? { signBytes: req.signBytes } : {}),
      };
    } else if (d.outcome === 'replay') {
      const first = grantedAt.get(key);
      assert.ok(first, `replay at ${key} where nothing was granted`);
      assert.deepEqual(d.stored.position, position);
      assert.equal(hex(d.stored.payloadHash), first.payloadHash);
      if (!('mode' in req) || req.mode !== 'authorize')
        assert.equal(hex(d.stored.signature), first.signature);
      if (hex(req.payloadHash) !== first.payloadHash) {
        // Only CometBFT may replay a different payload, and only when just the time differs.
        assert.equal(req.family, 'cometbft');
        assert.equal(first.req.family, 'cometbft');
        if (req.family === 'cometbft' && first.req.family === 'cometbft') {
          assert.equal(d.useStoredTimestamp, true);
          assert.equal(stripTimestamp(req.signBytes), stripTimestamp(first.req.signBytes));
        }
      }
    } else {
      // Liveness: a valid request above the watermark is never refused.
      const invalid =
        req.family === 'cometbft' &&
        req.withExtension &&
        (req.step !== 'precommit' || req.parsed.blockIdNil);
      if (!invalid && current !== undefined) {
        assert.ok(
          comparePositions(position, current.position) <= 0,
          `refused ${key} above the watermark: ${d.reason} ${d.message}`,
        );
      }
      if (invalid) assert.equal(d.reason, 'invalid_request');
    }
  }
}

describe('decide: invariants over random sequences', () => {
  for (const [name, arb] of [
    ['slot', slotReq],
    ['grandpa', grandpaReq],
    ['cometbft', cometReq],
  ] as const) {
    it(`${name}: one payload per position, grants strictly increasing`, () => {
      fc.assert(
        fc.property(fc.array(arb, { minLength: 1, maxLength: 40 }), (reqs) => applySequence(reqs)),
        { numRuns: 300 },
      );
    });
  }
});
