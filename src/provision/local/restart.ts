/**
 * A lost host of a local fleet (every process of its namespace killed, see faults.ts
 * killHost), started again as a reboot would: what the rendered host enables at boot comes
 * back, in the order `vigil apply --local` first started it — its WireGuard interface
 * (wg-quick@wg0), its etcd member on the data it kept, its simulated chain node, its
 * boot-enabled simulated units, its Vigil watchdog and its Vigil agent on the store it had.
 * Nothing is created afresh: keys, data dirs, configs and certificates are the ones apply
 * left in the run dir, and every new process goes into the run record so destroy finds it.
 * Last comes what the host runs of the monitoring stack, started by monitor.ts's own code:
 * its node exporter and `vigil watch`, and on the monitor host the alert sink, Alertmanager
 * and Prometheus, on the data dirs and with the intervals apply used.
 */
import { existsSync, rmSync, statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plan, PlannedHost } from '../../topology/plan.js';
import { supervisedByVigil } from '../../render/chains.js';
import { LocalFleetError, inNetns, run, tryRun } from './exec.js';
import { prepareEtcd, startEtcd } from './etcd.js';
import { startMonitorStack } from './monitor.js';
import { renderedPath } from './fleet.js';
import { startInNetns, waitFor, type StartedProcess } from './processes.js';
import type { RunRecordFile } from './run-record.js';
import { simUnitsOf } from './sim-services.js';
import { LOCAL_UNIT_MAIN, prepareWatchdog, startWatchdog } from './supervised.js';
import { WG_NAME, bringUpWireguard, controlName, parseWireguard } from './wireguard.js';

const NODE_MAIN = fileURLToPath(new URL('./node-main.js', import.meta.url));
const CLI_ENTRY = fileURLToPath(new URL('../../cli/run.js', import.meta.url));

export interface RestartOptions {
  readonly record: RunRecordFile;
  readonly plan: Plan;
  /** The rendered files, as `renderPlan` returns them for the same plan state. */
  readonly files: ReadonlyMap<string, string>;
  /** Called once per thing started again (for a progress display). */
  readonly onStep?: (label: string) => void;
}

const sizeOf = (file: string) => (existsSync(file) ? statSync(file).size : 0);

/** Waits for `pattern` in what `logFile` gained past `from` (its size before the start). */
function logSays(logFile: string, from: number, pattern: RegExp): () => boolean {
  return () => {
    try {
      return pattern.test(readFileSync(logFile, 'utf8').slice(from));
    } catch {
      return false;
    }
  };
}

