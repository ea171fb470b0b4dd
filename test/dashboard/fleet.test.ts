/**
 * `vigil dashboard` as a real CLI process over two real agent processes (SQLite stores
 * initialised by `vigil state init`, BABE keys, metrics listeners), one address where nothing
 * listens, and a Prometheus alerts endpoint: the overview it serves names every agent with its
 * watermark and refusals, the unreachable one as such, and the firing alert; the page shows
 * them in headless Chromium. Usage errors exit 1 without serving.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Overview } from '../../src/dashboard/overview.js';
import { freePort } from '../../src/devnet/free-port.js';
import {
  babeSignBody,
  startAgentProcess,
  writeSlotAgent,
  type AgentProcess,
} from '../helpers/agent-process.js';
import { CHAIN, tempDir } from '../helpers/guard-fixtures.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';
import { CLI_ENTRY } from '../helpers/paths.js';

/** The agent's metrics listener, from its `agent ready` line. */
function metricsUrlOf(agent: AgentProcess): string {
  for (const line of agent.output().split('\n')) {
    try {
      const entry = JSON.parse(line) as { msg?: string; metricsUrl?: string };
      if (entry.msg === 'agent ready' && entry.metricsUrl) return entry.metricsUrl;
    } catch {
      // not a log line
    }
  }
  throw new Error(`no metricsUrl in:\n${agent.output()}`);
}

// The shape of Prometheus' GET /api/v1/alerts (prometheus/web/api/v1/api.go, AlertDiscovery;
// the same answer test/status/report.test.ts reads).
const ALERTS = {
  status: 'success',
  data: {
    alerts: [
      {
        labels: { alertname: 'VigilAgentDown', severity: 'page', host: 'gone' },
        annotations: { summary: 'Vigil agent on gone does not answer' },
        state: 'firing',
        activeAt: '2026-01-01T00:01:00Z',
        value: '1e+00',
      },
    ],
  },
};

