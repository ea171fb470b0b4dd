import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_ENTRY, vectorsDir } from '../../helpers/paths.js';

const cases = (
  JSON.parse(
    readFileSync(join(vectorsDir(), 'cometbft', 'privval-v0.38-messages.json'), 'utf8'),
  ) as { cases: Array<{ name: string; hex: string }> }
).cases;

const vigil = (...args: string[]) =>
  spawnSync(process.execPath, [CLI_ENTRY, 'cometbft', 'decode', ...args], { encoding: 'utf8' });

test('vigil cometbft decode prints the pubkey response vector as JSON', () => {
  const hex = cases.find((c) => c.name === 'pubkey response')!.hex;
  const r = vigil(hex);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.lengthPrefixed, false);
  assert.equal(out.message.kind, 'pubKeyResponse');
  assert.equal(out.message.pubKey.type, 'ed25519');
  assert.equal(
    out.message.pubKey.bytes,
    '556a436f1218d30942efe798420f51dc9b6a311b929c578257457d05c5fcf230',
  );
});

test('vigil cometbft decode accepts the length prefix and --protocol v1', () => {
  const r = vigil('0422020a00', '--protocol', 'v1');
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.lengthPrefixed, true);
  assert.equal(out.message.kind, 'signedVoteResponse');
  assert.equal(out.message.vote.timestamp, '0001-01-01T00:00:00Z');
});

test('vigil cometbft decode refuses garbage with a precise error and exit code 1', () => {
  const r = vigil('0a01');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /not a v0\.38 privval message/);
  assert.equal(vigil('xyz').status, 1);
});
