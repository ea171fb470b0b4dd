import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseSignBytes } from '../../src/protocols/cometbft/sign-bytes.js';
import {
  MAX_COMET_ROUND,
  MAX_TIMESTAMP_SECONDS,
  MIN_TIMESTAMP_SECONDS,
} from '../../src/guard/cometbft.js';
import {
  decide,
  MAX_POSITION,
  positionOf,
  type Decision,
  type RuleRequest,
  type Watermark,
} from '../../src/guard/index.js';
import {
  CHAIN,
  cometRule,
  cometSignBytes,
  grandpaRule,
  sha256,
  slotRule,
  type CometSpec,
} from '../helpers/guard-fixtures.js';

const SIG = new Uint8Array(64).fill(0xab);

/** The watermark the signer would write after granting `req`. */
function stored(req: RuleRequest, signature: Uint8Array | null = SIG): Watermark {
  return {
    family: req.family,
    position: positionOf(req),
    payloadHash: req.payloadHash,
    ...(signature ? { signature } : {}),
    ...(req.family === 'cometbft' ? { signBytes: req.signBytes } : {}),
  };
}

function assertRefused(d: Decision, reason: string, msg?: RegExp): void {
  assert.equal(
    d.outcome,
    'refuse',
    JSON.stringify(d, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
  );
  if (d.outcome !== 'refuse') return;
  assert.equal(d.reason, reason, d.message);
  if (msg) assert.match(d.message, msg);
}

function assertReplay(d: Decision, w: Watermark, useStoredTimestamp = false): void {
  assert.equal(d.outcome, 'replay');
  if (d.outcome !== 'replay') return;
  assert.deepEqual(d.stored.signature, w.signature);
  assert.deepEqual(d.stored.position, w.position);
  assert.equal(d.useStoredTimestamp === true, useStoredTimestamp);
}

describe('slot rule', () => {
  it('grants the first slot, including slot 0 and 2^63-1', () => {
    assert.equal(decide(undefined, slotRule(0n, 'a')).outcome, 'grant');
    assert.equal(decide(undefined, slotRule(MAX_POSITION, 'a')).outcome, 'grant');
  });

  it('refuses 2^63 and negative slots as invalid_request, even with no watermark', () => {
    assertRefused(decide(undefined, slotRule(1n << 63n, 'a')), 'invalid_request', /slot/);
    assertRefused(decide(undefined, slotRule(-1n, 'a')), 'invalid_request', /negative/);
    const w = stored(slotRule(5n, 'a'));
    assertRefused(decide(w, slotRule(1n << 63n, 'a')), 'invalid_request');
  });

  it('is strictly increasing: higher grants, lower is a regression', () => {
    const w = stored(slotRule(10n, 'a'));
    assert.equal(decide(w, slotRule(11n, 'b')).outcome, 'grant');
    assertRefused(decide(w, slotRule(9n, 'b')), 'regression', /below the watermark/);
    assertRefused(decide(w, slotRule(0n, 'a')), 'regression');
    const top = stored(slotRule(MAX_POSITION, 'a'));
    assertRefused(decide(top, slotRule(MAX_POSITION - 1n, 'b')), 'regression');
  });

  it('same slot and payload → replay with the stored signature; other payload → conflict', () => {
    const w = stored(slotRule(10n, 'a'));
    assertReplay(decide(w, slotRule(10n, 'a')), w);
    assertRefused(decide(w, slotRule(10n, 'b')), 'conflict', /different payload/);
  });

  it('a position recorded without a signature (bare import) is never signed again', () => {
    const imported: Watermark = { family: 'slot', position: [10n] };
    assertRefused(decide(imported, slotRule(10n, 'a')), 'conflict');
    const noSig = stored(slotRule(10n, 'a'), null);
    assertRefused(decide(noSig, slotRule(10n, 'a')), 'conflict', /without a signature/);
    assert.equal(decide(imported, slotRule(11n, 'a')).outcome, 'grant');
  });

  it('authorize: same identity replays, another identity or a signature is a conflict', () => {
    const auth = slotRule(10n, 'node-a', 'authorize');
    const w = stored(auth, null);
    const again = decide(w, slotRule(10n, 'node-a', 'authorize'));
    assert.equal(again.outcome, 'replay');
    assertRefused(decide(w, slotRule(10n, 'node-b', 'authorize')), 'conflict');
    // A signature request at an authorized position carries another hash: conflict.
    assertRefused(decide(w, slotRule(10n, 'payload', 'sign')), 'conflict');
    // And an authorization at a signed position.
    const signed = stored(slotRule(20n, 'payload'));
    assertRefused(decide(signed, slotRule(20n, 'node-a', 'authorize')), 'conflict');
    assertRefused(decide(signed, slotRule(19n, 'node-a', 'authorize')), 'regression');
  });
});

describe('GRANDPA rule', () => {
  const base = grandpaRule(3n, 10n, 'prevote', 'v');
  const w = stored(base);

  it('refuses a regression at each tuple component', () => {
    assertRefused(decide(w, grandpaRule(2n, 99n, 'precommit', 'x')), 'regression');
    assertRefused(decide(w, grandpaRule(3n, 9n, 'precommit', 'x')), 'regression');
    assertRefused(decide(w, grandpaRule(3n, 10n, 'propose', 'x')), 'regression');
  });

  it('orders stages propose < prevote < precommit within a round', () => {
    let cur: Watermark | undefined;
    for (const stage of ['propose', 'prevote', 'precommit'] as const) {
      const r = grandpaRule(0n, 0n, stage, stage);
      assert.equal(decide(cur, r).outcome, 'grant', stage);
      cur = stored(r);
    }
    assertRefused(decide(cur, grandpaRule(0n, 0n, 'prevote', 'x')), 'regression');
  });

  it('a new set id starts rounds afresh; a lower set id is refused', () => {
    const high = stored(grandpaRule(3n, 1000n, 'precommit', 'v'));
    assert.equal(decide(high, grandpaRule(4n, 0n, 'propose', 'n')).outcome, 'grant');
    assertRefused(decide(high, grandpaRule(2n, 5000n, 'precommit', 'n')), 'regression');
    assertRefused(decide(high, grandpaRule(3n, 0n, 'propose', 'n')), 'regression');
  });

  it('same position: same payload replays, another is a conflict', () => {
    assertReplay(decide(w, grandpaRule(3n, 10n, 'prevote', 'v')), w);
    assertRefused(decide(w, grandpaRule(3n, 10n, 'prevote', 'other')), 'conflict');
  });

  it('checks bounds on set id and round and refuses unknown stages', () => {
    assert.equal(
      decide(undefined, grandpaRule(MAX_POSITION, MAX_POSITION, 'precommit', 'x')).outcome,
      'grant',
    );
    assertRefused(
      decide(undefined, grandpaRule(1n << 63n, 0n, 'propose', 'x')),
      'invalid_request',
      /setId/,
    );
    assertRefused(
      decide(undefined, grandpaRule(0n, 1n << 63n, 'propose', 'x')),
      'invalid_request',
      /round/,
    );
    assertRefused(decide(undefined, grandpaRule(-1n, 0n, 'propose', 'x')), 'invalid_request');
    assertRefused(decide(undefined, grandpaRule(0n, -5n, 'propose', 'x')), 'invalid_request');
    const bad = {
      ...grandpaRule(0n, 0n, 'propose', 'x'),
      stage: 'commit',
    } as unknown as RuleRequest;
    assertRefused(decide(undefined, bad), 'invalid_request', /stage/);
  });

  it('authorize vs sign at the same position conflict; authorize replay by the same node', () => {
    const a = stored(grandpaRule(1n, 1n, 'prevote', 'node-a', 'authorize'), null);
    assert.equal(
      decide(a, grandpaRule(1n, 1n, 'prevote', 'node-a', 'authorize')).outcome,
      'replay',
    );
    assertRefused(decide(a, grandpaRule(1n, 1n, 'prevote', 'node-b', 'authorize')), 'conflict');
    assertRefused(decide(a, grandpaRule(1n, 1n, 'prevote', 'vote', 'sign')), 'conflict');
  });
});

describe('CometBFT rule', () => {
  const h = 100n;
  const spec: CometSpec = { height: h, round: 2n, step: 'prevote', block: 1 };
  const w = stored(cometRule(spec));

  it('grants proposal < prevote < precommit in order, then the next round and height', () => {
    let cur: Watermark | undefined;
    const seq: CometSpec[] = [
      { height: 1n, round: 0n, step: 'proposal' },
      { height: 1n, round: 0n, step: 'prevote' },
      { height: 1n, round: 0n, step: 'precommit' },
      { height: 1n, round: 1n, step: 'prevote', nil: true },
      { height: 1n, round: 1n, step: 'precommit', nil: true },
      { height: 2n, round: 0n, step: 'proposal' },
    ];
    for (const s of seq) {
      const r = cometRule(s);
      assert.equal(
        decide(cur, r).outcome,
        'grant',
        JSON.stringify(s, (_k, v) => String(v)),
      );
      cur = stored(r);
    }
  });

  it('refuses a regression at each of height, round and step', () => {
    assertRefused(
      decide(w, cometRule({ ...spec, height: h - 1n, round: 9n, step: 'precommit' })),
      'regression',
    );
    assertRefused(decide(w, cometRule({ ...spec, round: 1n, step: 'precommit' })), 'regression');
    assertRefused(decide(w, cometRule({ ...spec, step: 'proposal' })), 'regression');
  });

  it('identical sign bytes → replay with the stored signature', () => {
    assertReplay(decide(w, cometRule(spec)), w);
  });

  it('sign bytes differing only in timestamp → stored signature and stored timestamp', () => {
    const later = cometRule({ ...spec, timestamp: { seconds: 1_700_000_999n, nanos: 42 } });
    const d = decide(w, later);
    assertReplay(d, w, true);
    if (d.outcome === 'replay') {
      assert.deepEqual(d.stored.signBytes, w.signBytes);
      assert.deepEqual(parseSignBytes(d.stored.signBytes!).timestamp, {
        seconds: 1_700_000_000n,
        nanos: 5,
      });
    }
    // The same holds for proposals.
    const prop: CometSpec = { height: 7n, round: 0n, step: 'proposal', block: 3, polRound: 0n };
    const pw = stored(cometRule(prop));
    assertReplay(
      decide(pw, cometRule({ ...prop, timestamp: { seconds: 1_700_000_001n, nanos: 5 } })),
      pw,
      true,
    );
  });

  it('timestamp-only replay holds when the new timestamp encodes to a different length', () => {
    // nanos 5 is one varint byte, 123456789 is four, and nanos 0 is omitted: the total
    // length (and so the length prefix) of the sign bytes changes with the timestamp.
    for (const timestamp of [
      { seconds: 1_700_000_000n, nanos: 123_456_789 },
      { seconds: 1_700_000_000n, nanos: 0 },
      { seconds: 5n, nanos: 0 },
    ]) {
      assertReplay(decide(w, cometRule({ ...spec, timestamp })), w, true);
    }
    const prop: CometSpec = { height: 7n, round: 0n, step: 'proposal', block: 3, polRound: 0n };
    const pw = stored(cometRule(prop));
    assertReplay(
      decide(pw, cometRule({ ...prop, timestamp: { seconds: 5n, nanos: 0 } })),
      pw,
      true,
    );
  });

  it('a different block id at the same position is a conflict, with or without a new timestamp', () => {
    assertRefused(decide(w, cometRule({ ...spec, block: 2 })), 'conflict');
    assertRefused(decide(w, cometRule({ ...spec, nil: true })), 'conflict');
    assertRefused(
      decide(w, cometRule({ ...spec, block: 2, timestamp: { seconds: 1n, nanos: 1 } })),
      'conflict',
    );
    const prop: CometSpec = { height: 7n, round: 1n, step: 'proposal', block: 3, polRound: 0n };
    const pw = stored(cometRule(prop));
    assertRefused(decide(pw, cometRule({ ...prop, polRound: -1n })), 'conflict');
  });

  it('a timestamp-only difference is not replayed when nothing was signed there', () => {
    const noSig = stored(cometRule(spec), null);
    const later = cometRule({ ...spec, timestamp: { seconds: 1_800_000_000n, nanos: 0 } });
    assertRefused(decide(noSig, later), 'conflict');
    const imported: Watermark = { family: 'cometbft', position: [h, 2n, 2n] };
    assertRefused(decide(imported, later), 'conflict');
    assertRefused(decide(imported, cometRule(spec)), 'conflict');
  });

  it('vote extensions only with a non-nil precommit', () => {
    const precommit: CometSpec = { height: 5n, round: 0n, step: 'precommit', block: 4 };
    assert.equal(decide(undefined, cometRule(precommit, { withExtension: true })).outcome, 'grant');
    assertRefused(
      decide(undefined, cometRule({ ...precommit, step: 'prevote' }, { withExtension: true })),
      'invalid_request',
      /extension/,
    );
    assertRefused(
      decide(undefined, cometRule({ ...precommit, nil: true }, { withExtension: true })),
      'invalid_request',
      /extension/,
    );
    assertRefused(
      decide(undefined, cometRule({ ...precommit, step: 'proposal' }, { withExtension: true })),
      'invalid_request',
    );
    // Refused even where the same bytes would otherwise replay.
    const nilPc = cometRule({ ...precommit, nil: true });
    assertRefused(
      decide(stored(nilPc), cometRule({ ...precommit, nil: true }, { withExtension: true })),
      'invalid_request',
    );
  });

  it('a declared position that does not match the sign bytes is invalid_request', () => {
    assertRefused(
      decide(undefined, cometRule(spec, { height: h + 1n })),
      'invalid_request',
      /height/,
    );
    assertRefused(decide(undefined, cometRule(spec, { round: 3n })), 'invalid_request', /round/);
    assertRefused(
      decide(undefined, cometRule(spec, { step: 'precommit' })),
      'invalid_request',
      /prevote/,
    );
    assertRefused(decide(undefined, cometRule(spec, { step: 'proposal' })), 'invalid_request');
    assertRefused(
      decide(undefined, cometRule(spec, { chainId: 'other-chain' })),
      'invalid_request',
      /chain/,
    );
    // Even at a position that would otherwise be a replay.
    assertRefused(decide(w, cometRule(spec, { chainId: 'other-chain' })), 'invalid_request');
  });

  it('checks bounds as CometBFT has them: heights from 1 to 2^63-1, int32 rounds, no negatives', () => {
    assert.equal(
      decide(undefined, cometRule({ height: 1n, round: 0n, step: 'prevote', nil: true })).outcome,
      'grant',
    );
    assert.equal(
      decide(
        undefined,
        cometRule({ height: MAX_POSITION, round: MAX_COMET_ROUND, step: 'precommit' }),
      ).outcome,
      'grant',
    );
    // No CometBFT node signs at height 0 (heights start at 1) or above an int32 round.
    assertRefused(
      decide(undefined, cometRule({ height: 0n, step: 'prevote', nil: true })),
      'invalid_request',
      /start at 1/,
    );
    assertRefused(
      decide(undefined, cometRule({ height: 1n, round: MAX_COMET_ROUND + 1n, step: 'prevote' })),
      'invalid_request',
      /int32/,
    );
    assertRefused(
      decide(undefined, cometRule({ height: -1n, step: 'prevote' })),
      'invalid_request',
      /negative|start at 1/,
    );
    assertRefused(
      decide(undefined, cometRule({ height: 1n, round: -1n, step: 'prevote' })),
      'invalid_request',
    );
    // 2^63 cannot be carried by sfixed64 sign bytes; declaring it is refused either way.
    const r = cometRule({ height: 1n, step: 'prevote' }, { height: 1n << 63n });
    assertRefused(decide(undefined, r), 'invalid_request');
  });

  it('refuses a proposal whose pol_round is not -1 or below its round', () => {
    for (const polRound of [-1n, 0n, 2n])
      assert.equal(
        decide(undefined, cometRule({ height: 5n, round: 3n, step: 'proposal', polRound })).outcome,
        'grant',
        `pol_round ${polRound}`,
      );
    for (const polRound of [3n, 4n, -2n])
      assertRefused(
        decide(undefined, cometRule({ height: 5n, round: 3n, step: 'proposal', polRound })),
        'invalid_request',
        /pol_round/,
      );
  });

  it('refuses timestamps outside the protobuf Timestamp range (years 1 to 9999)', () => {
    for (const seconds of [MIN_TIMESTAMP_SECONDS, 0n, MAX_TIMESTAMP_SECONDS])
      assert.equal(
        decide(undefined, cometRule({ ...spec, timestamp: { seconds, nanos: 0 } })).outcome,
        'grant',
        `${seconds} s`,
      );
    for (const seconds of [MIN_TIMESTAMP_SECONDS - 1n, MAX_TIMESTAMP_SECONDS + 1n])
      assertRefused(
        decide(undefined, cometRule({ ...spec, timestamp: { seconds, nanos: 0 } })),
        'invalid_request',
        /Timestamp range/,
      );
  });

  it('refuses an unknown step name instead of throwing', () => {
    const r = { ...cometRule(spec), step: 'commit' } as unknown as RuleRequest;
    assertRefused(decide(undefined, r), 'invalid_request');
  });

  it('the sign bytes helper round-trips through the parser', () => {
    const p = parseSignBytes(cometSignBytes(spec));
    assert.equal(p.chainId, CHAIN);
    assert.equal(p.height, h);
    assert.equal(p.blockIdNil, false);
    assert.deepEqual(sha256(cometSignBytes(spec)), cometRule(spec).payloadHash);
  });
});
