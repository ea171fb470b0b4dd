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
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  ALERTMANAGER_ASSEMBLED_PATH,
  ALERTMANAGER_ASSEMBLE_SCRIPT,
  alertmanagerConfig,
  alertmanagerDefaults,
  alertmanagerDropIn,
  needsInlineSecrets,
} from '../../src/render/alertmanager.js';
import { loadWatchConfig } from '../../src/watch/config.js';
import { lintTopology, type LintFinding } from '../../src/topology/lint.js';
import { MonitoringSchema, type TopologyInput } from '../../src/topology/schema.js';
import { CLI_ENTRY } from '../helpers/paths.js';
import { verifyUnits } from '../helpers/systemd-verify.js';
import { artifact, baseInput, cosmosApp, genesis, topology } from '../topology/fixtures.js';
import {
  exampleNames,
  hostSetupYaml,
  planExample,
  removeDir,
  requireTool,
  tempDir,
} from './helpers.js';

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
    let assembled = 0;
    for (const { name, out } of plans) {
      let file = monitorFile(out, 'etc__prometheus__alertmanager.yml');
      const template = monitorFile(out, 'etc__prometheus__alertmanager.yml.in');
      if (existsSync(template)) {
        // Telegram/Discord: assemble it as the host would, from stand-in secret files.
        const dir = mkdtempSync(join(tmpdir(), 'vigil-am-example-'));
        const fake = {
          telegram: '123456789:AAH-stand_in',
          discord: 'https://discord.com/api/webhooks/1/stand-in',
        };
        const text = readFileSync(template, 'utf8').replace(
          /@vigil-secret:(telegram|discord):([^@]+)@/g,
          (_m, kind: 'telegram' | 'discord', path: string) => {
            const stand = join(dir, path.replace(/\//g, '_'));
            writeFileSync(stand, `${fake[kind]}\n`);
            return `@vigil-secret:${kind}:${stand}@`;
          },
        );
        writeFileSync(join(dir, 'template'), text);
        writeFileSync(join(dir, 'assemble'), ALERTMANAGER_ASSEMBLE_SCRIPT, { mode: 0o755 });
        file = join(dir, 'alertmanager.yml');
        const a = spawnSync('sh', [join(dir, 'assemble'), join(dir, 'template'), file], {
          encoding: 'utf8',
          env: { ...process.env, VIGIL_ALERTMANAGER_GROUP: String(process.getgid!()) },
        });
        assert.equal(a.status, 0, `${name}: ${a.stderr}`);
        assembled++;
      }
      assert.ok(existsSync(file), `${name}: ${file}`);
      const r = amtool(['check-config', file]);
      assert.equal(r.status, 0, `${name}: ${r.out}`);
      assert.match(r.out, /SUCCESS/);
    }
    assert.ok(assembled >= 1, 'an example with a Telegram receiver is assembled and checked');
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
    const cloudInit = hostSetupYaml(cosmos.out, 'monitor');
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

describe('Telegram and Discord on the packaged Alertmanager 0.25 (secrets spliced in on the host)', () => {
  const withMonitoring = (monitoring: TopologyInput['monitoring']) =>
    topology({ ...baseInput(), monitoring });
  const codes = (f: LintFinding[]) => f.map((x) => `${x.severity}:${x.code}:${x.path}`);
  const chat = {
    alertmanager: {
      receivers: [
        { name: 'tg', telegram: { botTokenFile: '/etc/prometheus/secrets/tg', chatId: -100123 } },
        { name: 'dc', discord: { webhookUrlFile: '/etc/prometheus/secrets/dc' } },
      ],
      route: { receiver: 'tg', severities: { page: 'dc' } },
    },
  };
  const TOKEN = '123456789:AAH-example_Token';
  const HOOK = 'https://discord.com/api/webhooks/1234567890/abc-DEF_ghi';

  /** Runs the rendered assembler on the rendered template, secrets from `dir`. */
  function assemble(dir: string, token: string, hook: string) {
    const m = MonitoringSchema.parse({
      alertmanager: {
        ...chat.alertmanager,
        receivers: [
          { name: 'tg', telegram: { botTokenFile: join(dir, 'tg'), chatId: -100123 } },
          { name: 'dc', discord: { webhookUrlFile: join(dir, 'dc') } },
        ],
      },
    });
    writeFileSync(join(dir, 'tg'), `${token}\n`, { mode: 0o640 });
    writeFileSync(join(dir, 'dc'), `${hook}\n`, { mode: 0o640 });
    writeFileSync(join(dir, 'template.yml'), alertmanagerConfig(m));
    writeFileSync(join(dir, 'assemble'), ALERTMANAGER_ASSEMBLE_SCRIPT, { mode: 0o755 });
    const out = join(dir, 'run', 'alertmanager.yml');
    const r = spawnSync('sh', [join(dir, 'assemble'), join(dir, 'template.yml'), out], {
      encoding: 'utf8',
      env: { ...process.env, VIGIL_ALERTMANAGER_GROUP: String(process.getgid!()) },
    });
    return { ...r, out, template: alertmanagerConfig(m) };
  }

  it('lint accepts them; the plan renders a template with no secret, the assembler and its drop-in', () => {
    const t = withMonitoring(chat);
    assert.deepEqual(
      codes(lintTopology(t)).filter((c) => /receiver/.test(c)),
      [],
    );
    const template = alertmanagerConfig(t.monitoring);
    assert.match(template, /bot_token: "@vigil-secret:telegram:\/etc\/prometheus\/secrets\/tg@"/);
    assert.match(template, /webhook_url: "@vigil-secret:discord:\/etc\/prometheus\/secrets\/dc@"/);
    assert.ok(needsInlineSecrets(t.monitoring));
    assert.match(
      alertmanagerDefaults(t.monitoring),
      new RegExp(`--config.file=${ALERTMANAGER_ASSEMBLED_PATH} `),
    );
    assert.match(
      alertmanagerDropIn(),
      /^ExecStartPre=\+\/usr\/local\/sbin\/vigil-alertmanager-config /m,
    );
    // Without them, nothing changes: the config is the file Alertmanager reads.
    const plain = withMonitoring({
      alertmanager: {
        receivers: [{ name: 'ops', webhook: { url: 'https://hooks.example.org/x' } }],
      },
    });
    assert.equal(needsInlineSecrets(plain.monitoring), false);
    assert.match(
      alertmanagerDefaults(plain.monitoring),
      /--config.file=\/etc\/prometheus\/alertmanager.yml /,
    );
  });

  it('the assembled config passes amtool check-config 0.25; a malformed secret refuses it and leaves nothing', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-am-secrets-'));
    try {
      const ok = assemble(dir, TOKEN, HOOK);
      assert.equal(ok.status, 0, ok.stderr);
      const text = readFileSync(ok.out, 'utf8');
      assert.match(text, new RegExp(`bot_token: "${TOKEN}"`));
      assert.match(text, new RegExp(`webhook_url: "${HOOK.replace(/[.]/g, '\\.')}"`));
      assert.doesNotMatch(text, /@vigil-secret/);
      assert.equal(statSync(ok.out).mode & 0o777, 0o640);
      if (requireTool('amtool', ['--version'])) {
        const r = amtool(['check-config', ok.out]);
        assert.equal(r.status, 0, r.out);
      } else t.diagnostic('amtool not installed: check-config not run');
      // A token with a quote (or any character outside a bot token's) is refused.
      rmSync(ok.out);
      for (const [token, hook] of [
        ['123:abc" injected: "x', HOOK],
        [TOKEN, 'https://evil.example.org/api/webhooks/1/x'],
      ] as const) {
        const bad = assemble(dir, token, hook);
        assert.notEqual(bad.status, 0);
        assert.match(bad.stderr, /does not hold a (telegram|discord) secret/);
        assert.equal(existsSync(ok.out), false);
        assert.deepEqual(readdirSync(join(dir, 'run')), []);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Why the secrets are spliced in rather than read from files by Alertmanager itself.
  it('amtool 0.25 really rejects the *_file fields of those integrations', (t) => {
    if (!requireTool('amtool', ['--version'])) return t.skip('amtool not installed');
    const version = amtool(['--version']).out;
    if (!/version 0\.25\./.test(version)) return t.skip(`amtool is not 0.25: ${version}`);
    for (const [name, integration, field] of [
      ['tg', 'telegram_configs: [{ bot_token_file: /s/tg, chat_id: 1 }]', 'bot_token_file'],
      ['dc', 'discord_configs: [{ webhook_url_file: /s/dc }]', 'webhook_url_file'],
    ] as const) {
      const file = join(work, `${name}.yml`);
      writeFileSync(
        file,
        `route: { receiver: ${name} }\nreceivers:\n  - name: ${name}\n    ${integration}\n`,
      );
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
  it('runs where CometBFT RPC is loopback-bound, on Cardano producers, Substrate validators and Decred voting wallets, scraped by the monitor', () => {
    const expect: Record<string, string[]> = {
      'cosmos-sentries': ['validator'],
      'cardano-pool': ['producer', 'standby'],
      'decred-solo': ['wallet-eu', 'wallet-us', 'wallet-asia'],
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
          app: cosmosApp(),
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
