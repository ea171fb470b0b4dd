/**
 * `vigil status` as a real CLI process against real agents (SQLite stores, bound CometBFT keys):
 * `--config` on the agent's own socket (and on its metrics listener when the socket cannot be
 * opened), the table and the JSON, a not-ready agent and an unreachable one (exit 2), usage
 * errors (exit 1), and `--plan` on a plan rendered from examples/topologies/polkadot-guarded.yaml
 * whose two agents' metrics listeners are pointed at two local agents holding one role.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { AgentClient } from '../../src/agent/client.js';
import { loadAgentConfig } from '../../src/agent/config.js';
import { startAgent, type RunningAgent } from '../../src/agent/daemon.js';
import { initStore } from '../../src/agent/store.js';
import { planFleet } from '../../src/render/fleet.js';
import { packageRoot } from '../../src/package-root.js';
import { PLAN_AGENT_FILE } from '../../src/status/fetch.js';
import type { StatusReport } from '../../src/status/report.js';
import { writeRigKeyFiles } from '../helpers/agent-process.js';
import { cometSignBytes } from '../helpers/guard-fixtures.js';
import { CLI_ENTRY } from '../helpers/paths.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** The CLI as a process, without blocking this process (the agents live in it). */
function vigil(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI_ENTRY, ...args],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, VIGIL_CONFIG: '' } },
      (error, out, err) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, out, err });
      },
    );
  });
}

/** Starts an agent from a YAML config written to `file`; answers it and its metrics URL. */
async function startFromFile(
  file: string,
  config: Record<string, unknown>,
): Promise<{ agent: RunningAgent; metricsUrl?: string }> {
  writeFileSync(file, toYaml(config));
  const loaded = loadAgentConfig(file);
  await (await initStore(loaded.store)).close();
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
  const agent = await startAgent(loaded, logger);
  const started = lines.find(
    (l) => typeof l.msg === 'string' && /^agent (ready|started)/.test(l.msg),
  );
  const metricsUrl = started?.metricsUrl as string | undefined;
  return { agent, ...(metricsUrl ? { metricsUrl } : {}) };
}

