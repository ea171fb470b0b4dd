/** `vigil pki`, `vigil etcd` and `vigil cluster status`, end to end through the CLI. */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { StoreIdentityError, StoreUnavailableError } from '../../src/errors.js';
import { connectEtcd, openEtcdStore } from '../../src/store/etcd.js';
import { etcdSkip, freePort, sleep } from '../helpers/etcd-cluster.js';
import { CLI_ENTRY } from '../helpers/paths.js';

const run = promisify(execFile);
const vigil = (...args: string[]) => run(process.execPath, [CLI_ENTRY, ...args]);

describe('vigil pki', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-pki-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a CA and issues certificates with private keys readable by the owner only', async () => {
    await vigil('pki', 'init', '--dir', dir);
    await vigil(
      'pki',
      'issue',
      '--dir',
      dir,
      '--name',
      'm1',
      '--ip',
      '127.0.0.1',
      '--dns',
      'm1.local',
    );
    await vigil('pki', 'issue', '--dir', dir, '--name', 'agent1', '--kind', 'client');
    for (const key of ['ca.key', 'm1.key', 'agent1.key'])
      assert.equal(statSync(join(dir, key)).mode & 0o777, 0o600, key);
    const { stdout } = await run('openssl', [
      'x509',
      '-in',
      join(dir, 'm1.crt'),
      '-noout',
      '-text',
    ]).catch(() => ({ stdout: '' }));
    if (stdout) {
      assert.match(stdout, /IP Address:127\.0\.0\.1/);
      assert.match(stdout, /DNS:m1\.local/);
      assert.match(stdout, /TLS Web Server Authentication/);
    }
  });

  it('refuses bad input and never overwrites', async () => {
    await assert.rejects(vigil('pki', 'init', '--dir', dir), /already exists/);
    await assert.rejects(
      vigil('pki', 'issue', '--dir', dir, '--name', 'x', '--ip', '1.2.3'),
      /not an IP/,
    );
    await assert.rejects(
      vigil('pki', 'issue', '--dir', dir, '--name', 'srv'),
      /needs at least one --ip/,
    );
    await assert.rejects(
      vigil('pki', 'issue', '--dir', dir, '--name', 'm1', '--ip', '127.0.0.1'),
      /exists/,
    );
  });
});

