/**
 * The monitor stack of a local fleet (src/provision/local/monitor.ts). First the pure rewrites
 * of the rendered files, each checked by the real tool (`amtool check-config`,
 * `promtool check config`). Then examples/topologies/cosmos-sentries applied with --local
 * (needs root, ip, nft, wg, wireguard-go, prometheus, prometheus-alertmanager,
 * prometheus-node-exporter, curl, amtool; skipped loudly when any is missing, unless
 * VIGIL_REQUIRE_ETCD=1 as in CI, where a missing tool fails): every target of the rendered
 * prometheus.yml is `up == 1` in the monitor's Prometheus, every rendered rule group is
 * loaded, a test alert sent with amtool is delivered through the rendered route to the local
 * sink, and killing the validator's agent makes the rendered VigilAgentDown rule (its real
 * `for: 1m`; Prometheus runs with 1 s intervals, which that rule's expression, `up == 0`,
 * does not depend on) pending, then firing, and Alertmanager lists it routed to the rendered
 * page receiver. Destroy leaves none of the monitor's processes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'yaml';
import { applyLocal, destroyLocal, renderedPath } from '../../src/provision/local/fleet.js';
import { REQUIRED_TOOLS, inNetns, missingTools, pidAlive } from '../../src/provision/local/exec.js';
import {
  MONITOR_TOOLS,
  defaultArgs,
  localAlertmanagerConfig,
  localPrometheusConfig,
  readAlertmanagerAlerts,
  readLoadedRuleGroups,
  readPrometheusAlerts,
  readSink,
  ruleGroupsOf,
  scrapeTargetsOf,
  waitTargetsUp,
  whileActiveTargets,
  withFlag,
} from '../../src/provision/local/monitor.js';
import { simUnitsOf } from '../../src/provision/local/sim-services.js';
import { stopProcess } from '../../src/provision/local/processes.js';
import { RunRecordFile } from '../../src/provision/local/run-record.js';
import { planExample } from '../render/helpers.js';
import { planFleet } from '../../src/render/fleet.js';
import { UNROUTED_RECEIVER } from '../../src/render/alertmanager.js';

const monitorFile = (files: ReadonlyMap<string, string>, path: string) =>
  files.get(renderedPath('monitor', path));

function toolSkip(tools: readonly string[], root: boolean): string | false {
  const why: string[] = [];
  if (root && process.getuid?.() !== 0) why.push('not root');
  why.push(...missingTools(tools).map((t) => `${t} missing`));
  if (why.length === 0) return false;
  if (process.env.VIGIL_REQUIRE_ETCD === '1')
    throw new Error(`VIGIL_REQUIRE_ETCD=1 but the local monitor cannot run: ${why.join(', ')}`);
  const msg = `local monitor: SKIPPING (${why.join(', ')})`;
  console.error(`\n!!! ${msg} !!!\n`);
  return msg;
}

test('the local prometheus.yml changes rule_files (and intervals only when asked), nothing else', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgl-mon-'));
  try {
    const r = planExample('cosmos-sentries', join(dir, 's'));
    const rendered = monitorFile(r.files!, '/etc/prometheus/prometheus.yml')!;
    const original = parse(rendered) as Record<string, unknown>;
    const local = parse(localPrometheusConfig(rendered, '/run/x/monitor/root')) as Record<
      string,
      unknown
    >;
    assert.deepEqual(local.rule_files, [
      '/run/x/monitor/root/etc/prometheus/vigil-signer.rules.yml',
    ]);
    assert.deepEqual({ ...local, rule_files: null }, { ...original, rule_files: null });
    const fast = parse(localPrometheusConfig(rendered, '/r', 1)) as typeof local;
    assert.deepEqual(fast.global, { scrape_interval: '1s', evaluation_interval: '1s' });
    assert.deepEqual(fast.scrape_configs, original.scrape_configs);
    // 5 node exporters, the agent, 4 CometBFT nodes and their 4 Cosmos SDK apps (telemetry on
    // the REST API, served by the simulated node from the rendered app.toml), the watcher.
    const targets = scrapeTargetsOf(rendered);
    assert.equal(targets.length, 15);
    assert.deepEqual([...new Set(targets.map((t) => t.job))].sort(), [
      'cometbft',
      'cosmos-sdk',
      'node',
      'vigil',
      'vigil-watch',
    ]);
    // The rewritten config is one Prometheus 2.42 accepts (rule files included).
    if (missingTools(['promtool']).length === 0) {
      const root = join(dir, 'root');
      const rules = monitorFile(r.files!, '/etc/prometheus/vigil-signer.rules.yml')!;
      mkdirSync(join(root, 'etc/prometheus'), { recursive: true });
      writeFileSync(join(root, 'etc/prometheus/vigil-signer.rules.yml'), rules);
      writeFileSync(join(dir, 'prometheus.yml'), localPrometheusConfig(rendered, root, 1));
      const c = spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], {
        encoding: 'utf8',
      });
      assert.equal(c.status, 0, c.stdout + c.stderr);
      assert.match(c.stdout, /SUCCESS: \d+ rules found/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the local alertmanager.yml sends every delivering receiver to the sink; routes as rendered', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgl-mon-'));
  try {
    // cosmos-sentries: PagerDuty, email, a webhook; cardano-pool: a template with Telegram.
    for (const [name, path] of [
      ['cosmos-sentries', '/etc/prometheus/alertmanager.yml'],
      ['cardano-pool', '/etc/prometheus/alertmanager.yml.in'],
    ] as const) {
      const r = planExample(name, join(dir, name));
      const rendered = monitorFile(r.files!, path);
      assert.ok(rendered, `${name}: ${path}`);
      const sink = 'http://127.0.0.1:9097/';
      const text = localAlertmanagerConfig(rendered, sink);
      const local = parse(text) as { route: unknown; receivers: Record<string, unknown>[] };
      const original = parse(rendered) as typeof local;
      assert.deepEqual(local.route, original.route, name);
      assert.deepEqual(
        local.receivers.map((x) => x.name),
        original.receivers.map((x) => x.name),
      );
      for (const rec of local.receivers)
        assert.deepEqual(
          Object.keys(rec).filter((k) => k.endsWith('_configs')),
          ['webhook_configs'],
          `${name}: ${String(rec.name)}`,
        );
      assert.doesNotMatch(text, /@vigil-secret|example\.org|secrets\//, name);
      if (missingTools(['amtool']).length === 0) {
        const f = join(dir, `${name}.yml`);
        writeFileSync(f, text);
        const c = spawnSync('amtool', ['check-config', f], { encoding: 'utf8' });
        assert.equal(c.status, 0, c.stdout + c.stderr);
      }
    }
    // Without monitoring.alertmanager the root receiver delivers nowhere, locally too.
    const g = planFleet('examples/local/cosmos-guarded.yaml', {
      state: join(dir, 'g'),
      write: false,
    });
    const dr = monitorFile(g.files!, '/etc/prometheus/alertmanager.yml')!;
    const l = parse(localAlertmanagerConfig(dr, 'http://x/')) as {
      receivers: Record<string, unknown>[];
    };
    assert.deepEqual(l.receivers, [{ name: UNROUTED_RECEIVER }]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a target only a standby or a supervised node serves may be down; one a boot unit serves may not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgl-mon-'));
  try {
    const expected: Record<string, string[]> = {
      // The standby's node is not enabled (manual failover): its metrics are down until then.
      'cardano-pool': ['cardano 10.77.0.2:12798 standby'],
      // Each validator's sync node (enabled) serves the same metrics port as the supervised
      // validator node that replaces it: always served, so never allowed down.
      'polkadot-guarded': [],
      'cosmos-sentries': [],
      'decred-solo': [],
    };
    for (const [name, want] of Object.entries(expected)) {
      const r = planExample(name, join(dir, name));
      const units = r.plan!.hosts.flatMap((h) =>
        simUnitsOf(r.plan!, h, r.files!).map((u) => ({ ...u, host: h.name })),
      );
      const targets = scrapeTargetsOf(monitorFile(r.files!, '/etc/prometheus/prometheus.yml')!);
      assert.deepEqual(
        whileActiveTargets(targets, units).map((t) => `${t.job} ${t.instance} ${t.host}`),
        want,
        name,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rendered ARGS are read as written; a flag is replaced, not repeated', () => {
  assert.deepEqual(
    defaultArgs(
      'ARGS="--config.file=/etc/prometheus/alertmanager.yml --web.listen-address=127.0.0.1:9093 --cluster.listen-address="\n',
    ),
    [
      '--config.file=/etc/prometheus/alertmanager.yml',
      '--web.listen-address=127.0.0.1:9093',
      '--cluster.listen-address=',
    ],
  );
  assert.throws(() => defaultArgs('ARGS="$(rm -rf /)"'), /no plain ARGS/);
  assert.deepEqual(withFlag(['--a=1', '--b=2'], '--a', '3'), ['--b=2', '--a=3']);
});

test(
  'cosmos-sentries with --local: every scrape target up, rules loaded, an agent killed pages through Alertmanager',
  {
    skip: toolSkip([...REQUIRED_TOOLS, ...MONITOR_TOOLS, 'amtool'], true),
    timeout: 180_000,
  },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgl-mon-'));
    const state = join(dir, 's');
    let applied = false;
    const t0 = performance.now();
    try {
      const r = planExample('cosmos-sentries', state);
      const steps: string[] = [];
      const fleet = await applyLocal({
        plan: r.plan!,
        files: r.files!,
        stateDir: state,
        monitorIntervalSeconds: 1,
        progress: { step: (label, _ms, err) => steps.push(err ? `FAIL ${label}` : label) },
      });
      applied = true;
      const applyS = (performance.now() - t0) / 1000;
      const stack = fleet.monitor;
      assert.ok(stack, 'no monitor stack');
      // One progress line per monitor step.
      assert.equal(
        steps.filter((s) => /prometheus-node-exporter \(rendered ARGS\)/.test(s)).length,
        5,
      );
      for (const re of [
        /^validator: vigil watch \(rendered watch\.yaml\)$/,
        /^monitor: local alert sink on 127\.0\.0\.1:9097$/,
        /^monitor: prometheus-alertmanager on 127\.0\.0\.1:9093 \(receivers → local sink\)$/,
        /^monitor: prometheus \(rendered config, 5 rule groups, 1s intervals\)$/,
      ])
        assert.ok(
          steps.some((s) => re.test(s)),
          `${re}\n${steps.join('\n')}`,
        );
      // Every monitor process is in the run record (so destroy stops it).
      const record = RunRecordFile.load(fleet.recordFile).record;
      const procs = record.created.flatMap((c) => (c.kind === 'process' ? [c] : []));
      const whats = procs.map((p) => p.what);
      for (const w of ['prometheus', 'prometheus-alertmanager', 'local alert sink', 'vigil watch'])
        assert.equal(whats.filter((x) => x === w).length, 1, w);
      assert.equal(whats.filter((x) => x === 'prometheus-node-exporter').length, 5);
      const monitorPids = procs
        .filter((p) => /prometheus|alert sink|vigil watch/.test(p.what))
        .map((p) => p.pid);

      // A test alert through the rendered route tree: severity warning → team-mail, whose
      // e-mail config the local run replaced by the sink. Sent now, so its group_wait (30 s,
      // as rendered) runs out while the agent alert below waits for its `for:`.
      const amtool = spawnSync(
        'ip',
        inNetns(stack.netns, [
          'amtool',
          `--alertmanager.url=${stack.alertmanagerUrl}`,
          'alert',
          'add',
          'VigilLocalTest',
          'severity=warning',
          'host=monitor',
        ]).slice(1),
        { encoding: 'utf8', timeout: 20_000 },
      );
      assert.equal(amtool.status, 0, amtool.stderr);

      // Every target of the rendered prometheus.yml is up == 1 (1 s scrapes: 30 s is ample).
      const up = await waitTargetsUp(stack, 30_000);
      assert.equal(up.length, 15);
      assert.deepEqual(
        up.filter((t) => t.up !== '1').map((t) => `${t.target.job} ${t.target.instance} ${t.up}`),
        [],
      );
      assert.deepEqual(stack.notRun, []);
      // Every rendered rule group is loaded with all its rules.
      const loaded = readLoadedRuleGroups(stack);
      assert.deepEqual(
        stack.ruleGroups.map((g) => loaded.find((l) => l.name === g.name)),
        stack.ruleGroups,
      );
      assert.deepEqual(
        stack.ruleGroups,
        ruleGroupsOf(monitorFile(r.files!, '/etc/prometheus/vigil-signer.rules.yml')!),
      );
      assert.ok(stack.ruleGroups.some((g) => g.name === 'vigil-signer'));

      // The validator's agent killed: VigilAgentDown (up{job="vigil"} == 0, for: 1m, severity
      // page) goes pending, fires a minute later, and Alertmanager routes it to `oncall`.
      const agent = procs.find(
        (p) => p.what === 'vigil agent' && p.netns === fleet.record.hosts[0]!.netns,
      )!;
      assert.equal(fleet.record.hosts[0]!.name, 'validator');
      await stopProcess(agent.pid, agent.startTime);
      const killedAt = Date.now();
      let pendingAt: number | undefined;
      let inAlertmanager: ReturnType<typeof readAlertmanagerAlerts> = [];
      while (Date.now() - killedAt < 100_000) {
        const states = readPrometheusAlerts(stack, 'VigilAgentDown').map((a) => a.state);
        if (pendingAt === undefined && states.includes('pending')) pendingAt = Date.now();
        inAlertmanager = readAlertmanagerAlerts(stack, 'VigilAgentDown');
        if (inAlertmanager.length > 0) break;
        await sleep(1000);
      }
      const firedAfter = (Date.now() - killedAt) / 1000;
      assert.ok(pendingAt !== undefined, 'VigilAgentDown was never pending');
      assert.equal(inAlertmanager.length, 1, `not in Alertmanager ${firedAfter} s after the kill`);
      const [alert] = inAlertmanager;
      assert.equal(alert!.labels.host, 'validator');
      assert.equal(alert!.labels.severity, 'page');
      assert.equal(alert!.labels.job, 'vigil');
      assert.deepEqual(alert!.receivers, ['oncall']);
      assert.equal(alert!.state, 'active');
      assert.ok(
        readPrometheusAlerts(stack, 'VigilAgentDown').some((a) => a.state === 'firing'),
        'not firing in Prometheus',
      );
      // The rule's `for: 1m` held: not in Alertmanager before a minute of pending.
      assert.ok(Date.now() - pendingAt! >= 59_000, `fired ${firedAfter} s after the kill`);

      // The test alert reached the sink as a notification of team-mail.
      const sunk = readSink(stack);
      assert.ok(
        sunk.some(
          (n) =>
            n.receiver === 'team-mail' &&
            n.alerts.some((a) => a.labels.alertname === 'VigilLocalTest'),
        ),
        JSON.stringify(sunk),
      );

      await destroyLocal(state);
      applied = false;
      for (const pid of monitorPids) assert.ok(!pidAlive(pid) || isZombie(pid), `pid ${pid} left`);
      console.error(
        `local monitor: apply ${applyS.toFixed(1)} s, VigilAgentDown in Alertmanager ${firedAfter.toFixed(1)} s after the kill, total ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    } finally {
      if (applied) await destroyLocal(state).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

function isZombie(pid: number): boolean {
  const r = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' });
  return r.stdout.trim().startsWith('Z');
}