describe('vigil status --config', () => {
  let dir: string;
  let file: string;
  let agent: RunningAgent;
  let metricsUrl: string;
  let client: AgentClient;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-status-'));
    const [k1] = writeRigKeyFiles(dir);
    file = join(dir, 'agent.yaml');
    const started = await startFromFile(file, {
      agent: { id: 'st1', dataDir: './data' },
      store: { engine: 'sqlite', path: './store.db' },
      metricsListen: { host: '127.0.0.1', port: 0 },
      keys: [{ id: 'val', file: k1!.file, protocol: 'cometbft', chains: ['cosmos-1'] }],
    });
    agent = started.agent;
    assert.ok(started.metricsUrl, 'the agent logged its metrics URL');
    metricsUrl = started.metricsUrl;
    client = AgentClient.for(agent);
    const sign = async (height: bigint, block: number) =>
      (
        await client.post<{ decision: string; reason?: string }>('/v1/sign', {
          family: 'cometbft',
          chainId: 'cosmos-1',
          keyId: 'val',
          payload: hex(cometSignBytes({ height, step: 'proposal', block, chainId: 'cosmos-1' })),
        })
      ).body;
    for (const h of [1n, 2n, 3n]) assert.equal((await sign(h, 1)).decision, 'granted');
    // Another block at the same height and round: a double sign, refused.
    assert.equal((await sign(3n, 2)).reason, 'conflict');
  });

  after(async () => {
    client?.close();
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the agent, its last signature per chain and key, and its refusals; exit 0', async () => {
    const r = await vigil(['status', '--config', file]);
    assert.equal(r.code, 0, r.out + r.err);
    const socket = join(dir, 'data', 'api.sock');
    assert.match(r.out, new RegExp(`^ {2}st1 +ok +ready +sqlite +${socket}$`, 'm'));
    assert.match(
      r.out,
      /^ {2}st1 +cosmos-1 +val +cometbft +height 3 round 0 proposal +\d{4}-\d\d-\d\dT[\d:.]+Z \(\d+s ago\)$/m,
    );
    assert.match(r.out, /^ {2}st1 +cometbft +conflict +1$/m);
    assert.match(r.out, /All 1 agent\(s\) ready\./);
    assert.doesNotMatch(r.out, /Problems/);
  });

  it('--json has the same report, one object per agent', async () => {
    const r = await vigil(['status', '--config', file, '--json']);
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out) as StatusReport;
    assert.equal(report.ok, true);
    assert.deepEqual(report.roles, []);
    assert.equal(report.alerts, undefined);
    const [a, more] = report.agents;
    assert.equal(more, undefined);
    assert.equal(a!.name, 'st1');
    const storeId = agent.store.identity.storeId;
    assert.equal(a!.agentId, 'st1');
    assert.equal(a!.endpoint, join(dir, 'data', 'api.sock'));
    assert.deepEqual(
      [a!.reachable, a!.healthy, a!.ready, a!.store],
      [true, true, true, { engine: 'sqlite', id: storeId, up: true }],
    );
    assert.deepEqual(a!.conditions.map((c) => [c.name, c.ready]).sort(), [
      ['local_watermark', true],
      ['store', true],
      ['store_identity', true],
    ]);
    assert.equal(a!.signatures.length, 1);
    const s = a!.signatures[0]!;
    assert.deepEqual(
      { chainId: s.chainId, key: s.key, family: s.family, position: s.position },
      {
        chainId: 'cosmos-1',
        key: 'val',
        family: 'cometbft',
        position: { height: '3', round: '0', step: 'proposal' },
      },
    );
    assert.ok(Math.abs(Date.parse(s.at!) - Date.now()) < 60_000, s.at!);
    assert.deepEqual(a!.refusals, [{ family: 'cometbft', reason: 'conflict', count: 1 }]);
    assert.ok(a!.startedAt && Date.parse(a!.startedAt) <= Date.now());
    assert.deepEqual(a!.problems, []);
  });

  it('reaches the agent on its metrics listener when its socket cannot be opened', async () => {
    const other = join(dir, 'no-socket.yaml');
    const config = parseYaml(readFileSync(file, 'utf8')) as Record<string, any>;
    const port = Number(new URL(metricsUrl).port);
    writeFileSync(
      other,
      toYaml({
        ...config,
        listen: { socket: { path: join(dir, 'gone.sock') } },
        metricsListen: { host: '0.0.0.0', port },
      }),
    );
    const r = await vigil(['status', '--config', other, '--json']);
    assert.equal(r.code, 0, r.out + r.err);
    const a = (JSON.parse(r.out) as StatusReport).agents[0]!;
    // A wildcard bind is asked on loopback.
    assert.equal(a.endpoint, `http://127.0.0.1:${port}`);
    assert.equal(a.signatures[0]!.position.height, '3');
  });

  it('alerts firing from --prometheus are listed', async () => {
    // A stand-in answering GET /api/v1/alerts as Prometheus does (web/api/v1/api.go).
    const prom: Server = createServer((req, res) => {
      if (req.url !== '/prom/api/v1/alerts') return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          status: 'success',
          data: {
            alerts: [
              {
                labels: { alertname: 'VigilPrivvalLinkDown', severity: 'warning' },
                annotations: { summary: 'privval link down' },
                state: 'firing',
                activeAt: '2026-01-01T00:00:00Z',
                value: '1e+00',
              },
            ],
          },
        }),
      );
    });
    await new Promise<void>((resolve) => prom.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = prom.address() as { port: number };
      const r = await vigil([
        'status',
        '--config',
        file,
        '--prometheus',
        `http://127.0.0.1:${port}/prom`,
      ]);
      assert.equal(r.code, 0, r.out + r.err);
      assert.match(
        r.out,
        /^ {2}VigilPrivvalLinkDown +warning +2026-01-01T00:00:00Z +privval link down$/m,
      );
      // A Prometheus that does not answer: said so, exit 2.
      const down = await vigil([
        'status',
        '--config',
        file,
        '--prometheus',
        `http://127.0.0.1:${port}/x`,
      ]);
      assert.equal(down.code, 2, down.out + down.err);
      assert.match(down.out, /cannot read alerts from http:\/\/127\.0\.0\.1:\d+\/x: 404/);
    } finally {
      await new Promise((resolve) => prom.close(resolve));
    }
  });

  it('an unreachable agent: exit 2, and the report says so with each listener tried', async () => {
    const stopped = join(dir, 'stopped.yaml');
    writeFileSync(
      stopped,
      toYaml({
        agent: { id: 'gone', dataDir: './gone-data' },
        store: { engine: 'sqlite', path: './store.db' },
      }),
    );
    const r = await vigil(['status', '--config', stopped]);
    assert.equal(r.code, 2, r.out + r.err);
    assert.match(r.out, /^ {2}gone +unreachable +- +- /m);
    assert.match(r.out, /gone: unreachable: socket .*gone-data\/api\.sock: connect ENOENT/);
    assert.match(r.out, /1 of 1 agent\(s\) unreachable or not ready\./);
    const json = JSON.parse((await vigil(['status', '--config', stopped, '--json'])).out);
    assert.equal(json.ok, false);
    assert.equal(json.agents[0].reachable, false);
  });

  it('usage errors exit 1: --plan with --config, a bad --timeout or --prometheus, no config', async () => {
    const both = await vigil(['status', '--config', file, '--plan', dir]);
    assert.equal(both.code, 1);
    assert.match(both.err, /cannot be used with/);
    const timeout = await vigil(['status', '--config', file, '--timeout', 'soon']);
    assert.equal(timeout.code, 1);
    assert.match(timeout.err, /^vigil: error \[USAGE\]: --timeout soon/);
    const prom = await vigil(['status', '--config', file, '--prometheus', 'prom:9090']);
    assert.equal(prom.code, 1);
    assert.match(prom.err, /only http and https URLs/);
    const plan = await vigil(['status', '--plan', join(dir, 'data')]);
    assert.equal(plan.code, 1);
    assert.match(plan.err, /\[PLAN_NOT_FOUND\].*has no hosts\/ folder/);
  });

  // Last: it takes the store away from the agent.
  it('a not-ready agent: exit 2, each failing condition with its reason', async () => {
    renameSync(join(dir, 'store.db'), join(dir, 'store.db.moved'));
    const r = await vigil(['status', '--config', file]);
    assert.equal(r.code, 2, r.out + r.err);
    assert.match(r.out, /^ {2}st1 +ok +NOT READY +sqlite \(down\)/m);
    assert.match(r.out, /st1: not ready: store: the SQLite store file .* was deleted/);
    const a = (
      JSON.parse((await vigil(['status', '--config', file, '--json'])).out) as StatusReport
    ).agents[0]!;
    assert.equal(a.ready, false);
    assert.deepEqual(
      a.conditions.filter((c) => !c.ready).map((c) => c.name),
      ['store'],
    );
  });
});

