/**
 * Issue 11, items 2, 5 and 6: the mistakes of an operator's first hour get a coded message with
 * a hint from the real CLI process, never a stack trace or a wrong diagnosis.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ENTRY } from '../helpers/paths.js';
import { fromSystemError } from '../../src/cli/system-errors.js';
import { packageRoot } from '../../src/package-root.js';

let dir: string;

function vigil(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI_ENTRY, ...args], {
    encoding: 'utf8',
    cwd: dir,
    timeout: 30_000,
    env: { ...process.env, ...env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function assertNoStack(stderr: string) {
  assert.doesNotMatch(stderr, /^\s+at /m, `a stack trace was printed:\n${stderr}`);
  assert.doesNotMatch(stderr, /unexpected error/);
}

function write(name: string, text: string, mode = 0o644): string {
  const path = join(dir, name);
  writeFileSync(path, text, { mode });
  return path;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-cli-errors-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('vigil --version', () => {
  it("prints Vigil's own version even inside another project's npm script", () => {
    const own = (
      JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }
    ).version;
    const r = vigil(['--version'], { npm_package_version: '9.9.9-other-project' });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), own);
  });
});

describe('option errors', () => {
  it('an unknown option is reported as unknown, not as a missing --config', () => {
    for (const args of [
      ['agent', '--cnofig', 'x.yaml'],
      ['state', 'show', '--bogus'],
      // --out is required and missing: the misspelling is still what is reported.
      ['keys', 'generate', '--otu', 'k.json'],
    ]) {
      const r = vigil(args);
      assert.equal(r.code, 1);
      assert.match(r.err, /unknown option '(--cnofig|--bogus|--otu)'/, r.err);
      assert.doesNotMatch(r.err, /required option/);
    }
  });

  it('a missing required option is still reported when every option is known', () => {
    const r = vigil(['keys', 'generate']);
    assert.equal(r.code, 1);
    assert.match(r.err, /required option '-o, --out <file>' not specified/);
  });
});

describe('help', () => {
  it('state export --help shows one default for --format', () => {
    const r = vigil(['state', 'export', '--help']);
    assert.equal(r.code, 0, r.err);
    // Commander wraps the option's description: join its lines up to the next option.
    const format = /--format <format>([^]*?)\n\s+--/.exec(r.out)?.[1] ?? '';
    assert.equal(format.match(/default/g)?.length, 1, format);
    assert.match(format, /default: "filepv"/);
  });
});

describe('config errors', () => {
  it('a YAML syntax error names the file, line and column', () => {
    const file = write('broken.yaml', 'agent:\n  id: a\n  dataDir: [x\nstore: {}\n');
    const r = vigil(['agent', '--config', file]);
    assert.equal(r.code, 1);
    assert.match(r.err, /\[CONFIG_INVALID\]/);
    assert.match(r.err, /broken\.yaml:\d+:\d+: /, r.err);
    assertNoStack(r.err);
  });

  it('cluster status on a valid SQLite config says it is not an etcd config', () => {
    const file = write(
      'sqlite.yaml',
      'agent: { id: a, dataDir: ./d }\nstore: { engine: sqlite, path: ./w.db }\nkeys: []\n',
    );
    const r = vigil(['cluster', 'status', '--config', file]);
    assert.equal(r.code, 1);
    assert.match(r.err, /\[NOT_AN_ETCD_CONFIG\]/, r.err);
    assert.match(r.err, /sqlite/);
    assert.doesNotMatch(r.err, /is invalid/);
  });
});

describe('a port in use', () => {
  let server: Server;
  let port: number;
  before(async () => {
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  after(() => server.close());

  it('is ADDRESS_IN_USE with the address and a hint, not a stack trace', async () => {
    const keyOut = vigil(['keys', 'generate', '--out', join(dir, 'port-keys', 'k.json')]);
    assert.equal(keyOut.code, 0, keyOut.err);
    const config = write(
      'port.yaml',
      [
        'agent: { id: a, dataDir: ./port-data }',
        `listen: { tcp: { host: 127.0.0.1, port: ${port}, tokenFile: port.token } }`,
        'store: { engine: sqlite, path: ./port.db }',
        'keys:',
        '  - { id: validator, file: port-keys/k.json, protocol: cometbft, chains: [c-1] }',
        '',
      ].join('\n'),
    );
    write('port.token', 'ab'.repeat(32) + '\n', 0o600);
    const init = vigil(['state', 'init', '--config', config]);
    assert.equal(init.code, 0, init.err);
    // Spawned asynchronously: the listener above lives in this process's event loop.
    const child = spawn(process.execPath, [CLI_ENTRY, 'agent', '--config', config], { cwd: dir });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearTimeout(killer);
    assert.equal(code, 1, stderr);
    assert.match(stderr, /\[ADDRESS_IN_USE\]/, stderr);
    assert.match(stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assertNoStack(stderr);
  });
});

describe('keys generate', () => {
  it('creates missing parent directories (0700) and the key (0600)', () => {
    const out = join(dir, 'new', 'nested', 'priv_validator_key.json');
    const r = vigil(['keys', 'generate', '--out', out]);
    assert.equal(r.code, 0, r.err);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'new', 'nested')).mode & 0o777, 0o700);
    const again = vigil(['keys', 'generate', '--out', out]);
    assert.equal(again.code, 1);
    assert.match(again.err, /\[KEY_EXISTS\]/);
  });
});

describe('state import of the wrong file', () => {
  it('a priv_validator_key.json is named as a key file, not a sign state', () => {
    const key = join(dir, 'import-keys', 'priv_validator_key.json');
    assert.equal(vigil(['keys', 'generate', '--out', key]).code, 0);
    const config = write(
      'import.yaml',
      [
        'agent: { id: a, dataDir: ./import-data }',
        'store: { engine: sqlite, path: ./import.db }',
        'keys:',
        '  - { id: validator, file: import-keys/priv_validator_key.json, protocol: cometbft, chains: [c-1] }',
        '',
      ].join('\n'),
    );
    const r = vigil([
      'state',
      'import',
      '--config',
      config,
      '--chain-id',
      'c-1',
      '--key',
      'validator',
      key,
    ]);
    assert.equal(r.code, 1);
    assert.match(r.err, /\[STATE_FILE_INVALID\]/, r.err);
    assert.match(r.err, /validator key file/);
    assert.doesNotMatch(r.err, /round/);
    // The private key is never echoed back.
    const priv = (JSON.parse(readFileSync(key, 'utf8')) as { priv_key: { value: string } }).priv_key
      .value;
    assert.ok(!r.err.includes(priv) && !r.out.includes(priv));
  });
});

describe('fromSystemError', () => {
  const sys = (code: string, extra: Record<string, unknown>) =>
    Object.assign(new Error(`${code} something`), { code, ...extra });

  it('maps what an operator causes to coded errors with hints', () => {
    const inUse = fromSystemError(
      sys('EADDRINUSE', { syscall: 'listen', address: '::1', port: 7710 }),
    );
    assert.equal(inUse?.code, 'ADDRESS_IN_USE');
    assert.match(inUse!.message, /::1:7710/);
    assert.equal(fromSystemError(sys('ENOENT', { path: '/x/y' }))?.code, 'PATH_NOT_FOUND');
    assert.equal(
      fromSystemError(sys('EACCES', { syscall: 'listen', address: '0.0.0.0', port: 80 }))?.code,
      'PERMISSION_DENIED',
    );
    assert.ok(fromSystemError(sys('EACCES', { syscall: 'open', path: '/k' }))?.hint);
  });

  it('leaves bugs alone', () => {
    assert.equal(fromSystemError(new TypeError('x is undefined')), undefined);
    assert.equal(fromSystemError('a string'), undefined);
    assert.equal(fromSystemError(sys('ERR_SOMETHING_INTERNAL', {})), undefined);
  });
});

describe('DEP0123', () => {
  it('the CLI entry drops only the TLS-server-name-is-an-IP warning', () => {
    const quiet = new URL('../../src/cli/quiet-warnings.js', import.meta.url).href;
    const script = `
      await import(${JSON.stringify(quiet)});
      const tls = await import('node:tls');
      // The real source of the warning: a TLS connection whose server name is an IP address.
      const s = tls.connect({ host: '127.0.0.1', port: 1, servername: '127.0.0.1' });
      s.on('error', () => {});
      process.emitWarning('still shown', 'DeprecationWarning', 'DEP0999');
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /DEP0123/);
    assert.match(r.stderr, /DEP0999/);
    const unfiltered = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', script.replace(/await import\(.*?\);/, '')],
      { encoding: 'utf8', timeout: 20_000 },
    );
    assert.match(unfiltered.stderr, /DEP0123/, 'the warning this filter drops no longer exists');
  });
});
