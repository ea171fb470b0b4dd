import { Command } from 'commander';
import { loadAgentConfig } from '../agent/config.js';
import { startAgent } from '../agent/daemon.js';
import { configOption, resolveConfigPath } from './config-location.js';

export function agentCommand(): Command {
  return new Command('agent')
    .description('run the Vigil agent: guarded signing and the permission API on this host')
    .addOption(configOption('agent configuration (YAML)', true))
    .action(async (opts: { config?: string }) => {
      const agent = await startAgent(loadAgentConfig(resolveConfigPath(opts.config)));
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
