/** Every top-level command, one file each. Add a new command here, one line. */
import type { Command } from 'commander';
import { agentCommand } from './agent.js';
import { keysCommand } from './keys.js';
import { upCommand } from './up.js';
import { chaosCommand } from './chaos.js';
import { planCommand } from './plan.js';
import { applyCommand } from './apply.js';
import { destroyCommand } from './destroy.js';
import { stateCommand } from './state.js';
import { cometbftCommand } from './cometbft.js';
import { etcdCommand } from './etcd.js';
import { pkiCommand } from './pki.js';
import { clusterCommand } from './cluster.js';
import { watchdogCommand } from './watchdog.js';
import { systemdUnitCommand } from './systemd-unit.js';
import { completionCommand } from './completion.js';
import { statusCommand } from './status.js';
import { watchCommand } from './watch.js';
import { drillCommand } from './drill.js';
import { dashboardCommand } from './dashboard.js';
import { dashboardsCommand } from './dashboards.js';
import { registryCommand } from './registry.js';

export const commands: Array<() => Command> = [
  agentCommand,
  keysCommand,
  upCommand,
  chaosCommand,
  planCommand,
  applyCommand,
  destroyCommand,
  stateCommand,
  cometbftCommand,
  etcdCommand,
  pkiCommand,
  clusterCommand,
  watchdogCommand,
  systemdUnitCommand,
  completionCommand,
  statusCommand,
  watchCommand,
  drillCommand,
  dashboardCommand,
  dashboardsCommand,
  registryCommand,
];
