import { Command, InvalidArgumentError } from 'commander';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChaosReport } from '../devnet/chaos.js';
import { ETCD_FAULT_KINDS, FAULT_KINDS, type FaultKind } from '../devnet/fault-kinds.js';
import type { LocalChaosReport, LocalFaultKind } from '../provision/local/chaos.js';
import { VigilError } from '../errors.js';
import { packageRoot } from '../package-root.js';
import { defaultWorkDir } from '../devnet/work-dir.js';

function positive(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

/**
 * The local fleet's fault kinds (src/provision/local/chaos.ts), named here so that parsing
 * the options loads no fleet code.
 */
const LOCAL_KINDS: readonly LocalFaultKind[] = [
  'partition-in',
  'partition-out',
  'partition-both',
  'host-loss',
  'slow-link',
];

function kindsOption(v: string): string[] {
  const kinds = v.split(',').map((k) => k.trim());
  for (const k of kinds) {
    if (!FAULT_KINDS.includes(k as FaultKind) && !LOCAL_KINDS.includes(k as LocalFaultKind))
      throw new InvalidArgumentError(
        `unknown fault kind ${k}; known: ${FAULT_KINDS.join(', ')} (devnet), ${LOCAL_KINDS.join(', ')} (--local)`,
      );
  }
  return kinds;
}

function hostsOption(v: string): string[] {
  const hosts = v.split(',').map((h) => h.trim());
  if (hosts.some((h) => h === ''))
    throw new InvalidArgumentError('expected host names, comma separated');
  return hosts;
}

export function formatChaosReport(r: ChaosReport | LocalChaosReport): string {
  const d = r.devnet;
  const local = 'fleet' in r;
  const lines = [
    `chaos report (${local ? `local fleet ${r.fleet}, ` : ''}seed ${r.seed}, ${(r.durationMs / 1000).toFixed(0)} s, ${r.store} store)`,
    `  faults injected   ${r.faults}  (${Object.entries(r.faultsByKind)
      // etcd kinds only where the devnet has an etcd cluster to hit.
      .filter(([k]) => r.store === 'etcd' || !ETCD_FAULT_KINDS.includes(k as FaultKind))
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')})`,
    `  positions         ${d.ticks}  signed ${d.signed}  missed ${d.missed} (${r.missedPercent.toFixed(2)} %)`,
    `  signatures        ${d.signatures}  refusals ${d.refusals}  invalid ${d.invalidSignatures}`,
    `  EQUIVOCATIONS     ${d.equivocations}`,
    `  fault → next good signature  p50 ${r.recoveryMs.p50} ms  p95 ${r.recoveryMs.p95} ms  max ${r.recoveryMs.max} ms  (${r.recoveryMs.samples} faults)`,
  ];
  if (local) {
    const m = r.resumedMs;
    lines.push(
      `  heal → next good signature   p50 ${m.p50} ms  p95 ${m.p95} ms  max ${m.max} ms  (${m.samples} faults, ${m.neverResumed} never resumed)`,
      `  evidence from     ${r.validatorNodes.join(', ')} (block time ${r.blockTimeMs} ms)`,
    );
    const failed = r.faultLog.filter((f) => f.error !== undefined);
    for (const f of failed) lines.push(`  ! ${f.kind} ${f.host}: ${f.error}`);
    if (r.interrupted) lines.push('  (interrupted: the report covers what ran)');
  }
  return lines.join('\n');
}

export function chaosCommand(): Command {
  return new Command('chaos')
    .description(
      'run a devnet (with --local: the local fleet of a topology) under seeded, reproducible fault injection and report equivocations, misses and recovery times',
    )
    .argument(
      '[devnet]',
      'devnet file (YAML); default: examples/devnet/devnet.yaml. With --local: the topology',
    )
    .option(
      '--local',
      'fault the local fleet of the topology (root): partitions, host loss and restart, slow links; applies it first and destroys it after, unless one is already running for --state, which is left up',
    )
    .option(
      '--state <dir>',
      'with --local: the plan state directory (default .vigil/<fleet>/state)',
    )
    .option('--targets <hosts>', 'with --local: hosts faults may hit, comma separated', hostsOption)
    .option(
      '--block-time <ms>',
      'with --local, when it applies the fleet: ms per simulated height',
      positive,
      500,
    )
    .option('--keep', 'with --local: leave a fleet chaos applied up afterwards')
    .option('--seed <n>', 'seed of the fault schedule', (v) => Math.trunc(positive(v)), 1)
    .option('--duration <seconds>', 'how long to run', positive, 60)
    .option('--interval <ms>', 'mean time between faults', positive, 1000)
    .option('--max-fault <ms>', 'longest a single fault lasts', positive, 3000)
    .option(
      '--kinds <list>',
      `fault kinds, comma separated (${FAULT_KINDS.join(', ')}; etcd-* need store: etcd; with --local: ${LOCAL_KINDS.join(', ')})`,
      kindsOption,
    )
    .option(
      '--work-dir <dir>',
      'where keys, configs and the store are kept (default: .vigil/chaos-<devnet name>)',
    )
    .option('--json', 'print only the report, as JSON, on standard output')
    .option('--json-out <file>', 'also write the report as JSON to this file')
    .action(
      async (
        file: string | undefined,
        opts: {
          seed: number;
          duration: number;
          interval: number;
          maxFault: number;
          kinds?: string[];
          workDir?: string;
          json?: boolean;
          jsonOut?: string;
          local?: boolean;
          state?: string;
          targets?: string[];
          blockTime: number;
          keep?: boolean;
        },
      ) => {
        if (opts.local) return localChaos(file, opts);
        const wrong = (opts.kinds ?? []).filter((k) => !FAULT_KINDS.includes(k as FaultKind));
        if (wrong.length > 0)
          throw new VigilError(
            'USAGE',
            `fault kinds ${wrong.join(', ')} are for the local fleet`,
            `use them with vigil chaos --local <topology>, or pick from ${FAULT_KINDS.join(', ')}`,
          );
        // Loaded when run, not at every `vigil` start (see bench/startup.ts).
        const [{ loadDevnetFile }, { runChaos }] = await Promise.all([
          import('../devnet/devnet-file.js'),
          import('../devnet/chaos.js'),
        ]);
        const devnet = loadDevnetFile(
          file ?? join(packageRoot(), 'examples', 'devnet', 'devnet.yaml'),
        );
        const workDir = opts.workDir ?? defaultWorkDir('chaos', devnet.name);
        // With --json, standard output carries the JSON report alone.
        (opts.json ? process.stderr : process.stdout).write(
          `vigil chaos: devnet ${devnet.name}, seed ${opts.seed}, ${opts.duration} s\n`,
        );
        // The agents run in process groups of their own (devnet/agent-process.ts): Ctrl-C, a
        // SIGTERM or a closed terminal reaches this process, which stops them and reports.
        const abort = new AbortController();
        const onSignal = () => abort.abort();
        const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
        for (const s of signals) process.once(s, onSignal);
        let report: Awaited<ReturnType<typeof runChaos>>;
        try {
          report = await runChaos({
            file: devnet,
            workDir,
            seed: opts.seed,
            durationMs: opts.duration * 1000,
            meanIntervalMs: opts.interval,
            maxFaultMs: opts.maxFault,
            signal: abort.signal,
            ...(opts.kinds ? { kinds: opts.kinds as FaultKind[] } : {}),
          });
        } finally {
          for (const s of signals) process.off(s, onSignal);
        }
        const json = `${JSON.stringify(report, null, 2)}\n`;
        process.stdout.write(opts.json ? json : `${formatChaosReport(report)}\n`);
        if (opts.jsonOut !== undefined) writeFileSync(opts.jsonOut, json);
        if (report.devnet.equivocations > 0 || report.devnet.invalidSignatures > 0)
          process.exitCode = 2;
      },
    );
}

/**
 * `vigil chaos --local <topology>`: the local fleet of the topology under the seeded fault
 * schedule. A fleet already running for the state dir (its run record exists) is used as it
 * is and left up, healed; otherwise one is applied first and destroyed afterwards (unless
 * --keep). Ctrl-C, SIGTERM or SIGHUP stop the schedule: active faults are healed, lost hosts
 * restarted, the fleet chaos applied destroyed, and the report covers what ran.
 */
async function localChaos(
  file: string | undefined,
  opts: {
    seed: number;
    duration: number;
    interval: number;
    maxFault: number;
    kinds?: string[];
    json?: boolean;
    jsonOut?: string;
    state?: string;
    targets?: string[];
    blockTime: number;
    keep?: boolean;
  },
): Promise<void> {
  if (!file)
    throw new VigilError(
      'USAGE',
      'vigil chaos --local needs the topology file',
      'vigil chaos --local examples/local/cosmos-guarded.yaml',
    );
  const wrong = (opts.kinds ?? []).filter((k) => !LOCAL_KINDS.includes(k as LocalFaultKind));
  if (wrong.length > 0)
    throw new VigilError(
      'USAGE',
      `fault kinds ${wrong.join(', ')} are for a devnet, not the local fleet`,
      `with --local pick from ${LOCAL_KINDS.join(', ')}`,
    );
  const [{ planFleet }, fleetMod, { RunRecordFile }, { runLocalChaos }, { progressPrinter }] =
    await Promise.all([
      import('../render/fleet.js'),
      import('../provision/local/fleet.js'),
      import('../provision/local/run-record.js'),
      import('../provision/local/chaos.js'),
      import('./local-fleet.js'),
    ]);
  const r = planFleet(file, { ...(opts.state ? { state: opts.state } : {}), write: false });
  if (!r.plan || !r.files)
    throw new VigilError('LINT_FAILED', `${file}: lint errors`, `vigil plan ${file}`);
  fleetMod.preflight(r.plan);
  const out = opts.json ? process.stderr : process.stdout;
  const recordPath = join(r.state, fleetMod.RUN_RECORD);
  const preExisting = existsSync(recordPath);
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSignal);
  let applied = false;
  let report: LocalChaosReport | undefined;
  try {
    if (!preExisting) {
      out.write(
        `vigil chaos --local: applying ${r.plan.topology.name} (destroyed afterwards${opts.keep ? ': no, --keep' : ''})\n`,
      );
      await fleetMod.applyLocal({
        plan: r.plan,
        files: r.files,
        stateDir: r.state,
        progress: progressPrinter(),
        blockTimeMs: Math.round(opts.blockTime),
      });
      applied = true;
    }
    const record = RunRecordFile.load(recordPath);
    if (record.record.fleet !== r.plan.topology.name)
      throw new VigilError(
        'USAGE',
        `${recordPath} is the local fleet ${record.record.fleet}, not ${r.plan.topology.name}`,
        'pass the topology that fleet was applied from, or another --state',
      );
    out.write(
      `vigil chaos --local: fleet ${record.record.fleet} (${record.record.fleetId}), seed ${opts.seed}, ${opts.duration} s${preExisting ? ' (running fleet, left up)' : ''}\n`,
    );
    report = await runLocalChaos({
      record,
      plan: r.plan,
      files: r.files,
      seed: opts.seed,
      durationMs: opts.duration * 1000,
      meanIntervalMs: opts.interval,
      maxFaultMs: opts.maxFault,
      signal: abort.signal,
      onEvent: (line) => process.stderr.write(`${line}\n`),
      ...(opts.kinds ? { kinds: opts.kinds as LocalFaultKind[] } : {}),
      ...(opts.targets ? { targets: opts.targets } : {}),
    });
  } finally {
    try {
      if (applied && !opts.keep) {
        await fleetMod.destroyLocal(r.state, progressPrinter());
        out.write(`vigil chaos --local: fleet destroyed\n`);
      } else if (applied)
        out.write(`Tear down: vigil destroy --local ${file} --state ${r.state}\n`);
    } finally {
      for (const s of signals) process.off(s, onSignal);
    }
  }
  const json = `${JSON.stringify(report, null, 2)}\n`;
  process.stdout.write(opts.json ? json : `${formatChaosReport(report)}\n`);
  if (opts.jsonOut !== undefined) writeFileSync(opts.jsonOut, json);
  if (report.devnet.equivocations > 0 || report.devnet.invalidSignatures > 0) process.exitCode = 2;
}