describe('vigil etcd and vigil cluster status (mutual TLS)', { skip: etcdSkip() }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-etcdcli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('says how to install etcd when the binary is missing', async () => {
    const cfg = join(dir, 'missing.yaml');
    writeFileSync(
      cfg,
      `etcd:\n  name: a\n  dataDir: ${dir}/a\n  binary: /nonexistent/etcd\n  listenClientUrls: [http://127.0.0.1:1]\n  listenPeerUrls: [http://127.0.0.1:2]\n  initialCluster: { a: http://127.0.0.1:2 }\n`,
    );
    await assert.rejects(vigil('etcd', '--config', cfg), /apt-get install etcd-server/);
  });

  it('runs a TLS member that serves agents with a client certificate', async () => {
    const pki = join(dir, 'pki');
    await vigil('pki', 'init', '--dir', pki);
    await vigil('pki', 'issue', '--dir', pki, '--name', 'm0', '--ip', '127.0.0.1');
    await vigil('pki', 'issue', '--dir', pki, '--name', 'agent', '--kind', 'client');
    const [client, peer] = [await freePort(), await freePort()];
    const cfg = join(dir, 'vigil.yaml');
    writeFileSync(
      cfg,
      [
        'etcd:',
        '  name: m0',
        `  dataDir: ${join(dir, 'data')}`,
        `  listenClientUrls: [https://127.0.0.1:${client}]`,
        `  listenPeerUrls: [https://127.0.0.1:${peer}]`,
        `  initialCluster: { m0: https://127.0.0.1:${peer} }`,
        '  tls:',
        `    ca: ${pki}/ca.crt`,
        `    cert: ${pki}/m0.crt`,
        `    key: ${pki}/m0.key`,
        'store:',
        '  engine: etcd',
        `  endpoints: [https://127.0.0.1:${client}]`,
        `  tls: { ca: ${pki}/ca.crt, cert: ${pki}/agent.crt, key: ${pki}/agent.key }`,
        '',
      ].join('\n'),
    );
    const { stdout: printed } = await vigil('etcd', '--config', cfg, '--print-args');
    assert.match(printed, /--client-cert-auth=true/);
    assert.match(printed, /--peer-client-cert-auth=true/);
    const member = spawn(process.execPath, [CLI_ENTRY, 'etcd', '--config', cfg], {
      stdio: 'ignore',
    });
    try {
      const storeConfig = {
        endpoints: [`https://127.0.0.1:${client}`],
        tls: { ca: `${pki}/ca.crt`, cert: `${pki}/agent.crt`, key: `${pki}/agent.key` },
      };
      // Opening reads the store identity: unavailable until the member is up, then refused
      // because nobody initialised the store.
      let opened: unknown;
      for (let i = 0; i < 100; i++) {
        opened = await openEtcdStore(storeConfig).catch((e: unknown) => e);
        if (!(opened instanceof StoreUnavailableError)) break;
        await sleep(100);
      }
      assert.ok(opened instanceof StoreIdentityError, String(opened));
      assert.match(
        opened.message,
        /no initialised Vigil watermark store under prefix \/vigil\/v1\//,
      );
      const { stdout: uninitialised } = await vigil('cluster', 'status', '--config', cfg);
      assert.match(uninitialised, /store: not initialised/);
      const store = await openEtcdStore(storeConfig, { create: true });
      try {
        await store.update(
          { chainId: 'cosmoshub-4', keyId: 'ab'.repeat(32), family: 'cometbft' },
          () => ({
            write: { family: 'cometbft', position: [100n, 0n, 3n], writer: 'agent-a' },
            result: null,
          }),
        );
      } finally {
        await store.close();
      }
      const { stdout } = await vigil('cluster', 'status', '--config', cfg);
      assert.match(stdout, /leader: m0/);
      assert.match(stdout, new RegExp(`store: ${store.identity.storeId}`));
      assert.match(stdout, /healthy/);
      assert.match(stdout, /cosmoshub-4/);
      assert.match(stdout, /agent-a/);
      assert.match(stdout, /cluster id: [0-9a-f]+\n/);
      const { stdout: json } = await vigil('cluster', 'status', '--config', cfg, '--json');
      const report = JSON.parse(json) as {
        watermarks: unknown[];
        members: unknown[];
        clusterId: string;
      };
      assert.equal(report.members.length, 1);
      assert.match(report.clusterId, /^[0-9a-f]+$/);
      assert.equal(report.watermarks.length, 1);
      // Without a client certificate the same member refuses us.
      await assert.rejects(
        vigil('cluster', 'status', '--endpoints', `https://127.0.0.1:${client}`, '--json'),
      );
    } finally {
      const exited = new Promise((r) => member.once('exit', r));
      member.kill('SIGTERM');
      await Promise.race([exited, sleep(12_000)]);
      if (member.exitCode === null) member.kill('SIGKILL');
    }
  });

  it('restarts the member when etcd dies', async () => {
    const [client, peer] = [await freePort(), await freePort()];
    const cfg = join(dir, 'plain.yaml');
    writeFileSync(
      cfg,
      [
        'etcd:',
        '  name: p0',
        `  dataDir: ${join(dir, 'plain-data')}`,
        `  listenClientUrls: [http://127.0.0.1:${client}]`,
        `  listenPeerUrls: [http://127.0.0.1:${peer}]`,
        `  initialCluster: { p0: http://127.0.0.1:${peer} }`,
        '',
      ].join('\n'),
    );
    const member = spawn(process.execPath, [CLI_ENTRY, 'etcd', '--config', cfg], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    member.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const pids = () => [...stderr.matchAll(/started, pid (\d+)/g)].map((m) => Number(m[1]));
    const { client: etcd } = connectEtcd({
      endpoints: [`http://127.0.0.1:${client}`],
      timeouts: { callMs: 300, updateMs: 600 },
    });
    const up = async () => {
      for (let i = 0; i < 100; i++) {
        if (
          await etcd.get('/vigil/v1/ping').then(
            () => true,
            () => false,
          )
        )
          return true;
        await sleep(100);
      }
      return false;
    };
    try {
      assert.ok(await up(), 'first start');
      const first = pids()[0]!;
      process.kill(first, 'SIGKILL');
      for (let i = 0; i < 100 && pids().length < 2; i++) await sleep(50);
      assert.match(stderr, /restarting in \d+ ms/);
      assert.notEqual(pids()[1], first);
      assert.ok(await up(), 'serving again after the restart');
    } finally {
      etcd.close();
      const exited = new Promise((r) => member.once('exit', r));
      member.kill('SIGTERM');
      await Promise.race([exited, sleep(12_000)]);
      if (member.exitCode === null) member.kill('SIGKILL');
      for (const pid of pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already stopped by vigil etcd */
        }
      }
    }
  });
});
