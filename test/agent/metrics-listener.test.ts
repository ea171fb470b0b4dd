import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AgentConfigSchema } from '../../src/agent/config.js';
import { initStore } from '../../src/agent/store.js';
import { startAgent } from '../../src/agent/daemon.js';

test('metricsListen serves health, readiness and metrics but never the signing API', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-metrics-'));
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
  const config = AgentConfigSchema.parse({
    agent: { id: 'm', dataDir: join(dir, 'a') },
    metricsListen: { host: '127.0.0.1', port: 0 },
    store: { engine: 'sqlite', path: join(dir, 's.db') },
  });
  await (await initStore(config.store)).close();
  const agent = await startAgent(config, logger);
  try {
    const ready = lines
      .map((l) => JSON.parse(l) as { msg: string; metricsUrl?: string })
      .find((l) => l.msg === 'agent ready');
    const metricsUrl = ready?.metricsUrl;
    assert.ok(metricsUrl && agent.socketPath && agent.url === undefined);
    assert.equal((await fetch(`${metricsUrl}/healthz`)).status, 200);
    assert.equal((await fetch(`${metricsUrl}/readyz`)).status, 200);
    assert.match(await (await fetch(`${metricsUrl}/metrics`)).text(), /vigil_store_up/);
    const sign = await fetch(`${metricsUrl}/v1/sign`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(sign.status, 404);
    const authorize = await fetch(`${metricsUrl}/v1/authorize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(authorize.status, 404);
    assert.equal((await fetch(`${metricsUrl}/openapi.json`)).status, 404);
  } finally {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
