import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseSignBytes } from '../../src/protocols/cometbft/sign-bytes.js';
import { decideCometbft } from '../../src/guard/cometbft.js';
import {
  checkSignBytesMatch,
  detectFormat,
  parseStateFile,
  renderStateFile,
  StateFileError,
  type SignState,
} from '../../src/migration/priv-validator-state.js';
import {
  planImport,
  stateFromWatermark,
  watermarkFromState,
} from '../../src/migration/import-plan.js';
import {
  CHAIN,
  FILEPV_FRESH,
  filePvText,
  horcruxText,
  horcruxV3Text,
  sha256,
  signed,
  signBytesFor,
  tmkmsText,
} from './fixtures.js';

const hex = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString('hex') : undefined);

describe('FilePV priv_validator_state.json', () => {
  it('reads a fresh state as (0, 0, 0) with nothing signed', () => {
    const p = parseStateFile(FILEPV_FRESH, 'fresh.json');
    assert.equal(p.format, 'filepv');
    assert.deepEqual(p.state, { height: 0n, round: 0n, step: 0n });
    assert.equal(renderStateFile(p.state, 'filepv'), FILEPV_FRESH);
  });

  it('reads a signed precommit and writes it back byte for byte', () => {
    const s = signed(1_234_567n, 2n, 'precommit');
    const text = filePvText(s);
    const p = parseStateFile(text, 'pv.json');
    assert.equal(p.format, 'filepv');
    assert.equal(p.state.height, 1_234_567n);
    assert.equal(p.state.round, 2n);
    assert.equal(p.state.step, 3n);
    assert.equal(hex(p.state.signature), hex(s.signature));
    assert.equal(hex(p.state.signBytes), hex(s.signBytes));
    assert.equal(renderStateFile(p.state, 'filepv'), text);
    assert.ok(checkSignBytesMatch('pv.json', p.state, CHAIN));
  });

  for (const [name, mutate, expected] of [
    ['round as a string', (t: string) => t.replace('"round": 2', '"round": "2"'), /round/],
    [
      'negative height',
      (t: string) => t.replace('"height": "1234567"', '"height": "-5"'),
      /height/,
    ],
    ['step 4', (t: string) => t.replace('"step": 3', '"step": 4'), /step/],
    [
      'height beyond int64',
      (t: string) => t.replace('"height": "1234567"', '"height": "9223372036854775808"'),
      /height/,
    ],
    [
      'leading zeros',
      (t: string) => t.replace('"height": "1234567"', '"height": "01234567"'),
      /height/,
    ],
    [
      'unknown field',
      (t: string) => t.replace('{\n', '{\n  "hieght": "1",\n'),
      /hieght|unrecognized/i,
    ],
    [
      'signbytes not hex',
      (t: string) => t.replace(/"signbytes": "[0-9A-F]+"/, '"signbytes": "XYZ"'),
      /signbytes/,
    ],
    [
      'signature without signbytes',
      (t: string) => t.replace(/,\n {2}"signbytes": "[0-9A-F]+"/, ''),
      /signbytes/,
    ],
    ['not JSON', () => '{"height": "1",', /JSON/],
    ['a duplicated key', (t: string) => t.replace('{\n', '{\n  "height": "99999999",\n'), /twice/],
  ] as const) {
    it(`refuses ${name} with a precise error`, () => {
      const text = (mutate as (t: string) => string)(
        filePvText(signed(1_234_567n, 2n, 'precommit')),
      );
      assert.throws(
        () => parseStateFile(text, 'bad.json', 'filepv'),
        (err: unknown) =>
          err instanceof StateFileError &&
          expected.test(err.message) &&
          err.message.includes('bad.json'),
      );
    });
  }

  it('refuses signbytes that are for another height, step or chain', () => {
    const s = signed(100n, 0n, 'prevote');
    const otherHeight = { ...s, signBytes: signBytesFor(101n, 0n, 'prevote', { block: 9 }) };
    const parsed = parseStateFile(filePvText(otherHeight), 'h.json').state;
    assert.throws(
      () => checkSignBytesMatch('h.json', parsed, CHAIN),
      /height 101, the file says 100/,
    );
    const otherStep = { ...s, step: 'precommit' as const };
    const parsed2 = parseStateFile(filePvText(otherStep), 's.json').state;
    assert.throws(
      () => checkSignBytesMatch('s.json', parsed2, CHAIN),
      /prevote, the file says step 3/,
    );
    const parsed3 = parseStateFile(filePvText(s), 'c.json').state;
    assert.throws(
      () => checkSignBytesMatch('c.json', parsed3, 'other-chain'),
      /chain "cosmoshub-test"/,
    );
  });
});

