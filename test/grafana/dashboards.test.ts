/**
 * Issue 14, item 4: the Grafana dashboards. Every PromQL expression parses with promtool, every
 * metric it selects is one Vigil's code registers (read from the registries themselves, not a
 * list kept by hand), every label a selector matches on is one that metric carries, and the
 * JSON holds together: fixed unique uids, unique panel ids, panels inside 24 columns and not
 * overlapping, every query through the `${datasource}` variable.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { AgentMetrics } from '../../src/agent/metrics.js';
import {
  DASHBOARD_UIDS,
  DASHBOARDS_PROVIDER_PATH,
  DATASOURCE_PATH,
  DATASOURCE_UID,
  DEFAULT_DASHBOARDS_DIR,
  GRID_COLUMNS,
  dashboardPath,
  grafanaFiles,
  vigilDashboards,
  type GrafanaDashboard,
  type GrafanaPanel,
} from '../../src/grafana/index.js';
import { cardanoWatchMetrics } from '../../src/watch/cardano.js';
import { cometbftWatchMetrics } from '../../src/watch/cometbft.js';
import { decredWatchMetrics } from '../../src/watch/decred.js';
import { CLI_ENTRY } from '../helpers/paths.js';
import { requireTool } from '../render/helpers.js';
import {
  metricNames,
  promtoolCheckExpressions,
  selectorLabels,
  substituteVariables,
} from './promql.js';

/**
 * The Polkadot watcher's metrics, a contract fixed while that watcher is written in parallel
 * (issue 14, item 2). Once src/watch/polkadot.ts exists, the test below checks its registry
 * registers every one of them.
 */
const POLKADOT_CONTRACT = [
  'up',
  'best_height',
  'finalized_height',
  'finality_lag_blocks',
  'peers',
  'is_syncing',
  'para_finality_lag_blocks',
  'session_keys_onchain',
  'last_poll_timestamp_seconds',
].map((n) => `vigil_watch_polkadot_${n}`);

/** Labels Prometheus adds to every series it scrapes (src/render/services.ts prometheusConfig). */
const TARGET_LABELS = ['job', 'instance', 'host', 'role', 'provider', 'region', 'chain'];

/** Series Prometheus itself makes: `up` per target, `ALERTS` per alert (Prometheus docs). */
const PROMETHEUS_SERIES: Record<string, string[]> = {
  up: [],
  ALERTS: ['alertname', 'alertstate', 'severity'],
};

type Known = Map<string, Set<string>>;