/** A TCP port free now (the config must name the port the CLI will read). */
async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('vigil status --config, an agent serving its API on TCP only', () => {
  let dir: string;
  let agent: RunningAgent;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-status-tcp-'));
    writeFileSync(join(dir, 'api.token'), 'ab'.repeat(32) + '\n', { mode: 0o600 });
    const port = await freePort();
    ({ agent } = await startFromFile(join(dir, 'agent.yaml'), {
      agent: { id: 'tcp1', dataDir: './data' },
      store: { engine: 'sqlite', path: './store.db' },
      listen: { tcp: { host: '127.0.0.1', port, tokenFile: './api.token' } },
    }));
  });

  after(async () => {
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is asked with its bearer token; a wrong token is not ready (401), exit 2', async () => {
    const r = await vigil(['status', '--config', join(dir, 'agent.yaml')]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /^ {2}tcp1 +ok +ready +sqlite +http:\/\/127\.0\.0\.1:\d+$/m);
    writeFileSync(join(dir, 'api.token'), 'cd'.repeat(32) + '\n', { mode: 0o600 });
    const wrong = await vigil(['status', '--config', join(dir, 'agent.yaml')]);
    assert.equal(wrong.code, 2, wrong.out + wrong.err);
    assert.match(wrong.out, /^ {2}tcp1 +failing +NOT READY /m);
    assert.match(wrong.out, /tcp1: \/healthz answered 401/);
  });
});

