/**
 * Where the signing API listens and who may call it: the socket's mode and group, stale and
 * live sockets, bearer tokens, mutual TLS, the loopback rule, the Host header, and old configs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { AgentClient } from '../../src/agent/client.js';
import { AgentConfigSchema, loadAgentConfig } from '../../src/agent/config.js';
import { startAgent, type RunningAgent } from '../../src/agent/daemon.js';
import { initStore } from '../../src/agent/store.js';
import { cometbftKeyJson } from '../../src/keys/generate.js';
import { cometSignBytes } from '../helpers/guard-fixtures.js';
import { initCa, issueCert } from '../../src/etcd/pki.js';
import { ConfigError } from '../../src/config/yaml-file.js';

const silent = pino({ level: 'silent' });
const TOKEN = 'c0ffee'.repeat(11) + 'aa'; // 34 bytes in hex
let dir: string;
let keyFile: string;
let n = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-listen-'));
  keyFile = join(dir, 'key.json');
  writeFileSync(keyFile, cometbftKeyJson(new Uint8Array(32).fill(3)), { mode: 0o600 });
  await (
    await initStore({ engine: 'sqlite', path: join(dir, 'store.db'), busyTimeoutMs: 5000 })
  ).close();
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A config for a fresh agent directory; `listen` as given (absent: the default socket). */
function config(listen?: unknown) {
  const dataDir = join(dir, `a${n++}`);
  return AgentConfigSchema.parse({
    agent: { id: 'listen-test', dataDir },
    ...(listen !== undefined ? { listen } : {}),
    store: { engine: 'sqlite', path: join(dir, 'store.db') },
    keys: [{ id: 'val', file: keyFile, protocol: 'cometbft', chains: ['listen'] }],
  });
}

async function withAgent<T>(
  cfg: ReturnType<typeof config>,
  use: (a: RunningAgent) => Promise<T>,
): Promise<T> {
  const agent = await startAgent(cfg, silent);
  try {
    return await use(agent);
  } finally {
    await agent.stop();
  }
}

let height = 0n;
/** A CometBFT proposal at the next height: every request signed here is a fresh grant. */
const signBody = () => ({
  family: 'cometbft',
  chainId: 'listen',
  keyId: 'val',
  payload: Buffer.from(
    cometSignBytes({ step: 'proposal', height: ++height, block: 1, chainId: 'listen' }),
  ).toString('hex'),
});