/** Every series name a registry exposes (a histogram's _bucket/_sum/_count) with its labels. */
async function namesOf(registry: Registry, extraLabels: readonly string[]): Promise<Known> {
  const out: Known = new Map();
  for (const m of await registry.getMetricsAsJSON()) {
    const metric = registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] };
    const labels = new Set([...(metric.labelNames ?? []), ...extraLabels, ...TARGET_LABELS]);
    const type = String(m.type);
    const series =
      type === 'histogram'
        ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`]
        : type === 'summary'
          ? [m.name, `${m.name}_sum`, `${m.name}_count`]
          : [m.name];
    for (const s of series)
      out.set(s, new Set([...labels, ...(s.endsWith('_bucket') ? ['le'] : []), 'quantile']));
  }
  return out;
}

/** The metric names the code registers: the agent's and each chain watcher's registries. */
async function knownMetrics(): Promise<Known> {
  const agent = new AgentMetrics({ agent: 'a' });
  const watch = new Registry();
  cometbftWatchMetrics(watch);
  cardanoWatchMetrics(watch);
  decredWatchMetrics(watch);
  const known: Known = new Map([
    ...(await namesOf(agent.registry, ['agent'])),
    ...(await namesOf(watch, [])),
  ]);
  for (const name of POLKADOT_CONTRACT) known.set(name, new Set(['chain_id', ...TARGET_LABELS]));
  for (const [name, labels] of Object.entries(PROMETHEUS_SERIES))
    known.set(name, new Set([...labels, ...TARGET_LABELS]));
  return known;
}

interface Expression {
  readonly where: string;
  readonly expr: string;
}

function variablesOf(d: GrafanaDashboard): Set<string> {
  return new Set(d.templating.list.map((v) => v.name));
}

/** Every PromQL expression of a dashboard (panel targets and variable selectors), filled in. */
function expressionsOf(d: GrafanaDashboard): Expression[] {
  const defined = variablesOf(d);
  const out: Expression[] = [];
  for (const p of d.panels)
    for (const t of p.targets ?? [])
      out.push({
        where: `${d.uid} panel ${p.id} "${p.title}" ${t.refId}`,
        expr: substituteVariables(t.expr, defined),
      });
  for (const v of d.templating.list) {
    if (v.type !== 'query') continue;
    const m = /^label_values\((.+), *(\w+)\)$/.exec(v.query);
    assert.ok(m, `${d.uid} variable ${v.name}: ${v.query} is not label_values(selector, label)`);
    out.push({ where: `${d.uid} variable ${v.name}`, expr: substituteVariables(m[1]!, defined) });
  }
  return out;
}

const dashboards = vigilDashboards();
const allExpressions = dashboards.flatMap(expressionsOf);

/** Names an expression selects that the code does not export, and labels its metrics lack. */
function unknownNames(e: Expression, known: Known): string[] {
  const problems: string[] = [];
  for (const name of metricNames(e.expr))
    if (!known.has(name)) problems.push(`${e.where}: unknown metric ${name} in ${e.expr}`);
  for (const { metric, labels } of selectorLabels(e.expr)) {
    const has = known.get(metric);
    for (const label of labels)
      if (has && !has.has(label))
        problems.push(`${e.where}: ${metric} has no label ${label} in ${e.expr}`);
  }
  return problems;
}

describe('Grafana dashboards: PromQL', () => {
  it('every expression parses with promtool (one recording rule each)', () => {
    if (!requireTool('promtool', ['--version'])) return;
    assert.ok(allExpressions.length > 100, `only ${allExpressions.length} expressions`);
    const r = promtoolCheckExpressions(allExpressions.map((e) => e.expr));
    assert.ok(r.ok, r.output);
  });

  it('a broken expression fails the promtool check', () => {
    if (!requireTool('promtool', ['--version'])) return;
    const exprs = allExpressions.map((e) => e.expr);
    // Drop the last closing parenthesis of the first expression that has one.
    const i = exprs.findIndex((e) => e.includes(')'));
    const broken = exprs[i]!.replace(/\)(?=[^)]*$)/, '');
    const r = promtoolCheckExpressions([...exprs.slice(0, i), broken, ...exprs.slice(i + 1)]);
    assert.equal(r.ok, false, `promtool accepted ${broken}`);
  });

  it('every metric a dashboard selects is one the code registers, with labels it has', async () => {
    const known = await knownMetrics();
    const problems = allExpressions.flatMap((e) => unknownNames(e, known));
    assert.deepEqual(problems, []);
    // And the dashboards cover what there is: each watcher and the signer appear.
    const used = new Set(allExpressions.flatMap((e) => [...metricNames(e.expr)]));
    for (const prefix of [
      'vigil_guard_',
      'vigil_last_signed_',
      'vigil_privval_',
      'vigil_role_',
      'vigil_watch_cometbft_',
      'vigil_watch_cardano_',
      'vigil_watch_decred_',
      'vigil_watch_polkadot_',
    ])
      assert.ok(
        [...used].some((n) => n.startsWith(prefix)),
        `no dashboard shows any ${prefix}* metric`,
      );
  });

  it('the name check catches a misspelt metric and a label the metric lacks', async () => {
    const known = await knownMetrics();
    const misspelt = { where: 'case', expr: 'max(vigil_watch_cometbft_heigth{chain_id=~".*"})' };
    assert.equal(unknownNames(misspelt, known).length, 1);
    const wrongLabel = { where: 'case', expr: 'vigil_watch_cardano_slot{wallet="x"}' };
    assert.equal(unknownNames(wrongLabel, known).length, 1);
    const functionsAndKeywords = {
      where: 'case',
      expr: 'histogram_quantile(0.99, sum by (le) (rate(vigil_guard_decision_seconds_bucket[5m]))) > 0 and on (agent) vigil_store_up offset 1m',
    };
    assert.deepEqual(unknownNames(functionsAndKeywords, known), []);
    assert.deepEqual([...metricNames(functionsAndKeywords.expr)].sort(), [
      'vigil_guard_decision_seconds_bucket',
      'vigil_store_up',
    ]);
  });

  it('every variable an expression uses is defined on its dashboard', () => {
    for (const d of dashboards) {
      const defined = variablesOf(d);
      for (const p of d.panels)
        for (const t of p.targets ?? [])
          for (const m of t.expr.matchAll(/\$\{?(\w+)/g))
            assert.ok(
              m[1]!.startsWith('__') || defined.has(m[1]!),
              `${d.uid} "${p.title}" uses $${m[1]} which it does not define`,
            );
    }
    assert.throws(() => substituteVariables('up{chain_id=~"$nope"}', new Set()), /\$nope/);
  });

  it('the Polkadot watcher, once merged, registers every metric of the contract', async (t) => {
    const compiled = new URL('../../src/watch/polkadot.js', import.meta.url);
    if (!existsSync(compiled)) {
      t.diagnostic('src/watch/polkadot.ts not merged yet: the dashboard uses the fixed contract');
      return;
    }
    const mod = (await import(compiled.href)) as Record<string, unknown>;
    const makers = Object.entries(mod).filter(
      ([name, v]) => /^[a-z]\w*WatchMetrics$/.test(name) && typeof v === 'function',
    );
    assert.equal(makers.length, 1, `one *WatchMetrics(registry) export: ${Object.keys(mod)}`);
    const registry = new Registry();
    (makers[0]![1] as (r: Registry) => unknown)(registry);
    const names = await namesOf(registry, []);
    for (const name of POLKADOT_CONTRACT) {
      assert.ok(names.has(name), `the Polkadot watcher does not register ${name}`);
      assert.ok(names.get(name)!.has('chain_id'), `${name} has no chain_id label`);
    }
  });
});

function overlaps(a: GrafanaPanel, b: GrafanaPanel): boolean {
  const p = a.gridPos;
  const q = b.gridPos;
  return p.x < q.x + q.w && q.x < p.x + p.w && p.y < q.y + q.h && q.y < p.y + p.h;
}

describe('Grafana dashboards: JSON structure', () => {
  it('six dashboards with the fixed, unique uids', () => {
    assert.deepEqual(
      dashboards.map((d) => d.uid),
      [
        'vigil-fleet',
        'vigil-signer',
        'vigil-cometbft',
        'vigil-cardano',
        'vigil-decred',
        'vigil-polkadot',
      ],
    );
    assert.equal(new Set(DASHBOARD_UIDS).size, DASHBOARD_UIDS.length);
    assert.equal(new Set(dashboards.map((d) => d.title)).size, dashboards.length);
    // Grafana limits a uid to 40 characters.
    for (const d of dashboards) assert.match(d.uid, /^[a-z0-9-]{1,40}$/);
  });

  for (const d of dashboards) {
    it(`${d.uid}: ids, grid, datasource variable`, () => {
      assert.ok(d.schemaVersion >= 36, `schemaVersion ${d.schemaVersion}`);
      const ids = d.panels.map((p) => p.id);
      assert.equal(new Set(ids).size, ids.length, `duplicate panel ids in ${d.uid}`);
      for (const p of d.panels) {
        const g = p.gridPos;
        assert.ok(
          Number.isInteger(g.x) && Number.isInteger(g.w) && g.x >= 0 && g.w >= 1,
          `${p.title}: ${JSON.stringify(g)}`,
        );
        assert.ok(g.x + g.w <= GRID_COLUMNS, `${p.title} ends at column ${g.x + g.w}`);
        assert.ok(g.y >= 0 && g.h >= 1, `${p.title}: ${JSON.stringify(g)}`);
      }
      for (const [i, a] of d.panels.entries())
        for (const b of d.panels.slice(i + 1))
          assert.ok(!overlaps(a, b), `"${a.title}" and "${b.title}" overlap`);

      const vars = d.templating.list;
      const ds = vars.find((v) => v.name === 'datasource');
      assert.ok(ds, 'no datasource variable');
      assert.equal(ds.type, 'datasource');
      assert.equal(ds.query, 'prometheus');
      assert.equal(new Set(vars.map((v) => v.name)).size, vars.length);
      const ref = { type: 'prometheus', uid: '${datasource}' };
      for (const v of vars.filter((v) => v.type === 'query'))
        assert.deepEqual(v['datasource'], ref, `variable ${v.name}`);
      const panels = d.panels.filter((p) => p.type !== 'row');
      assert.ok(panels.length >= 6, `${d.uid} has ${panels.length} panels`);
      for (const p of panels) {
        assert.deepEqual(p.datasource, ref, `panel "${p.title}"`);
        assert.ok((p.targets ?? []).length > 0, `panel "${p.title}" has no query`);
        const refIds = p.targets!.map((t) => t.refId);
        assert.equal(new Set(refIds).size, refIds.length, `panel "${p.title}" refIds`);
        for (const t of p.targets!) assert.deepEqual(t.datasource, ref, `"${p.title}" ${t.refId}`);
      }
      // No datasource named by uid anywhere: the variable is the only way in.
      const json = JSON.stringify(d);
      assert.ok(!json.includes(DATASOURCE_UID), `${d.uid} names the provisioned datasource uid`);
    });
  }
});

const ProviderFile = z.object({
  apiVersion: z.literal(1),
  providers: z
    .array(
      z.object({
        name: z.string().min(1),
        type: z.literal('file'),
        folder: z.string(),
        options: z.object({ path: z.string().startsWith('/') }),
      }),
    )
    .length(1),
});
const DatasourceFile = z.object({
  apiVersion: z.literal(1),
  datasources: z
    .array(
      z.object({
        name: z.string().min(1),
        uid: z.string(),
        type: z.literal('prometheus'),
        access: z.literal('proxy'),
        url: z.string().url(),
        isDefault: z.literal(true),
      }),
    )
    .length(1),
});

describe('Grafana provisioning files', () => {
  it('grafanaFiles: one JSON per dashboard, the provider and the datasource', () => {
    const files = grafanaFiles({ prometheusUrl: 'http://10.77.0.9:9090' });
    assert.deepEqual(
      [...files.keys()].sort(),
      [...DASHBOARD_UIDS.map(dashboardPath), DASHBOARDS_PROVIDER_PATH, DATASOURCE_PATH].sort(),
    );
    for (const d of dashboards) assert.deepEqual(JSON.parse(files.get(dashboardPath(d.uid))!), d);
    const provider = ProviderFile.parse(parseYaml(files.get(DASHBOARDS_PROVIDER_PATH)!));
    // The provider reads the directory the JSON paths land in (relative to /etc).
    assert.equal(provider.providers[0]!.options.path, DEFAULT_DASHBOARDS_DIR);
    assert.equal(`/etc/${dashboardPath('x').replace(/\/x\.json$/, '')}`, DEFAULT_DASHBOARDS_DIR);
    const ds = DatasourceFile.parse(parseYaml(files.get(DATASOURCE_PATH)!));
    assert.equal(ds.datasources[0]!.url, 'http://10.77.0.9:9090');
    assert.equal(ds.datasources[0]!.uid, DATASOURCE_UID);

    const moved = grafanaFiles({ dashboardsDir: '/var/lib/grafana/vigil' });
    assert.equal(
      ProviderFile.parse(parseYaml(moved.get(DASHBOARDS_PROVIDER_PATH)!)).providers[0]!.options
        .path,
      '/var/lib/grafana/vigil',
    );
    assert.throws(() => grafanaFiles({ dashboardsDir: 'relative/dir' }), /not absolute/);
    assert.throws(() => grafanaFiles({ prometheusUrl: 'file:///etc/passwd' }), /not http/);
  });

  it('`vigil dashboards --out DIR` writes exactly grafanaFiles()', () => {
    const out = mkdtempSync(join(tmpdir(), 'vigil-grafana-'));
    try {
      const r = spawnSync(
        process.execPath,
        [CLI_ENTRY, 'dashboards', '--out', out, '--prometheus-url', 'http://10.77.0.9:9090'],
        { encoding: 'utf8', timeout: 30_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      const expected = grafanaFiles({ prometheusUrl: 'http://10.77.0.9:9090' });
      for (const [path, content] of expected)
        assert.equal(readFileSync(join(out, path), 'utf8'), content, path);
      assert.equal(r.stdout.trim().split('\n').length, expected.size);

      const bad = spawnSync(
        process.execPath,
        [CLI_ENTRY, 'dashboards', '--out', out, '--dashboards-dir', 'grafana'],
        { encoding: 'utf8', timeout: 30_000 },
      );
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /INVALID_INPUT.*--dashboards-dir/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
