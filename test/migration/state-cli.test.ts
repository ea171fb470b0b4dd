/**
 * `vigil state …` end to end: the real CLI, a real agent config YAML, a real key file and a real
 * SQLite store file in a temp dir.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ENTRY } from '../helpers/paths.js';
import { Ed25519Key } from '../../src/keys/ed25519.js';
import {
  CHAIN,
  FILEPV_FRESH,
  KEY,
  SEED,
  filePvText,
  horcruxText,
  signed,
  tmkmsText,
} from './fixtures.js';

/** A second real key: a file that claims to be this validator's but was signed by another. */
const OTHER_KEY = Ed25519Key.fromSeed(new Uint8Array(32).fill(99));

let dir: string;
let config: string;
const PUB = KEY.publicKeyHex;

function vigil(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI_ENTRY, 'state', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

interface Shown {
  chainId: string;
  keyId: string;
  keyNames: string[];
  position: string[];
  step: string;
  signatureStored: boolean;
  writer: string;
}

function show(...extra: string[]): Shown[] {
  const r = vigil('show', '--config', config, '--json', ...extra);
  assert.equal(r.code, 0, r.err);
  return (JSON.parse(r.out) as { watermarks: Shown[] }).watermarks;
}

const base = (file: string, ...extra: string[]) => [
  'import',
  '--config',
  config,
  '--chain-id',
  CHAIN,
  '--key',
  'val1',
  file,
  ...extra,
];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-state-cli-'));
  const keyFile = {
    address: 'unused',
    pub_key: {
      type: 'tendermint/PubKeyEd25519',
      value: Buffer.from(KEY.publicKey).toString('base64'),
    },
    priv_key: {
      type: 'tendermint/PrivKeyEd25519',
      value: Buffer.concat([SEED, KEY.publicKey]).toString('base64'),
    },
  };
  write('priv_validator_key.json', JSON.stringify(keyFile, null, 2));
  write('watcher.key', Buffer.alloc(32, 55).toString('hex'));
  config = write(
    'agent.yaml',
    [
      'agent:',
      '  id: migration-test',
      '  dataDir: ./data',
      'store:',
      '  engine: sqlite',
      '  path: ./store/vigil.db',
      'keys:',
      '  - id: val1',
      '    file: ./priv_validator_key.json',
      '    protocol: cometbft',
      `    chains: [${CHAIN}, hx-chain]`,
      // A second CometBFT key, for chains whose state comes from tmkms.
      '  - id: watcher',
      '    file: ./watcher.key',
      '    protocol: cometbft',
      '    chains: [tm-chain, fresh-chain]',
      '',
    ].join('\n'),
  );
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('vigil state (CLI, SQLite store)', () => {
  const first = signed(1_000n, 0n, 'prevote');
  const later = signed(1_000n, 0n, 'precommit');

  it('refuses a store that was never initialised; `state init` creates it once', () => {
    const missing = vigil('show', '--config', config);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /no watermark store at .*vigil\.db/);
    assert.match(missing.err, /vigil state init/);
    const init = vigil('init', '--config', config);
    assert.equal(init.code, 0, init.err);
    const id = /initialised store ([0-9a-f-]{36}) \(sqlite,/.exec(init.out)?.[1];
    assert.ok(id, init.out);
    assert.equal(statSync(join(dir, 'store', 'vigil.db')).mode & 0o777, 0o600);
    const again = vigil('init', '--config', config);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, new RegExp(`already initialised, store ${id} .*nothing changed`));
    const json = vigil('show', '--config', config, '--json');
    assert.equal((JSON.parse(json.out) as { store: { storeId: string } }).store.storeId, id);
    assert.match(vigil('show', '--config', config).out, new RegExp(`store ${id} \\(sqlite`));
  });

  it('starts empty', () => {
    assert.deepEqual(show(), []);
    assert.match(vigil('show', '--config', config).out, /no watermarks stored/);
  });

  it('imports a FilePV file, and importing it again changes nothing', () => {
    const file = write('pv1.json', filePvText(first));
    const r = vigil(...base(file));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /watermark set to \(1000, 0, 2\)/);
    const [w] = show('--chain-id', CHAIN, '--key', 'val1');
    assert.deepEqual(w!.position, ['1000', '0', '2']);
    assert.equal(w!.step, 'prevote');
    assert.equal(w!.signatureStored, true);
    assert.equal(w!.keyId, PUB);
    assert.deepEqual(w!.keyNames, ['val1']);
    assert.equal(w!.writer, 'vigil state import');
    const again = vigil(...base(file));
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /nothing to do/);
    assert.deepEqual(show(), [w]);
  });

  it('exports byte-identical FilePV state, mode 0600', () => {
    const out = join(dir, 'exported.json');
    const r = vigil('export', '--config', config, '--chain-id', CHAIN, '--key', PUB, '--out', out);
    assert.equal(r.code, 0, r.err);
    assert.equal(readFileSync(out, 'utf8'), filePvText(first));
    assert.equal(statSync(out).mode & 0o777, 0o600);
  });

  it('advances, then refuses to go back unless --force, which says so loudly', () => {
    assert.equal(vigil(...base(write('pv2.json', filePvText(later)))).code, 0);
    const before = show();
    const old = write('pv-old.json', filePvText(first));
    const refused = vigil(...base(old));
    assert.equal(refused.code, 1);
    assert.match(refused.err, /IMPORT_REFUSED.*backwards/s);
    assert.deepEqual(show(), before);
    const forced = vigil(...base(old, '--force'));
    assert.equal(forced.code, 0, forced.err);
    assert.match(forced.err, /WARNING.*BACKWARDS from \(1000, 0, 3\) to \(1000, 0, 2\)/s);
    assert.match(forced.err, /before: \(1000, 0, 3\) precommit/);
    assert.deepEqual(show()[0]!.position, ['1000', '0', '2']);
    assert.equal(vigil(...base(write('pv3.json', filePvText(later)))).code, 0);
  });

  it('changes nothing for bad files', () => {
    const before = show();
    const cases: Array<[string, string, RegExp]> = [
      [
        'step4.json',
        filePvText(signed(2_000n, 0n, 'prevote')).replace('"step": 2', '"step": 4'),
        /step/,
      ],
      ['neg.json', FILEPV_FRESH.replace('"0"', '"-1"'), /height/],
      ['types.json', '{"height": 5, "round": "0", "step": "1"}', /step/],
      [
        'other-height.json',
        filePvText({
          ...signed(2_000n, 0n, 'prevote'),
          signBytes: signed(2_001n, 0n, 'prevote').signBytes,
        }),
        /height 2001, the file says 2000/,
      ],
      [
        'other-chain.json',
        filePvText(signed(2_000n, 0n, 'prevote', { chainId: 'other-1' })),
        /chain "other-1"/,
      ],
      [
        'other-key.json',
        horcruxText(signed(2_000n, 0n, 'prevote', { key: OTHER_KEY })),
        /not made by key/,
      ],
    ];
    for (const [name, text, expected] of cases) {
      const r = vigil(...base(write(name, text)));
      assert.equal(r.code, 1, `${name}: ${r.out}`);
      assert.match(r.err, expected, name);
      assert.match(r.err, /nothing was changed/, name);
    }
    assert.equal(vigil(...base(join(dir, 'missing.json'))).code, 1);
    assert.equal(
      vigil(...base(write('t.json', tmkmsText(5n, 0n, 1)), '--format', 'filepv')).code,
      1,
    );
    const unknownKey = vigil(
      'import',
      '--config',
      config,
      '--chain-id',
      CHAIN,
      '--key',
      'nobody',
      join(dir, 'pv2.json'),
    );
    assert.equal(unknownKey.code, 1);
    assert.match(unknownKey.err, /not configured.*val1, watcher/s);
    assert.deepEqual(show(), before);
  });

  it('imports tmkms and Horcrux state for other chains and exports them back', () => {
    const tm = write('tmkms-state.json', tmkmsText(77n, 2n, 1, 5));
    const r1 = vigil(
      'import',
      '--config',
      config,
      '--chain-id',
      'tm-chain',
      '--key',
      'watcher',
      tm,
    );
    assert.equal(r1.code, 0, r1.err);
    const e1 = vigil(
      'export',
      '--config',
      config,
      '--chain-id',
      'tm-chain',
      '--key',
      'watcher',
      '--format',
      'tmkms',
    );
    assert.equal(e1.code, 0, e1.err);
    // The block id is not stored without sign bytes; tmkms refuses a different block at this step.
    assert.equal(e1.out, `${tmkmsText(77n, 2n, 1)}\n`);

    const h = signed(88n, 1n, 'precommit', { chainId: 'hx-chain' });
    const hx = write('hx-chain_priv_validator_state.json', horcruxText(h));
    const r2 = vigil(
      'import',
      '--config',
      config,
      '--chain-id',
      'hx-chain',
      '--key',
      'val1',
      hx,
      '--format',
      'horcrux',
    );
    assert.equal(r2.code, 0, r2.err);
    const out = join(dir, 'hx-back.json');
    const e2 = vigil(
      'export',
      '--config',
      config,
      '--chain-id',
      'hx-chain',
      '--key',
      'val1',
      '--format',
      'horcrux',
      '--out',
      out,
    );
    assert.equal(e2.code, 0, e2.err);
    assert.equal(readFileSync(out, 'utf8'), horcruxText(h));
    assert.equal(show('--chain-id', 'hx-chain').length, 1);
    assert.equal(show().length, 3);
  });

  it('exports a fresh FilePV state to tmkms repeatedly over the same file', () => {
    const fresh = write('fresh.json', FILEPV_FRESH);
    const args = ['--config', config, '--chain-id', 'fresh-chain', '--key', 'watcher'];
    assert.equal(vigil('import', ...args, fresh).code, 0);
    const out = join(dir, 'fresh-tmkms.json');
    for (let i = 0; i < 2; i++) {
      const r = vigil('export', ...args, '--format', 'tmkms', '--out', out);
      assert.equal(r.code, 0, r.err);
    }
    assert.equal(readFileSync(out, 'utf8'), tmkmsText(0n, 0n, 0));
  });

  it('refuses to overwrite a state file that is ahead of the store', () => {
    const ahead = write('ahead.json', filePvText(signed(5_000n, 0n, 'prevote')));
    const r = vigil(
      'export',
      '--config',
      config,
      '--chain-id',
      CHAIN,
      '--key',
      'val1',
      '--out',
      ahead,
    );
    assert.equal(r.code, 1);
    assert.match(r.err, /ahead of the store/);
    assert.equal(readFileSync(ahead, 'utf8'), filePvText(signed(5_000n, 0n, 'prevote')));
    const none = vigil('export', '--config', config, '--chain-id', 'nope', '--key', 'val1');
    assert.equal(none.code, 1);
    assert.match(none.err, /NO_WATERMARK/);
  });
});
