/** Key files on disk: formats, permission checks, and that the private key never leaks. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { ed25519 } from '@noble/curves/ed25519.js';
import { InputError, VigilError } from '../../src/errors.js';
import { Ed25519Key, verifyEd25519 } from '../../src/keys/ed25519.js';
import { KeyFileError, loadEd25519KeyFile } from '../../src/keys/key-file.js';
import { KeyRing } from '../../src/keys/keyring.js';
import { binding, tempDir } from '../helpers/guard-fixtures.js';

/** A fixed, recognisable seed, so any leak of it shows up in string searches. */
const SEED = new Uint8Array(32).map((_, i) => (i * 37 + 11) & 0xff);
const PUB = ed25519.getPublicKey(SEED);
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Every spelling of the secret that must never appear in output. */
const SECRET_FORMS = [
  hexOf(SEED),
  hexOf(SEED).toUpperCase(),
  b64(SEED),
  b64(new Uint8Array([...SEED, ...PUB])),
  b64(SEED).slice(0, 20),
  hexOf(SEED).slice(0, 24),
  // Node's default Uint8Array/Buffer rendering of the first bytes.
  Array.from(SEED.slice(0, 6), (x) => x.toString(16).padStart(2, '0')).join(' '),
  Array.from(SEED.slice(0, 6)).join(', '),
];

function assertNoSecret(text: string, where: string): void {
  for (const s of SECRET_FORMS)
    assert.ok(!text.includes(s), `${where} leaks the private key: ${text}`);
}

function privValidatorKeyJson(seed: Uint8Array, pub: Uint8Array): string {
  const address = createHash('sha256')
    .update(pub)
    .digest()
    .subarray(0, 20)
    .toString('hex')
    .toUpperCase();
  return JSON.stringify(
    {
      address,
      pub_key: { type: 'tendermint/PubKeyEd25519', value: b64(pub) },
      priv_key: {
        type: 'tendermint/PrivKeyEd25519',
        value: b64(new Uint8Array([...seed, ...pub])),
      },
    },
    null,
    2,
  );
}

