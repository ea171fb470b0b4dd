/** sr25519 keys: published vectors, the signing context, privacy, and key files on disk. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import * as scure from '@scure/sr25519';
import { InputError, VigilError } from '../../src/errors.js';
import { Sr25519Key, verifySr25519 } from '../../src/keys/sr25519.js';
import { KeyFileError, loadEd25519KeyFile, loadSr25519KeyFile } from '../../src/keys/key-file.js';
import { tempDir } from '../helpers/guard-fixtures.js';
import { vectorsDir } from '../helpers/paths.js';

const fromHex = (s: string) => new Uint8Array(Buffer.from(s.replace(/^0x/, ''), 'hex'));
const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

const vectors = JSON.parse(
  readFileSync(join(vectorsDir(), 'substrate', 'sr25519-keys.json'), 'utf8'),
) as {
  vectors: { seed: string; publicKey: string }[];
  signatures: { message: string; publicKey: string; signature: string }[];
};

/** A fixed, recognisable seed, so any leak of it shows up in string searches. */
const SEED = new Uint8Array(32).map((_, i) => (i * 53 + 29) & 0xff);
const SECRET_FORMS = [
  hexOf(SEED),
  hexOf(SEED).toUpperCase(),
  b64(SEED),
  hexOf(SEED).slice(0, 24),
  b64(SEED).slice(0, 20),
  Array.from(SEED.slice(0, 6)).join(', '),
  Array.from(SEED.slice(0, 6), (x) => x.toString(16).padStart(2, '0')).join(' '),
];
function assertNoSecret(text: string, where: string): void {
  for (const s of SECRET_FORMS) assert.ok(!text.includes(s), `${where} leaks the seed: ${text}`);
}

describe('Sr25519Key', () => {
  it('derives the published public key from each published seed', () => {
    assert.ok(vectors.vectors.length >= 2);
    for (const v of vectors.vectors) {
      assert.equal(Sr25519Key.fromSeed(fromHex(v.seed)).publicKeyHex, v.publicKey.slice(2));
    }
  });

  it('verifies a published signature made in the "substrate" signing context', () => {
    for (const s of vectors.signatures) {
      const message = new TextEncoder().encode(s.message);
      assert.ok(verifySr25519(fromHex(s.publicKey), message, fromHex(s.signature)));
      assert.ok(!verifySr25519(fromHex(s.publicKey), message.subarray(1), fromHex(s.signature)));
    }
  });

  it('signs verifiably; signatures are randomised; wrong or malformed inputs do not verify', () => {
    const key = Sr25519Key.fromSeed(SEED);
    const msg = new TextEncoder().encode('vigil');
    const a = key.sign(msg);
    const b = key.sign(msg);
    assert.equal(a.length, 64);
    assert.notEqual(hexOf(a), hexOf(b), 'schnorrkel signatures carry a fresh nonce');
    assert.ok(verifySr25519(key.publicKey, msg, a) && verifySr25519(key.publicKey, msg, b));
    assert.ok(!verifySr25519(key.publicKey, new TextEncoder().encode('vigiL'), a));
    const other = Sr25519Key.fromSeed(new Uint8Array(32).fill(1));
    assert.ok(!verifySr25519(other.publicKey, msg, a));
    assert.ok(!verifySr25519(key.publicKey, msg, a.subarray(0, 63)));
    assert.ok(!verifySr25519(key.publicKey.subarray(1), msg, a));
    // A signature without schnorrkel's marker bit is malformed, not an exception.
    const unmarked = new Uint8Array(a);
    unmarked[63] = unmarked[63]! & 0x7f;
    assert.equal(verifySr25519(key.publicKey, msg, unmarked), false);
  });

  it('refuses seeds that are not 32 bytes without echoing them', () => {
    assert.throws(
      () => Sr25519Key.fromSeed(new Uint8Array([...SEED, 1])),
      (e: unknown) =>
        e instanceof InputError && /33/.test(e.message) && !e.message.includes(hexOf(SEED)),
    );
  });

  it('never shows the secret in inspect, JSON or string conversion', () => {
    const key = Sr25519Key.fromSeed(SEED);
    const expanded = scure.secretFromSeed(SEED);
    const forms = [...SECRET_FORMS, hexOf(expanded).slice(0, 24), b64(expanded).slice(0, 20)];
    const renderings = [
      inspect(key),
      inspect(key, { showHidden: true, depth: Infinity, customInspect: false }),
      inspect({ nested: { key } }, { depth: Infinity }),
      JSON.stringify(key),
      String(key),
      Object.keys(key).join(','),
      JSON.stringify(
        Object.getOwnPropertyNames(key).map((k) =>
          inspect((key as never)[k], { showHidden: true }),
        ),
      ),
    ];
    for (const text of renderings) {
      for (const s of forms) assert.ok(!text.includes(s), `rendering leaks the secret: ${text}`);
    }
    assert.ok(inspect(key).includes(key.publicKeyHex));
    assert.deepEqual(JSON.parse(JSON.stringify(key)), {
      type: 'sr25519',
      publicKey: key.publicKeyHex,
    });
  });
});

