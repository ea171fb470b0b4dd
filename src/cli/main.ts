/**
 * The `vigil` command line. Each command lives in its own file and exports a function that
 * builds its commander Command; this file only assembles them and reports errors.
 */
import { Command, CommanderError } from 'commander';
import { VigilError, errorMessage } from '../errors.js';
import { commands } from './commands.js';

export function buildProgram(): Command {
  const program = new Command('vigil')
    .description('Vigil: highly available validators that never double-sign')
    .version(process.env.npm_package_version ?? '0.1.0')
    .showHelpAfterError()
    .exitOverride();
  for (const make of commands) program.addCommand(make());
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof VigilError) {
      process.stderr.write(`vigil: error [${err.code}]: ${err.message}\n`);
    } else {
      process.stderr.write(
        `vigil: unexpected error: ${errorMessage(err)}\n${(err as Error)?.stack ?? ''}\n`,
      );
    }
    process.exitCode = 1;
  }
}
