/**
 * `vigil keys show` as an operator runs it: a real priv_validator_key.json whose `address` was
 * published with it must give that address, and its cosmosvalcons form with --prefix.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ss58Encode } from '../../src/keys/ss58.js';
import { CLI_ENTRY, vectorsDir } from '../helpers/paths.js';

// A public test key: hyphacoop/cosmos-genesis-tinkerer genesis_theta_local.py (commit e76a45c)
// prints this priv_validator_key.json with LOCAL_CONS_ADDRESS
// cosmosvalcons16k44u3v0m8uevnh4p2qy2xm08y3wdf92xsc3ve. Never a key anyone signs with.
const THETA_KEY = {
  address: 'D5AB5E458FD9F9964EF50A80451B6F3922E6A4AA',
  pub_key: {
    type: 'tendermint/PubKeyEd25519',
    value: 'qwiUMxz3llsy45fPvM0a8+XQeAJLvrX3QAEJmRMEEoU=',
  },
  priv_key: {
    type: 'tendermint/PrivKeyEd25519',
    value:
      '2yjw8d1QrgB5afmg/UAvvqZ8B9rcaPXVQpqjabvQNVirCJQzHPeWWzLjl8+8zRrz5dB4Aku+tfdAAQmZEwQShQ==',
  },
};
const THETA_VALCONS = 'cosmosvalcons16k44u3v0m8uevnh4p2qy2xm08y3wdf92xsc3ve';

let dir: string;
function vigil(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI_ENTRY, 'keys', 'show', ...args], {
    encoding: 'utf8',
    cwd: dir,
    timeout: 30_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
function write(name: string, text: string, mode = 0o600): string {
  const p = join(dir, name);
  writeFileSync(p, text, { mode });
  return p;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-keys-show-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('vigil keys show', () => {
  it("gives a published priv_validator_key.json's own address, and its cosmosvalcons form", () => {
    const file = write('priv_validator_key.json', JSON.stringify(THETA_KEY, null, 2));
    const r = vigil('--key', file, '--prefix', 'cosmosvalcons', '--json');
    assert.equal(r.code, 0, r.err);
    const d = JSON.parse(r.out) as Record<string, unknown>;
    assert.equal(d.address, THETA_KEY.address);
    assert.equal(d.bech32Address, THETA_VALCONS);
    assert.equal(d.publicKeyBase64, THETA_KEY.pub_key.value);
    assert.equal(d.publicKeyHex, Buffer.from(THETA_KEY.pub_key.value, 'base64').toString('hex'));
    assert.equal(d.scheme, 'ed25519');
    assert.match(String(d.bech32PublicKey), /^cosmosvalconspub1zcjduepq/);
    assert.deepEqual(d.cosmosPublicKey, {
      '@type': '/cosmos.crypto.ed25519.PubKey',
      key: THETA_KEY.pub_key.value,
    });

    const text = vigil('--key', file, '--prefix', 'cosmosvalcons');
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, new RegExp(`address +${THETA_KEY.address}`));
    assert.match(text.out, new RegExp(`bech32 address +${THETA_VALCONS}`));
    // Nothing private, in any form.
    const seed = Buffer.from(THETA_KEY.priv_key.value, 'base64').subarray(0, 32);
    for (const out of [r.out, text.out]) {
      assert.ok(!out.includes(THETA_KEY.priv_key.value.slice(0, 24)));
      assert.ok(!out.includes(seed.toString('hex').slice(0, 24)));
    }
  });

  it('without --prefix prints the address but no bech32 forms', () => {
    const file = write('k2.json', JSON.stringify(THETA_KEY));
    const r = vigil('--key', file, '--json');
    assert.equal(r.code, 0, r.err);
    const d = JSON.parse(r.out) as Record<string, unknown>;
    assert.equal(d.address, THETA_KEY.address);
    assert.equal(d.bech32Address, undefined);
  });

  it('an sr25519 keystore file: its public key (published vector), no address', () => {
    const v = (
      JSON.parse(readFileSync(join(vectorsDir(), 'substrate', 'sr25519-keys.json'), 'utf8')) as {
        vectors: { seed: string; publicKey: string }[];
      }
    ).vectors[0]!;
    const file = write('babe-key', JSON.stringify(v.seed));
    const r = vigil('--key', file, '--json');
    assert.equal(r.code, 0, r.err);
    const d = JSON.parse(r.out) as Record<string, unknown>;
    assert.equal(d.scheme, 'sr25519');
    assert.equal(d.publicKeyHex, v.publicKey.slice(2));
    assert.equal(d.address, undefined);
    // Its account in SS58 (generic 42 unless told), the same encoder as test/keys/ss58.test.ts.
    assert.equal(d.ss58Address, ss58Encode(Buffer.from(v.publicKey.slice(2), 'hex')));
    const polkadot = vigil('--key', file, '--ss58-prefix', '0', '--json');
    assert.equal(
      (JSON.parse(polkadot.out) as { ss58Address: string }).ss58Address,
      ss58Encode(Buffer.from(v.publicKey.slice(2), 'hex'), 0),
    );
    // A plain hex seed is Ed25519 unless told otherwise.
    const plain = write('plain-seed', `${v.seed.slice(2)}\n`);
    const sr = vigil('--key', plain, '--scheme', 'sr25519', '--json');
    assert.equal(
      (JSON.parse(sr.out) as { publicKeyHex: string }).publicKeyHex,
      v.publicKey.slice(2),
    );
    const ed = vigil('--key', plain, '--json');
    assert.notEqual(
      (JSON.parse(ed.out) as { publicKeyHex: string }).publicKeyHex,
      v.publicKey.slice(2),
    );
    const prefixed = vigil('--key', file, '--prefix', 'cosmosvalcons');
    assert.equal(prefixed.code, 1);
    assert.match(prefixed.err, /\[INVALID_INPUT\].*sr25519/);
  });

  it('coded errors: a key file readable by others, a bad prefix', () => {
    const open = write('open.json', JSON.stringify(THETA_KEY), 0o644);
    const r = vigil('--key', open);
    assert.equal(r.code, 1);
    assert.match(r.err, /\[KEY_FILE_INVALID\].*chmod 600/);
    const file = write('k3.json', JSON.stringify(THETA_KEY));
    const bad = vigil('--key', file, '--prefix', 'CosmosValCons');
    assert.equal(bad.code, 1);
    assert.match(bad.err, /\[INVALID_BECH32_PREFIX\]/);
    assert.doesNotMatch(bad.err + r.err, /^\s+at /m);
  });
});
