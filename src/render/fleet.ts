/**
 * Planning a fleet from its topology file: lint, then render every file (and write them).
 * `vigil plan` prints what this returns; tests and other commands call it directly.
 */
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadTopology, topologyJsonSchema } from '../topology/load.js';
import { hasErrors, lintTopology, type LintFinding } from '../topology/lint.js';
import { buildPlan, type Plan } from '../topology/plan.js';
import type { Topology } from '../topology/schema.js';
import { PLAN_FINDINGS_FILE } from '../provision/terraform.js';
import {
  PlanState,
  loadPrices,
  renderPlan,
  summarize,
  writeRendered,
  type PlanSummary,
} from './index.js';

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
  // Warnings included: `vigil apply` refuses the ones that would fail on the hosts.
  files.set(PLAN_FINDINGS_FILE, JSON.stringify({ findings }, null, 2) + '\n');
  if (opts.write !== false) {
    // Stale files of removed hosts must not linger; terraform/ keeps its local state.
    rmSync(join(out, 'hosts'), { recursive: true, force: true });
    writeRendered(out, files);
  }
  const summary = summarize(plan, loadPrices());
  return { topology, findings, plan, files, summary, out, state: stateDir };
}
