/**
 * The release artifact, built, installed by the script rendered hosts run, and run in a clean
 * root that has no Node, no npm and no node_modules: only a shell, two coreutils and the C
 * libraries the bundled Node links against. Needs root (chroot, unshare, mknod), GNU tar, ip.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  writeFileSync,
  chmodSync,
  statSync,
} from 'node:fs';
import { createReadStream } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { buildRelease, listFiles, type BuiltRelease } from '../../src/release/build.js';
import { releaseBinary } from '../../src/release/artifact.js';
import { planFleet } from '../../src/render/fleet.js';
import { EXAMPLES_DIR, hostSetup, removeDir, requireTool, tempDir } from '../render/helpers.js';

const isRoot = process.getuid?.() === 0;
const ready =
  isRoot &&
  requireTool('unshare') &&
  requireTool('chroot', ['--version']) &&
  requireTool('ip', ['-V']);
if (!isRoot) {
  if (process.env.CI) throw new Error('the release install test needs root in CI');
  console.error('\n*** SKIPPING release install test: needs root (chroot, unshare) ***\n');
}

/** Copies a host binary and every library it links (per ldd) into root at the same paths. */
function copyWithLibraries(root: string, binary: string, dest = binary): void {
  mkdirSync(dirname(join(root, dest)), { recursive: true });
  copyFileSync(binary, join(root, dest));
  chmodSync(join(root, dest), 0o755);
  const ldd = execFileSync('ldd', [binary], { encoding: 'utf8' });
  for (const m of ldd.matchAll(/(\/\S+) \(0x[0-9a-f]+\)/g)) {
    const lib = m[1];
    if (existsSync(join(root, lib))) continue;
    mkdirSync(dirname(join(root, lib)), { recursive: true });
    copyFileSync(lib, join(root, lib));
  }
}

function cleanRoot(dir: string, node: string): void {
  copyWithLibraries(dir, '/bin/sh');
  copyWithLibraries(
    dir,
    execFileSync('sh', ['-c', 'command -v readlink'], { encoding: 'utf8' }).trim(),
    '/usr/bin/readlink',
  );
  copyWithLibraries(
    dir,
    execFileSync('sh', ['-c', 'command -v dirname'], { encoding: 'utf8' }).trim(),
    '/usr/bin/dirname',
  );
  // The libraries the bundled Node needs, not Node itself: the release brings its own.
  const probe = join(dir, '.node-probe');
  copyWithLibraries(dir, node, '/.node-probe');
  removeDir(probe);
  for (const d of ['proc', 'dev', 'tmp', 'etc']) mkdirSync(join(dir, d), { recursive: true });
  chmodSync(join(dir, 'tmp'), 0o1777);
  execFileSync('mknod', ['-m', '666', join(dir, 'dev/null'), 'c', '1', '3']);
  execFileSync('mknod', ['-m', '444', join(dir, 'dev/urandom'), 'c', '1', '9']);
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
}

/**
 * Runs a command chrooted into root, in its own mount and network namespaces (proc mounted,
 * the rendered VPN address on loopback): the namespaces end with the process, nothing leaks.
 */
function inRoot(root: string, vpnAddress: string, argv: string[]): string[] {
  const script =
    'set -e; ip link set lo up; ip addr add "$2/32" dev lo; mount -t proc proc "$1/proc"; ' +
    'r="$1"; shift 2; exec chroot "$r" "$@"';
  return [
    'unshare',
    '--mount',
    '--net',
    '--fork',
    'sh',
    '-c',
    script,
    'in-root',
    root,
    vpnAddress,
    ...argv,
  ];
}

/** What a systemd unit gives a service: no variables of this test's shell (NODE_OPTIONS, …). */
const CLEAN_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

function runInRoot(
  root: string,
  vpn: string,
  argv: string[],
): { status: number | null; out: string } {
  const [cmd, ...args] = inRoot(root, vpn, argv);
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, env: CLEAN_ENV });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A child process without blocking the event loop (the test's own HTTP server serves it). */
function runAsync(cmd: string, args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (status) => resolve({ status, stderr }));
  });
}

