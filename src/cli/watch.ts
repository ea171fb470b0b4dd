/**
 * `vigil watch --config <file>`: chain watchers (CometBFT: height stall, missed blocks, jailed,
 * tombstoned, peers, catching up; Cardano: KES expiry, forged/adopted, missed slots, block
 * delay; Decred: voting wallets' state, tickets and drift; Polkadot: best vs finalized, peers,
 * syncing, session keys, para-validation finality lag), their metrics on /metrics and /healthz.
 */
import { Command } from 'commander';

export function watchCommand(): Command {
  return new Command('watch')
    .description(
      'watch chains (CometBFT: height stall, missed blocks, jailed, tombstoned, peers; Cardano: KES expiry, forged/adopted, missed slots, block delay; Decred: voting wallets, tickets, drift; Polkadot: finality lag, peers, session keys, para finality lag) and serve their Prometheus metrics',
    )
    .requiredOption('-c, --config <file>', 'watch configuration (YAML, see examples/watch)')
    .action(async (opts: { config: string }) => {
      // Loaded when run, not at every `vigil` start (zod, yaml, prom-client, pino).
      const [{ pino }, { loadWatchConfig, runWatch }, { watchChainName }] = await Promise.all([
        import('pino'),
        import('../watch/index.js'),
        import('../watch/config.js'),
      ]);
      const config = loadWatchConfig(opts.config);
      const log = pino({ base: { component: 'watch' } });
      const running = await runWatch(config, { log });
      log.info(
        { url: running.url, chains: config.chains.map(watchChainName) },
        'watching; metrics on /metrics',
      );
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log.info({ signal }, 'stopping');
          running.stop().then(resolve, (err: unknown) => {
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