describe('key files', () => {
  let dir: string;
  let cleanup: () => void;
  let n = 0;
  before(() => ({ dir, cleanup } = tempDir('vigil-keys-')));
  after(() => cleanup());

  const write = (content: string | Uint8Array, mode = 0o600): string => {
    const path = join(dir, `key-${++n}`);
    writeFileSync(path, content, { mode });
    chmodSync(path, mode); // the umask must not decide what the test checks
    return path;
  };

  function assertSameKey(key: Ed25519Key): void {
    assert.deepEqual(key.publicKey, PUB);
    const msg = new TextEncoder().encode('vigil');
    const sig = key.sign(msg);
    assert.deepEqual(
      sig,
      ed25519.sign(msg, SEED),
      'Ed25519 is deterministic: same as @noble/curves',
    );
    assert.ok(verifyEd25519(PUB, msg, sig));
    assert.ok(!verifyEd25519(PUB, new TextEncoder().encode('vigiL'), sig));
  }

  it('reads CometBFT priv_validator_key.json', () => {
    assertSameKey(loadEd25519KeyFile(write(privValidatorKeyJson(SEED, PUB))));
    // Without pub_key the private key's own public half is checked.
    const doc = JSON.parse(privValidatorKeyJson(SEED, PUB));
    delete doc.pub_key;
    assertSameKey(loadEd25519KeyFile(write(JSON.stringify(doc))));
  });

  it('reads plain raw, hex and base64 key files (seed or seed‖public key)', () => {
    const both = new Uint8Array([...SEED, ...PUB]);
    for (const content of [
      SEED,
      both,
      `${hexOf(SEED)}\n`,
      `${hexOf(SEED).toUpperCase()}\n`,
      hexOf(both),
      `  ${b64(SEED)}\n`,
      b64(both),
    ]) {
      assertSameKey(loadEd25519KeyFile(write(content)));
    }
  });

  it('accepts owner-only modes 0600 and 0400', () => {
    assertSameKey(loadEd25519KeyFile(write(b64(SEED), 0o400)));
  });

  // 64 hex characters without a newline are exactly 64 bytes: the file must still be read as
  // text, not as a raw seed‖public key (which would be refused as a mismatched key).
  it('reads a hex seed written without a trailing newline (64 bytes of text)', () => {
    assertSameKey(loadEd25519KeyFile(write(hexOf(SEED))));
  });

  for (const mode of [0o640, 0o604, 0o644, 0o660, 0o606, 0o610, 0o601]) {
    it(`refuses a key file with mode 0${mode.toString(8)}, with a chmod hint`, () => {
      const path = write(privValidatorKeyJson(SEED, PUB), mode);
      assert.throws(
        () => loadEd25519KeyFile(path),
        (e: unknown) =>
          e instanceof KeyFileError &&
          e.code === 'KEY_FILE_INVALID' &&
          e.message.includes(`chmod 600 ${path}`) &&
          e.message.includes(mode.toString(8)),
      );
    });
  }

  it('refuses a public key that does not match the private key', () => {
    const otherPub = ed25519.getPublicKey(new Uint8Array(32).fill(1));
    const mismatched = JSON.parse(privValidatorKeyJson(SEED, PUB));
    mismatched.pub_key.value = b64(otherPub);
    assert.throws(() => loadEd25519KeyFile(write(JSON.stringify(mismatched))), /does not match/);
    // The 64-byte private value carries its own public half, checked too.
    const badTail = JSON.parse(privValidatorKeyJson(SEED, PUB));
    badTail.priv_key.value = b64(new Uint8Array([...SEED, ...otherPub]));
    delete badTail.pub_key;
    assert.throws(() => loadEd25519KeyFile(write(JSON.stringify(badTail))), /does not match/);
    assert.throws(
      () => loadEd25519KeyFile(write(new Uint8Array([...SEED, ...otherPub]))),
      /does not match/,
    );
  });

  it('refuses malformed files with precise errors that never quote the key', () => {
    const cases: Array<[string | Uint8Array, RegExp]> = [
      ['{ "priv_key": ', /not valid JSON/],
      [
        JSON.stringify({ priv_key: { type: 'tendermint/PrivKeySecp256k1', value: b64(SEED) } }),
        /only tendermint\/PrivKeyEd25519/,
      ],
      [JSON.stringify({ pub_key: { value: b64(PUB) } }), /no priv_key/],
      [
        JSON.stringify({
          priv_key: { type: 'tendermint/PrivKeyEd25519', value: b64(SEED.slice(0, 31)) },
        }),
        /31 key bytes/,
      ],
      [hexOf(SEED).slice(0, 62), /key bytes|neither/],
      [`${hexOf(SEED)}!!`, /neither/],
      [new Uint8Array(33).fill(7), /neither|key bytes/],
      ['', /neither|key bytes/],
    ];
    for (const [content, expected] of cases) {
      const path = write(content);
      try {
        loadEd25519KeyFile(path);
        assert.fail(`accepted ${String(content).slice(0, 40)}`);
      } catch (e) {
        assert.ok(e instanceof VigilError, String(e));
        assert.match(e.message, expected);
        assert.ok(e.message.includes(path), 'the error names the file');
        assertNoSecret(e.message, 'error message');
        assertNoSecret(e.stack ?? '', 'error stack');
        assertNoSecret(inspect(e, { depth: 10, showHidden: true }), 'inspected error');
      }
    }
    assert.throws(() => loadEd25519KeyFile(join(dir, 'missing')), KeyFileError);
  });

  it('never shows the private key in inspect, JSON or string conversion', () => {
    const key = loadEd25519KeyFile(write(privValidatorKeyJson(SEED, PUB)));
    const renderings = [
      inspect(key),
      inspect(key, { showHidden: true, depth: Infinity, customInspect: false }),
      inspect({ nested: { key } }, { depth: Infinity }),
      JSON.stringify(key),
      JSON.stringify({ key }),
      String(key),
      `${Object.keys(key).join(',')}`,
      JSON.stringify(
        Object.getOwnPropertyNames(key).map((k) =>
          inspect((key as never)[k], { showHidden: true }),
        ),
      ),
    ];
    for (const text of renderings) assertNoSecret(text, 'rendering');
    assert.ok(inspect(key).includes(hexOf(PUB)), 'the public key is shown');
    assert.ok(JSON.stringify(key).includes(hexOf(PUB)));
    // A key ring holding the key is just as quiet.
    const ring = new KeyRing();
    ring.add({ id: 'v', scopeKeyId: key.publicKeyHex, signer: key, binding: binding('cometbft') });
    assertNoSecret(inspect(ring, { depth: Infinity, showHidden: true }), 'inspected key ring');
    assertNoSecret(JSON.stringify(ring.all()), 'serialised key ring');
  });

  it('Ed25519Key.fromSeed refuses wrong seed lengths without echoing them', () => {
    assert.throws(
      () => Ed25519Key.fromSeed(new Uint8Array([...SEED, 1])),
      (e: unknown) =>
        e instanceof InputError && /33/.test(e.message) && !e.message.includes(hexOf(SEED)),
    );
  });
});

describe('KeyRing', () => {
  it('resolves by id or by public key in any case, and refuses duplicate ids', () => {
    const key = Ed25519Key.fromSeed(SEED);
    const ring = new KeyRing();
    ring.add({
      id: 'val',
      scopeKeyId: key.publicKeyHex,
      signer: key,
      binding: binding('cometbft'),
    });
    ring.add({ id: 'watch', scopeKeyId: 'ab'.repeat(32), binding: binding('authorize') });
    assert.equal(ring.resolve('val')?.signer, key);
    assert.equal(ring.resolve(hexOf(PUB))?.id, 'val');
    assert.equal(ring.resolve(hexOf(PUB).toUpperCase())?.id, 'val');
    assert.equal(ring.resolve('AB'.repeat(32))?.id, 'watch');
    assert.equal(ring.resolve('nope'), undefined);
    assert.throws(
      () => ring.add({ id: 'val', scopeKeyId: 'cd'.repeat(32), binding: binding('authorize') }),
      InputError,
    );
    // One key under two entries would give it two protocols.
    assert.throws(
      () => ring.add({ id: 'again', scopeKeyId: key.publicKeyHex, binding: binding('grandpa') }),
      (e: unknown) => e instanceof InputError && /same key/.test(e.message),
    );
  });
});
