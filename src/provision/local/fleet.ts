/**
 * `vigil apply --local` / `vigil destroy --local`: the planned fleet on this machine, one
 * network namespace per host. Steps run in order, each printed as one progress line; every
 * namespace, link and process is recorded in the run record the moment it exists, and a
 * failed apply destroys exactly what the record lists before reporting the failure.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plan, PlannedHost } from '../../topology/plan.js';
import { errorMessage } from '../../errors.js';
import { cardanoKeyPaths, chainDataDir, supervisedByVigil } from '../../render/chains.js';
import { guardMembers } from '../../render/services.js';
import { agentStoreEngine, prepareAgent, startAgent } from './agents.js';
import { readNodeStatus, startChainNode } from './chain-nodes.js';
import { LocalFleetError, REQUIRED_TOOLS, inNetns, missingTools, run, tryRun } from './exec.js';
import {
  issueLocalPki,
  prepareEtcd,
  startEtcd,
  waitEtcdReady,
  type PkiHost,
  type PreparedEtcd,
} from './etcd.js';
import { applyFirewall } from './firewall.js';
import { MONITOR_TOOLS, startMonitorStack, type MonitorStack } from './monitor.js';
import {
  createHost,
  createInternet,
  hostNetns,
  internetNetns,
  publicAddressOf,
} from './network.js';
import { startInNetns, pidRunning, stillOurs, stopProcess, waitFor } from './processes.js';
import { simUnitsOf, unitProduction, type SimUnit } from './sim-services.js';
import type { ProducerConfig, SimUnitProcessConfig } from './sim-unit-config.js';
import { prepareWatchdog, startWatchdog, writeUnitFile } from './supervised.js';
import { RunRecordFile, type RunRecord } from './run-record.js';
import {
  bringUpWireguard,
  controlName,
  parseWireguard,
  peersWithoutHandshake,
} from './wireguard.js';

export const RUN_RECORD = 'local/run.json';

/** Where a host's simulated validator node appends every answer it gets (node-config.ts). */
export function evidenceFileOf(hostDir: string): string {
  return join(hostDir, 'evidence.jsonl');
}

const SIM_UNIT_MAIN = fileURLToPath(new URL('./sim-unit-main.js', import.meta.url));

/** A simulated chain unit of a host, where its status is written while it runs. */
export interface LocalUnit extends SimUnit {
  readonly host: string;
  readonly statusFile: string;
  /** Where local-unit-main.ts keeps its pid while it runs (supervised units). */
  readonly pidFile: string;
}

/** Where a rendered host file is in the plan's file map (see src/render/index.ts). */
export function renderedPath(host: string, hostPath: string): string {
  return `hosts/${host}/files/${hostPath.replace(/^\//, '').replace(/\//g, '__')}`;
}

export interface Progress {
  /** Called once per step, after it finished (ok) or failed. */
  step(label: string, ms: number, error?: string): void;
}

export interface LocalApplyOptions {
  readonly plan: Plan;
  /** Rendered files, as `renderPlan` returns them. */
  readonly files: ReadonlyMap<string, string>;
  /** The plan's state directory; the run record and run dir go under `<state>/local/`. */
  readonly stateDir: string;
  readonly progress?: Progress;
  /** Milliseconds between simulated heights (default 200). */
  readonly blockTimeMs?: number;
  /** The monitor's Prometheus scrape and evaluation interval, when not as rendered (monitor.ts). */
  readonly monitorIntervalSeconds?: number;
}

export interface LocalFleet {
  readonly record: RunRecord;
  readonly recordFile: string;
  /** Host name → its simulated node's status file, for hosts that run one. */
  readonly nodeStatusFiles: ReadonlyMap<string, string>;
  /** Simulated Substrate, Cardano and Decred units, by host. */
  readonly units: readonly LocalUnit[];
  /** `kernel` or `wireguard-go`. */
  readonly wireguardMode: string;
  /** The monitor host's Prometheus and Alertmanager, when the plan has a monitor. */
  readonly monitor?: MonitorStack;
}

