/** `vigil plan <topology>`: lint, render every file for the fleet and print a summary. */
import { writeFileSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { VigilError } from '../errors.js';

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
    .action(async (file: string | undefined, opts: PlanOptions) => {
      // Loaded when run, not at every `vigil` start (see bench/startup.ts).
      const [
        { planFleet },
        { LINT_RULES, formatFinding },
        { topologyJsonSchema },
        { formatSummary },
      ] = await Promise.all([
        import('../render/fleet.js'),
        import('../topology/lint.js'),
        import('../topology/load.js'),
        import('../render/index.js'),
      ]);
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
      const local = r.plan.hosts.every((h) => h.provider === 'local');
      process.stdout.write(
        local
          ? `Next (root; every host is a network namespace here): vigil apply ${file} --state ${r.state} --check\n`
          : `Next: vigil apply --out ${r.out}\n`,
      );
    });
}
