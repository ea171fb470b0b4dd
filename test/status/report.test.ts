/**
 * `vigil status` as pure functions: from what agents and Prometheus answered to the report, its
 * table and its exit code. The answers follow the agent's /readyz and /metrics (the CLI test
 * checks them against a real agent).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildReport,
  exitCodeOf,
  formatAgo,
  formatReport,
  readAlerts,
  summarizeAgent,
  type AgentProbe,
} from '../../src/status/report.js';

const NOW = Date.parse('2026-01-01T00:10:00.000Z');
const T = (iso: string) => Date.parse(iso) / 1000;

const METRICS = [
  '# HELP vigil_last_signed_timestamp_seconds …',
  '# TYPE vigil_last_signed_timestamp_seconds gauge',
  `vigil_last_signed_timestamp_seconds{chain_id="cosmos-1",key="val",family="cometbft",agent="v1"} ${T('2026-01-01T00:09:30.000Z')}`,
  'vigil_last_signed_timestamp_seconds{chain_id="cosmos-2",key="val",family="cometbft",agent="v1"} 0',
  `vigil_last_signed_timestamp_seconds{chain_id="c1",key="gran",family="grandpa",agent="v1"} ${T('2026-01-01T00:00:00.000Z')}`,
  'vigil_last_signed_position{chain_id="cosmos-1",key="val",family="cometbft",component="height",agent="v1"} 7',
  'vigil_last_signed_position{chain_id="cosmos-1",key="val",family="cometbft",component="round",agent="v1"} 1',
  'vigil_last_signed_position{chain_id="cosmos-1",key="val",family="cometbft",component="step",agent="v1"} 3',
  'vigil_last_signed_position{chain_id="c1",key="gran",family="grandpa",component="setId",agent="v1"} 4',
  'vigil_last_signed_position{chain_id="c1",key="gran",family="grandpa",component="round",agent="v1"} 12',
  'vigil_last_signed_position{chain_id="c1",key="gran",family="grandpa",component="stage",agent="v1"} 2',
  'vigil_guard_decisions_total{family="cometbft",outcome="granted",reason="",agent="v1"} 40',
  'vigil_guard_decisions_total{family="cometbft",outcome="refused",reason="conflict",agent="v1"} 2',
  'vigil_guard_decisions_total{family="cometbft",outcome="refused",reason="regression",agent="v1"} 0',
  'vigil_guard_decisions_total{family="unknown",outcome="refused",reason="unknown_key",agent="v1"} 5',
  'vigil_role_active{role="dot/val",agent="v1"} 1',
  'vigil_role_active{role="ada/pool",agent="v1"} 0',
  'vigil_privval_link_up{chain_id="cosmos-1",node="tcp://10.0.0.1:26659",agent="v1"} 0',
  'vigil_store_up{agent="v1"} 1',
  `process_start_time_seconds{agent="v1"} ${T('2026-01-01T00:00:00.000Z')}`,
].join('\n');

const readyBody = {
  status: 'ready',
  store: 'sqlite',
  conditions: [{ name: 'store', ready: true, since: '2026-01-01T00:00:00.000Z' }],
  roles: [{ role: 'dot/val', state: 'active' }],
};

const ready = (
  name = 'v1',
  metrics: AgentProbe['metrics'] = METRICS,
  roleState = 'active',
): AgentProbe => ({
  name,
  endpoint: `/run/${name}.sock`,
  healthz: { status: 200, body: { status: 'ok' } },
  readyz: { status: 200, body: { ...readyBody, roles: [{ role: 'dot/val', state: roleState }] } },
  metrics,
});

describe('one agent', () => {
  it('reads health, store, roles, last signatures, links and refusals', () => {
    const s = summarizeAgent(ready(), NOW);
    assert.equal(s.reachable, true);
    assert.equal(s.healthy, true);
    assert.equal(s.ready, true);
    assert.equal(s.agentId, 'v1');
    assert.equal(s.startedAt, '2026-01-01T00:00:00.000Z');
    assert.deepEqual(s.store, { engine: 'sqlite', up: true });
    assert.deepEqual(s.roles, [
      { role: 'ada/pool', active: false },
      { role: 'dot/val', active: true, state: 'active' },
    ]);
    assert.deepEqual(s.signatures, [
      {
        chainId: 'c1',
        key: 'gran',
        family: 'grandpa',
        at: '2026-01-01T00:00:00.000Z',
        secondsAgo: 600,
        position: { setId: '4', round: '12', stage: 'prevote' },
      },
      {
        chainId: 'cosmos-1',
        key: 'val',
        family: 'cometbft',
        at: '2026-01-01T00:09:30.000Z',
        secondsAgo: 30,
        position: { height: '7', round: '1', step: 'precommit' },
      },
      {
        chainId: 'cosmos-2',
        key: 'val',
        family: 'cometbft',
        at: null,
        secondsAgo: null,
        position: {},
      },
    ]);
    // Counters at 0 are not refusals; the largest count first.
    assert.deepEqual(s.refusals, [
      { family: 'unknown', reason: 'unknown_key', count: 5 },
      { family: 'cometbft', reason: 'conflict', count: 2 },
    ]);
    assert.deepEqual(s.links, [{ chainId: 'cosmos-1', node: 'tcp://10.0.0.1:26659', up: false }]);
    assert.deepEqual(s.problems, []);
  });

  it('a not-ready agent: each failing condition with its reason, and exit 2', () => {
    const probe: AgentProbe = {
      ...ready(),
      readyz: {
        status: 503,
        body: {
          status: 'not ready',
          store: 'sqlite',
          reason: 'store_identity: the file was deleted',
          conditions: [
            { name: 'store', ready: true, since: '2026-01-01T00:00:00.000Z' },
            {
              name: 'store_identity',
              ready: false,
              reason: 'the file was deleted',
              since: '2026-01-01T00:05:00.000Z',
            },
          ],
        },
      },
    };
    const r = buildReport([probe], NOW);
    const s = r.agents[0]!;
    assert.equal(s.ready, false);
    assert.deepEqual(
      s.conditions.filter((c) => !c.ready).map((c) => [c.name, c.reason]),
      [['store_identity', 'the file was deleted']],
    );
    // Roles still come from the metrics when /readyz (not ready) names none.
    assert.deepEqual(
      s.roles.map((x) => [x.role, x.active, x.state]),
      [
        ['ada/pool', false, undefined],
        ['dot/val', true, undefined],
      ],
    );
    assert.equal(exitCodeOf(r), 2);
    const text = formatReport(r);
    assert.match(
      text,
      /v1: not ready: store_identity: the file was deleted \(since 2026-01-01T00:05:00.000Z\)/,
    );
    assert.match(text, /^ {2}v1 +ok +NOT READY +sqlite +\/run\/v1\.sock$/m);
    assert.match(text, /1 of 1 agent\(s\) unreachable or not ready\./);
  });

  it('an unreachable agent: said so, with every listener tried, and exit 2', () => {
    const r = buildReport(
      [
        {
          name: 'v9',
          endpoint: '/run/v9.sock, http://127.0.0.1:9',
          unreachable: 'socket /run/v9.sock: connect ENOENT',
        },
      ],
      NOW,
    );
    assert.equal(r.agents[0]!.reachable, false);
    assert.equal(exitCodeOf(r), 2);
    const text = formatReport(r);
    assert.match(text, /^ {2}v9 +unreachable +- +- +\/run\/v9\.sock, http:\/\/127\.0\.0\.1:9$/m);
    assert.match(text, /v9: unreachable: socket \/run\/v9\.sock: connect ENOENT/);
    assert.doesNotMatch(text, /Refusals/, 'no "none" refusals claimed for an agent not asked');
  });

  it('a /metrics that is not Prometheus text is a problem named, not a crash; readiness still counts', () => {
    const s = summarizeAgent(ready('v1', 'vigil_store_up{ 1\n'), NOW);
    assert.equal(s.ready, true);
    assert.deepEqual(s.signatures, []);
    assert.equal(s.problems.length, 1);
    assert.match(s.problems[0]!, /METRICS_FORMAT|line 1 of the metrics/);
    const failed = summarizeAgent(ready('v1', { error: 'timed out after 5000 ms' }), NOW);
    assert.deepEqual(failed.problems, ['/metrics: timed out after 5000 ms']);
  });

  it('a /readyz that answers 200 without status ready is not ready', () => {
    const s = summarizeAgent(
      { ...ready(), readyz: { status: 200, body: { status: 'starting', conditions: [] } } },
      NOW,
    );
    assert.equal(s.ready, false);
    assert.match(s.problems.join('\n'), /answered 200 but status "starting"/);
  });
});

describe('a fleet', () => {
  const other = METRICS.replace(/agent="v1"/g, 'agent="v2"').replace(
    'vigil_role_active{role="dot/val",agent="v2"} 1',
    'vigil_role_active{role="dot/val",agent="v2"} 0',
  );

  it('role holders across agents, and a role nobody holds is named', () => {
    const r = buildReport([ready('v1'), ready('v2', other, 'follower')], NOW);
    assert.deepEqual(r.roles, [
      { role: 'ada/pool', holders: [], candidates: ['v1', 'v2'] },
      { role: 'dot/val', holders: ['v1'], candidates: ['v1', 'v2'] },
    ]);
    assert.equal(r.ok, true);
    assert.equal(exitCodeOf(r), 0);
    const text = formatReport(r);
    assert.match(text, /ada\/pool: no holder among the agents asked/);
    assert.doesNotMatch(text, /dot\/val: .*holder/);
    assert.match(text, /^ {2}dot\/val +v1 +active +yes\n {2}dot\/val +v2 +follower +no$/m);
    assert.match(
      text,
      /^ {2}v1 +cosmos-1 +val +cometbft +height 7 round 1 precommit +2026-01-01T00:09:30.000Z \(30s ago\)$/m,
    );
    assert.match(text, /^ {2}v2 +cosmos-2 +val +cometbft +none since start +-$/m);
    assert.match(text, /^ {2}v1 +unknown +unknown_key +5$/m);
    assert.match(text, /^ {2}v2 +cosmos-1 +tcp:\/\/10\.0\.0\.1:26659 +DOWN$/m);
    assert.match(text, /All 2 agent\(s\) ready\./);
  });

  it('two holders of one role are named', () => {
    const both = METRICS.replace(/agent="v1"/g, 'agent="v2"');
    const text = formatReport(buildReport([ready('v1'), ready('v2', both)], NOW));
    assert.match(text, /dot\/val: 2 holders \(v1, v2\)/);
  });
});

describe('alerts', () => {
  // The shape of Prometheus' GET /api/v1/alerts (prometheus/web/api/v1/api.go, AlertDiscovery).
  const answer = {
    status: 'success',
    data: {
      alerts: [
        {
          labels: { alertname: 'VigilAgentNotReady', severity: 'page', host: 'v1' },
          annotations: { summary: 'Vigil agent on v1 is not ready' },
          state: 'firing',
          activeAt: '2026-01-01T00:01:00Z',
          value: '0e+00',
        },
        { labels: { alertname: 'VigilRoleHolders' }, annotations: {}, state: 'pending' },
      ],
    },
  };

  it('lists the firing ones and counts the pending; they are in the table', () => {
    const a = readAlerts('http://prom:9090', answer);
    assert.deepEqual(a, {
      source: 'http://prom:9090',
      pending: 1,
      firing: [
        {
          name: 'VigilAgentNotReady',
          severity: 'page',
          labels: { alertname: 'VigilAgentNotReady', severity: 'page', host: 'v1' },
          summary: 'Vigil agent on v1 is not ready',
          activeAt: '2026-01-01T00:01:00Z',
        },
      ],
    });
    const r = buildReport([ready()], NOW, a);
    assert.equal(exitCodeOf(r), 0, 'alerts firing do not change the exit code');
    const text = formatReport(r);
    assert.match(text, /Alerts firing \(http:\/\/prom:9090\)/);
    assert.match(
      text,
      /^ {2}VigilAgentNotReady +page +2026-01-01T00:01:00Z +Vigil agent on v1 is not ready$/m,
    );
    assert.match(text, /\(1 pending\)/);
  });

  it('an answer that is not the alerts API is an error, and the exit code says so', () => {
    const a = readAlerts('http://prom:9090', { status: 'error', error: 'nope' });
    assert.match(a.error!, /not an \/api\/v1\/alerts answer/);
    const r = buildReport([ready()], NOW, a);
    assert.equal(exitCodeOf(r), 2);
    assert.match(formatReport(r), /cannot read alerts from http:\/\/prom:9090/);
    assert.match(formatReport(r), /Every agent ready, but the alerts could not be read\./);
  });
});

it('ages read as seconds, minutes, hours, days', () => {
  assert.deepEqual([0, 119, 120, 7199, 7200, 172_799, 172_800].map(formatAgo), [
    '0s ago',
    '119s ago',
    '2m ago',
    '119m ago',
    '2h ago',
    '47h ago',
    '2d ago',
  ]);
});