function rawRequest(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: any }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { hostname: u.hostname, port: u.port, path: '/healthz', headers, agent: false },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('unix socket', () => {
  test('by default the API is <dataDir>/api.sock, mode 0600, and serves signing', async () => {
    const cfg = config();
    await withAgent(cfg, async (agent) => {
      assert.equal(agent.socketPath, join(cfg.agent.dataDir, 'api.sock'));
      assert.equal(agent.url, undefined);
      const st = statSync(agent.socketPath!);
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o777, 0o600);
      const client = AgentClient.for(agent);
      assert.equal((await client.post('/v1/sign', signBody())).status, 200);
      client.close();
    });
  });

  test('with a group the socket is 0660 and belongs to that group', async () => {
    const gid = process.getgid!();
    const name = execFileSync('getent', ['group', String(gid)], { encoding: 'utf8' }).split(
      ':',
    )[0]!;
    const path = join(dir, 'group.sock');
    await withAgent(config({ socket: { path, group: name } }), async () => {
      const st = statSync(path);
      assert.equal(st.mode & 0o777, 0o660);
      assert.equal(st.gid, gid);
    });
    assert.equal(existsSync(path), false, 'the socket is removed on stop');
  });

  test('an unknown group is a startup error with a hint', async () => {
    await assert.rejects(
      startAgent(
        config({ socket: { path: join(dir, 'g.sock'), group: 'no-such-group-vigil' } }),
        silent,
      ),
      (err: any) => err.code === 'API_SOCKET_GROUP' && /getent group/.test(err.message),
    );
  });

  test('a stale socket left by a killed agent is replaced', async () => {
    const path = join(dir, 'stale.sock');
    const child = spawn(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(path)})`,
    ]);
    try {
      for (let i = 0; i < 100 && !existsSync(path); i++) await sleep(50);
      assert.ok(existsSync(path));
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    assert.ok(statSync(path).isSocket(), 'SIGKILL leaves the socket file behind');
    await withAgent(config({ socket: { path } }), async (agent) => {
      const client = AgentClient.for(agent);
      assert.equal((await client.get('/healthz')).status, 200);
      client.close();
    });
  });

  test('a live socket is never taken over: typed error, the other server keeps it', async () => {
    const path = join(dir, 'live.sock');
    const other = createServer((s) => s.end());
    await new Promise<void>((r) => other.listen(path, r));
    try {
      await assert.rejects(
        startAgent(config({ socket: { path } }), silent),
        (err: any) => err.code === 'API_SOCKET_IN_USE' && err.message.includes(path),
      );
      assert.ok(statSync(path).isSocket());
    } finally {
      await new Promise((r) => other.close(r));
    }
  });

  test('a file that is not a socket is left alone', async () => {
    const path = join(dir, 'plain-file');
    writeFileSync(path, 'keep me');
    await assert.rejects(
      startAgent(config({ socket: { path } }), silent),
      (err: any) => err.code === 'API_SOCKET_PATH',
    );
    assert.equal(readFileSync(path, 'utf8'), 'keep me');
  });
});

describe('TCP with a bearer token', () => {
  let tokenFile: string;
  before(() => {
    tokenFile = join(dir, 'api.token');
    writeFileSync(tokenFile, TOKEN + '\n', { mode: 0o600 });
  });

  test('no token 401, wrong token 401, right token 200; nothing signed without it', async () => {
    await withAgent(config({ tcp: { host: '127.0.0.1', port: 0, tokenFile } }), async (agent) => {
      assert.match(agent.url!, /^http:\/\/127\.0\.0\.1:\d+$/);
      const before = (await agent.store.list()).length;
      const anonymous = new AgentClient({ url: agent.url! });
      const wrong = new AgentClient({ url: agent.url!, token: 'ff'.repeat(34) });
      const right = new AgentClient({ url: agent.url!, token: TOKEN });
      try {
        const a = await anonymous.post<any>('/v1/sign', signBody());
        assert.equal(a.status, 401);
        assert.equal(a.body.error.code, 'UNAUTHORIZED');
        const w = await wrong.post<any>('/v1/sign', signBody());
        assert.equal(w.status, 401);
        assert.equal(w.body.error.message, 'wrong bearer token');
        assert.equal((await agent.store.list()).length, before);
        assert.equal((await right.post('/v1/sign', signBody())).status, 200);
      } finally {
        for (const c of [anonymous, wrong, right]) c.close();
      }
    });
  });

  test('a token file readable by others is refused with a chmod hint', async () => {
    const loose = join(dir, 'loose.token');
    writeFileSync(loose, TOKEN, { mode: 0o644 });
    await assert.rejects(
      startAgent(config({ tcp: { host: '127.0.0.1', port: 0, tokenFile: loose } }), silent),
      (err: any) => err.code === 'API_TOKEN_FILE_MODE' && err.message.includes('chmod 600'),
    );
  });

  test('a token shorter than 32 bytes is refused', async () => {
    const short = join(dir, 'short.token');
    writeFileSync(short, 'ab'.repeat(16) + '\n', { mode: 0o600 });
    writeFileSync(join(dir, 'b64.token'), Buffer.alloc(32, 9).toString('base64'), { mode: 0o600 });
    await assert.rejects(
      startAgent(config({ tcp: { host: '127.0.0.1', port: 0, tokenFile: short } }), silent),
      (err: any) => err.code === 'API_TOKEN_WEAK',
    );
    // 32 bytes in base64 is enough.
    await withAgent(
      config({ tcp: { host: '127.0.0.1', port: 0, tokenFile: join(dir, 'b64.token') } }),
      async () => undefined,
    );
  });

  test('the Host header must name the listener (DNS rebinding)', async () => {
    await withAgent(config({ tcp: { host: '127.0.0.1', port: 0, tokenFile } }), async (agent) => {
      const port = new URL(agent.url!).port;
      const auth = { authorization: `Bearer ${TOKEN}` };
      const evil = await rawRequest(agent.url!, { ...auth, host: `evil.example:${port}` });
      assert.equal(evil.status, 421);
      assert.equal(evil.body.error.code, 'HOST_NOT_ALLOWED');
      const otherPort = await rawRequest(agent.url!, { ...auth, host: `127.0.0.1:1` });
      assert.equal(otherPort.status, 421);
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`])
        assert.equal((await rawRequest(agent.url!, { ...auth, host })).status, 200, host);
    });
    await withAgent(
      config({
        tcp: { host: '127.0.0.1', port: 0, tokenFile, allowedHosts: ['vigil.internal'] },
      }),
      async (agent) => {
        const port = new URL(agent.url!).port;
        const auth = { authorization: `Bearer ${TOKEN}` };
        const named = await rawRequest(agent.url!, { ...auth, host: `vigil.internal:${port}` });
        assert.equal(named.status, 200);
      },
    );
  });

  test('a non-loopback address without mutual TLS is refused at startup, before binding', async () => {
    for (const host of ['0.0.0.0', '::', '10.0.0.1']) {
      await assert.rejects(
        startAgent(config({ tcp: { host, port: 0, tokenFile } }), silent),
        (err: any) => err.code === 'API_TCP_NOT_LOOPBACK' && /tls/.test(err.message),
        host,
      );
    }
  });
});

