/**
 * Issue 11, item 4: `vigil etcd --config member.yaml` run from another directory. Relative
 * paths in the file mean "next to the file" (etcd would read them against the working
 * directory), and a member that etcd refuses at startup stops `vigil etcd` with a coded error
 * instead of being restarted forever.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdMemberConfigSchema, etcdArgs, resolveMemberPaths } from '../../src/etcd/member.js';
import { etcdSkip, freePort } from '../helpers/etcd-cluster.js';
import { CLI_ENTRY } from '../helpers/paths.js';

const member = (over: Record<string, unknown> = {}) =>
  EtcdMemberConfigSchema.parse({
    name: 'm0',
    dataDir: 'data/m0',
    listenClientUrls: ['https://127.0.0.1:2379'],
    listenPeerUrls: ['https://127.0.0.1:2380'],
    initialCluster: { m0: 'https://127.0.0.1:2380' },
    tls: { ca: 'pki/ca.pem', cert: 'pki/m0.pem', key: '/abs/m0.key' },
    ...over,
  });

describe('relative paths in an etcd: section', () => {
  it('are resolved against the config file, absolute ones kept', () => {
    const r = resolveMemberPaths(member(), '/etc/vigil');
    assert.equal(r.dataDir, '/etc/vigil/data/m0');
    assert.deepEqual(r.tls, {
      ca: '/etc/vigil/pki/ca.pem',
      cert: '/etc/vigil/pki/m0.pem',
      key: '/abs/m0.key',
    });
    // etcd is given the resolved paths.
    const args = etcdArgs(r).join(' ');
    assert.match(args, /--data-dir \/etc\/vigil\/data\/m0|--data-dir=\/etc\/vigil\/data\/m0/);
  });

  it('a bare binary name stays a PATH lookup; a path with a slash is a file', () => {
    assert.equal(resolveMemberPaths(member({ binary: 'etcd' }), '/x').binary, 'etcd');
    assert.equal(resolveMemberPaths(member({ binary: 'bin/etcd' }), '/x').binary, '/x/bin/etcd');
  });
});

describe('vigil etcd on a member etcd refuses', { skip: etcdSkip() }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-etcd-member-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('stops with ETCD_START_FAILED and a hint instead of restarting it forever', async () => {
    const [client, peer] = [await freePort(), await freePort()];
    const confDir = join(dir, 'conf');
    mkdirSync(confDir);
    const config = join(confDir, 'member.yaml');
    // Certificates that do not exist: etcd exits at once with an error of its own.
    writeFileSync(
      config,
      [
        'etcd:',
        '  name: m0',
        '  dataDir: data',
        `  listenClientUrls: [https://127.0.0.1:${client}]`,
        `  listenPeerUrls: [https://127.0.0.1:${peer}]`,
        `  initialCluster: { m0: 'https://127.0.0.1:${peer}' }`,
        '  tls: { ca: pki/ca.pem, cert: pki/m0.pem, key: pki/m0.key }',
        '',
      ].join('\n'),
    );
    // Started from another directory than the file's.
    const child = spawn(process.execPath, [CLI_ENTRY, 'etcd', '--config', config], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 20_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    assert.notEqual(code, null, `vigil etcd kept running:\n${stderr}`);
    assert.notEqual(code, 0);
    assert.match(stderr, /\[ETCD_START_FAILED\]/);
    assert.match(stderr, /not restarting it/);
    assert.doesNotMatch(stderr, /restarting in \d+ ms/);
    assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace');
    // The paths etcd was given are the file's, not the working directory's.
    assert.doesNotMatch(stderr, new RegExp(`${dir}/pki/`));
  });
});
