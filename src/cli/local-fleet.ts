/** `vigil apply --local` and `vigil destroy --local`: the planned fleet on this machine. */
import { VigilError } from '../errors.js';
import type { MonitorStack } from '../provision/local/monitor.js';

export interface LocalOptions {
  state?: string;
  out?: string;
  check?: boolean;
}

/**
 * Whether `vigil apply|destroy <topology>` means the local fleet: `--local`, or a topology
 * whose hosts are all `provider: local` (lint refuses a mix).
 */
export async function wantsLocal(
  file: string | undefined,
  opts: { local?: boolean },
): Promise<boolean> {
  if (opts.local) return true;
  if (file === undefined) return false;
  const { loadTopology } = await import('../topology/load.js');
  const t = loadTopology(file);
  return t.hosts.length > 0 && t.hosts.every((h) => h.provider === 'local');
}

export function progressPrinter() {
  let n = 0;
  return {
    step(label: string, ms: number, error?: string) {
      n++;
      const mark = error ? 'FAIL' : 'ok';
      process.stderr.write(
        `[${String(n).padStart(2)}] ${label} … ${mark} (${Math.round(ms)} ms)${error ? `: ${error}` : ''}\n`,
      );
    },
  };
}

function needTopology(file: string | undefined, verb: string): string {
  if (!file)
    throw new VigilError(
      'USAGE',
      `vigil ${verb} --local needs the topology file`,
      `vigil ${verb} --local fleet.yaml`,
    );
  return file;
}

export async function applyLocalCommand(file: string | undefined, opts: LocalOptions) {
  const topologyFile = needTopology(file, 'apply');
  const [{ planFleet }, { applyLocal }, reach] = await Promise.all([
    import('../render/fleet.js'),
    import('../provision/local/fleet.js'),
    import('../provision/local/reachability.js'),
  ]);
  // Rendered in memory: each host's files are copied into the run dir as they are used.
  const r = planFleet(topologyFile, { ...(opts.state ? { state: opts.state } : {}), write: false });
  if (!r.plan || !r.files)
    throw new VigilError(
      'LINT_FAILED',
      `${topologyFile}: lint errors`,
      `vigil plan ${topologyFile}`,
    );
  const t0 = performance.now();
  const fleet = await applyLocal({
    plan: r.plan,
    files: r.files,
    stateDir: r.state,
    progress: progressPrinter(),
  });
  process.stdout.write(
    `Local fleet ${fleet.record.fleet} (${fleet.record.fleetId}) up in ${((performance.now() - t0) / 1000).toFixed(1)} s: ` +
      `${fleet.record.hosts.length} hosts, WireGuard by ${fleet.wireguardMode}; run record ${fleet.recordFile}\n`,
  );
  for (const h of fleet.record.hosts)
    process.stdout.write(
      `  ${h.name.padEnd(16)} ${h.netns.padEnd(24)} ${h.publicAddress.padEnd(14)} ${h.vpnAddress}\n`,
    );
  if (opts.check) {
    const publicAddress = new Map(fleet.record.hosts.map((h) => [h.name, h.publicAddress]));
    const flows = reach.deriveFlows(r.plan, reach.servicesOf(r.plan, r.files), publicAddress);
    const results = await reach.probeFlows(fleet.record, flows);
    for (const x of results) process.stdout.write(reach.formatFlow(x) + '\n');
    const bad = results.filter((x) => !x.ok).length;
    process.stdout.write(`${results.length} flows checked, ${bad} not as planned\n`);
    if (bad > 0) process.exitCode = 1;
    if (fleet.monitor && !(await checkMonitor(fleet.monitor))) process.exitCode = 1;
  }
  process.stdout.write(`Tear down: vigil destroy --local ${topologyFile}\n`);
}

/**
 * The monitor's own view, from its Prometheus's HTTP API in its namespace: every rendered
 * scrape target `up == 1` (within 60 s: four rendered 15 s scrape intervals) and every
 * rendered rule group loaded with all its rules.
 */
async function checkMonitor(stack: MonitorStack): Promise<boolean> {
  const m = await import('../provision/local/monitor.js');
  const targets = await m.waitTargetsUp(stack, 60_000);
  for (const t of targets) process.stdout.write(m.formatTarget(t, stack) + '\n');
  const down = targets.filter((t) => !m.targetOk(t)).length;
  const skipped = targets.filter((t) => t.up === 'not run').length;
  const loaded = m.readLoadedRuleGroups(stack);
  let badGroups = 0;
  for (const g of stack.ruleGroups) {
    const got = loaded.find((l) => l.name === g.name);
    const ok = got?.rules === g.rules;
    if (!ok) badGroups++;
    process.stdout.write(
      `${ok ? 'ok  ' : 'FAIL'} ${stack.host} Prometheus loaded rule group ${g.name}: ${got?.rules ?? 'no'} of ${g.rules} rules\n`,
    );
  }
  process.stdout.write(
    `${targets.length} scrape targets checked, ${down} not up${skipped > 0 ? `, ${skipped} not run locally` : ''}; ` +
      `${stack.ruleGroups.length} rule groups, ${badGroups} not loaded\n`,
  );
  return down === 0 && badGroups === 0;
}

export async function destroyLocalCommand(file: string | undefined, opts: LocalOptions) {
  const [{ destroyLocal }, { defaultDirs }, { loadTopology }] = await Promise.all([
    import('../provision/local/fleet.js'),
    import('../render/fleet.js'),
    import('../topology/load.js'),
  ]);
  const state = opts.state ?? defaultDirs(loadTopology(needTopology(file, 'destroy')).name).state;
  const { removed } = await destroyLocal(state, progressPrinter());
  process.stdout.write(
    `Local fleet destroyed: ${removed} recorded namespaces, links and processes removed\n`,
  );
}