/** Starts again what host `hostName` runs at boot; throws (typed) on the first failure. */
export async function restartHost(opts: RestartOptions, hostName: string): Promise<void> {
  const { record, plan, files } = opts;
  const r = record.record;
  const index = r.hosts.findIndex((h) => h.name === hostName);
  const host = plan.hosts.find((h) => h.name === hostName);
  if (index < 0 || !host)
    throw new LocalFleetError(`no host ${hostName} in the local fleet ${r.fleet}`);
  const ns = r.hosts[index]!.netns;
  const hostDir = join(r.runDir, host.name);
  const root = join(hostDir, 'root');
  const file = (hostPath: string) => files.get(renderedPath(host.name, hostPath));
  const step = (label: string) => opts.onStep?.(`${host.name}: ${label}`);

  const wgText = file('/etc/wireguard/wg0.conf');
  // The kernel's interface outlives the processes; wireguard-go's tun went with its process.
  if (wgText !== undefined && tryRun(inNetns(ns, ['ip', 'link', 'show', WG_NAME])) !== undefined) {
    const config = parseWireguard(wgText);
    const endpoints = new Map<string, string>();
    r.hosts.forEach((peer, j) => {
      if (j === index) return;
      const peerText = files.get(renderedPath(peer.name, '/etc/wireguard/wg0.conf'));
      const planned = plan.hosts.find((h) => h.name === peer.name);
      if (!planned) return;
      const port = peerText ? parseWireguard(peerText).listenPort : config.listenPort;
      endpoints.set(planned.wireguard.publicKey, `${peer.publicAddress}:${port}`);
    });
    // A killed wireguard-go leaves its control socket; the new one must not be taken for it.
    rmSync(`/var/run/wireguard/${controlName(r.fleetId, index, false)}.sock`, { force: true });
    await bringUpWireguard(record, { netns: ns, hostIndex: index, config, endpoints, hostDir });
    step(`WireGuard ${WG_NAME} up again`);
  }

  const etcdYaml = file('/etc/vigil/etcd.yaml');
  if (etcdYaml !== undefined) {
    const prepared = prepareEtcd(etcdYaml, root);
    const logFile = join(hostDir, 'etcd.log');
    const from = sizeOf(logFile);
    const proc = startEtcd(record, ns, prepared, logFile);
    // Back on its own data dir: it rejoins the members that kept the quorum.
    await waitFor(
      `etcd member ${prepared.name} (restarted)`,
      logSays(logFile, from, /ready to serve client requests/),
      proc,
      30_000,
    );
    step(`etcd member ${prepared.name} rejoined`);
  }

  const nodeConfig = join(hostDir, 'node.json');
  if (existsSync(nodeConfig)) {
    const statusFile = (JSON.parse(readFileSync(nodeConfig, 'utf8')) as { statusFile: string })
      .statusFile;
    // The old status would pass for the new node's.
    rmSync(statusFile, { force: true });
    const proc = startInNetns(
      record,
      ns,
      `simulated ${host.chain?.kind === 'cometbft' ? host.chain.chainId : 'chain'} node (restarted)`,
      [process.execPath, NODE_MAIN, nodeConfig],
      join(hostDir, 'node.log'),
    );
    await waitFor(`the simulated node in ${ns}`, () => existsSync(statusFile), proc);
    step('simulated chain node started');
  }

  const unitsDir = join(hostDir, 'units');
  for (const u of simUnitsOf(plan, host, files)) {
    if (u.startedBy !== 'boot') continue;
    // As systemd starts an enabled unit at boot; local-unit-main journals it and keeps its pid.
    run(inNetns(ns, [process.execPath, LOCAL_UNIT_MAIN, 'start', unitsDir, u.unit]));
    step(`simulated ${u.unit} started`);
  }

  const watchdogYaml = file('/etc/vigil/watchdog.yaml');
  if (supervisedByVigil(host) && watchdogYaml !== undefined) {
    const prepared = prepareWatchdog(watchdogYaml, root, unitsDir);
    rmSync(prepared.socket, { force: true });
    await startWatchdog(record, ns, prepared, join(hostDir, 'watchdog.log'));
    step('Vigil watchdog started');
  }

  const agentConfig = join(root, 'etc/vigil/agent.yaml');
  if (file('/etc/vigil/agent.yaml') !== undefined && existsSync(agentConfig)) {
    await startAgentAgain(record, ns, agentConfig, join(hostDir, 'agent.log'));
    step('Vigil agent started');
  }

  // Last, as apply starts it: what this host runs of the monitoring stack (its node exporter,
  // its vigil watch; on the monitor the alert sink, Alertmanager and Prometheus), by the very
  // code apply ran, on the data dirs and with the intervals apply used.
  const netnsOf = (h: PlannedHost) => r.hosts.find((x) => x.name === h.name)!.netns;
  await startMonitorStack({
    record,
    plan,
    file: (h, p) => files.get(renderedPath(h.name, p)),
    netnsOf,
    hostDir: (h) => join(r.runDir, h.name),
    step: async (label, fn) => {
      const out = await fn();
      step(`${label.replace(/^[^:]+: /, '')} started again`);
      return out;
    },
    onlyHost: host.name,
    ...(r.monitorIntervalSeconds !== undefined
      ? { intervalSeconds: r.monitorIntervalSeconds }
      : {}),
  });
}

/** The agent on the store it already has (no `state init`: that is once per store). */
async function startAgentAgain(
  record: RunRecordFile,
  ns: string,
  configFile: string,
  logFile: string,
): Promise<StartedProcess> {
  const from = sizeOf(logFile);
  const proc = startInNetns(
    record,
    ns,
    'vigil agent (restarted)',
    [process.execPath, CLI_ENTRY, 'agent', '--config', configFile],
    logFile,
  );
  await waitFor(
    `the Vigil agent in ${ns} (restarted)`,
    logSays(logFile, from, /"msg":"agent (ready|started, not ready)/),
    proc,
    30_000,
  );
  return proc;
}
