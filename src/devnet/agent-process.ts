/**
 * Runs a Vigil agent as a child process, the way an operator runs it, and finds where its API
 * listens (socket path, URL) from its "agent ready" log line, or "agent started, not ready: …"
 * (its store unreachable at start, say while chaos has cut its etcd links): it serves and
 * becomes ready by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { VigilError } from '../errors.js';

const CLI_ENTRY = fileURLToPath(new URL('../cli/run.js', import.meta.url));

export interface AgentProcess {
  readonly name: string;
  readonly configFile: string;
  readonly child: ChildProcess;
  /** The API's unix socket, when the agent serves on one (the devnet's agents do). */
  readonly socketPath?: string;
  /** The API's TCP URL, when the agent serves on TCP. */
  readonly url?: string;
  /** Sends SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export async function startAgentProcess(
  name: string,
  configFile: string,
  readyTimeoutMs = 15_000,
): Promise<AgentProcess> {
  const child = spawn(process.execPath, [CLI_ENTRY, 'agent', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // A process group of its own: a terminal's Ctrl-C reaches `vigil up` alone, which reads
    // each agent's signer metrics before it stops them (they died first, unreadable, before).
    detached: true,
  });
  const stderr: string[] = [];
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const where = await new Promise<{ socketPath?: string; url?: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new VigilError(
          'DEVNET_AGENT_TIMEOUT',
          `agent ${name} was not ready within ${readyTimeoutMs} ms: ${stderr.join('')}`,
        ),
      );
    }, readyTimeoutMs);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string; socketPath?: string };
        const started =
          entry.msg === 'agent ready' || entry.msg?.startsWith('agent started, not ready');
        if (started && (entry.socketPath || entry.url)) {
          clearTimeout(timer);
          resolve({
            ...(entry.socketPath ? { socketPath: entry.socketPath } : {}),
            ...(entry.url ? { url: entry.url } : {}),
          });
        }
      } catch {
        // not a log line of ours
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(
        new VigilError(
          'DEVNET_AGENT_EXITED',
          `agent ${name} exited (${signal ?? code}) before it was ready: ${stderr.join('').trim()}`,
        ),
      );
    });
  });

  return {
    name,
    configFile,
    child,
    ...where,
    async stop(graceMs = 3000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // A paused agent (fault injection) would hold SIGTERM pending until killed.
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
