/** `vigil plan <topology>`: lint, render every file for the fleet and print a summary. */
import { rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { loadTopology, topologyJsonSchema } from '../topology/load.js';
import {
  LINT_RULES,
  formatFinding,
  hasErrors,
  lintTopology,
  type LintFinding,
} from '../topology/lint.js';
import { buildPlan, type Plan } from '../topology/plan.js';
import type { Topology } from '../topology/schema.js';
import {
  PlanState,
  formatSummary,
  loadPrices,
  renderPlan,
  summarize,
  writeRendered,
  type PlanSummary,
} from '../render/index.js';
import { VigilError } from '../errors.js';

export interface PlanResult {
  readonly topology: Topology;
  readonly findings: readonly LintFinding[];
  /** Absent when lint found errors: nothing is rendered from a fleet that breaks the rules. */
  readonly plan?: Plan;
  readonly files?: Map<string, string>;
  readonly summary?: PlanSummary;
}

export function defaultDirs(fleet: string): { out: string; state: string } {
  return { out: resolve('.vigil', fleet, 'plan'), state: resolve('.vigil', fleet, 'state') };
}

/** Everything `vigil plan` does short of printing; used by tests and other commands. */
export function planFleet(
  topologyFile: string,
  opts: { out?: string; state?: string; write?: boolean } = {},
): PlanResult & { out: string; state: string } {
  const topology = loadTopology(topologyFile);
  const dirs = defaultDirs(topology.name);
  const out = opts.out ?? dirs.out;
  const stateDir = opts.state ?? dirs.state;
  const findings = lintTopology(topology);
  if (hasErrors(findings)) return { topology, findings, out, state: stateDir };
  const state = new PlanState(stateDir);
  const plan = buildPlan(topology, state);
  const files = renderPlan(plan, state);
  files.set('topology.schema.json', topologyJsonSchema());
  if (opts.write !== false) {
    // Stale files of removed hosts must not linger; terraform/ keeps its local state.
    rmSync(join(out, 'hosts'), { recursive: true, force: true });
    writeRendered(out, files);
  }
  const summary = summarize(plan, loadPrices());
  return { topology, findings, plan, files, summary, out, state: stateDir };
}

interface PlanOptions {
  out?: string;
  state?: string;
  jsonSchema?: string;
  json?: boolean;
  rules?: boolean;
}

export function planCommand(): Command {
  return new Command('plan')
    .description('check a topology file against the fleet rules and render every file for it')
    .argument('[topology]', 'topology YAML file')
    .option('--out <dir>', 'where rendered files go (default .vigil/<fleet>/plan)')
    .option('--state <dir>', 'where generated keys are kept (default .vigil/<fleet>/state)')
    .option('--json-schema <file>', 'write the topology JSON Schema for editors to this file')
    .option('--json', 'print findings and the summary as JSON (for scripts)')
    .option('--rules', 'list the lint rules and exit')
    .action((file: string | undefined, opts: PlanOptions) => {
      if (opts.rules) {
        for (const [code, reason] of Object.entries(LINT_RULES))
          process.stdout.write(`${code.padEnd(28)} ${reason}\n`);
        return;
      }
      if (opts.jsonSchema) {
        mkdirSync(resolve(opts.jsonSchema, '..'), { recursive: true });
        writeFileSync(opts.jsonSchema, topologyJsonSchema());
        process.stdout.write(`wrote ${opts.jsonSchema}\n`);
        if (!file) return;
      }
      if (!file)
        throw new VigilError('USAGE', 'vigil plan needs a topology file', 'vigil plan fleet.yaml');
      const r = planFleet(file, opts);
      if (opts.json)
        process.stdout.write(
          JSON.stringify(
            {
              fleet: r.topology.name,
              ok: r.plan !== undefined,
              findings: r.findings,
              ...(r.plan ? { out: r.out, state: r.state, summary: r.summary } : {}),
            },
            null,
            2,
          ) + '\n',
        );
      for (const f of r.findings) process.stderr.write(formatFinding(file, f) + '\n');
      if (!r.plan) {
        const n = r.findings.filter((f) => f.severity === 'error').length;
        throw new VigilError(
          'LINT_FAILED',
          `${file}: ${n} lint error(s); nothing was rendered`,
          'fix the findings above and plan again',
        );
      }
      if (opts.json) return;
      process.stdout.write(
        `Planned fleet ${r.topology.name}: ${r.plan.hosts.length} hosts, ${r.files!.size} files in ${r.out}\n` +
          `Keys are kept in ${r.state} (back it up; never commit it).\n`,
      );
      process.stdout.write(formatSummary(r.summary!));
      process.stdout.write(`Next: vigil apply --out ${r.out}\n`);
    });
}
