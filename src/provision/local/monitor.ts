/**
 * The monitor stack of a local fleet, run from the RENDERED files: Debian's
 * `prometheus-node-exporter` on every host (its rendered ARGS), and on the monitor host
 * Debian's `prometheus` with the rendered prometheus.yml and rule files, Debian's
 * `prometheus-alertmanager` with the rendered config and ARGS, and `vigil watch` on each host
 * it is rendered for. What changes, and only that:
 * - file paths: the rendered /etc/... files are written under the host's root in the run dir
 *   (`rule_files` and `--config.file` point there) and each store gets a data dir there (the
 *   packaged units use /var/lib/...; the namespaces share this machine's filesystem);
 * - Alertmanager's receivers: each one that delivers somewhere (PagerDuty, email, webhook,
 *   Telegram, Discord: all outside this machine) becomes one webhook to a local sink in the
 *   monitor's namespace (alert-sink-main.ts), which appends every notification to a file; the
 *   routes, receiver names, grouping and inhibit rules stay as rendered;
 * - optionally (`intervalSeconds`) Prometheus's global scrape and evaluation intervals, so a
 *   test sees a `for: 1m` rule fire a minute after its condition instead of up to 90 s.
 * Grafana is not run: it is not in Debian's archive (the plan installs Grafana's own release
 * tarball, which a local run does not download).
 * `vigil watch` runs where its chain's endpoints can exist: not for Decred, whose dcrwallet
 * TLS JSON-RPC (CA and password made on the host by the wallet setup unit) is not simulated.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import type { Plan, PlannedHost } from '../../topology/plan.js';
import { ALERTMANAGER_CONFIG_PATH, ALERTMANAGER_DEFAULTS_PATH } from '../../render/alertmanager.js';
import { WATCH_CONFIG_PATH } from '../../render/watch.js';
import { WatchConfigSchema } from '../../watch/config.js';
import { rerootPaths } from './agents.js';
import { LocalFleetError, inNetns } from './exec.js';
import { startInNetns, waitFor } from './processes.js';
import type { RunRecordFile } from './run-record.js';

const CLI_ENTRY = fileURLToPath(new URL('../../cli/run.js', import.meta.url));
const ALERT_SINK_MAIN = fileURLToPath(new URL('./alert-sink-main.js', import.meta.url));

/** Debian's binaries the monitor stack runs (packages prometheus, prometheus-alertmanager, prometheus-node-exporter), and curl for its HTTP APIs. */
export const MONITOR_TOOLS = [
  'prometheus',
  'prometheus-alertmanager',
  'prometheus-node-exporter',
  'curl',
] as const;

export const PROMETHEUS_CONFIG_PATH = '/etc/prometheus/prometheus.yml';
export const NODE_EXPORTER_DEFAULTS_PATH = '/etc/default/prometheus-node-exporter';
/** Debian's prometheus listens on :9090 by default (no /etc/default/prometheus is rendered). */
export const LOCAL_PROMETHEUS_URL = 'http://127.0.0.1:9090';
/** Where the local webhook sink listens in the monitor's namespace (no rendered service uses it). */
export const LOCAL_ALERT_SINK = '127.0.0.1:9097';

const PrometheusConfigSchema = z.looseObject({
  global: z.looseObject({}).optional(),
  alerting: z
    .looseObject({
      alertmanagers: z.array(
        z.looseObject({
          static_configs: z.array(z.looseObject({ targets: z.array(z.string()) })),
        }),
      ),
    })
    .optional(),
  rule_files: z.array(z.string()).default([]),
  scrape_configs: z.array(
    z.looseObject({
      job_name: z.string().min(1),
      static_configs: z.array(
        z.looseObject({
          targets: z.array(z.string()),
          labels: z.record(z.string(), z.string()).optional(),
        }),
      ),
    }),
  ),
});

const RuleFileSchema = z.looseObject({
  groups: z.array(z.looseObject({ name: z.string().min(1), rules: z.array(z.unknown()) })),
});

/** One target of the rendered prometheus.yml. */
export interface ScrapeTarget {
  readonly job: string;
  /** `address:port` as rendered: Prometheus's `instance` label. */
  readonly instance: string;
  readonly host: string | undefined;
}