describe('vigil status --plan', () => {
  let dir: string;
  const agents: RunningAgent[] = [];
  let out: string;
  const ROLE = 'polkadot/validator-1';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-status-plan-'));
    out = join(dir, 'plan');
    const r = planFleet(join(packageRoot(), 'examples', 'topologies', 'polkadot-guarded.yaml'), {
      out,
      state: join(dir, 'state'),
    });
    assert.ok(r.plan, JSON.stringify(r.findings));
    // Two local agents sharing one store and competing for one role, as the plan's two do.
    const urls: string[] = [];
    for (const id of ['a', 'b']) {
      const started = await startFromFile(join(dir, `${id}.yaml`), {
        agent: { id, dataDir: `./${id}` },
        store: { engine: 'sqlite', path: './store.db' },
        metricsListen: { host: '127.0.0.1', port: 0 },
        keys: [
          {
            id: 'auth',
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
            activate: [{ run: ['true'] }],
            deactivate: [{ run: ['true'] }],
          },
        ],
      });
      agents.push(started.agent);
      urls.push(started.metricsUrl!);
    }
    // The rendered agent configs bind their metrics listeners to the hosts' VPN addresses:
    // point them at the local agents, and change nothing else in the plan.
    for (const [host, url] of [
      ['validator-a', urls[0]!],
      ['validator-b', urls[1]!],
    ] as const) {
      const path = join(out, 'hosts', host, 'files', PLAN_AGENT_FILE);
      const config = parseYaml(readFileSync(path, 'utf8')) as Record<string, any>;
      assert.match(config.metricsListen.host, /^10\./, 'the plan binds metrics to the VPN');
      config.metricsListen = { host: '127.0.0.1', port: Number(new URL(url).port) };
      writeFileSync(path, toYaml(config));
    }
    // Wait until one of them holds the role.
    const end = Date.now() + 10_000;
    for (;;) {
      const r = await vigil(['status', '--plan', out, '--json']);
      const report = JSON.parse(r.out) as StatusReport;
      if (report.roles[0]?.holders.length === 1) break;
      assert.ok(Date.now() < end, `no holder: ${r.out}`);
    }
  });

  after(async () => {
    for (const a of agents) await a.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists every agent of the plan by host, and the one holder of the role', async () => {
    const r = await vigil(['status', '--plan', out]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /^ {2}validator-a +ok +ready +sqlite +http:\/\/127\.0\.0\.1:\d+$/m);
    assert.match(r.out, /^ {2}validator-b +ok +ready +sqlite +http:\/\/127\.0\.0\.1:\d+$/m);
    const report = JSON.parse(
      (await vigil(['status', '--plan', out, '--json'])).out,
    ) as StatusReport;
    assert.deepEqual(
      report.agents.map((a) => [a.name, a.agentId, a.ready]),
      [
        ['validator-a', 'a', true],
        ['validator-b', 'b', true],
      ],
    );
    assert.equal(report.roles.length, 1);
    assert.equal(report.roles[0]!.role, ROLE);
    assert.deepEqual(report.roles[0]!.candidates, ['validator-a', 'validator-b']);
    const holder = report.roles[0]!.holders[0]!;
    assert.match(r.out, new RegExp(`^ {2}${ROLE} +${holder} +active +yes$`, 'm'));
    assert.doesNotMatch(r.out, /no holder|holders \(/);
  });

  it('one agent of the plan down: exit 2, the other still reported', async () => {
    await agents.pop()!.stop();
    const r = await vigil(['status', '--plan', out]);
    assert.equal(r.code, 2, r.out + r.err);
    assert.match(r.out, /^ {2}validator-a +ok +ready /m);
    assert.match(r.out, /^ {2}validator-b +unreachable /m);
    assert.match(
      r.out,
      /validator-b: unreachable: metricsListen http:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED/,
    );
  });

  it('a plan without agents is a usage error', async () => {
    const empty = join(dir, 'empty');
    const r = planFleet(join(packageRoot(), 'examples', 'topologies', 'decred-solo.yaml'), {
      out: empty,
      state: join(dir, 'state-decred'),
    });
    assert.ok(r.plan);
    const status = await vigil(['status', '--plan', empty]);
    assert.equal(status.code, 1);
    assert.match(status.err, /\[PLAN_NO_AGENTS\]/);
  });
});
