import { Command } from 'commander';
import { configOption, resolveConfigPath } from './config-location.js';

export function agentCommand(): Command {
  return new Command('agent')
    .description('run the Vigil agent: guarded signing and the permission API on this host')
    .addOption(configOption('agent configuration (YAML)', true))
    .action(async (opts: { config?: string }) => {
      // Loaded when run, not at every `vigil` start (see bench/startup.ts).
      const [{ loadAgentConfig }, { startAgent }] = await Promise.all([
        import('../agent/config.js'),
        import('../agent/daemon.js'),
      ]);
      // Signals are caught from before the start: a Ctrl-C while the agent is starting (its
      // store opening, its listeners binding) waits for the start, then stops it cleanly,
      // instead of killing it half-way.
      let signalled: string | undefined;
      let onSignal: (signal: string) => void = (signal) => {
        signalled ??= signal;
      };
      process.once('SIGINT', () => onSignal('SIGINT'));
      process.once('SIGTERM', () => onSignal('SIGTERM'));
      const agent = await startAgent(loadAgentConfig(resolveConfigPath(opts.config)));
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          agent.logger.info({ signal }, 'stopping');
          agent.stop().then(resolve, (err) => {
            agent.logger.error({ err }, 'error while stopping');
            resolve();
          });
        };
        if (signalled !== undefined) stop(signalled);
        else onSignal = stop;
      });
    });
}