describe('TCP with mutual TLS', () => {
  let pki: string;
  let server: { cert: string; key: string; ca: string };
  let client: { cert: string; key: string };
  let stranger: { cert: string; key: string };
  before(async () => {
    pki = join(dir, 'pki');
    await initCa(pki, { commonName: 'api test CA' });
    server = await issueCert(pki, { name: 'api', kind: 'server', ips: ['127.0.0.1'] });
    client = await issueCert(pki, { name: 'caller', kind: 'client' });
    const otherCa = join(dir, 'other-pki');
    await initCa(otherCa, { commonName: 'another CA' });
    stranger = await issueCert(otherCa, { name: 'stranger', kind: 'client' });
  });

  const tlsListen = () => ({
    tcp: { host: '127.0.0.1', port: 0, tls: { ca: server.ca, cert: server.cert, key: server.key } },
  });

  test('a client certificate from the CA is served; none or another CA fails the handshake', async () => {
    await withAgent(config(tlsListen()), async (agent) => {
      assert.match(agent.url!, /^https:\/\//);
      const ca = readFileSync(server.ca);
      const good = new AgentClient({
        url: agent.url!,
        tls: { ca, cert: readFileSync(client.cert), key: readFileSync(client.key) },
      });
      const foreign = new AgentClient({
        url: agent.url!,
        tls: { ca, cert: readFileSync(stranger.cert), key: readFileSync(stranger.key) },
      });
      try {
        assert.equal((await good.post('/v1/sign', signBody())).status, 200);
        await assert.rejects(
          foreign.get('/healthz'),
          (err: any) => err.code === 'AGENT_UNREACHABLE',
        );
        // No certificate at all: the TLS layer refuses before any HTTP is read.
        const u = new URL(agent.url!);
        await assert.rejects(
          new Promise((resolve, reject) => {
            const req = httpsRequest(
              { hostname: u.hostname, port: u.port, path: '/healthz', ca, agent: false },
              resolve,
            );
            req.on('error', reject);
            req.end();
          }),
          (err: any) =>
            /certificate|alert|socket hang up|ECONNRESET/i.test(String(err.message ?? err.code)),
        );
      } finally {
        good.close();
        foreign.close();
      }
    });
  });

  test('a TLS key readable by others is refused', async () => {
    const loose = join(dir, 'loose.key');
    writeFileSync(loose, readFileSync(server.key), { mode: 0o644 });
    await assert.rejects(
      startAgent(
        config({
          tcp: { host: '127.0.0.1', port: 0, tls: { ...tlsListen().tcp.tls, key: loose } },
        }),
        silent,
      ),
      (err: any) => err.code === 'API_TLS_KEY_MODE',
    );
  });
});

describe('configuration', () => {
  const write = (name: string, listen: string) => {
    const sub = join(dir, 'cfg');
    mkdirSync(sub, { recursive: true });
    const file = join(sub, name);
    writeFileSync(
      file,
      ['agent: { id: c, dataDir: data }', listen, 'store: { engine: sqlite, path: s.db }', ''].join(
        '\n',
      ),
    );
    return file;
  };

  test('an old `listen: { host, port }` says exactly how to migrate', () => {
    const file = write('old.yaml', 'listen: { host: 127.0.0.1, port: 7710 }');
    assert.throws(
      () => loadAgentConfig(file),
      (err: unknown) =>
        err instanceof ConfigError &&
        /listen\.tcp/.test(err.message) &&
        /tokenFile/.test(err.message) &&
        /remove `listen`/.test(err.message) &&
        /old\.yaml:2/.test(err.message),
    );
  });

  test('TCP without a token file or TLS is a config error', () => {
    const file = write('bare.yaml', 'listen: { tcp: { host: 127.0.0.1, port: 7710 } }');
    assert.throws(() => loadAgentConfig(file), /needs `tokenFile`/);
  });

  test('relative paths resolve against the config file; no listen means <dataDir>/api.sock', () => {
    const sub = join(dir, 'cfg');
    const tcp = loadAgentConfig(
      write(
        'rel.yaml',
        'listen: { socket: { path: run/api.sock }, tcp: { host: 127.0.0.1, port: 1, tokenFile: t, tls: { ca: ca, cert: c, key: k } } }',
      ),
    );
    assert.equal(tcp.listen?.socket?.path, join(sub, 'run', 'api.sock'));
    assert.equal(tcp.listen?.tcp?.tokenFile, join(sub, 't'));
    assert.deepEqual(tcp.listen?.tcp?.tls, {
      ca: join(sub, 'ca'),
      cert: join(sub, 'c'),
      key: join(sub, 'k'),
    });
    const none = loadAgentConfig(write('none.yaml', ''));
    assert.deepEqual(none.listen, { socket: { path: join(sub, 'data', 'api.sock') } });
  });
});