function parseRendered<T>(schema: z.ZodType<T>, text: string, what: string): T {
  const r = schema.safeParse(parse(text));
  if (!r.success)
    throw new LocalFleetError(
      `the rendered ${what} is not what a local run can read: ${r.error.issues
        .map((i) => `${i.path.join('.')}: ${i.message}`)
        .join('; ')}`,
    );
  return r.data;
}

/** Pure: every static target of the rendered prometheus.yml. */
export function scrapeTargetsOf(prometheusYml: string): ScrapeTarget[] {
  const c = parseRendered(PrometheusConfigSchema, prometheusYml, 'prometheus.yml');
  return c.scrape_configs.flatMap((job) =>
    job.static_configs.flatMap((sc) =>
      sc.targets.map((instance) => ({ job: job.job_name, instance, host: sc.labels?.host })),
    ),
  );
}

/** Pure: the rule group names (and rule counts) of a rendered rule file. */
export function ruleGroupsOf(rulesYml: string): { name: string; rules: number }[] {
  return parseRendered(RuleFileSchema, rulesYml, 'rule file').groups.map((g) => ({
    name: g.name,
    rules: g.rules.length,
  }));
}

/**
 * Pure: the local prometheus.yml: `rule_files` moved under `hostRoot`, and (only when asked)
 * the global scrape and evaluation intervals. Everything else is the rendered document.
 */
export function localPrometheusConfig(
  renderedYml: string,
  hostRoot: string,
  intervalSeconds?: number,
): string {
  parseRendered(PrometheusConfigSchema, renderedYml, 'prometheus.yml');
  const doc = parse(renderedYml) as Record<string, unknown>;
  doc.rule_files = ((doc.rule_files as string[] | undefined) ?? []).map((f) => join(hostRoot, f));
  const notes = [`# Local run: rule_files moved under ${hostRoot}.`];
  if (intervalSeconds !== undefined) {
    doc.global = {
      ...(doc.global as Record<string, unknown> | undefined),
      scrape_interval: `${intervalSeconds}s`,
      evaluation_interval: `${intervalSeconds}s`,
    };
    notes.push(`# Local run: global scrape and evaluation intervals set to ${intervalSeconds}s.`);
  }
  return `${notes.join('\n')}\n${stringify(doc)}`;
}

/** Receiver keys that deliver somewhere (Alertmanager 0.25 config/config.go `Receiver`). */
const DELIVERING = /_configs$/;

/**
 * Pure: the local alertmanager.yml: every receiver that delivers somewhere sends to one
 * webhook, `sinkUrl`, instead (a receiver with no configs, such as the unrouted one, still
 * delivers nowhere). Routes, receiver names and inhibit rules are as rendered.
 */
export function localAlertmanagerConfig(renderedYml: string, sinkUrl: string): string {
  const doc = parse(renderedYml) as { receivers?: Record<string, unknown>[] } | null;
  if (!doc || !Array.isArray(doc.receivers))
    throw new LocalFleetError('the rendered alertmanager.yml has no receivers list');
  const rewritten: string[] = [];
  doc.receivers = doc.receivers.map((r) => {
    const kinds = Object.keys(r).filter((k) => DELIVERING.test(k));
    if (kinds.length === 0) return r;
    rewritten.push(`${String(r.name)} (${kinds.join(', ')})`);
    const kept = Object.fromEntries(Object.entries(r).filter(([k]) => !DELIVERING.test(k)));
    return { ...kept, webhook_configs: [{ url: sinkUrl, send_resolved: true }] };
  });
  return (
    `# Local run: these receivers send to the local sink ${sinkUrl} instead: ${rewritten.join('; ') || 'none'}.\n` +
    stringify(doc, { lineWidth: 0 })
  );
}

