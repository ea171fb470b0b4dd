import { Command, InvalidArgumentError } from 'commander';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChaosReport } from '../devnet/chaos.js';
import { ETCD_FAULT_KINDS, FAULT_KINDS, type FaultKind } from '../devnet/fault-kinds.js';
import { packageRoot } from '../package-root.js';
import { defaultWorkDir } from '../devnet/work-dir.js';

function positive(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

function kindsOption(v: string): FaultKind[] {
  const kinds = v.split(',').map((k) => k.trim());
  for (const k of kinds) {
    if (!FAULT_KINDS.includes(k as FaultKind))
      throw new InvalidArgumentError(`unknown fault kind ${k}; known: ${FAULT_KINDS.join(', ')}`);
  }
  return kinds as FaultKind[];
}

export function formatChaosReport(r: ChaosReport): string {
  const d = r.devnet;
  return [
    `chaos report (seed ${r.seed}, ${(r.durationMs / 1000).toFixed(0)} s, ${r.store} store)`,
    `  faults injected   ${r.faults}  (${Object.entries(r.faultsByKind)
      // etcd kinds only where the devnet has an etcd cluster to hit.
      .filter(([k]) => r.store === 'etcd' || !ETCD_FAULT_KINDS.includes(k as FaultKind))
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')})`,
    `  positions         ${d.ticks}  signed ${d.signed}  missed ${d.missed} (${r.missedPercent.toFixed(2)} %)`,
    `  signatures        ${d.signatures}  refusals ${d.refusals}  invalid ${d.invalidSignatures}`,
    `  EQUIVOCATIONS     ${d.equivocations}`,
    `  fault → next good signature  p50 ${r.recoveryMs.p50} ms  p95 ${r.recoveryMs.p95} ms  max ${r.recoveryMs.max} ms  (${r.recoveryMs.samples} faults)`,
  ].join('\n');
}

export function chaosCommand(): Command {
  return new Command('chaos')
    .description(
      'run a devnet under seeded, reproducible fault injection and report equivocations, misses and recovery times',
    )
    .argument('[devnet]', 'devnet file (YAML); default: examples/devnet/devnet.yaml')
    .option('--seed <n>', 'seed of the fault schedule', (v) => Math.trunc(positive(v)), 1)
    .option('--duration <seconds>', 'how long to run', positive, 60)
    .option('--interval <ms>', 'mean time between faults', positive, 1000)
    .option('--max-fault <ms>', 'longest a single fault lasts', positive, 3000)
    .option(
      '--kinds <list>',
      `fault kinds, comma separated (${FAULT_KINDS.join(', ')}; etcd-* need store: etcd)`,
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
          kinds?: FaultKind[];
          workDir?: string;
          json?: boolean;
          jsonOut?: string;
        },
      ) => {
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
            ...(opts.kinds ? { kinds: opts.kinds } : {}),
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
