/**
 * Starts the simulated chain node of a host (node-main.ts) in its namespace, from the host's
 * rendered config.toml, and reads its status file.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { NodeProcessConfig, NodeStatus } from './node-config.js';
import { startInNetns, waitFor, type StartedProcess } from './processes.js';
import type { RunRecordFile } from './run-record.js';

const NODE_MAIN = fileURLToPath(new URL('./node-main.js', import.meta.url));

export async function startChainNode(
  record: RunRecordFile,
  netns: string,
  config: NodeProcessConfig,
  configFile: string,
  logFile: string,
): Promise<StartedProcess> {
  writeFileSync(configFile, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  const proc = startInNetns(
    record,
    netns,
    `simulated ${config.chainId} node`,
    [process.execPath, NODE_MAIN, configFile],
    logFile,
  );
  await waitFor(`the simulated node in ${netns}`, () => existsSync(config.statusFile), proc);
  return proc;
}

export function readNodeStatus(statusFile: string): NodeStatus | undefined {
  try {
    return JSON.parse(readFileSync(statusFile, 'utf8')) as NodeStatus;
  } catch {
    return undefined;
  }
}
