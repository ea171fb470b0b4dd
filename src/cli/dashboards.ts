/**
 * `vigil dashboards --out DIR`: writes Vigil's Grafana dashboards (JSON) and their
 * provisioning (dashboards provider, Prometheus datasource) under DIR, laid out as under /etc
 * on the monitor host: DIR/grafana/dashboards/*.json, DIR/grafana/provisioning/….
 */
import { Command } from 'commander';
import { InputError } from '../errors.js';

/** Outside input: checked before anything is written. zod is loaded only when the command runs. */
async function optionsSchema() {
  const { z } = await import('zod');
  return z.object({
    out: z.string().min(1),
    prometheusUrl: z
      .string()
      .url()
      .refine((u) => /^https?:$/.test(new URL(u).protocol), 'not an http(s) URL'),
    dashboardsDir: z
      .string()
      .refine((p) => p.startsWith('/') && !/\s/.test(p), 'not an absolute path'),
  });
}

export function dashboardsCommand(): Command {
  return (
    new Command('dashboards')
      .description(
        'write the Grafana dashboards (fleet, signer, one per chain) and their provisioning YAML under a directory',
      )
      .requiredOption(
        '--out <dir>',
        'directory to write grafana/dashboards and grafana/provisioning into',
      )
      // Defaults spelled out here: the renderer is loaded only when the command runs.
      .option(
        '--prometheus-url <url>',
        "the monitor's Prometheus as Grafana's server reaches it",
        'http://127.0.0.1:9090',
      )
      .option(
        '--dashboards-dir <path>',
        "where the dashboard JSON lives on Grafana's host (the provider's options.path)",
        '/etc/grafana/dashboards',
      )
      .action(async (raw: Record<string, unknown>) => {
        const parsed = (await optionsSchema()).safeParse(raw);
        if (!parsed.success) {
          const issue = parsed.error.issues[0]!;
          throw new InputError(
            `--${String(issue.path[0]).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${issue.message}`,
            'e.g. vigil dashboards --out ./grafana-out --prometheus-url http://10.77.0.9:9090',
          );
        }
        const opts = parsed.data;
        const [{ grafanaFiles }, { mkdirSync, writeFileSync }, { dirname, join }] =
          await Promise.all([
            import('../grafana/provisioning.js'),
            import('node:fs'),
            import('node:path'),
          ]);
        const files = grafanaFiles({
          prometheusUrl: opts.prometheusUrl,
          dashboardsDir: opts.dashboardsDir,
        });
        for (const [path, content] of files) {
          const file = join(opts.out, path);
          mkdirSync(dirname(file), { recursive: true });
          writeFileSync(file, content);
          process.stdout.write(`${file}\n`);
        }
      })
  );
}
