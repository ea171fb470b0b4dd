import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { AgentConfigSchema } from '../../src/agent/config.js';
import { AgentClient } from '../../src/agent/client.js';
import { initStore } from '../../src/agent/store.js';
import { startAgent, type RunningAgent } from '../../src/agent/daemon.js';

const ROLE = 'dot/validator-1';

function config(dir: string, id: string) {
  const log = join(dir, 'activity.log');
  return AgentConfigSchema.parse({
    agent: { id, dataDir: join(dir, id) },
    store: { engine: 'sqlite', path: join(dir, 'store.db') },
    keys: [
      {
        id: 'authority',
        publicKey: 'ab'.repeat(32),
        protocol: 'authorize',
        chains: ['dot'],
        duty: 'slot',
      },
    ],
    supervisors: [
      {
        role: ROLE,
        lease: { ttlMs: 2000, marginMs: 100, pollMs: 50 },
        renewEveryMs: 200,
        deactivateBudgetMs: 500,
        activate: [{ run: ['sh', '-c', `echo "on ${id}" >> ${log}`] }],
        deactivate: [{ run: ['sh', '-c', `echo "off ${id}" >> ${log}`] }],
      },
    ],
  });
}

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined) return v;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** One short-lived client per call: the agents stop and start during the test. */
async function call<T>(agent: RunningAgent, use: (c: AgentClient) => Promise<T>): Promise<T> {
  const client = AgentClient.for(agent);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

const ask = (agent: RunningAgent, slot: string, nodeId: string) =>
  call(agent, (c) =>
    c.post<Record<string, any>>('/v1/authorize', {
      family: 'slot',
      chainId: 'dot',
      keyId: 'authority',
      role: ROLE,
      position: { slot },
      nodeId,
    }),
  );

const roleState = async (agent: RunningAgent) =>
  (await call(agent, (c) => c.get<{ roles: Array<{ state: string }> }>('/readyz'))).body.roles[0]!
    .state;

test('only the holder of a role is granted requests naming it; the role moves when the holder stops', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-roles-'));
  const silent = pino({ level: 'silent' });
  await (await initStore(config(dir, 'a').store)).close();
  const a = await startAgent(config(dir, 'a'), silent);
  let b: RunningAgent | undefined;
  try {
    await until('a to activate', async () =>
      (await roleState(a)) === 'active' ? true : undefined,
    );
    b = await startAgent(config(dir, 'b'), silent);
    // The standby exports the role at 0 from the start: a role nobody holds sums to 0.
    const standby = (await call(b, (c) => c.get<string>('/metrics'))).body;
    assert.match(standby, /vigil_role_active\{role="dot\/validator-1",agent="b"\} 0/);
    assert.equal((await ask(a, '10', 'node-a')).status, 200);
    const refused = await ask(b, '11', 'node-b');
    assert.equal(refused.status, 409);
    assert.equal(refused.body.reason, 'fenced');
    assert.match(refused.body.message, /does not hold role/);

    const unknownRole = await call(a, (c) =>
      c.post('/v1/authorize', {
        family: 'slot',
        chainId: 'dot',
        keyId: 'authority',
        role: 'nope',
        position: { slot: '12' },
        nodeId: 'x',
      }),
    );
    assert.equal(unknownRole.status, 400);

    await a.stop();
    const bAgent = b;
    await until('b to activate', async () =>
      (await roleState(bAgent)) === 'active' ? true : undefined,
    );
    assert.equal((await ask(bAgent, '11', 'node-b')).status, 200);

    const log = readFileSync(join(dir, 'activity.log'), 'utf8').trim().split('\n');
    // a deactivated before b activated: the two were never on at once.
    assert.deepEqual(log, ['on a', 'off a', 'on b']);
    const metrics = (await call(bAgent, (c) => c.get<string>('/metrics'))).body;
    assert.match(metrics, /vigil_role_active\{role="dot\/validator-1",agent="b"\} 1/);
  } finally {
    await b?.stop();
    await a.stop().catch(() => undefined);
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  }
});