/** Pure: the arguments in a rendered /etc/default file (`ARGS="..."`, no quoting inside). */
export function defaultArgs(text: string): string[] {
  const m = /^ARGS="([^"\\$`]*)"\s*$/m.exec(text);
  if (!m) throw new LocalFleetError(`the rendered defaults file has no plain ARGS="...": ${text}`);
  return m[1]!.split(/\s+/).filter((a) => a !== '');
}

/** Pure: `--flag=value` args with `flag` replaced (or added). */
export function withFlag(args: readonly string[], flag: string, value: string): string[] {
  return [...args.filter((a) => a !== flag && !a.startsWith(`${flag}=`)), `${flag}=${value}`];
}

export interface MonitorStack {
  readonly host: string;
  readonly netns: string;
  readonly prometheusUrl: string;
  readonly alertmanagerUrl: string;
  /** Every target of the rendered prometheus.yml. */
  readonly targets: readonly ScrapeTarget[];
  /** Targets whose service a local run does not start, and why. */
  readonly notRun: readonly { readonly target: ScrapeTarget; readonly why: string }[];
  /** Targets served only while their host is active (whileActiveTargets). */
  readonly whileActive: readonly ScrapeTarget[];
  readonly ruleGroups: readonly { name: string; rules: number }[];
  /** The local sink's file: one JSON line per notification Alertmanager delivered. */
  readonly sinkFile: string;
}

export interface MonitorContext {
  readonly record: RunRecordFile;
  readonly plan: Plan;
  readonly file: (host: PlannedHost, path: string) => string | undefined;
  readonly netnsOf: (host: PlannedHost) => string;
  readonly hostDir: (host: PlannedHost) => string;
  readonly step: <T>(label: string, fn: () => T | Promise<T>) => Promise<T>;
  readonly intervalSeconds?: number;
  /** The simulated chain units, by host (which start at boot, which only while active). */
  readonly units?: readonly LocalUnitPorts[];
  /**
   * Start only what this host runs (a lost host restarted, restart.ts): its node exporter,
   * its `vigil watch`, and on the monitor the alert sink, Alertmanager and Prometheus.
   */
  readonly onlyHost?: string;
}

export interface LocalUnitPorts {
  readonly host: string;
  readonly startedBy: 'boot' | 'watchdog' | 'operator';
  readonly listeners: readonly { readonly port: number }[];
}

/**
 * Pure: the targets served only by units that run while their host is active (a supervised
 * producer, a standby waiting for a manual failover), and by no unit started at boot: scraped
 * down while the host is not active, as planned.
 */
export function whileActiveTargets(
  targets: readonly ScrapeTarget[],
  units: readonly LocalUnitPorts[],
): ScrapeTarget[] {
  const serves = (t: ScrapeTarget, boot: boolean) =>
    units.some(
      (u) =>
        u.host === t.host &&
        (u.startedBy === 'boot') === boot &&
        u.listeners.some((l) => t.instance.endsWith(`:${l.port}`)),
    );
  return targets.filter((t) => serves(t, false) && !serves(t, true));
}

/** Runs `curl` in `netns`; the body, or undefined when it cannot connect or gets no 2xx. */
export function httpGet(netns: string, url: string, timeoutSeconds = 5): string | undefined {
  const argv = inNetns(netns, ['curl', '-sSf', '--max-time', String(timeoutSeconds), url]);
  const r = spawnSync(argv[0]!, argv.slice(1), {
    encoding: 'utf8',
    timeout: (timeoutSeconds + 5) * 1000,
  });
  return r.status === 0 ? r.stdout : undefined;
}

const sizeOf = (file: string) => (existsSync(file) ? statSync(file).size : 0);

/**
 * Waits for `re` in what `file` gains from now on: a restarted process appends to the log its
 * lost predecessor wrote, whose old lines must not pass for the new one's.
 */
const logHas = (file: string, re: RegExp) => {
  const from = sizeOf(file);
  return () => {
    try {
      return re.test(readFileSync(file, 'utf8').slice(from));
    } catch {
      return false;
    }
  };
};

function writeUnder(hostRoot: string, path: string, content: string): string {
  const f = join(hostRoot, path);
  mkdirSync(dirname(f), { recursive: true, mode: 0o700 });
  writeFileSync(f, content, { mode: 0o600 });
  return f;
}

/** Starts the monitor stack (see the top of this file); undefined when no host is a monitor. */
export async function startMonitorStack(ctx: MonitorContext): Promise<MonitorStack | undefined> {
  const { plan, file, record, step } = ctx;
  const monitor = plan.hosts.find((h) => file(h, PROMETHEUS_CONFIG_PATH) !== undefined);
  if (!monitor) return undefined;
  const notRunHosts = new Map<string, string>();
  // Independent of each other: started together, one progress line each as it is ready.
  const starting: Promise<unknown>[] = [];
  const runsHere = (host: PlannedHost) => ctx.onlyHost === undefined || ctx.onlyHost === host.name;

  for (const host of plan.hosts) {
    if (!runsHere(host)) continue;
    const defaults = file(host, NODE_EXPORTER_DEFAULTS_PATH);
    if (defaults === undefined) continue;
    starting.push(
      step(`${host.name}: prometheus-node-exporter (rendered ARGS)`, async () => {
        const log = join(ctx.hostDir(host), 'node-exporter.log');
        const listening = logHas(log, /Listening on/);
        const proc = startInNetns(
          record,
          ctx.netnsOf(host),
          'prometheus-node-exporter',
          ['prometheus-node-exporter', ...defaultArgs(defaults)],
          log,
        );
        await waitFor(`node exporter in ${ctx.netnsOf(host)}`, listening, proc);
      }),
    );
  }

  for (const host of plan.hosts) {
    const text = file(host, WATCH_CONFIG_PATH);
    if (text === undefined) continue;
    const root = join(ctx.hostDir(host), 'root');
    const config = parseRendered(WatchConfigSchema, text, 'watch.yaml');
    if (config.chains.some((c) => c.kind === 'decred')) {
      const why = 'the Decred wallet TLS JSON-RPC it watches is not simulated';
      notRunHosts.set(host.name, `vigil watch not started: ${why}`);
      if (runsHere(host))
        await step(`${host.name}: vigil watch NOT started: ${why}`, () => undefined);
      continue;
    }
    if (!runsHere(host)) continue;
    starting.push(
      step(`${host.name}: vigil watch (rendered watch.yaml)`, async () => {
        const configFile = writeUnder(
          root,
          WATCH_CONFIG_PATH,
          stringify(rerootPaths(parse(text), root)),
        );
        const log = join(ctx.hostDir(host), 'watch.log');
        const watching = logHas(log, /"msg":"watching/);
        const proc = startInNetns(
          record,
          ctx.netnsOf(host),
          'vigil watch',
          [process.execPath, CLI_ENTRY, 'watch', '--config', configFile],
          log,
        );
        await waitFor(`vigil watch in ${ctx.netnsOf(host)}`, watching, proc);
      }),
    );
  }

  const netns = ctx.netnsOf(monitor);
  const dir = ctx.hostDir(monitor);
  const root = join(dir, 'root');
  const promYml = file(monitor, PROMETHEUS_CONFIG_PATH)!;
  const rendered = parseRendered(PrometheusConfigSchema, promYml, 'prometheus.yml');
  const ruleGroups: { name: string; rules: number }[] = [];
  for (const rf of rendered.rule_files) {
    const text = file(monitor, rf);
    if (text === undefined)
      throw new LocalFleetError(`prometheus.yml names the rule file ${rf}, which is not rendered`);
    ruleGroups.push(...ruleGroupsOf(text));
    writeUnder(root, rf, text);
  }

  const sinkFile = join(dir, 'alert-sink.jsonl');
  // The monitor's own services, unless only another host is being started.
  const push = (p: () => Promise<unknown>) => {
    if (runsHere(monitor)) starting.push(p());
  };
  push(() =>
    step(`${monitor.name}: local alert sink on ${LOCAL_ALERT_SINK}`, async () => {
      const log = join(dir, 'alert-sink.log');
      const listening = logHas(log, /listening/);
      const proc = startInNetns(
        record,
        netns,
        'local alert sink',
        [process.execPath, ALERT_SINK_MAIN, LOCAL_ALERT_SINK, sinkFile],
        log,
      );
      await waitFor(`the alert sink in ${netns}`, listening, proc);
    }),
  );

  const amDefaults = file(monitor, ALERTMANAGER_DEFAULTS_PATH);
  if (amDefaults === undefined)
    throw new LocalFleetError(`${monitor.name} has a prometheus.yml but no Alertmanager defaults`);
  const amArgs = defaultArgs(amDefaults);
  const amConfigPath = amArgs
    .find((a) => a.startsWith('--config.file='))
    ?.slice('--config.file='.length);
  const listen = amArgs
    .find((a) => a.startsWith('--web.listen-address='))
    ?.slice('--web.listen-address='.length);
  // With Telegram or Discord the rendered file is a template assembled on the host into
  // --config.file; the local config replaces those receivers, so the template is read.
  const amRendered =
    (amConfigPath !== undefined ? file(monitor, amConfigPath) : undefined) ??
    file(monitor, `${ALERTMANAGER_CONFIG_PATH}.in`) ??
    file(monitor, ALERTMANAGER_CONFIG_PATH);
  if (amRendered === undefined || listen === undefined)
    throw new LocalFleetError(`${monitor.name}: no rendered alertmanager.yml or listen address`);
  const alertmanagerUrl = `http://${listen}`;
  push(() =>
    step(`${monitor.name}: prometheus-alertmanager on ${listen} (receivers → local sink)`, () =>
      startAndWaitReady(ctx, monitor, 'prometheus-alertmanager', alertmanagerUrl, [
        'prometheus-alertmanager',
        ...withFlag(
          withFlag(
            amArgs,
            '--config.file',
            writeUnder(
              root,
              ALERTMANAGER_CONFIG_PATH,
              localAlertmanagerConfig(amRendered, `http://${LOCAL_ALERT_SINK}/`),
            ),
          ),
          '--storage.path',
          join(dir, 'alertmanager-data'),
        ),
      ]),
    ),
  );

  const interval = ctx.intervalSeconds !== undefined ? `, ${ctx.intervalSeconds}s intervals` : '';
  push(() =>
    step(
      `${monitor.name}: prometheus (rendered config, ${ruleGroups.length} rule groups${interval})`,
      () =>
        startAndWaitReady(ctx, monitor, 'prometheus', LOCAL_PROMETHEUS_URL, [
          'prometheus',
          `--config.file=${writeUnder(root, PROMETHEUS_CONFIG_PATH, localPrometheusConfig(promYml, root, ctx.intervalSeconds))}`,
          `--storage.tsdb.path=${join(dir, 'prometheus-data')}`,
        ]),
    ),
  );
  // Every start settles before a failure is reported, so the rollback finds each recorded.
  const failed = (await Promise.allSettled(starting)).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;

  const targets = scrapeTargetsOf(promYml);
  return {
    host: monitor.name,
    netns,
    prometheusUrl: LOCAL_PROMETHEUS_URL,
    alertmanagerUrl,
    targets,
    notRun: targets.flatMap((target) =>
      target.job === 'vigil-watch' && target.host && notRunHosts.has(target.host)
        ? [{ target, why: notRunHosts.get(target.host)! }]
        : [],
    ),
    whileActive: whileActiveTargets(targets, ctx.units ?? []),
    ruleGroups,
    sinkFile,
  };
}

