/** AgentClient's failures are typed: no agent, a silent agent, an answer that is not ours. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentClient } from '../../src/agent/client.js';

let dir: string;
let server: Server;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-client-'));
  server = createServer((req, res) => {
    if (req.url === '/silent') return; // never answers, like a SIGSTOPped agent
    if (req.url === '/html') {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end('<html>a proxy page</html>');
    }
    if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      return res.end('vigil_store_up 1\n');
    }
    res.writeHead(409, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ decision: 'refused', reason: 'conflict' }));
  });
  await new Promise<void>((r) => server.listen(join(dir, 'api.sock'), r));
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

test('an answer of any status is returned; text is returned as text', async () => {
  const client = new AgentClient({ socketPath: join(dir, 'api.sock') });
  try {
    const refused = await client.post<{ reason: string }>('/v1/sign', {});
    assert.equal(refused.status, 409);
    assert.equal(refused.body.reason, 'conflict');
    assert.equal((await client.get<string>('/metrics')).body, 'vigil_store_up 1\n');
  } finally {
    client.close();
  }
});

test('no agent, a silent agent and a foreign answer are typed errors', async () => {
  const missing = new AgentClient({ socketPath: join(dir, 'nobody.sock') });
  await assert.rejects(missing.get('/healthz'), (err: { code?: string; message: string }) => {
    return err.code === 'AGENT_UNREACHABLE' && err.message.includes('nobody.sock');
  });
  missing.close();
  const client = new AgentClient({ socketPath: join(dir, 'api.sock') }, { timeoutMs: 200 });
  try {
    await assert.rejects(
      client.get('/silent'),
      (err: { code?: string; message: string }) =>
        err.code === 'AGENT_UNREACHABLE' && /timed out after 200 ms/.test(err.message),
    );
    await assert.rejects(
      client.get('/html'),
      (err: { code?: string }) => err.code === 'AGENT_PROTOCOL',
    );
  } finally {
    client.close();
  }
});