export function preflight(plan?: Plan): void {
  if (process.getuid?.() !== 0)
    throw new LocalFleetError(
      'a local fleet needs root (network namespaces, nftables, WireGuard)',
      'run as root, e.g. sudo vigil apply --local',
    );
  const missing = missingTools(REQUIRED_TOOLS);
  if (missing.length > 0)
    throw new LocalFleetError(
      `missing tools for a local fleet: ${missing.join(', ')}`,
      'apt-get install iproute2 nftables wireguard-tools wireguard-go',
    );
  if (plan && guardMembers(plan).length > 0 && missingTools(['etcd']).length > 0)
    throw new LocalFleetError(
      `${plan.topology.name} has guard members and etcd is not installed`,
      'apt-get install etcd-server',
    );
  const monitorMissing = missingTools(MONITOR_TOOLS);
  if (plan?.hosts.some((h) => h.role === 'monitor') && monitorMissing.length > 0)
    throw new LocalFleetError(
      `${plan.topology.name} has a monitor host and its stack cannot run: missing ${monitorMissing.join(', ')}`,
      'apt-get install prometheus prometheus-alertmanager prometheus-node-exporter curl',
    );
}

function fleetIdOf(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(4)].map((b) => alphabet[b % alphabet.length]).join('');
}

async function step<T>(
  progress: Progress | undefined,
  label: string,
  fn: () => T | Promise<T>,
): Promise<T> {
  const t0 = performance.now();
  try {
    const out = await fn();
    progress?.step(label, performance.now() - t0);
    return out;
  } catch (err) {
    progress?.step(label, performance.now() - t0, errorMessage(err));
    throw err;
  }
}

