/**
 * The monitor's Alertmanager and the chain watchers, checked with the real tools: amtool
 * 0.25 (Debian bookworm, the version the monitor installs) validates every rendered
 * alertmanager.yml and routes test alerts through it; the packaged Alertmanager binary starts
 * with the rendered arguments; the watcher's unit passes `systemd-analyze verify` and the
 * rendered watch config is accepted by the real `vigil watch`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { alertmanagerConfig } from '../../src/render/alertmanager.js';
import { loadWatchConfig } from '../../src/watch/config.js';
import { lintTopology, type LintFinding } from '../../src/topology/lint.js';
import { MonitoringSchema, type TopologyInput } from '../../src/topology/schema.js';
import { CLI_ENTRY } from '../helpers/paths.js';
import { verifyUnits } from '../helpers/systemd-verify.js';
import { artifact, baseInput, topology, genesis } from '../topology/fixtures.js';
import { exampleNames, planExample, removeDir, requireTool, tempDir } from './helpers.js';

const monitorFile = (out: string, name: string) => join(out, 'hosts', 'monitor', 'files', name);

function amtool(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('amtool', args, { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** The receiver amtool's own router picks for an alert with these labels. */
function routeOf(config: string, labels: string[]): string {
  const r = amtool(['config', 'routes', 'test', `--config.file=${config}`, ...labels]);
  assert.equal(r.status, 0, r.out);
  const lines = r.out.split('\n').filter((l) => l !== '' && !l.startsWith('Warning:'));
  return lines.join(',');
}

const plans: Array<{ name: string; out: string }> = [];
let work = '';
before(() => {
  work = tempDir('monitoring');
  for (const name of exampleNames()) {
    const out = join(work, name, 'out');
    planExample(name, join(work, name, 'state'), out);
    plans.push({ name, out });
  }
});
after(() => removeDir(work));

