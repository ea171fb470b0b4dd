/**
 * The `vigil` command line. Each command lives in its own file and exports a function that
 * builds its commander Command; this file only assembles them and reports errors.
 */
import { Command, CommanderError, type Option } from 'commander';
import { VigilError, errorMessage } from '../errors.js';
import { vigilVersion } from '../package-root.js';

import { commands } from './commands.js';
import { fromSystemError } from './system-errors.js';

/**
 * Commander checks required options before unknown ones, so `vigil agent --cnofig x` would
 * say that --config is missing. The unknown option is the real mistake: report it first.
 */
function reportUnknownOptionsFirst(cmd: Command): void {
  const internal = cmd as unknown as {
    args: string[];
    missingMandatoryOptionValue(option: Option): void;
    unknownOption(flag: string): void;
    options: readonly Option[];
  };
  const original = internal.missingMandatoryOptionValue.bind(cmd);
  internal.missingMandatoryOptionValue = (option: Option) => {
    const unknown = internal.args.find(
      (a) => a.length > 1 && a.startsWith('-') && a !== '--' && !isKnownFlag(cmd, a),
    );
    if (unknown !== undefined) internal.unknownOption(unknown);
    original(option);
  };
  for (const sub of cmd.commands) reportUnknownOptionsFirst(sub);
}

function isKnownFlag(cmd: Command, arg: string): boolean {
  const flag = arg.split('=')[0]!;
  for (let c: Command | null = cmd; c; c = c.parent) {
    if (c.options.some((o) => o.short === flag || o.long === flag)) return true;
  }
  return flag === '-h' || flag === '--help';
}

export function buildProgram(): Command {
  const program = new Command('vigil')
    .description('Vigil: highly available validators that never double-sign')
    .version(vigilVersion())
    .showHelpAfterError()
    .exitOverride();
  for (const make of commands) program.addCommand(make());
  reportUnknownOptionsFirst(program);
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
    const known = err instanceof VigilError ? err : fromSystemError(err);
    if (known) {
      process.stderr.write(`vigil: error [${known.code}]: ${known.message}\n`);
    } else {
      process.stderr.write(
        `vigil: unexpected error: ${errorMessage(err)}\n${(err as Error)?.stack ?? ''}\n`,
      );
    }
    process.exitCode = 1;
  }
}
