/** Every top-level command, one file each. Add a new command here, one line. */
import type { Command } from 'commander';

export const commands: Array<() => Command> = [];