async function startAndWaitReady(
  ctx: MonitorContext,
  monitor: PlannedHost,
  what: string,
  url: string,
  argv: string[],
): Promise<void> {
  const netns = ctx.netnsOf(monitor);
  const proc = startInNetns(
    ctx.record,
    netns,
    what,
    argv,
    join(ctx.hostDir(monitor), `${what}.log`),
  );
  await waitFor(
    `${what} in ${netns}`,
    () => httpGet(netns, `${url}/-/ready`, 1) !== undefined,
    proc,
    30_000,
  );
}

const QueryResponseSchema = z.object({
  status: z.literal('success'),
  data: z.object({
    result: z.array(
      z.object({
        metric: z.record(z.string(), z.string()),
        value: z.tuple([z.number(), z.string()]),
      }),
    ),
  }),
});

export interface TargetResult {
  readonly target: ScrapeTarget;
  /** The value of `up` for it, or `missing` (not scraped yet) or `not run` (see notRun). */
  readonly up: '1' | '0' | 'missing' | 'not run';
  /** Served only while its host is active: down is as planned while the host is not. */
  readonly whileActive?: true;
}

/** Whether a reading is as planned: up, deliberately not run, or a while-active target scraped down. */
export function targetOk(r: TargetResult): boolean {
  return r.up === '1' || r.up === 'not run' || (r.whileActive === true && r.up === '0');
}