describe('alertmanager.yml on the monitor', () => {
  it('passes `amtool check-config` (0.25) for every example', (t) => {
    if (!requireTool('amtool', ['--version'])) return t.skip('amtool not installed');
    for (const { name, out } of plans) {
      const file = monitorFile(out, 'etc__prometheus__alertmanager.yml');
      assert.ok(existsSync(file), `${name}: ${file}`);
      const r = amtool(['check-config', file]);
      assert.equal(r.status, 0, `${name}: ${r.out}`);
      assert.match(r.out, /SUCCESS/);
    }
  });

  it('routes pages and warnings to the receivers the topology maps them to', (t) => {
    if (!requireTool('amtool', ['--version'])) return t.skip('amtool not installed');
    const cosmos = plans.find((p) => p.name === 'cosmos-sentries')!;
    const file = monitorFile(cosmos.out, 'etc__prometheus__alertmanager.yml');
    assert.equal(routeOf(file, ['severity=page', 'alertname=VigilNoSignature']), 'oncall');
    assert.equal(routeOf(file, ['severity=warning']), 'team-mail');
    assert.equal(routeOf(file, ['severity=info']), 'chatops');
  });

  it('names secrets by file only: no secret value in the rendered config', () => {
    const cosmos = plans.find((p) => p.name === 'cosmos-sentries')!;
    const am = parseYaml(
      readFileSync(monitorFile(cosmos.out, 'etc__prometheus__alertmanager.yml'), 'utf8'),
    ) as { receivers: Array<Record<string, Array<Record<string, unknown>>>> };
    const byName = new Map(am.receivers.map((r) => [r['name'] as unknown as string, r]));
    assert.equal(
      byName.get('oncall')!['pagerduty_configs']![0]!['routing_key_file'],
      '/etc/prometheus/secrets/pagerduty-routing-key',
    );
    assert.equal(
      byName.get('team-mail')!['email_configs']![0]!['auth_password_file'],
      '/etc/prometheus/secrets/smtp-password',
    );
    assert.deepEqual(byName.get('chatops')!['webhook_configs']![0]!['http_config'], {
      authorization: { type: 'Bearer', credentials_file: '/etc/prometheus/secrets/webhook-token' },
    });
    const cloudInit = readFileSync(join(cosmos.out, 'hosts', 'monitor', 'cloud-init.yaml'), 'utf8');
    assert.ok(cloudInit.includes('prometheus-alertmanager'));
    assert.match(
      cloudInit,
      /path: \/etc\/prometheus\/alertmanager.yml[\s\S]*?permissions: "0640"\n\s+owner: root:prometheus/,
    );
  });

  it('Prometheus sends alerts to the Alertmanager beside it', () => {
    for (const { name, out } of plans) {
      const prom = parseYaml(
        readFileSync(monitorFile(out, 'etc__prometheus__prometheus.yml'), 'utf8'),
      ) as { alerting: { alertmanagers: Array<{ static_configs: Array<{ targets: string[] }> }> } };
      const defaults = readFileSync(
        monitorFile(out, 'etc__default__prometheus-alertmanager'),
        'utf8',
      );
      const listen = /--web\.listen-address=(\S+)/.exec(defaults)?.[1];
      assert.deepEqual(prom.alerting.alertmanagers[0]!.static_configs[0]!.targets, [listen], name);
    }
  });

  it('the packaged Alertmanager starts with the rendered arguments and config', async (t) => {
    if (!existsSync('/usr/bin/prometheus-alertmanager'))
      return t.skip('prometheus-alertmanager not installed');
    const cosmos = plans.find((p) => p.name === 'cosmos-sentries')!;
    const defaults = readFileSync(
      monitorFile(cosmos.out, 'etc__default__prometheus-alertmanager'),
      'utf8',
    );
    const args = /^ARGS="(.*)"$/m.exec(defaults)![1]!.split(' ');
    // The rendered paths and port, moved into this test's directory and a free port.
    const config = monitorFile(cosmos.out, 'etc__prometheus__alertmanager.yml');
    const port = 19000 + (process.pid % 1000);
    const local = args.map((a) =>
      a.startsWith('--config.file=')
        ? `--config.file=${config}`
        : a.startsWith('--web.listen-address=')
          ? `--web.listen-address=127.0.0.1:${port}`
          : a,
    );
    assert.ok(local.includes('--cluster.listen-address='), 'gossip cluster disabled');
    const child = spawn(
      '/usr/bin/prometheus-alertmanager',
      [...local, `--storage.path=${join(work, 'am-data')}`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      let ready = false;
      for (let i = 0; i < 100 && !ready && child.exitCode === null; i++) {
        try {
          ready = (await fetch(`http://127.0.0.1:${port}/-/ready`)).ok;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      assert.ok(ready, `alertmanager not ready:\n${stderr}`);
      const status = (await (await fetch(`http://127.0.0.1:${port}/api/v2/status`)).json()) as {
        cluster: { status: string };
        config: { original: string };
      };
      assert.equal(status.cluster.status, 'disabled');
      assert.match(status.config.original, /routing_key_file: \/etc\/prometheus\/secrets/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});

describe('receivers the packaged Alertmanager 0.25 lacks', () => {
  const withMonitoring = (monitoring: TopologyInput['monitoring']) =>
    topology({ ...baseInput(), monitoring });
  const codes = (f: LintFinding[]) => f.map((x) => `${x.severity}:${x.code}:${x.path}`);

  it('telegram and discord are refused by lint with the version that has their *_file', () => {
    const t = withMonitoring({
      alertmanager: {
        receivers: [
          { name: 'tg', telegram: { botTokenFile: '/etc/prometheus/secrets/tg', chatId: -100123 } },
          { name: 'dc', discord: { webhookUrlFile: '/etc/prometheus/secrets/dc' } },
        ],
        route: { receiver: 'tg', severities: { page: 'dc' } },
      },
    });
    const found = lintTopology(t).filter((f) => f.code === 'receiver-unsupported');
    assert.deepEqual(
      found.map((f) => [f.severity, f.path]),
      [
        ['error', 'monitoring.alertmanager.receivers[0].telegram'],
        ['error', 'monitoring.alertmanager.receivers[1].discord'],
      ],
    );
    assert.match(found[0]!.message, /bot_token_file.*0\.26\.0.*0\.25/);
    assert.match(found[1]!.message, /webhook_url_file.*0\.28\.0.*0\.25/);
  });

  it('amtool 0.25 really rejects those fields (the lint is not stale)', (t) => {
    if (!requireTool('amtool', ['--version'])) return t.skip('amtool not installed');
    const version = amtool(['--version']).out;
    if (!/version 0\.25\./.test(version)) return t.skip(`amtool is not 0.25: ${version}`);
    for (const [receiver, field] of [
      [{ name: 'tg', telegram: { botTokenFile: '/s/tg', chatId: 1 } }, 'bot_token_file'],
      [{ name: 'dc', discord: { webhookUrlFile: '/s/dc' } }, 'webhook_url_file'],
    ] as const) {
      const m = MonitoringSchema.parse({
        alertmanager: { receivers: [receiver], route: { receiver: receiver.name } },
      });
      const file = join(work, `${receiver.name}.yml`);
      writeFileSync(file, alertmanagerConfig(m));
      const r = amtool(['check-config', file]);
      assert.notEqual(r.status, 0, r.out);
      assert.match(r.out, new RegExp(`field ${field} not found`));
    }
  });

  it('secrets cannot be given inline', () => {
    assert.throws(() =>
      MonitoringSchema.parse({
        alertmanager: { receivers: [{ name: 'pd', pagerduty: { routingKey: 'abc' } }] },
      }),
    );
    assert.throws(() =>
      MonitoringSchema.parse({
        alertmanager: { receivers: [{ name: 'pd', pagerduty: { routingKeyFile: 'relative' } }] },
      }),
    );
  });

  it('routes naming undefined receivers are errors; pages that reach nobody warn', () => {
    const t = withMonitoring({
      alertmanager: {
        receivers: [{ name: 'ops', webhook: { url: 'https://hooks.example.org/x' } }],
        route: { severities: { warning: 'ops', page: 'pager' } },
      },
    });
    assert.deepEqual(
      codes(lintTopology(t)).filter((c) => c.includes('receiver') || c.includes('unrouted')),
      ['error:receiver-undefined:monitoring.alertmanager.route.severities.page'],
    );
    const noPage = withMonitoring({
      alertmanager: {
        receivers: [{ name: 'ops', webhook: { url: 'https://hooks.example.org/x' } }],
        route: { severities: { warning: 'ops' } },
      },
    });
    assert.deepEqual(codes(lintTopology(noPage)), [
      'warning:alerts-unrouted:monitoring.alertmanager.route',
    ]);
    const none = topology({ ...baseInput(), monitoring: {} });
    assert.deepEqual(codes(lintTopology(none)), ['warning:alerts-unrouted:monitoring']);
  });
});

describe('vigil watch on the signing hosts', () => {
  it('runs where CometBFT RPC is loopback-bound, on Cardano producers and Substrate validators, scraped by the monitor', () => {
    const expect: Record<string, string[]> = {
      'cosmos-sentries': ['validator'],
      'cardano-pool': ['producer', 'standby'],
      'decred-solo': [],
      'polkadot-guarded': ['validator-a', 'validator-b'],
    };
    for (const { name, out } of plans) {
      const prom = parseYaml(
        readFileSync(monitorFile(out, 'etc__prometheus__prometheus.yml'), 'utf8'),
      ) as {
        scrape_configs: Array<{
          job_name: string;
          static_configs: Array<{ targets: string[]; labels: { host: string } }>;
        }>;
      };
      const job = prom.scrape_configs.find((j) => j.job_name === 'vigil-watch');
      const hosts = job?.static_configs.map((s) => s.labels.host) ?? [];
      assert.deepEqual(hosts, expect[name], name);
      for (const s of job?.static_configs ?? []) {
        const watchFile = join(out, 'hosts', s.labels.host, 'files', 'etc__vigil__watch.yaml');
        const config = loadWatchConfig(watchFile);
        // Listens on the host's VPN address, the one the monitor scrapes.
        assert.deepEqual(s.targets, [`${config.listen.host}:${config.listen.port}`]);
        const nft = readFileSync(
          join(out, 'hosts', s.labels.host, 'files', 'etc__nftables.conf'),
          'utf8',
        );
        const rule = nft.split('\n').find((l) => l.includes(`dport ${config.listen.port} `));
        assert.ok(rule?.includes('iifname "wg0"'), `${name}/${s.labels.host}: ${rule}`);
        if (config.chains[0]!.kind === 'cometbft')
          assert.equal(config.chains[0]!.rpc, 'http://127.0.0.1:26657');
        if (config.chains[0]!.kind === 'polkadot') {
          // The node's RPC on its loopback default, its metrics where --prometheus-external
          // put them (nftables lets this host's own traffic in on lo).
          assert.equal(config.chains[0]!.rpc, 'http://127.0.0.1:9944');
          assert.match(
            config.chains[0]!.metricsUrl ?? '',
            new RegExp(`^http://${config.listen.host}:`),
          );
          assert.ok(nft.includes('iifname "lo" accept'));
        }
      }
    }
  });

  it('a CometBFT validator without a consensus address is not watched, and lint says so', () => {
    const t = topology({
      ...baseInput(),
      chains: [
        {
          name: 'hub',
          kind: 'cometbft',
          chainId: 'hub-1',
          binary: artifact('gaiad'),
          genesis: genesis(),
        },
      ],
      monitoring: { ...baseInput().monitoring, watch: [{ chain: 'hub' }, { chain: 'nope' }] },
    });
    const found = lintTopology(t).filter((f) => f.code === 'watch-chain');
    assert.deepEqual(
      found.map((f) => [f.severity, f.path]),
      [
        ['warning', 'monitoring.watch[0].validatorAddress'],
        ['error', 'monitoring.watch[1].chain'],
      ],
    );
  });

  it('its unit passes systemd-analyze verify', (t) => {
    const cosmos = plans.find((p) => p.name === 'cosmos-sentries')!;
    const unit = readFileSync(
      join(cosmos.out, 'hosts', 'validator', 'files', 'etc__systemd__system__vigil-watch.service'),
      'utf8',
    );
    assert.match(unit, /^User=vigil-watch$/m);
    assert.match(unit, /^CapabilityBoundingSet=$/m);
    const r = verifyUnits(join(work, 'root'), { 'vigil-watch.service': unit });
    if ('skipped' in r) return t.skip(r.skipped);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', r.stderr);
  });

  it('the real `vigil watch` starts with the rendered config', async () => {
    const cardano = plans.find((p) => p.name === 'cardano-pool')!;
    const rendered = readFileSync(
      join(cardano.out, 'hosts', 'producer', 'files', 'etc__vigil__watch.yaml'),
      'utf8',
    );
    // The VPN address does not exist here: serve on loopback, any port; the node is absent.
    const port = 20000 + (process.pid % 1000);
    const file = join(work, 'watch.yaml');
    writeFileSync(
      file,
      rendered.replace(
        /host: 10\.\d+\.\d+\.\d+\n(\s+)port: 9478/,
        `host: 127.0.0.1\n$1port: ${port}`,
      ),
    );
    const child = spawn(process.execPath, [CLI_ENTRY, 'watch', '--config', file], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      let body = '';
      for (let i = 0; i < 100 && body === '' && child.exitCode === null; i++) {
        try {
          const r = await fetch(`http://127.0.0.1:${port}/metrics`);
          if (r.ok) body = await r.text();
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      assert.match(body, /vigil_watch_cardano/, stderr);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
