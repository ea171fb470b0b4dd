/**
 * `vigil dashboard`: the agents' web dashboard for a fleet, on a local port. The same page an
 * agent serves on its metrics listener (GET /dashboard), fed by every agent of a plan (their
 * metrics listeners, over the VPN), a list of agent URLs, or one agent's config, plus the
 * alerts firing in Prometheus when given. Runs until SIGINT or SIGTERM.
 */
import { Command, Option } from 'commander';
import { InputError, VigilError } from '../errors.js';
import { configOption, resolveConfigPath } from './config-location.js';
import { prometheusUrl, timeoutMs } from './status.js';

interface Options {
  config?: string;
  plan?: string;
  agent?: string[];
  prometheus?: string;
  listen: string;
  timeout: string;
}

/** host:port, [v6]:port; port 0 picks a free one. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535)
    throw new InputError(
      `--listen ${text}: give host:port`,
      'e.g. 127.0.0.1:7780 (the default), or [::1]:7780',
      'USAGE',
    );
  return { host: (m[1] ?? m[2])!, port };
}

/** An agent's metrics listener, given as a URL. */
export function agentUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InputError(
      `--agent ${text} is not a URL`,
      "give the agent's metrics listener, e.g. http://10.77.0.2:9810",
      'USAGE',
    );
  }
  if (url.protocol !== 'http:' || url.pathname !== '/' || url.search || url.hash || url.username)
    throw new InputError(
      `--agent ${text}: give the http:// origin of the agent's metrics listener, without a path`,
      'e.g. http://10.77.0.2:9810',
      'USAGE',
    );
  return url.origin;
}

export function dashboardCommand(): Command {
  return new Command('dashboard')
    .description(
      'serve the web dashboard of every agent of a plan (or of the agents given) on a local port: health, role holders, watermarks, last signatures, refusals, alerts',
    )
    .addOption(configOption('one agent, reached on its own listeners'))
    .addOption(
      new Option(
        '--plan <dir>',
        'every agent of a `vigil plan` output directory, on its metrics listener (over the VPN)',
      ).conflicts(['config', 'agent']),
    )
    .addOption(
      new Option(
        '--agent <url...>',
        "agents' metrics listeners, e.g. http://10.77.0.2:9810 (repeatable)",
      ).conflicts('config'),
    )
    .option('--prometheus <url>', 'also show the alerts firing in this Prometheus')
    .option('--listen <host:port>', 'where to serve the dashboard', '127.0.0.1:7780')
    .option('--timeout <ms>', 'per request to an agent', '3000')
    .action(async (o: Options) => {
      const timeout = timeoutMs(o.timeout);
      const alerts = o.prometheus !== undefined ? prometheusUrl(o.prometheus) : undefined;
      const listen = parseListen(o.listen);
      const urls = (o.agent ?? []).map(agentUrl);
      // Loaded when run, not at every `vigil` start.
      const [{ configListeners, planTargets }, { fleetOverview, serveDashboard }] =
        await Promise.all([import('../status/fetch.js'), import('../dashboard/fleet.js')]);
      let targets;
      if (o.plan !== undefined) targets = planTargets(o.plan);
      else if (urls.length > 0)
        targets = urls.map((url) => ({
          name: new URL(url).host,
          listeners: [{ via: 'metricsListen' as const, where: url, endpoint: () => ({ url }) }],
        }));
      else {
        const { loadAgentConfig } = await import('../agent/config.js');
        const config = loadAgentConfig(resolveConfigPath(o.config));
        targets = [{ name: config.agent.id, listeners: configListeners(config) }];
      }
      const running = await serveDashboard(
        () =>
          fleetOverview({
            targets,
            timeoutMs: timeout,
            ...(alerts !== undefined ? { prometheus: alerts } : {}),
          }),
        listen,
      ).catch((err: unknown) => {
        const code = (err as { code?: string }).code;
        throw new VigilError(
          'DASHBOARD_LISTEN',
          `cannot listen on ${o.listen}: ${code ?? String(err)}`,
          code === 'EADDRINUSE' ? 'pick another port with --listen' : undefined,
        );
      });
      process.stdout.write(
        `vigil dashboard: ${targets.length} agent(s) at ${running.url}/dashboard; Ctrl-C stops\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = () => void running.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