function getOverSocket(
  socketPath: string,
  path: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET', timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

describe('release artifact', { skip: !ready }, () => {
  let work: string;
  let first: BuiltRelease;
  let second: BuiltRelease;

  before(() => {
    work = tempDir('release');
    first = buildRelease({ root: '.', outDir: join(work, 'a') });
    second = buildRelease({ root: '.', outDir: join(work, 'b') });
  });
  after(() => removeDir(work));

  it('is reproducible and self-contained', () => {
    assert.equal(first.sha256, second.sha256, 'two builds of one commit must be byte-identical');
    assert.equal(
      readFileSync(`${first.tarball}.sha256`, 'utf8'),
      `${first.sha256}  ${first.manifest.name}.tar.gz\n`,
    );
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { release: { node: string } };
    assert.equal(first.manifest.node.version, pkg.release.node);
    const unpacked = join(work, 'unpacked');
    mkdirSync(unpacked);
    execFileSync('tar', ['-xzf', first.tarball, '-C', unpacked]);
    const files = listFiles(join(unpacked, first.manifest.name));
    assert.ok(files.includes('node/bin/node') && files.includes('bin/vigil'));
    assert.ok(files.includes('lib/vigil/dist/src/cli/run.js'));
    assert.ok(
      files.includes('lib/vigil/node_modules/better-sqlite3/build/Release/better_sqlite3.node'),
    );
    // Development tools and build leftovers stay out.
    for (const f of files) {
      assert.doesNotMatch(
        f,
        /^lib\/vigil\/node_modules\/(typescript|eslint|playwright-core|fast-check)\//,
      );
      assert.doesNotMatch(f, /better-sqlite3\/(deps|src)\//);
      if (f.startsWith('lib/vigil/dist/')) assert.doesNotMatch(f, /\.d\.ts$|\.js\.map$/);
    }
  });

  it('installs with the rendered vigil-fetch and runs the agent in a clean root', async () => {
    // The release served as a download, and a topology that pins it, as an operator would
    // after `npm run release`.
    const server: Server = createServer((req, res) => {
      if (req.url === `/${first.manifest.name}.tar.gz`) createReadStream(first.tarball).pipe(res);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/${first.manifest.name}.tar.gz`;
    try {
      await installAndRun(url);
    } finally {
      server.close();
    }
  });

  async function installAndRun(url: string): Promise<void> {
    const topology = parse(readFileSync(join(EXAMPLES_DIR, 'cosmos-sentries.yaml'), 'utf8')) as {
      vigil: { agent: Record<string, string> };
    };
    topology.vigil.agent = {
      url,
      sha256: first.sha256,
      version: first.manifest.version,
      binary: releaseBinary({ version: first.manifest.version, platform: 'linux', arch: 'x64' }),
    };
    const topoFile = join(work, 'fleet.yaml');
    writeFileSync(topoFile, stringify(topology));
    const plan = planFleet(topoFile, { state: join(work, 'state'), write: false });
    assert.ok(plan.files, JSON.stringify(plan.findings));
    const file = (host: string, path: string): string => {
      const f = plan.files!.get(
        `hosts/${host}/files/${path.replace(/^\//, '').replace(/\//g, '__')}`,
      );
      assert.ok(f !== undefined, `${host} renders ${path}`);
      return f;
    };
    // The bundle `vigil apply` pushes runs the fetch (the user data only bootstraps the host).
    const setup = hostSetup(plan.files, 'validator');
    const fetch = setup.runcmd.find(
      (c): c is string[] =>
        Array.isArray(c) && c[0] === '/usr/local/sbin/vigil-fetch' && c[3] === '/opt/vigil',
    );
    assert.ok(fetch, 'the validator installs Vigil with vigil-fetch');
    assert.deepEqual(fetch.slice(1), [
      url,
      first.sha256,
      '/opt/vigil',
      topology.vigil.agent.binary,
    ]);

    const root = join(work, 'root');
    cleanRoot(root, process.execPath);
    const fetchScript = join(work, 'vigil-fetch');
    writeFileSync(fetchScript, file('validator', '/usr/local/sbin/vigil-fetch'), { mode: 0o755 });
    // A tampered checksum installs nothing.
    const refused = await runAsync(fetchScript, [
      fetch[1],
      '0'.repeat(64),
      join(root, 'opt/vigil'),
      fetch[4],
    ]);
    assert.notEqual(refused.status, 0);
    assert.equal(existsSync(join(root, 'opt/vigil/bin/vigil')), false);
    // Under install.sh's umask (077, for its secrets), as on a host: the service users must
    // still reach the binary (a real boot failed with "runuser: … Permission denied").
    const installed = await runAsync('sh', [
      '-c',
      'umask 077; exec "$0" "$@"',
      fetchScript,
      fetch[1],
      fetch[2],
      join(root, 'opt/vigil'),
      fetch[4],
    ]);
    assert.equal(installed.status, 0, installed.stderr);
    for (let p = join(root, 'opt/vigil', fetch[4]!); p !== root; p = dirname(p))
      assert.equal(statSync(p).mode & 0o005, 0o005, `${p} is not readable and searchable by all`);
    assert.equal(statSync(join(root, 'opt/vigil/bin')).mode & 0o005, 0o005);
    // The link vigil-fetch made points into the host's path, as it would on the host itself.
    execFileSync('ln', ['-sfn', `/opt/vigil/${fetch[4]}`, join(root, 'opt/vigil/bin/vigil')]);
    assert.equal(
      existsSync(join(root, 'usr/bin/node')) || existsSync(join(root, 'usr/local/bin/node')),
      false,
    );

    const agentYaml = file('validator', '/etc/vigil/agent.yaml');
    const agentConfig = parse(agentYaml) as {
      metricsListen: { host: string };
      listen: { socket: { path: string } };
    };
    const vpn = agentConfig.metricsListen.host;
    const version = runInRoot(root, vpn, ['/opt/vigil/bin/vigil', '--version']);
    assert.equal(version.status, 0, version.out);
    assert.equal(version.out.trim(), first.manifest.version);

    mkdirSync(join(root, 'etc/vigil/keys'), { recursive: true });
    mkdirSync(join(root, 'var/lib/vigil'), { recursive: true, mode: 0o700 });
    writeFileSync(join(root, 'etc/vigil/agent.yaml'), agentYaml, { mode: 0o600 });
    const key = runInRoot(root, vpn, [
      '/opt/vigil/bin/vigil',
      'keys',
      'generate',
      '--out',
      '/etc/vigil/keys/hub.json',
    ]);
    assert.equal(key.status, 0, key.out);
    const init = runInRoot(root, vpn, [
      '/opt/vigil/bin/vigil',
      'state',
      'init',
      '--config',
      '/etc/vigil/agent.yaml',
    ]);
    assert.equal(init.status, 0, init.out);

    const [cmd, ...args] = inRoot(root, vpn, [
      '/opt/vigil/bin/vigil',
      'agent',
      '--config',
      '/etc/vigil/agent.yaml',
    ]);
    const agent = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: CLEAN_ENV });
    let log = '';
    agent.stdout.on('data', (c: Buffer) => (log += c.toString()));
    agent.stderr.on('data', (c: Buffer) => (log += c.toString()));
    const exited = new Promise<number | null>((resolve) =>
      agent.on('exit', (code) => resolve(code)),
    );
    try {
      const socket = join(root, agentConfig.listen.socket.path);
      let readyz: { status: number; body: string } | undefined;
      for (let i = 0; i < 100 && readyz?.status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 200));
        if (existsSync(socket))
          readyz = await getOverSocket(socket, '/readyz').catch(() => undefined);
      }
      assert.equal(readyz?.status, 200, `agent not ready: ${readyz?.body}\n${log}`);
      const metrics = await getOverSocket(socket, '/metrics');
      assert.match(metrics.body, /vigil_ready/);
    } finally {
      // unshare --fork ignores SIGTERM while it waits: the agent (its child, after the execs)
      // is the process a systemd stop would signal.
      const child = spawnSync('pgrep', ['-P', String(agent.pid)], {
        encoding: 'utf8',
      }).stdout.trim();
      if (child) process.kill(Number(child.split('\n')[0]), 'SIGTERM');
      else agent.kill('SIGKILL');
    }
    assert.equal(await exited, 0, log);
  }
});