/** `up` for every rendered target, read from the monitor's Prometheus (one query). */
export function readTargetsUp(stack: MonitorStack): TargetResult[] {
  const body = httpGet(stack.netns, `${stack.prometheusUrl}/api/v1/query?query=up`);
  const series = body === undefined ? [] : QueryResponseSchema.parse(JSON.parse(body)).data.result;
  return stack.targets.map((target) => {
    if (stack.notRun.some((n) => n.target === target)) return { target, up: 'not run' };
    const s = series.find(
      (x) => x.metric.job === target.job && x.metric.instance === target.instance,
    );
    const up = s ? (s.value[1] === '1' ? '1' : '0') : 'missing';
    return stack.whileActive.includes(target) ? { target, up, whileActive: true } : { target, up };
  });
}

/** Polls until every target that runs is `up == 1`, or `timeoutMs` passes; the last reading. */
export async function waitTargetsUp(
  stack: MonitorStack,
  timeoutMs: number,
): Promise<TargetResult[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = readTargetsUp(stack);
    if (r.every(targetOk) || Date.now() > deadline) return r;
    await new Promise((res) => setTimeout(res, 500));
  }
}

const RulesResponseSchema = z.object({
  status: z.literal('success'),
  data: z.object({
    groups: z.array(
      z.object({
        name: z.string(),
        rules: z.array(z.object({ name: z.string(), health: z.string() })),
      }),
    ),
  }),
});

