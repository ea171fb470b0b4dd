/**
 * `vigil watchdog --config <file>`: runs a supervised node and stops it at the lease deadline
 * its agent last confirmed, whatever becomes of the agent (see examples/supervisor).
 */
import { Command } from 'commander';

export function watchdogCommand(): Command {
  return new Command('watchdog')
    .description(
      'run a supervised node and stop it at the lease deadline, even if the agent is frozen or dead',
    )
    .requiredOption('-c, --config <file>', 'watchdog configuration (YAML)')
    .action(async (opts: { config: string }) => {
      // Loaded when run, not at every `vigil` start (see bench/startup.ts).
      const [{ pino }, { Watchdog, loadWatchdogConfig }] = await Promise.all([
        import('pino'),
        import('../watchdog/index.js'),
      ]);
      const config = loadWatchdogConfig(opts.config);
      const log = pino({ base: { watchdog: config.role } });
      const watchdog = new Watchdog(config, log);
      await watchdog.start();
      log.info({ socket: config.socket, nodePid: watchdog.nodePid() }, 'watchdog ready');
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log.info({ signal }, 'stopping');
          watchdog.stop().then(resolve, (err: unknown) => {
            log.error({ err }, 'error while stopping');
            process.exitCode = 1;
            resolve();
          });
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