describe('vigil dashboard over a fleet', () => {
  const { dir, cleanup } = tempDir('vigil-fleet-dash-');
  const agents: AgentProcess[] = [];
  let prometheus: Server;
  let dashboard: ChildProcess | undefined;
  let url = '';
  let deadUrl = '';

  before(async () => {
    for (const name of ['alpha', 'beta']) {
      const sub = join(dir, name);
      spawnSync('mkdir', ['-p', sub]);
      const config = writeSlotAgent(
        { dir: sub, storePath: join(sub, 'store.db'), dataDir: join(sub, 'data') },
        name,
      );
      appendFileSync(config, 'metricsListen: { host: 127.0.0.1, port: 0 }\n');
      agents.push(await startAgentProcess(config));
    }
    prometheus = createServer((req, res) => {
      res.writeHead(req.url === '/api/v1/alerts' ? 200 : 404, {
        'content-type': 'application/json',
      });
      res.end(JSON.stringify(ALERTS));
    });
    await new Promise<void>((r) => prometheus.listen(0, '127.0.0.1', r));
    deadUrl = `http://127.0.0.1:${await freePort()}`;
    const args = [
      CLI_ENTRY,
      'dashboard',
      ...agents.flatMap((a) => ['--agent', metricsUrlOf(a)]),
      '--agent',
      deadUrl,
      '--prometheus',
      `http://127.0.0.1:${(prometheus.address() as AddressInfo).port}`,
      '--listen',
      '127.0.0.1:0',
      '--timeout',
      '1000',
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    dashboard = child;
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no dashboard within 20 s: ${err}`)), 20_000);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const m = /at (http:\/\/\S+)\/dashboard/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`vigil dashboard exited (${code}): ${err}`));
      });
    });
  });

  after(async () => {
    if (dashboard && dashboard.exitCode === null) {
      const exited = new Promise((r) => dashboard!.once('exit', r));
      dashboard.kill('SIGTERM');
      await exited;
    }
    await Promise.all(agents.map((a) => a.kill()));
    await new Promise((r) => prometheus?.close(r));
    cleanup();
  });

  it('serves every agent, its watermark and refusals, the unreachable one, and the alerts', async () => {
    assert.equal(
      (await agents[0]!.client.request('POST', '/v1/sign', babeSignBody(3))).status,
      200,
    );
    assert.equal(
      (await agents[1]!.client.request('POST', '/v1/sign', babeSignBody(4))).status,
      200,
    );
    assert.equal(
      (await agents[1]!.client.request('POST', '/v1/sign', babeSignBody(2))).status,
      409,
    );
    // Answers are shared for half a second: ask until the new state shows, boundedly.
    let o: Overview | undefined;
    for (let i = 0; i < 40; i++) {
      o = (await (await fetch(`${url}/v1/overview`)).json()) as Overview;
      if (o.agents[1]?.recentRefusals.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(o);
    assert.equal(o.source, 'fleet');
    assert.equal(o.ok, false, 'one agent is unreachable');
    assert.deepEqual(
      o.agents.map((a) => [a.reachable, a.ready]),
      [
        [true, true],
        [true, true],
        [false, false],
      ],
    );
    assert.deepEqual(
      o.agents.slice(0, 2).map((a) => a.agentId),
      ['alpha', 'beta'],
    );
    const slotOf = (i: number) =>
      o!.agents[i]!.watermarks.find((w) => w.chainId === CHAIN && w.key === 's1')?.position.slot;
    assert.equal(slotOf(0), '3');
    assert.equal(slotOf(1), '4');
    assert.deepEqual(
      o.agents.map((a) => a.problems),
      [[], [], []],
    );
    assert.equal(o.agents[1]!.signatures.find((s) => s.key === 's1')?.position.slot, '4');
    assert.deepEqual(
      o.agents[1]!.refusals.map((r) => [r.reason, r.count]),
      [['regression', 1]],
    );
    assert.equal(o.agents[1]!.recentRefusals[0]?.reason, 'regression');
    assert.deepEqual(o.agents[0]!.recentRefusals, []);
    assert.equal(o.alerts?.firing[0]?.name, 'VigilAgentDown');
    assert.equal((await fetch(`${url}/nothing`)).status, 404);
    assert.equal((await fetch(`${url}/v1/overview`, { method: 'POST' })).status, 405);
  });

  it(
    'shows the fleet in headless Chromium',
    { skip: chromiumSkip(), timeout: 60_000 },
    async () => {
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(`${url}/`, { timeout: 10_000 });
        assert.match(page.url(), /\/dashboard$/);
        const wait = async (section: string, words: readonly string[]) => {
          let loc = page.locator(`#${section}`);
          for (const w of words) loc = loc.filter({ hasText: w });
          await loc.waitFor({ state: 'attached', timeout: 10_000 });
        };
        await wait('source', ['fleet of 3 agent(s)']);
        await wait('agents', ['alpha', 'beta', 'unreachable', deadUrl.replace('http://', '')]);
        await wait('watermarks', ['slot 3', 'slot 4']);
        await wait('alerts', ['VigilAgentDown', 'Vigil agent on gone does not answer']);
        await wait('overall', ['attention']);
        assert.deepEqual(errors, []);
      } finally {
        await browser.close();
      }
    },
  );

  it('usage errors exit 1 and say what to give', () => {
    for (const [args, why] of [
      [['--agent', 'ftp://x:1'], /--agent ftp:\/\/x:1: give the http:\/\/ origin/],
      [
        ['--agent', 'http://127.0.0.1:1', '--listen', 'nowhere'],
        /--listen nowhere: give host:port/,
      ],
      [['--agent', 'http://127.0.0.1:1', '--timeout', '5'], /--timeout 5/],
    ] as const) {
      const r = spawnSync(process.execPath, [CLI_ENTRY, 'dashboard', ...args], {
        encoding: 'utf8',
        timeout: 20_000,
      });
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, why);
    }
  });
});
