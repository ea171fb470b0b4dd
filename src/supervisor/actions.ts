/**
 * What "activate" and "deactivate" do for an exclusive role: run a command, signal a process
 * (by pidfile, or a systemd unit through systemctl), or move key files into or out of place.
 * Every action has a time limit; the supervisor gives deactivation a fixed budget that ends
 * before the lease deadline.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { z } from 'zod';
import { VigilError, errorMessage } from '../errors.js';

export const SIGNALS = [
  'SIGHUP',
  'SIGINT',
  'SIGTERM',
  'SIGKILL',
  'SIGUSR1',
  'SIGUSR2',
  'SIGSTOP',
  'SIGCONT',
] as const;

export const ActionSchema = z.union([
  z
    .object({
      /** argv, not a shell line: no quoting surprises. Use ["sh", "-c", "…"] for a shell. */
      run: z.array(z.string().min(1)).min(1),
      timeoutMs: z.number().int().min(10).max(600_000).optional(),
    })
    .strict(),
  z
    .object({
      signal: z.enum(SIGNALS),
      pidFile: z.string().min(1),
    })
    .strict(),
  z
    .object({
      signal: z.enum(SIGNALS),
      /** Sent with `systemctl kill --signal=<signal> <unit>`. */
      systemdUnit: z.string().regex(/^[A-Za-z0-9@._:-]+$/),
    })
    .strict(),
  z
    .object({
      /** rename(2): atomic within one filesystem; keep both paths on the same one. */
      moveFile: z.object({ from: z.string().min(1), to: z.string().min(1) }).strict(),
    })
    .strict(),
]);
export type Action = z.output<typeof ActionSchema>;

export class ActionError extends VigilError {
  constructor(what: string, detail: string) {
    super(
      'SUPERVISOR_ACTION_FAILED',
      `${what} failed: ${detail}`,
      "check the role's activate/deactivate actions",
    );
  }
}

export function describeAction(a: Action): string {
  if ('run' in a) return `run ${JSON.stringify(a.run)}`;
  if ('moveFile' in a) return `move ${a.moveFile.from} → ${a.moveFile.to}`;
  if ('pidFile' in a) return `${a.signal} to pid in ${a.pidFile}`;
  return `${a.signal} to systemd unit ${a.systemdUnit}`;
}

function runCommand(argv: string[], timeoutMs: number, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`exited with ${code ?? signal}${stderr ? `: ${stderr.trim()}` : ''}`));
    });
  });
}

/**
 * How deactivation is confirmed: a command that exits 0 once the node no longer produces
 * (polled every `pollMs`), e.g. a query of the node's own forging state.
 */
export const ConfirmCheckSchema = z
  .object({
    run: z.array(z.string().min(1)).min(1),
    pollMs: z.number().int().min(10).max(10_000).default(50),
  })
  .strict();
export type ConfirmCheck = z.output<typeof ConfirmCheckSchema>;

/** Whether the check passes now (exit 0 within `timeoutMs`). */
export async function checkPasses(
  check: ConfirmCheck,
  timeoutMs: number,
  env: NodeJS.ProcessEnv,
): Promise<boolean> {
  try {
    await runCommand(check.run, Math.max(10, timeoutMs), env);
    return true;
  } catch {
    return false;
  }
}

/** Runs one action within `timeoutMs`; throws ActionError on failure. */
export async function runAction(
  a: Action,
  timeoutMs: number,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const what = describeAction(a);
  try {
    if ('run' in a) {
      await runCommand(a.run, Math.min(a.timeoutMs ?? timeoutMs, timeoutMs), env);
    } else if ('moveFile' in a) {
      const { from, to } = a.moveFile;
      // Idempotent: a retry after a crash between the two states finds the file already moved.
      if (!existsSync(from) && existsSync(to)) return;
      renameSync(from, to);
    } else if ('pidFile' in a) {
      const text = readFileSync(a.pidFile, 'utf8').trim();
      if (!/^\d+$/.test(text)) throw new Error(`${a.pidFile} does not hold a pid`);
      process.kill(Number(text), a.signal);
    } else {
      await runCommand(
        ['systemctl', 'kill', `--signal=${a.signal}`, a.systemdUnit],
        timeoutMs,
        env,
      );
    }
  } catch (err) {
    throw new ActionError(what, errorMessage(err));
  }
}