describe('sr25519 key files', () => {
  let dir: string;
  let cleanup: () => void;
  let n = 0;
  before(() => ({ dir, cleanup } = tempDir('vigil-sr-keys-')));
  after(() => cleanup());

  const PUB = Sr25519Key.fromSeed(SEED).publicKey;
  const write = (content: string | Uint8Array, name = `key-${++n}`, mode = 0o600): string => {
    const path = join(dir, name);
    writeFileSync(path, content, { mode });
    chmodSync(path, mode);
    return path;
  };
  const keystoreName = (type: string, pub: Uint8Array) =>
    Buffer.from(type, 'ascii').toString('hex') + hexOf(pub);

  it('reads plain raw, hex and base64 seeds', () => {
    for (const content of [
      SEED,
      hexOf(SEED),
      `${hexOf(SEED).toUpperCase()}\n`,
      `0x${hexOf(SEED)}\n`,
      `  ${b64(SEED)}\n`,
    ]) {
      assert.deepEqual(loadSr25519KeyFile(write(content)).publicKey, PUB);
    }
  });

  it('reads a Substrate keystore file and checks the public key in its name', () => {
    const suri = JSON.stringify(`0x${hexOf(SEED)}`);
    const key = loadSr25519KeyFile(write(suri, keystoreName('babe', PUB)));
    assert.deepEqual(key.publicKey, PUB);
    const otherPub = Sr25519Key.fromSeed(new Uint8Array(32).fill(9)).publicKey;
    const renamed = write(suri, keystoreName('aura', otherPub));
    assert.throws(
      () => loadSr25519KeyFile(renamed),
      (e: unknown) =>
        e instanceof KeyFileError &&
        /not the one in its name/.test(e.message) &&
        e.message.includes(renamed),
    );
    // A plain seed file named like a keystore entry is checked against its name too.
    assert.throws(
      () => loadSr25519KeyFile(write(hexOf(SEED), keystoreName('gran', otherPub))),
      /not the one in its name/,
    );
  });

  it('refuses phrases, derivation paths and malformed files with precise errors that never quote the seed', () => {
    const phrase = 'bottom drive obey lake curtain smoke basket hold race lonely fit walk';
    const cases: Array<[string | Uint8Array, RegExp]> = [
      [JSON.stringify(phrase), /mnemonic phrase.*subkey inspect/],
      [JSON.stringify(`${phrase}//Alice`), /mnemonic phrase/],
      [JSON.stringify('//Alice'), /mnemonic phrase or dev URI/],
      [JSON.stringify(`0x${hexOf(SEED)}//stash`), /derivation path/],
      [JSON.stringify(`0x${hexOf(SEED).slice(2)}`), /not a 0x-prefixed 32-byte seed/],
      [`"0x${hexOf(SEED)}`, /not a JSON string/],
      [new Uint8Array([...SEED, ...PUB]), /neither/],
      [hexOf(SEED).slice(0, 62), /neither/],
      [b64(SEED.subarray(0, 31)), /neither/],
      ['', /neither/],
    ];
    for (const [content, expected] of cases) {
      const path = write(content);
      try {
        loadSr25519KeyFile(path);
        assert.fail(`accepted ${String(content).slice(0, 40)}`);
      } catch (e) {
        assert.ok(e instanceof VigilError, String(e));
        assert.match(e.message, expected);
        assert.ok(e.message.includes(path), 'the error names the file');
        assertNoSecret(e.message, 'error message');
        assertNoSecret(inspect(e, { depth: 10, showHidden: true }), 'inspected error');
        assert.ok(!e.message.includes('bottom drive'), 'the phrase is not echoed');
      }
    }
    assert.throws(() => loadSr25519KeyFile(join(dir, 'missing')), KeyFileError);
  });

  for (const mode of [0o640, 0o604, 0o644]) {
    it(`refuses a key file with mode 0${mode.toString(8)}, with a chmod hint`, () => {
      const path = write(hexOf(SEED), `mode-${mode}`, mode);
      assert.throws(
        () => loadSr25519KeyFile(path),
        (e: unknown) => e instanceof KeyFileError && e.message.includes(`chmod 600 ${path}`),
      );
    });
  }

  it('accepts mode 0400, and the Ed25519 loader still reads the same plain seed as Ed25519', () => {
    const path = write(hexOf(SEED), 'ro', 0o400);
    assert.deepEqual(loadSr25519KeyFile(path).publicKey, PUB);
    assert.equal(loadEd25519KeyFile(path).scheme, 'ed25519');
  });
});
