/**
 * `vigil status`: one agent (its own config) or every agent of a plan — health, readiness and
 * why not, store, roles and holders, last signatures per chain and key, refusals, and the
 * alerts firing in Prometheus. Exit 0 when every agent is ready, 2 when one is unreachable or
 * not ready (or the Prometheus given could not be read), 1 on a usage error.
 */
import { Command, Option } from 'commander';
import { InputError } from '../errors.js';
import { configOption, resolveConfigPath } from './config-location.js';

interface Options {
  config?: string;
  plan?: string;
  prometheus?: string;
  json?: boolean;
  timeout: string;
}

export function timeoutMs(text: string): number {
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || n < 100 || n > 120_000)
    throw new InputError(
      `--timeout ${text}: give milliseconds between 100 and 120000`,
      undefined,
      'USAGE',
    );
  return n;
}

export function prometheusUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InputError(
      `--prometheus ${text} is not a URL`,
      'e.g. http://10.77.0.9:9090',
      'USAGE',
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new InputError(`--prometheus ${text}: only http and https URLs`, undefined, 'USAGE');
  return text;
}

export function statusCommand(): Command {
  return new Command('status')
    .description(
      'health, readiness, store, roles, last signatures, refusals and alerts of one agent or of every agent of a plan',
    )
    .addOption(configOption('the agent config, reached on its own listeners'))
    .addOption(
      new Option(
        '--plan <dir>',
        'every agent of a `vigil plan` output directory, on its metrics listener (over the VPN)',
      ).conflicts('config'),
    )
    .option('--prometheus <url>', 'also list the alerts firing in this Prometheus')
    .option('--json', 'machine-readable output')
    .option('--timeout <ms>', 'per request', '5000')
    .action(async (o: Options) => {
      const timeout = timeoutMs(o.timeout);
      const alertsUrl = o.prometheus !== undefined ? prometheusUrl(o.prometheus) : undefined;
      // Loaded when run, not at every `vigil` start (zod, yaml, the HTTP client).
      const [{ configListeners, planTargets, probeAgent, fetchAlerts }, report] = await Promise.all(
        [import('../status/fetch.js'), import('../status/report.js')],
      );
      let targets;
      if (o.plan !== undefined) {
        targets = planTargets(o.plan);
      } else {
        const { loadAgentConfig } = await import('../agent/config.js');
        const config = loadAgentConfig(resolveConfigPath(o.config));
        targets = [{ name: config.agent.id, listeners: configListeners(config) }];
      }
      const [probes, alerts] = await Promise.all([
        Promise.all(targets.map((t) => probeAgent(t, timeout))),
        alertsUrl !== undefined ? fetchAlerts(alertsUrl, timeout) : undefined,
      ]);
      const r = report.buildReport(probes, Date.now(), alerts);
      process.stdout.write(o.json ? JSON.stringify(r, null, 2) + '\n' : report.formatReport(r));
      process.exitCode = report.exitCodeOf(r);
    });
}
