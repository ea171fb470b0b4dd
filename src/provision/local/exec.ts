/**
 * Running the system tools a local fleet is built with (ip, nft, wg, wireguard-go), each
 * failure a typed error naming the command and what it printed.
 */
import { spawnSync } from 'node:child_process';
import { VigilError } from '../../errors.js';

export class LocalFleetError extends VigilError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) {
    super('LOCAL_FLEET', message, hint, options);
  }
}

/** Runs a command to completion; throws with its stderr when it fails. Returns stdout. */
export function run(argv: readonly string[], input?: string): string {
  const r = spawnSync(argv[0]!, argv.slice(1), {
    encoding: 'utf8',
    ...(input !== undefined ? { input } : {}),
    timeout: 20_000,
  });
  if (r.error)
    throw new LocalFleetError(`${argv.join(' ')}: ${r.error.message}`, undefined, {
      cause: r.error,
    });
  if (r.status !== 0)
    throw new LocalFleetError(
      `${argv.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim()}`,
    );
  return r.stdout;
}

/** Like `run`, but a failure is returned rather than thrown (teardown goes on regardless). */
export function tryRun(argv: readonly string[]): string | undefined {
  try {
    run(argv);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** The argv that runs `argv` inside network namespace `ns`. */
export function inNetns(ns: string, argv: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...argv];
}

/** Whether a process with this pid exists (signal 0 only checks). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Which of the tools a local fleet needs are missing from PATH. */
export function missingTools(tools: readonly string[]): string[] {
  return tools.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
}

export const REQUIRED_TOOLS = ['ip', 'nft', 'wg', 'wireguard-go'] as const;
