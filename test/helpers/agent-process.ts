/**
 * Runs `vigil agent --config <file>` as a child process serving on its unix socket, finds the
 * socket in the `agent ready` log line, and hands out a client for it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { AgentClient } from '../../src/agent/client.js';
import { CLI_ENTRY } from './paths.js';

export interface AgentFiles {
  readonly dir: string;
  readonly storePath: string;
  readonly dataDir: string;
  readonly keyFile: string;
}

/**
 * Writes an agent config (sqlite store, one signing key `k1`, the API on the default socket
 * `<dataDir>/api.sock`) and returns its path.
 */
export function writeAgentConfig(files: AgentFiles, agentId: string, logLevel = 'info'): string {
  const path = join(files.dir, `${agentId}.yaml`);
  writeFileSync(
    path,
    [
      'agent:',
      `  id: ${agentId}`,
      `  dataDir: ${JSON.stringify(files.dataDir)}`,
      'store:',
      '  engine: sqlite',
      `  path: ${JSON.stringify(files.storePath)}`,
      'keys:',
      '  - id: k1',
      `    file: ${JSON.stringify(files.keyFile)}`,
      'log:',
      `  level: ${logLevel}`,
      '',
    ].join('\n'),
  );
  return path;
}

export interface AgentProcess {
  readonly child: ChildProcess;
  readonly socketPath: string;
  /** A kept-alive client for the agent's socket, closed by kill(). */
  readonly client: AgentClient;
  readonly exited: Promise<number | string>;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Starts the agent and resolves once it listens; rejects (and kills it) if it never does. */
export async function startAgentProcess(
  configPath: string,
  readyWithinMs = 30_000,
): Promise<AgentProcess> {
  const child = spawn(process.execPath, [CLI_ENTRY, 'agent', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((res) =>
    child.on('exit', (code, signal) => res(code ?? signal ?? 'unknown')),
  );
  let timer: NodeJS.Timeout | undefined;
  try {
    const socketPath = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        out += line + '\n';
        try {
          const entry = JSON.parse(line) as { msg?: string; socketPath?: string };
          if (entry.msg === 'agent ready' && entry.socketPath) resolve(entry.socketPath);
        } catch {
          // not a log line
        }
      });
      void exited.then((code) => reject(new Error(`agent exited (${code}) before ready:\n${out}`)));
      timer = setTimeout(
        () => reject(new Error(`agent not ready within ${readyWithinMs} ms:\n${out}`)),
        readyWithinMs,
      );
    });
    const client = new AgentClient({ socketPath });
    return {
      child,
      socketPath,
      client,
      exited,
      output: () => out,
      async kill(signal: NodeJS.Signals = 'SIGKILL') {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        client.close();
        return exited;
      },
    };
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