describe('tmkms consensus state', () => {
  it('maps tmkms steps (0 proposal, 1 prevote, 2 precommit) onto Vigil steps', () => {
    for (const [t, v] of [
      [0, 1n],
      [1, 2n],
      [2, 3n],
    ] as const) {
      const p = parseStateFile(tmkmsText(5000n, 1n, t, 7), 'tmkms.json');
      assert.equal(p.format, 'tmkms');
      assert.deepEqual(p.state, { height: 5000n, round: 1n, step: v });
    }
  });

  it('accepts a null block_id and the older part_set_header spelling', () => {
    const p = parseStateFile('{"height":"5","round":"1","step":1,"block_id":null}', 'a.json');
    assert.deepEqual(p.state, { height: 5n, round: 1n, step: 2n });
    const old = JSON.stringify({
      height: '5',
      round: '1',
      step: 2,
      block_id: { hash: 'AB'.repeat(32), part_set_header: { total: '1', hash: 'CD'.repeat(32) } },
    });
    assert.deepEqual(parseStateFile(old, 'b.json').state, { height: 5n, round: 1n, step: 3n });
  });

  it('writes the nil block id as tmkms does and round-trips its own files', () => {
    const text = tmkmsText(42n, 0n, 1);
    const p = parseStateFile(text, 't.json');
    assert.equal(renderStateFile(p.state, 'tmkms'), text);
  });

  it('writes back the block id the stored sign bytes voted for', () => {
    const s = signed(42n, 3n, 'precommit', { block: 7 });
    const state: SignState = {
      height: 42n,
      round: 3n,
      step: 3n,
      signBytes: s.signBytes,
      signature: s.signature,
    };
    assert.equal(renderStateFile(state, 'tmkms'), tmkmsText(42n, 3n, 2, 7));
  });

  it('refuses step 3 (tmkms has no such step) and a round that is a number', () => {
    assert.throws(() => parseStateFile(tmkmsText(1n, 0n, 3), 'x.json'), /step/);
    assert.throws(
      () => parseStateFile('{"height":"1","round":0,"step":1,"block_id":null}', 'y.json', 'tmkms'),
      /round/,
    );
  });
});

describe('Horcrux sign state', () => {
  it('reads the released layout (strings, nonce_public, hex signbytes) and writes it back', () => {
    const s = signed(777n, 1n, 'prevote');
    const text = horcruxText(s);
    const p = parseStateFile(text, 'cosmoshub-4_priv_validator_state.json');
    assert.equal(p.format, 'horcrux');
    assert.equal(p.state.step, 2n);
    assert.equal(hex(p.state.signBytes), hex(s.signBytes));
    assert.equal(renderStateFile(p.state, 'horcrux'), text);
  });

  it('reads a fresh share sign state, including the FilePath some builds write', () => {
    const text =
      '{\n  "height": "0",\n  "round": "0",\n  "step": 0,\n  "nonce_public": null,\n  "FilePath": "chain-1_share_sign_state.json"\n}';
    assert.deepEqual(parseStateFile(text, 'share.json').state, { height: 0n, round: 0n, step: 0n });
  });

  it('reads base64 signbytes (development builds) by checking which reading is these sign bytes', () => {
    const s = signed(900n, 0n, 'precommit');
    const text = horcruxText(s).replace(
      /"signbytes": "[0-9A-F]+"/,
      `"signbytes": "${Buffer.from(s.signBytes).toString('base64')}"`,
    );
    assert.equal(hex(parseStateFile(text, 'b64.json').state.signBytes), hex(s.signBytes));
  });

  it('reads the v3 layout with numbers and base64 sign_bytes', () => {
    const s = signed(901n, 2n, 'proposal');
    const p = parseStateFile(horcruxV3Text(s), 'v3.json');
    assert.equal(p.layout, 'horcrux-v3');
    assert.deepEqual([p.state.height, p.state.round, p.state.step], [901n, 2n, 1n]);
    assert.equal(hex(p.state.signBytes), hex(s.signBytes));
  });

  it('refuses a step of 4 and a negative round', () => {
    const s = signed(10n, 0n, 'prevote');
    assert.throws(
      () => parseStateFile(horcruxText(s).replace('"step": 2', '"step": 4'), 'x'),
      /step/,
    );
    assert.throws(
      () => parseStateFile(horcruxText(s).replace('"round": "0"', '"round": "-1"'), 'x'),
      /round/,
    );
  });
});

describe('format detection', () => {
  it('tells the three signers apart and honours --format', () => {
    const s = signed(3n, 0n, 'prevote');
    assert.equal(detectFormat(JSON.parse(filePvText(s)), 'a'), 'filepv');
    assert.equal(detectFormat(JSON.parse(tmkmsText(3n, 0n, 1)), 'b'), 'tmkms');
    assert.equal(detectFormat(JSON.parse(horcruxText(s)), 'c'), 'horcrux');
    assert.equal(detectFormat(JSON.parse(horcruxV3Text(s)), 'd'), 'horcrux');
    assert.throws(() => parseStateFile(filePvText(s), 'e', 'tmkms'), StateFileError);
    assert.throws(() => detectFormat([1, 2], 'f'), /JSON object/);
    assert.throws(() => detectFormat({ height: '1' }, 'g'), /--format/);
  });

  it('a FilePV file whose height some tool wrote as a number is still FilePV (issue 11)', () => {
    const s = signed(3n, 0n, 'prevote');
    const text = filePvText(s).replace('"height": "3"', '"height": 3');
    assert.notEqual(text, filePvText(s));
    assert.equal(detectFormat(JSON.parse(text), 'n'), 'filepv');
    const parsed = parseStateFile(text, 'n');
    assert.equal(parsed.format, 'filepv');
    assert.equal(parsed.state.height, 3n);
    assert.equal(parsed.state.step, 2n);
  });

  it('a validator key file is named as such, and a file without a round says what is missing', () => {
    const keyFile = { address: 'AB', pub_key: {}, priv_key: { value: 'c2VjcmV0' } };
    assert.throws(() => detectFormat(keyFile, 'k'), /validator key file/);
    assert.throws(
      () => detectFormat(keyFile, 'k'),
      (e: Error) => !e.message.includes('c2VjcmV0'),
    );
    assert.throws(() => detectFormat({ height: '1' }, 'g'), /no `round`, `step`/);
  });
});

