import { Command } from 'commander';

export function agentCommand(): Command {
  return new Command('agent')
    .description('run the Vigil agent: guarded signing and the permission API on this host')
    .requiredOption('-c, --config <file>', 'agent configuration (YAML)')
    .action(async (opts: { config: string }) => {
      // Loaded when run, not at every `vigil` start (see bench/startup.ts).
      const [{ loadAgentConfig }, { startAgent }] = await Promise.all([
        import('../agent/config.js'),
        import('../agent/daemon.js'),
      ]);
      const agent = await startAgent(loadAgentConfig(opts.config));
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          agent.logger.info({ signal }, 'stopping');
          agent.stop().then(resolve, (err) => {
            agent.logger.error({ err }, 'error while stopping');
            resolve();
          });
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
