/** Substrate headers and BABE/Aura pre-digests: real blocks, strict decoding, properties. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { InputError } from '../../../src/errors.js';
import {
  decodeAuraPreDigest,
  decodeBabePreDigest,
  decodeHeader,
  encodeAuraPreDigest,
  encodeBabePreDigest,
  encodeHeader,
  headerHash,
  slotOfUnsealedHeader,
  type BabePreDigest,
  type DigestItem,
  type SubstrateHeader,
} from '../../../src/protocols/substrate/header.js';
import { Sr25519Key, verifySr25519 } from '../../../src/keys/sr25519.js';
import { vectorsDir } from '../../helpers/paths.js';

const fromHex = (s: string) => new Uint8Array(Buffer.from(s.replace(/^0x/, ''), 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

interface HeaderVector {
  chain: string;
  number: string;
  hash: string;
  parentHash: string;
  stateRoot: string;
  extrinsicsRoot: string;
  logs: { type: 'PreRuntime' | 'Seal'; index: number; engine: string; data: string }[];
  expectedSlot: string;
  expectedBabe?: { type: BabePreDigest['type']; authorityIndex: number };
}

const vectors = (
  JSON.parse(readFileSync(join(vectorsDir(), 'substrate', 'headers.json'), 'utf8')) as {
    headers: HeaderVector[];
  }
).headers;

function headerOf(v: HeaderVector): SubstrateHeader {
  return {
    parentHash: fromHex(v.parentHash),
    number: BigInt(v.number),
    stateRoot: fromHex(v.stateRoot),
    extrinsicsRoot: fromHex(v.extrinsicsRoot),
    digest: v.logs.map((l) => ({
      kind: l.type === 'PreRuntime' ? 'preRuntime' : 'seal',
      engine: l.engine,
      data: fromHex(l.data),
    })),
  };
}

const unsealed = (h: SubstrateHeader): SubstrateHeader => ({
  ...h,
  digest: h.digest.filter((d) => d.kind !== 'seal'),
});

test('real Polkadot, Westend and Asset Hub headers hash to their published block hash', () => {
  assert.ok(vectors.length >= 4);
  for (const v of vectors) {
    const header = headerOf(v);
    const encoded = encodeHeader(header);
    // The published block hash covers the sealed header: this checks every encoded byte.
    assert.equal(hex(headerHash(encoded)), v.hash.slice(2), `${v.chain} #${v.number}`);
    const decoded = decodeHeader(encoded);
    assert.deepEqual(decoded, header);
    assert.deepEqual(encodeHeader(decoded), encoded);
  }
});

test('the slot each real header claims, from its BABE or Aura pre-digest', () => {
  for (const v of vectors) {
    const header = headerOf(v);
    const engine = v.logs[0]!.engine === 'BABE' ? 'babe' : 'aura';
    // The author signs the header without its seal; that is the header Vigil is asked to seal.
    const toSeal = unsealed(header);
    assert.equal(slotOfUnsealedHeader(toSeal, engine), BigInt(v.expectedSlot), v.chain);
    assert.throws(
      () => slotOfUnsealedHeader(header, engine),
      (err: unknown) => err instanceof InputError && /already sealed/.test(err.message),
    );
    const pre = header.digest[0] as Extract<DigestItem, { engine: string }>;
    if (engine === 'babe') {
      const d = decodeBabePreDigest(pre.data);
      assert.equal(d.type, v.expectedBabe!.type);
      assert.equal(d.authorityIndex, v.expectedBabe!.authorityIndex);
      assert.equal(d.slot, BigInt(v.expectedSlot));
      assert.deepEqual(encodeBabePreDigest(d), pre.data);
    } else {
      assert.equal(decodeAuraPreDigest(pre.data), BigInt(v.expectedSlot));
      assert.deepEqual(encodeAuraPreDigest(BigInt(v.expectedSlot)), pre.data);
    }
  }
  const types = new Set(vectors.flatMap((v) => (v.expectedBabe ? [v.expectedBabe.type] : [])));
  assert.deepEqual([...types].sort(), ['primary', 'secondaryPlain', 'secondaryVRF']);
});

test('sealing: an sr25519 seal over headerHash(unsealed) verifies, and sealing changes the hash', () => {
  const v = vectors[0]!;
  const toSeal = encodeHeader(unsealed(headerOf(v)));
  const preHash = headerHash(toSeal);
  const key = Sr25519Key.fromSeed(new Uint8Array(32).fill(7));
  const seal = key.sign(preHash);
  assert.ok(verifySr25519(key.publicKey, preHash, seal));
  const sealed = encodeHeader({
    ...decodeHeader(toSeal),
    digest: [...decodeHeader(toSeal).digest, { kind: 'seal', engine: 'BABE', data: seal }],
  });
  assert.notEqual(hex(headerHash(sealed)), hex(preHash));
});

test('slotOfUnsealedHeader wants exactly one pre-digest of its engine', () => {
  const v = vectors[0]!;
  const base = unsealed(headerOf(v));
  const pre = base.digest[0]!;
  const refuse = (h: SubstrateHeader, engine: 'babe' | 'aura', pattern: RegExp) =>
    assert.throws(
      () => slotOfUnsealedHeader(h, engine),
      (err: unknown) => err instanceof InputError && pattern.test(err.message),
    );
  refuse({ ...base, digest: [] }, 'babe', /has 0 BABE pre-runtime digests/);
  refuse({ ...base, digest: [pre, pre] }, 'babe', /has 2 BABE pre-runtime digests/);
  refuse(base, 'aura', /has 0 aura pre-runtime digests/);
  refuse(
    { ...base, digest: [{ kind: 'preRuntime', engine: 'BABE', data: new Uint8Array([2, 0]) }] },
    'babe',
    /BABE pre-digest/,
  );
  // Other items beside the one pre-digest do not matter.
  const withOthers: SubstrateHeader = {
    ...base,
    digest: [
      { kind: 'consensus', engine: 'FRNK', data: new Uint8Array([1, 2]) },
      pre,
      { kind: 'other', data: new Uint8Array(0) },
      { kind: 'runtimeEnvironmentUpdated' },
    ],
  };
  assert.equal(
    slotOfUnsealedHeader(decodeHeader(encodeHeader(withOthers)), 'babe'),
    BigInt(v.expectedSlot),
  );
});

test('digest item tags and the compact block number are laid out as in sp_runtime', () => {
  const zero = new Uint8Array(32);
  const header: SubstrateHeader = {
    parentHash: zero,
    number: 64n, // the first number that needs two compact bytes
    stateRoot: zero,
    extrinsicsRoot: zero,
    digest: [
      { kind: 'other', data: new Uint8Array([0xaa]) },
      { kind: 'consensus', engine: 'BABE', data: new Uint8Array(0) },
      { kind: 'seal', engine: 'aura', data: new Uint8Array(0) },
      { kind: 'preRuntime', engine: 'BABE', data: new Uint8Array(0) },
      { kind: 'runtimeEnvironmentUpdated' },
    ],
  };
  const bytes = encodeHeader(header);
  assert.equal(hex(bytes.subarray(32, 34)), '0101');
  assert.equal(
    hex(bytes.subarray(98)),
    '14' +
      '0004aa' +
      '04' +
      '42414245' +
      '00' +
      '05' +
      '61757261' +
      '00' +
      '06' +
      '42414245' +
      '00' +
      '08',
  );
  assert.deepEqual(decodeHeader(bytes), header);
});

test('malformed headers are refused with a precise InputError', () => {
  const good = encodeHeader(headerOf(vectors[0]!));
  const refuse = (bytes: Uint8Array, pattern: RegExp) =>
    assert.throws(
      () => decodeHeader(bytes),
      (err: unknown) => err instanceof InputError && pattern.test(err.message),
      String(pattern),
    );
  refuse(new Uint8Array([...good, 0]), /1 trailing bytes/);
  refuse(good.subarray(0, 20), /parent hash needs 32 bytes/);
  refuse(good.subarray(0, good.length - 1), /digest item data needs/);
  // Block number 0 written in two-byte compact mode instead of one.
  const nonCanonical = new Uint8Array([...good.subarray(0, 32), 0x01, 0x00, ...good.subarray(36)]);
  refuse(nonCanonical, /non-canonical compact/);
  // An unknown digest item tag (2 was ChangesTrieRoot, long removed).
  const tagAt = 32 + 4 + 64 + 1;
  const badTag = new Uint8Array(good);
  badTag[tagAt] = 2;
  refuse(badTag, /digest item at offset 101 has unknown tag 2/);
  // A digest count larger than the bytes left.
  const noDigest = encodeHeader({ ...headerOf(vectors[0]!), digest: [] });
  noDigest[noDigest.length - 1] = 0x04; // compact 1, with nothing after it
  refuse(noDigest, /digest of 1 items needs 1 bytes/);
  // A number past u32.
  const big = encodeHeader({ ...headerOf(vectors[0]!), number: 0n });
  const wide = new Uint8Array([...big.subarray(0, 32), 0x07, 0, 0, 0, 0, 1, ...big.subarray(33)]);
  refuse(wide, /block number 4294967296 .* exceeds 4294967295/);
  assert.throws(() => headerHash(new Uint8Array([1, 2, 3])), InputError);
});

test('BABE pre-digests: layout per variant and strict decoding', () => {
  const vrfOutput = new Uint8Array(32).fill(1);
  const vrfProof = new Uint8Array(64).fill(2);
  const plain = encodeBabePreDigest({
    type: 'secondaryPlain',
    authorityIndex: 258,
    slot: 0x0102030405060708n,
  });
  assert.equal(hex(plain), '02' + '02010000' + '0807060504030201');
  const primary = encodeBabePreDigest({
    type: 'primary',
    authorityIndex: 0,
    slot: 1n,
    vrfOutput,
    vrfProof,
  });
  assert.equal(primary.length, 1 + 4 + 8 + 32 + 64);
  assert.equal(primary[0], 1);
  assert.equal(
    encodeBabePreDigest({
      type: 'secondaryVRF',
      authorityIndex: 0,
      slot: 1n,
      vrfOutput,
      vrfProof,
    })[0],
    3,
  );
  assert.throws(
    () => decodeBabePreDigest(new Uint8Array([0, ...plain.subarray(1)])),
    /unknown tag 0/,
  );
  assert.throws(
    () => decodeBabePreDigest(new Uint8Array([4, ...plain.subarray(1)])),
    /unknown tag 4/,
  );
  assert.throws(
    () => decodeBabePreDigest(primary.subarray(0, 100)),
    /BABE VRF proof needs 64 bytes/,
  );
  assert.throws(() => decodeBabePreDigest(new Uint8Array([...plain, 0])), /1 trailing bytes/);
  assert.throws(
    () =>
      encodeBabePreDigest({
        type: 'primary',
        authorityIndex: 0,
        slot: 1n,
        vrfOutput,
        vrfProof: vrfOutput,
      }),
    /VRF proof must be 64 bytes/,
  );
  assert.throws(
    () => encodeBabePreDigest({ type: 'secondaryPlain', authorityIndex: 2 ** 32, slot: 1n }),
    /authority index/,
  );
  assert.throws(() => decodeAuraPreDigest(new Uint8Array(7)), /Aura slot needs 8 bytes/);
  assert.throws(() => decodeAuraPreDigest(new Uint8Array(9)), /1 trailing bytes/);
  assert.throws(() => encodeAuraPreDigest(-1n), InputError);
});

test('encoding refuses what the wire cannot carry', () => {
  const h = headerOf(vectors[0]!);
  const bad: [SubstrateHeader, RegExp][] = [
    [{ ...h, parentHash: new Uint8Array(31) }, /parent hash must be 32 bytes/],
    [{ ...h, number: 1n << 32n }, /block number 4294967296 is outside/],
    [
      { ...h, digest: [{ kind: 'seal', engine: 'BAB', data: new Uint8Array(0) }] },
      /4 ASCII characters/,
    ],
    [
      { ...h, digest: [{ kind: 'seal', engine: 'BAB\u00e9', data: new Uint8Array(0) }] },
      /4 ASCII characters/,
    ],
    [
      { ...h, digest: [{ kind: 'bogus' } as unknown as DigestItem] },
      /unknown digest item kind "bogus"/,
    ],
  ];
  for (const [header, pattern] of bad) {
    assert.throws(
      () => encodeHeader(header),
      (err: unknown) => err instanceof InputError && pattern.test(err.message),
      String(pattern),
    );
  }
});

const bytesArb = (max: number) => fc.uint8Array({ maxLength: max });
const engineArb = fc.stringMatching(/^[ -~]{4}$/);
const digestItemArb: fc.Arbitrary<DigestItem> = fc.oneof(
  fc.record({
    kind: fc.constantFrom('preRuntime' as const, 'consensus' as const, 'seal' as const),
    engine: engineArb,
    data: bytesArb(120),
  }),
  fc.record({ kind: fc.constant('other' as const), data: bytesArb(80) }),
  fc.constant({ kind: 'runtimeEnvironmentUpdated' as const }),
);
const hashArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
const headerArb: fc.Arbitrary<SubstrateHeader> = fc.record({
  parentHash: hashArb,
  number: fc.oneof(
    fc.bigInt({ min: 0n, max: 2n ** 16n }),
    fc.bigInt({ min: 0n, max: 2n ** 32n - 1n }),
  ),
  stateRoot: hashArb,
  extrinsicsRoot: hashArb,
  digest: fc.array(digestItemArb, { maxLength: 5 }),
});
const babeArb: fc.Arbitrary<BabePreDigest> = fc.oneof(
  fc.record({
    type: fc.constantFrom('primary' as const, 'secondaryVRF' as const),
    authorityIndex: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    slot: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    vrfOutput: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    vrfProof: fc.uint8Array({ minLength: 64, maxLength: 64 }),
  }),
  fc.record({
    type: fc.constant('secondaryPlain' as const),
    authorityIndex: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    slot: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  }),
);

test('property: headers round-trip; every strict prefix and every one-byte extension is refused', () => {
  fc.assert(
    fc.property(headerArb, fc.integer({ min: 0, max: 255 }), (header, extra) => {
      const bytes = encodeHeader(header);
      // fast-check builds records without a prototype; compare plain copies.
      assert.deepEqual(decodeHeader(bytes), {
        ...header,
        digest: header.digest.map((d) => ({ ...d })),
      });
      for (let n = 0; n < bytes.length; n++) {
        assert.throws(() => decodeHeader(bytes.subarray(0, n)), InputError);
      }
      assert.throws(() => decodeHeader(new Uint8Array([...bytes, extra])), InputError);
    }),
    { numRuns: 100 },
  );
});

test('property: BABE pre-digests round-trip; prefixes and extensions are refused', () => {
  fc.assert(
    fc.property(babeArb, fc.integer({ min: 0, max: 255 }), (d, extra) => {
      const bytes = encodeBabePreDigest(d);
      assert.deepEqual(decodeBabePreDigest(bytes), { ...d });
      for (let n = 0; n < bytes.length; n++) {
        assert.throws(() => decodeBabePreDigest(bytes.subarray(0, n)), InputError);
      }
      assert.throws(() => decodeBabePreDigest(new Uint8Array([...bytes, extra])), InputError);
    }),
    { numRuns: 200 },
  );
});

test('property: random or mutated bytes are refused or re-encode to exactly themselves', () => {
  const mutatedHeader = fc
    .tuple(headerArb, fc.nat(), fc.integer({ min: 0, max: 255 }))
    .map(([h, at, byte]) => {
      const b = new Uint8Array(encodeHeader(h));
      b[at % b.length] = byte;
      return b;
    });
  fc.assert(
    fc.property(fc.oneof(bytesArb(200), mutatedHeader), (bytes) => {
      for (const [decode, encode] of [
        [decodeHeader, encodeHeader],
        [decodeBabePreDigest, encodeBabePreDigest],
        [decodeAuraPreDigest, encodeAuraPreDigest],
      ] as [(b: Uint8Array) => unknown, (v: never) => Uint8Array][]) {
        let value: unknown;
        try {
          value = decode(bytes);
        } catch (err) {
          assert.ok(err instanceof InputError, String(err));
          continue;
        }
        assert.deepEqual(encode(value as never), bytes);
      }
    }),
    { numRuns: 1000 },
  );
});
