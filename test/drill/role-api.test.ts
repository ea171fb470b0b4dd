/**
 * The agent's role API (src/agent/role-api.ts) on a real agent (SQLite store, real actions,
 * its real unix socket and read-only metrics listener): the handover is served on the signing
 * listener only, releases after a confirmed stop, and a holder whose successor never comes
 * takes the role back once its hold-off ends — the role is never left without a holder.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { AgentClient } from '../../src/agent/client.js';
import { AgentConfigSchema } from '../../src/agent/config.js';
import { startAgent } from '../../src/agent/daemon.js';
import { initStore } from '../../src/agent/store.js';
import { sleep } from '../helpers/etcd-cluster.js';

interface RoleRow {
  role: string;
  state: string;
  holderId: string;
  token?: string;
  standingAsideUntil?: string;
  storeHolder: { holderId: string; token: string } | null;
  granted: number;
}

test('role API: handover on the signing listener only, stand-aside bounded by the hold-off', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-roleapi-'));
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
  const config = AgentConfigSchema.parse({
    agent: { id: 'solo', dataDir: join(dir, 'a') },
    metricsListen: { host: '127.0.0.1', port: 0 },
    store: { engine: 'sqlite', path: join(dir, 's.db') },
    supervisors: [
      {
        role: 'r1',
        lease: { ttlMs: 2000, marginMs: 100, pollMs: 50, callTimeoutMs: 200 },
        renewEveryMs: 200,
        deactivateBudgetMs: 500,
        activate: [{ run: ['true'] }],
        deactivate: [{ run: ['true'] }],
        confirm: { run: ['true'], pollMs: 20 },
      },
    ],
  });
  await (await initStore(config.store)).close();
  const agent = await startAgent(config, logger);
  const client = new AgentClient({ socketPath: agent.socketPath! });
  const role = async () => (await client.get<{ roles: RoleRow[] }>('/v1/roles')).body.roles[0]!;
  const waitState = async (state: string) => {
    for (let i = 0; i < 200; i++) {
      const r = await role();
      if (r.state === state) return r;
      await sleep(25);
    }
    throw new Error(`role never ${state}: ${JSON.stringify(await role())}`);
  };
  try {
    const metricsUrl = lines
      .map((l) => JSON.parse(l) as { msg: string; metricsUrl?: string })
      .find((l) => l.msg === 'agent ready')?.metricsUrl;
    assert.ok(metricsUrl);
    // The read-only listener serves neither route.
    assert.equal((await fetch(`${metricsUrl}/v1/roles`)).status, 404);
    const viaMetrics = await fetch(`${metricsUrl}/v1/roles/handover`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ role: 'r1', holdOffMs: 0 }),
    });
    assert.equal(viaMetrics.status, 404);

    const active = await waitState('active');
    assert.equal(active.holderId, 'solo');
    assert.deepEqual(active.storeHolder, { holderId: 'solo', token: active.token });

    const unknown = await client.post<{ error: { code: string } }>('/v1/roles/handover', {
      role: 'nope',
    });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'UNKNOWN_ROLE');
    const bad = await client.post('/v1/roles/handover', { role: 'r1', holdOffMs: -1 });
    assert.equal(bad.status, 400);
    assert.equal((await role()).token, active.token, 'a bad request changed nothing');

    const handed = await client.post<{ handedOver: boolean; token: string; stoppedAt: string }>(
      '/v1/roles/handover',
      { role: 'r1', holdOffMs: 1500 },
    );
    assert.equal(handed.status, 200, JSON.stringify(handed.body));
    assert.equal(handed.body.handedOver, true);
    assert.equal(handed.body.token, active.token);
    const aside = await role();
    assert.equal(aside.state, 'follower');
    assert.ok(aside.standingAsideUntil, 'standing aside after the handover');
    assert.equal(aside.storeHolder, null, 'the lease was released');
    const again = await client.post<{ error: { code: string } }>('/v1/roles/handover', {
      role: 'r1',
    });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'ROLE_NOT_ACTIVE');

    // No successor came: once the hold-off ran out, the agent took the role back.
    const back = await waitState('active');
    assert.notEqual(back.token, active.token);
    assert.equal(back.standingAsideUntil, undefined);
  } finally {
    client.close();
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
