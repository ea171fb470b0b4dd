/**
 * Issue 11: the agent config is found without --config, as `$VIGIL_CONFIG` or else
 * `/etc/vigil/agent.yaml`, by every command that reads it; --config still wins. These tests
 * never write under /etc.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ENTRY } from '../helpers/paths.js';
import { DEFAULT_CONFIG_PATH } from '../../src/cli/config-location.js';

let dir: string;

/** Runs vigil from an unrelated directory, with VIGIL_CONFIG set or removed. */
function vigil(args: string[], vigilConfig: string | undefined) {
  const env = { ...process.env };
  delete env.VIGIL_CONFIG;
  if (vigilConfig !== undefined) env.VIGIL_CONFIG = vigilConfig;
  const r = spawnSync(process.execPath, [CLI_ENTRY, ...args], {
    encoding: 'utf8',
    cwd: join(dir, 'elsewhere'),
    timeout: 30_000,
    env,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const sqliteConfig = (name: string) =>
  [
    `agent: { id: ${name}, dataDir: ./${name}-data }`,
    `store: { engine: sqlite, path: ./${name}.db }`,
    'keys: []',
    '',
  ].join('\n');

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-config-location-'));
  mkdirSync(join(dir, 'elsewhere'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('VIGIL_CONFIG', () => {
  it('state init and state show read it when --config is not given', () => {
    const config = write('env.yaml', sqliteConfig('env'));
    const init = vigil(['state', 'init'], config);
    assert.equal(init.code, 0, init.err);
    assert.match(init.out, /initialised store/);
    assert.ok(existsSync(join(dir, 'env.db')), 'the store named by $VIGIL_CONFIG was created');
    const show = vigil(['state', 'show', '--json'], config);
    assert.equal(show.code, 0, show.err);
    assert.deepEqual((JSON.parse(show.out) as { watermarks: unknown[] }).watermarks, []);
  });

  it('--config wins over it', () => {
    const envConfig = write('loser.yaml', sqliteConfig('loser'));
    const config = write('winner.yaml', sqliteConfig('winner'));
    const r = vigil(['state', 'init', '--config', config], envConfig);
    assert.equal(r.code, 0, r.err);
    assert.ok(existsSync(join(dir, 'winner.db')));
    assert.ok(!existsSync(join(dir, 'loser.db')));
  });

  it('the agent, cluster status and etcd read it too', () => {
    // A broken file proves which file was read: the error names it with line and column.
    const broken = write('broken.yaml', 'agent:\n  id: a\n  dataDir: [x\n');
    for (const args of [['agent'], ['cluster', 'status'], ['etcd', '--print-args']]) {
      const r = vigil(args, broken);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.out}`);
      assert.match(
        r.err,
        /\[CONFIG_INVALID\][^]*broken\.yaml:\d+:\d+/,
        `${args.join(' ')}: ${r.err}`,
      );
    }
    const member = write(
      'member.yaml',
      [
        'etcd:',
        '  name: a',
        '  dataDir: ./etcd-a',
        '  listenClientUrls: [http://127.0.0.1:23790]',
        '  listenPeerUrls: [http://127.0.0.1:23800]',
        '  initialCluster: { a: "http://127.0.0.1:23800" }',
        '',
      ].join('\n'),
    );
    const etcd = vigil(['etcd', '--print-args'], member);
    assert.equal(etcd.code, 0, etcd.err);
    assert.match(etcd.out, /--name=a/);
    assert.ok(etcd.out.includes(`--data-dir=${join(dir, 'etcd-a')}`), etcd.out);
  });

  it('naming a missing file is CONFIG_NOT_FOUND naming every way to give one', () => {
    const missing = join(dir, 'nope.yaml');
    const r = vigil(['state', 'show'], missing);
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      /\[CONFIG_NOT_FOUND\]: VIGIL_CONFIG names .*nope\.yaml, which does not exist/,
    );
    assert.match(r.err, /--config <file>/);
    assert.match(r.err, /\/etc\/vigil\/agent\.yaml/);
  });
});

describe(`the default ${DEFAULT_CONFIG_PATH}`, () => {
  it('missing, with no --config and no VIGIL_CONFIG: CONFIG_NOT_FOUND names all three ways', (t) => {
    if (existsSync(DEFAULT_CONFIG_PATH)) {
      t.skip(`${DEFAULT_CONFIG_PATH} exists on this machine`);
      return;
    }
    for (const args of [
      ['agent'],
      ['state', 'show'],
      ['cluster', 'status'],
      ['etcd', '--print-args'],
    ]) {
      const r = vigil(args, undefined);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.err, /\[CONFIG_NOT_FOUND\]/, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, /--config/);
      assert.match(r.err, /VIGIL_CONFIG/);
      assert.match(r.err, /\/etc\/vigil\/agent\.yaml/);
      assert.doesNotMatch(r.err, /^\s+at /m);
    }
    // An empty VIGIL_CONFIG is unset, not a file named "".
    assert.match(vigil(['state', 'show'], '').err, /\[CONFIG_NOT_FOUND\]: no config file/);
  });

  it('the help of each command names the fallbacks', () => {
    for (const args of [['agent'], ['state', 'init'], ['cluster', 'status'], ['etcd']]) {
      const r = vigil([...args, '--help'], undefined);
      assert.equal(r.code, 0, r.err);
      assert.match(r.err + r.out, /default: \$VIGIL_CONFIG, else\s+\/etc\/vigil\/agent\.yaml/);
    }
  });
});
