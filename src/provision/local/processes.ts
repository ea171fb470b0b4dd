/**
 * Long-running processes of a local fleet (wireguard-go, agents, simulated nodes, etcd), each
 * started detached inside its host's namespace so it outlives `vigil apply`, with its output
 * in a log file under the run directory. `ip netns exec` execs the command after entering the
 * namespace, so the pid we get is the process itself.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalFleetError, pidAlive } from './exec.js';
import type { RunRecordFile } from './run-record.js';

/** Field 22 of /proc/<pid>/stat: the start time in clock ticks since boot. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

export interface StartedProcess {
  readonly pid: number;
  readonly logFile: string;
}

export function startInNetns(
  record: RunRecordFile,
  netns: string,
  what: string,
  argv: readonly string[],
  logFile: string,
  env: NodeJS.ProcessEnv = process.env,
): StartedProcess {
  const log = openSync(logFile, 'a', 0o600);
  try {
    const child = spawn('ip', ['netns', 'exec', netns, ...argv], {
      detached: true,
      stdio: ['ignore', log, log],
      env,
    });
    if (child.pid === undefined)
      throw new LocalFleetError(`could not start ${what} in ${netns}`, `see ${logFile}`);
    const startTime = processStartTime(child.pid);
    if (startTime === undefined)
      throw new LocalFleetError(`${what} in ${netns} exited at once`, `see ${logFile}`);
    record.add({ kind: 'process', pid: child.pid, netns, what, startTime });
    child.unref();
    return { pid: child.pid, logFile };
  } finally {
    closeSync(log);
  }
}

/** Field 3 of /proc/<pid>/stat: R, S, D, Z (exited, not yet reaped), … */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/**
 * True while the recorded process is the one we started (not a later reuse of its pid) and
 * has not exited. Once `vigil apply` has exited its processes belong to init, which in a
 * container may reap late: a zombie has exited and counts as gone.
 */
export function stillOurs(pid: number, startTime: string): boolean {
  return pidRunning(pid) && processStartTime(pid) === startTime;
}

/** Alive and not a zombie: an exited process not yet reaped still has its pid, but runs nothing. */
export function pidRunning(pid: number): boolean {
  return pidAlive(pid) && processState(pid) !== 'Z';
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. */
export async function stopProcess(pid: number, startTime: string, graceMs = 3000): Promise<void> {
  if (!stillOurs(pid, startTime)) return;
  try {
    process.kill(pid, 'SIGCONT');
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (stillOurs(pid, startTime) && Date.now() < deadline) await sleep(50);
  if (stillOurs(pid, startTime)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    while (stillOurs(pid, startTime)) await sleep(20);
  }
}

/** Waits until `ready()` is true, the process dies, or the timeout passes. */
export async function waitFor(
  what: string,
  ready: () => boolean,
  proc: StartedProcess,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (ready()) return;
    let tail = '';
    try {
      tail = readFileSync(proc.logFile, 'utf8').slice(-800);
    } catch {
      // no log yet
    }
    if (!pidAlive(proc.pid))
      throw new LocalFleetError(`${what} exited before it was ready: ${tail.trim()}`);
    if (Date.now() > deadline)
      throw new LocalFleetError(`${what} was not ready within ${timeoutMs} ms: ${tail.trim()}`);
    await sleep(50);
  }
}
