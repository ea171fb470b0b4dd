/** Every top-level command, one file each. Add a new command here, one line. */
import type { Command } from 'commander';
import { agentCommand } from './agent.js';
import { keysCommand } from './keys.js';

export const commands: Array<() => Command> = [agentCommand, keysCommand];