/** The rule groups the monitor's Prometheus has loaded, with their rule counts. */
export function readLoadedRuleGroups(stack: MonitorStack): { name: string; rules: number }[] {
  const body = httpGet(stack.netns, `${stack.prometheusUrl}/api/v1/rules`);
  if (body === undefined) return [];
  return RulesResponseSchema.parse(JSON.parse(body)).data.groups.map((g) => ({
    name: g.name,
    rules: g.rules.length,
  }));
}

const PromAlertsSchema = z.object({
  status: z.literal('success'),
  data: z.object({
    alerts: z.array(z.object({ labels: z.record(z.string(), z.string()), state: z.string() })),
  }),
});

/** The monitor's Prometheus's alerts (`pending` or `firing`) named `alertname`. */
export function readPrometheusAlerts(
  stack: MonitorStack,
  alertname: string,
): { labels: Record<string, string>; state: string }[] {
  const body = httpGet(stack.netns, `${stack.prometheusUrl}/api/v1/alerts`);
  if (body === undefined) return [];
  return PromAlertsSchema.parse(JSON.parse(body)).data.alerts.filter(
    (a) => a.labels.alertname === alertname,
  );
}

const AmAlertsSchema = z.array(
  z.object({
    labels: z.record(z.string(), z.string()),
    receivers: z.array(z.object({ name: z.string() })),
    status: z.object({ state: z.string() }),
  }),
);

/** The alerts the monitor's Alertmanager holds (API v2) named `alertname`, with their receivers. */
export function readAlertmanagerAlerts(
  stack: MonitorStack,
  alertname: string,
): { labels: Record<string, string>; receivers: string[]; state: string }[] {
  const filter = encodeURIComponent(`alertname="${alertname}"`);
  const body = httpGet(stack.netns, `${stack.alertmanagerUrl}/api/v2/alerts?filter=${filter}`);
  if (body === undefined) return [];
  return AmAlertsSchema.parse(JSON.parse(body)).map((a) => ({
    labels: a.labels,
    receivers: a.receivers.map((r) => r.name),
    state: a.status.state,
  }));
}

/** The notifications the local sink received (Alertmanager's webhook payloads). */
export function readSink(
  stack: MonitorStack,
): { receiver: string; status: string; alerts: { labels: Record<string, string> }[] }[] {
  let text: string;
  try {
    text = readFileSync(stack.sinkFile, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as ReturnType<typeof readSink>[number]);
}

export function formatTarget(r: TargetResult, stack: MonitorStack): string {
  const mark = r.up === 'not run' ? 'skip' : targetOk(r) ? 'ok  ' : 'FAIL';
  const why =
    stack.notRun.find((n) => n.target === r.target)?.why ??
    (r.whileActive ? 'served only while its host is active' : undefined);
  return `${mark} ${stack.host} scrapes ${r.target.job} ${r.target.instance} (${r.target.host ?? '?'}): up ${r.up}${why ? ` — ${why}` : ''}`;
}
