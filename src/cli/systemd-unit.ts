/**
 * `vigil systemd-unit`: prints the agent's systemd unit, the very one `vigil plan` renders for
 * its hosts (examples/systemd/vigil-agent.service is this output with the default path).
 */
import { isAbsolute } from 'node:path';
import { Command } from 'commander';
import { InputError } from '../errors.js';

export function systemdUnitCommand(): Command {
  return (
    new Command('systemd-unit')
      .description("print the agent's systemd unit (the one `vigil plan` renders) to stdout")
      // The plan's default path, spelled out: the renderer is loaded only when the command runs.
      .option('--exec <path>', 'absolute path of the vigil binary', '/opt/vigil/bin/vigil')
      .action(async (opts: { exec: string }) => {
        if (!isAbsolute(opts.exec) || /\s/.test(opts.exec))
          throw new InputError(
            `--exec ${JSON.stringify(opts.exec)} is not an absolute path without spaces`,
            'systemd runs ExecStart= from an absolute path; try --exec "$(command -v vigil)"',
          );
        const [{ renderUnit }, { agentUnit }] = await Promise.all([
          import('../render/chains.js'),
          import('../render/services.js'),
        ]);
        process.stdout.write(renderUnit(agentUnit(opts.exec)));
      })
  );
}