const stateArb = fc
  .record({
    height: fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }),
    round: fc.bigInt({ min: 0n, max: 0x7fffffffn }),
    step: fc.bigInt({ min: 0n, max: 3n }),
    sig: fc.option(
      fc.tuple(
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
      ),
      { nil: undefined },
    ),
  })
  .map(({ height, round, step, sig }): SignState =>
    sig && step > 0n
      ? { height, round, step, signature: sig[0], signBytes: sig[1] }
      : { height, round, step },
  );

describe('round trips (property)', () => {
  it('FilePV: render then parse gives the same state, and render is stable', () => {
    fc.assert(
      fc.property(stateArb, (s) => {
        const text = renderStateFile(s, 'filepv');
        const back = parseStateFile(text, 'p', 'filepv').state;
        assert.deepEqual(back, s);
        assert.equal(renderStateFile(back, 'filepv'), text);
      }),
    );
  });

  it('tmkms: position survives except that Vigil step 0 becomes the more careful tmkms 0', () => {
    fc.assert(
      fc.property(stateArb, (s) => {
        const back = parseStateFile(
          renderStateFile({ height: s.height, round: s.round, step: s.step }, 'tmkms'),
          't',
        ).state;
        assert.deepEqual(back, {
          height: s.height,
          round: s.round,
          step: s.step === 0n ? 1n : s.step,
        });
      }),
    );
  });
});

describe('import plan', () => {
  const at = (h: bigint, r: bigint, st: 'prevote' | 'precommit') => {
    const s = signed(h, r, st);
    return watermarkFromState(parseStateFile(filePvText(s), 'f').state, 'test', 1);
  };

  it('creates, advances, stays unchanged on the same file, and refuses to go back', () => {
    const a = at(100n, 0n, 'prevote');
    const b = at(100n, 0n, 'precommit');
    assert.equal(planImport(undefined, a, false).outcome, 'created');
    assert.equal(planImport(a, b, false).outcome, 'advanced');
    assert.equal(planImport(b, { ...b, updatedAtMs: 99 }, false).outcome, 'unchanged');
    const back = planImport(b, a, false);
    assert.equal(back.outcome, 'refused');
    assert.equal(back.next, undefined);
    assert.match(back.message, /backwards/);
    const forced = planImport(b, a, true);
    assert.equal(forced.outcome, 'forced');
    assert.match(forced.message, /BACKWARDS from \(100, 0, 3\) to \(100, 0, 2\)/);
  });

  it('adds a payload to a bare position, but never replaces a different one without --force', () => {
    const full = at(5n, 0n, 'prevote');
    const bare = { family: 'cometbft' as const, position: full.position };
    assert.equal(planImport(bare, full, false).outcome, 'enriched');
    assert.equal(planImport(full, bare, false).outcome, 'unchanged');
    const other = signed(5n, 0n, 'prevote', { block: 3 });
    const different = watermarkFromState(parseStateFile(filePvText(other), 'g').state, 'test', 1);
    assert.equal(planImport(full, different, false).outcome, 'refused');
    assert.equal(planImport(full, different, true).outcome, 'forced');
  });

  it('after import an identical request gets the same signature back (FilePV semantics)', () => {
    const s = signed(2000n, 1n, 'precommit', { block: 4 });
    const w = watermarkFromState(parseStateFile(filePvText(s), 'f').state, 'test', 1);
    assert.equal(hex(w.payloadHash), hex(sha256(s.signBytes)));
    const request = {
      chainId: CHAIN,
      height: 2000n,
      round: 1n,
      step: 'precommit' as const,
      signBytes: s.signBytes,
      parsed: parseSignBytes(s.signBytes),
      payloadHash: sha256(s.signBytes),
      withExtension: false,
    };
    const d = decideCometbft(w, request);
    assert.equal(d.outcome, 'replay');
    assert.equal(hex(d.outcome === 'replay' ? d.stored.signature : undefined), hex(s.signature));
    const conflicting = signBytesFor(2000n, 1n, 'precommit', { block: 5 });
    const d2 = decideCometbft(w, {
      ...request,
      signBytes: conflicting,
      parsed: parseSignBytes(conflicting),
      payloadHash: sha256(conflicting),
    });
    assert.equal(d2.outcome, 'refuse');
    assert.deepEqual(stateFromWatermark(w).signature, s.signature);
  });
});