export async function applyLocal(opts: LocalApplyOptions): Promise<LocalFleet> {
  preflight(opts.plan);
  const { plan, files, progress } = opts;
  const recordPath = resolve(opts.stateDir, RUN_RECORD);
  const fleetId = fleetIdOf();
  const runDir = resolve(opts.stateDir, 'local', 'run');
  const hosts = plan.hosts.map((h, i) => ({
    name: h.name,
    netns: hostNetns(fleetId, h.name),
    publicAddress: publicAddressOf(i),
    vpnAddress: h.vpnAddress,
  }));
  const record = RunRecordFile.create(recordPath, {
    version: 1,
    fleet: plan.topology.name,
    fleetId,
    runDir,
    internetNetns: internetNetns(fleetId),
    hosts,
    created: [],
    ...(opts.monitorIntervalSeconds !== undefined
      ? { monitorIntervalSeconds: opts.monitorIntervalSeconds }
      : {}),
  });
  const nodeStatusFiles = new Map<string, string>();
  const units: LocalUnit[] = [];
  let wireguardMode = '';
  try {
    rmSync(runDir, { recursive: true, force: true });
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    const file = (host: PlannedHost, hostPath: string): string | undefined =>
      files.get(renderedPath(host.name, hostPath));
    const hostDir = (host: PlannedHost) => join(runDir, host.name);

    await step(progress, `internet namespace ${record.record.internetNetns}, bridge`, () =>
      createInternet(record),
    );
    for (const [i, host] of plan.hosts.entries()) {
      await step(progress, `${host.name}: namespace, uplink ${hosts[i]!.publicAddress}`, () => {
        mkdirSync(hostDir(host), { recursive: true, mode: 0o700 });
        createHost(record, i);
      });
    }
    for (const [i, host] of plan.hosts.entries()) {
      const rules = file(host, '/etc/nftables.conf');
      if (rules === undefined) continue;
      await step(progress, `${host.name}: nftables ruleset (as rendered)`, () => {
        const f = join(hostDir(host), 'nftables.conf');
        writeFileSync(f, rules, { mode: 0o600 });
        applyFirewall(hosts[i]!.netns, f);
      });
    }
    const parsed = plan.hosts.map((h) => {
      const text = file(h, '/etc/wireguard/wg0.conf');
      return text === undefined ? undefined : parseWireguard(text);
    });
    for (const [i, host] of plan.hosts.entries()) {
      const config = parsed[i];
      if (!config) continue;
      const endpoints = new Map<string, string>();
      for (const [j, peer] of plan.hosts.entries())
        if (j !== i)
          endpoints.set(
            peer.wireguard.publicKey,
            `${hosts[j]!.publicAddress}:${parsed[j]?.listenPort ?? config.listenPort}`,
          );
      await step(progress, `${host.name}: WireGuard wg0 ${host.vpnAddress}`, async () => {
        wireguardMode = await bringUpWireguard(record, {
          netns: hosts[i]!.netns,
          hostIndex: i,
          config,
          endpoints,
          hostDir: hostDir(host),
        });
      });
    }
    // A handshake initiation sent before its peer was up is retried only after 5 s (REKEY_TIMEOUT);
    // until then flows over wg0 time out. Nothing goes on until every link has shaken hands.
    const meshed = plan.hosts.flatMap((_h, i) => (parsed[i] ? [i] : []));
    if (meshed.length > 1)
      await step(
        progress,
        `WireGuard mesh: every host has a handshake with each peer`,
        async () => {
          const deadline = Date.now() + 30_000;
          for (;;) {
            const waiting = meshed.flatMap((i) =>
              peersWithoutHandshake(
                hosts[i]!.netns,
                controlName(fleetId, i, wireguardMode === 'kernel'),
              ).map(() => plan.hosts[i]!.name),
            );
            if (waiting.length === 0) return;
            if (Date.now() > deadline)
              throw new LocalFleetError(
                `WireGuard links without a handshake after 30 s from: ${[...new Set(waiting)].join(', ')}`,
                `see ${runDir}/<host>/wireguard-go.log`,
              );
            await sleepMs(250);
          }
        },
      );
    // The guard cluster, before any agent: an agent whose store is etcd needs its quorum to
    // create (`state init`) and open its store.
    const members = plan.hosts.flatMap((host, i) => {
      const yaml = file(host, '/etc/vigil/etcd.yaml');
      return yaml === undefined ? [] : [{ host, i, yaml }];
    });
    const pkiHosts: PkiHost[] = plan.hosts.flatMap((host): PkiHost[] => {
      const root = join(hostDir(host), 'root');
      if (file(host, '/etc/vigil/etcd.yaml') !== undefined)
        return [{ name: host.name, vpnAddress: host.vpnAddress, kind: 'member', root }];
      const agentYaml = file(host, '/etc/vigil/agent.yaml');
      return agentYaml !== undefined && agentStoreEngine(agentYaml) === 'etcd'
        ? [{ name: host.name, vpnAddress: host.vpnAddress, kind: 'client', root }]
        : [];
    });
    if (pkiHosts.length > 0)
      await step(
        progress,
        `etcd PKI: a local CA, ${pkiHosts.filter((h) => h.kind === 'member').length} member and ${pkiHosts.filter((h) => h.kind === 'client').length} agent certificates`,
        () => issueLocalPki(join(runDir, 'pki-ca'), pkiHosts),
      );
    const started: { prepared: PreparedEtcd; proc: Awaited<ReturnType<typeof startEtcd>> }[] = [];
    for (const { host, i, yaml } of members)
      await step(progress, `${host.name}: etcd member (mutual TLS) on ${host.vpnAddress}`, () => {
        const prepared = prepareEtcd(yaml, join(hostDir(host), 'root'));
        const proc = startEtcd(record, hosts[i]!.netns, prepared, join(hostDir(host), 'etcd.log'));
        started.push({ prepared, proc });
      });
    if (started.length > 0)
      await step(progress, `guard cluster: ${started.length} etcd members have a quorum`, () =>
        Promise.all(started.map((s) => waitEtcdReady(s.prepared.name, s.proc))),
      );
    const validatorKeys = new Map<string, string>();
    const agentConfigs = new Map<string, string>();
    for (const host of plan.hosts) {
      const agentYaml = file(host, '/etc/vigil/agent.yaml');
      if (agentYaml === undefined) continue;
      const prepared = prepareAgent(
        agentYaml,
        join(hostDir(host), 'root'),
        join(runDir, 'shared-keys'),
      );
      agentConfigs.set(host.name, prepared.configFile);
      for (const [, pub] of prepared.cometbftKeys) validatorKeys.set(host.name, pub);
    }
    for (const [i, host] of plan.hosts.entries()) {
      const chain = host.chain;
      if (chain?.kind !== 'cometbft') continue;
      const toml = file(host, `${chainDataDir(chain)}/config/config.toml`);
      if (toml === undefined) continue;
      await step(progress, `${host.name}: simulated ${chain.chainId} node`, async () => {
        const dir = hostDir(host);
        const configToml = join(dir, 'config.toml');
        writeFileSync(configToml, toml, { mode: 0o600 });
        const statusFile = join(dir, 'node-status.json');
        const appTomlText = file(host, `${chainDataDir(chain)}/config/app.toml`);
        const appToml = join(dir, 'app.toml');
        if (appTomlText !== undefined) writeFileSync(appToml, appTomlText, { mode: 0o600 });
        const pub = validatorKeys.get(host.name);
        await startChainNode(
          record,
          hosts[i]!.netns,
          {
            name: host.name,
            chainId: chain.chainId,
            configToml,
            statusFile,
            blockTimeMs: opts.blockTimeMs ?? 200,
            ...(appTomlText !== undefined ? { appToml } : {}),
            ...(pub ? { validatorPublicKeyHex: pub, evidenceFile: evidenceFileOf(dir) } : {}),
          },
          join(dir, 'node.json'),
          join(dir, 'node.log'),
        );
        nodeStatusFiles.set(host.name, statusFile);
      });
    }
    // Substrate, Cardano and Decred: one simulated process per rendered chain unit. Enabled
    // units start now; a supervised producer's unit is started by its Vigil watchdog only
    // while the host holds the role (the watchdog, as rendered, runs before the agent).
    for (const [i, host] of plan.hosts.entries()) {
      const unitsDir = join(hostDir(host), 'units');
      for (const u of simUnitsOf(plan, host, files)) {
        const statusFile = join(unitsDir, `${u.unit}.status.json`);
        const simConfig = join(unitsDir, `${u.unit}.sim.json`);
        const logFile = join(unitsDir, `${u.unit}.log`);
        const argv = [process.execPath, SIM_UNIT_MAIN, simConfig];
        const producer = producerConfig(
          host,
          u.unit,
          files,
          join(hostDir(host), 'root'),
          join(runDir, 'shared-keys'),
          join(unitsDir, `${u.unit}.evidence.jsonl`),
          opts.blockTimeMs ?? 200,
        );
        const config: SimUnitProcessConfig = {
          name: host.name,
          unit: u.unit,
          statusFile,
          listeners: [...u.listeners],
          peers: [...u.peers],
          ...(producer ? { producer } : {}),
        };
        writeUnitFile(unitsDir, u.unit, argv, logFile, u.conflicts);
        writeFileSync(simConfig, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
        units.push({
          ...u,
          host: host.name,
          statusFile,
          pidFile: join(unitsDir, `${u.unit}.pid`),
        });
        if (u.startedBy !== 'boot') continue;
        await step(progress, `${host.name}: simulated ${u.unit}`, async () => {
          appendFileSync(
            join(unitsDir, `${u.unit}.journal`),
            `start ${process.hrtime.bigint()}\n`,
            {
              mode: 0o600,
            },
          );
          const proc = startInNetns(record, hosts[i]!.netns, `simulated ${u.unit}`, argv, logFile);
          // The pid file, as local-unit-main writes it: a watchdog's `systemctl stop` of this
          // unit, or a Conflicts= stop, must find the process started here (`ip netns exec`
          // execs, so this is the simulated node's own pid).
          writeFileSync(join(unitsDir, `${u.unit}.pid`), `${proc.pid}\n`, { mode: 0o600 });
          await waitFor(
            `simulated ${u.unit} in ${hosts[i]!.netns}`,
            () => existsSync(statusFile),
            proc,
          );
        });
      }
      const watchdogYaml = file(host, '/etc/vigil/watchdog.yaml');
      if (supervisedByVigil(host) && watchdogYaml !== undefined)
        await step(progress, `${host.name}: Vigil watchdog (starts the simulated node)`, () =>
          startWatchdog(
            record,
            hosts[i]!.netns,
            prepareWatchdog(watchdogYaml, join(hostDir(host), 'root'), unitsDir),
            join(hostDir(host), 'watchdog.log'),
          ),
        );
    }
    for (const [i, host] of plan.hosts.entries()) {
      const configFile = agentConfigs.get(host.name);
      if (configFile === undefined) continue;
      await step(progress, `${host.name}: Vigil agent`, () =>
        startAgent(record, hosts[i]!.netns, configFile, join(hostDir(host), 'agent.log')),
      );
    }
    // Last: the node exporters and watchers listen on VPN addresses, and every target the
    // monitor scrapes is up by now.
    const monitor = await startMonitorStack({
      record,
      plan,
      file,
      netnsOf: (h) => hosts[plan.hosts.indexOf(h)]!.netns,
      hostDir,
      step: (label, fn) => step(progress, label, fn),
      units,
      ...(opts.monitorIntervalSeconds !== undefined
        ? { intervalSeconds: opts.monitorIntervalSeconds }
        : {}),
    });
    return {
      record: record.record,
      recordFile: recordPath,
      nodeStatusFiles,
      units,
      wireguardMode,
      ...(monitor ? { monitor } : {}),
    };
  } catch (err) {
    const leftovers = await teardown(record);
    throw new LocalFleetError(
      `local apply failed, rolled back: ${errorMessage(err)}`,
      leftovers.length > 0
        ? `these could not be removed: ${leftovers.join('; ')}`
        : 'everything it had created was removed',
      { cause: err },
    );
  }
}

/**
 * The producer part of a simulated unit's config (sim-unit-config.ts), with paths under the
 * host root. A Cardano producer's forging credentials are made here, once per chain and
 * copied to each producer as an operator installs them: where its flags name them, or for a
 * guarded pair in `standby/`, from where the watchdog moves them in on promotion. Its key in
 * the evidence is the certificate's hash, the same on both hosts.
 */
function producerConfig(
  host: PlannedHost,
  unit: string,
  files: ReadonlyMap<string, string>,
  hostRoot: string,
  sharedKeysDir: string,
  evidenceFile: string,
  slotMs: number,
): ProducerConfig | undefined {
  const p = unitProduction(host, unit, files);
  if (!p) return undefined;
  const under = (path: string) => join(hostRoot, path);
  let key = `${p.chain} session keys`;
  if (p.kind === 'cardano-forger') {
    const paths = supervisedByVigil(host) ? cardanoKeyPaths('standby') : cardanoKeyPaths('single');
    mkdirSync(sharedKeysDir, { recursive: true, mode: 0o700 });
    const contents = (['kes', 'vrf', 'cert'] as const).map((k) => {
      const shared = join(sharedKeysDir, `cardano-${p.chain}-${k}`);
      if (!existsSync(shared))
        writeFileSync(shared, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
      const content = readFileSync(shared, 'utf8');
      const target = under(paths[k]);
      mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
      if (!existsSync(target)) writeFileSync(target, content, { mode: 0o600 });
      return content;
    });
    // For a guarded pair also the directory the watchdog moves them into.
    mkdirSync(dirname(under(cardanoKeyPaths('forging').kes)), { recursive: true, mode: 0o700 });
    key = `pool ${createHash('sha256').update(contents[2]!).digest('hex').slice(0, 16)}`;
  } else if (p.kind === 'decred-voter') key = `${p.chain} tickets`;
  return {
    kind: p.kind,
    chain: p.chain,
    key,
    slotMs,
    evidenceFile,
    ...(p.role !== undefined ? { role: p.role } : {}),
    ...(p.agentSocket !== undefined ? { agentSocket: under(p.agentSocket) } : {}),
    ...(p.forgingKeys !== undefined ? { forgingKeys: p.forgingKeys.map(under) } : {}),
    ...(p.socketPath !== undefined ? { socketPath: under(p.socketPath) } : {}),
    ...(p.startsNonProducing !== undefined ? { startsNonProducing: p.startsNonProducing } : {}),
    ...(p.voteChoices !== undefined ? { voteChoices: p.voteChoices } : {}),
  };
}

/** SIGKILLs every process in namespace `ns` (one of ours); returns those still there after 5 s. */
export async function killNamespacePids(ns: string): Promise<string[]> {
  const pids = () =>
    (tryRunOut(['ip', 'netns', 'pids', ns]) ?? '')
      .split('\n')
      .map((l) => Number(l.trim()))
      .filter((p) => Number.isInteger(p) && p > 0);
  for (const pid of pids())
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  for (let i = 0; i < 100 && pids().some((p) => pidRunning(p)); i++) await sleepMs(50);
  return pids()
    .filter((p) => pidRunning(p))
    .map((p) => `pid ${p} in ${ns}`);
}

/** Removes exactly what the record lists, newest first; returns what could not be removed. */
async function teardown(file: RunRecordFile): Promise<string[]> {
  const left: string[] = [];
  const created = [...file.record.created].reverse();
  for (const c of created)
    if (c.kind === 'process') {
      await stopProcess(c.pid, c.startTime);
      if (stillOurs(c.pid, c.startTime)) left.push(`${c.what} pid ${c.pid}`);
    }
  const namespaces = new Set(
    run(['ip', 'netns', 'list'])
      .split('\n')
      .map((l) => l.split(' ')[0]!),
  );
  // What recorded processes started in turn (a watchdog's node, a unit's process) is not in
  // the record; every process left in a namespace of ours is one of those.
  for (const c of created)
    if (c.kind === 'netns' && namespaces.has(c.name)) {
      const left2 = await killNamespacePids(c.name);
      left.push(...left2);
    }
  for (const c of created)
    if (c.kind === 'link' && namespaces.has(c.netns)) {
      // Gone already when its peer or its process (wireguard-go's tun) went first.
      const exists = tryRun(inNetns(c.netns, ['ip', 'link', 'show', c.name])) === undefined;
      if (exists) {
        const err = tryRun(inNetns(c.netns, ['ip', 'link', 'del', c.name]));
        if (err !== undefined) left.push(`link ${c.name} in ${c.netns}: ${err}`);
      }
    }
  for (const c of created)
    if (c.kind === 'netns' && namespaces.has(c.name)) {
      const err = tryRun(['ip', 'netns', 'del', c.name]);
      if (err !== undefined) left.push(`namespace ${c.name}: ${err}`);
    }
  if (left.length === 0) {
    rmSync(file.record.runDir, { recursive: true, force: true });
    rmSync(file.path, { force: true });
  }
  return left;
}

export async function destroyLocal(
  stateDir: string,
  progress?: Progress,
): Promise<{ removed: number }> {
  const path = resolve(stateDir, RUN_RECORD);
  if (!existsSync(path))
    throw new LocalFleetError(`no local fleet recorded at ${path}`, 'nothing to destroy');
  const file = RunRecordFile.load(path);
  const n = file.record.created.length;
  const left = await step(progress, `destroy ${n} recorded namespaces, links, processes`, () =>
    teardown(file),
  );
  if (left.length > 0)
    throw new LocalFleetError(
      `could not remove: ${left.join('; ')}`,
      `${path} is kept; run vigil destroy --local again`,
    );
  return { removed: n };
}

/** The signatures the fleet's simulated validator nodes have received (for progress). */
export function signedSoFar(fleet: LocalFleet): number {
  let n = 0;
  for (const f of fleet.nodeStatusFiles.values()) n += readNodeStatus(f)?.verified ?? 0;
  return n;
}

function tryRunOut(argv: readonly string[]): string | undefined {
  try {
    return run(argv);
  } catch {
    return undefined;
  }
}

const sleepMs = (ms: number) => new Promise((r) => setTimeout(r, ms));
