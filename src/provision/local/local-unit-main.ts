/**
 * `systemctl` for the simulated chain units of a local fleet host, as the host's Vigil
 * watchdog calls it (its rendered start/stop/is-active/kill actions are translated to these
 * by supervised.ts): `node local-unit-main.js start|stop|inactive <units dir> <unit>`.
 * `<units dir>/<unit>.json` holds the argv and log file; the running process's pid is in
 * `<unit>.pid`, which the watchdog's kill action signals directly.
 */
import { spawn } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';

const UnitFileSchema = z.strictObject({
  argv: z.array(z.string().min(1)).min(1),
  logFile: z.string().min(1),
  /** The rendered unit's Conflicts=: stopped first, as systemd orders it. */
  conflicts: z.array(z.string().regex(/^[A-Za-z0-9@._:-]+$/)).default([]),
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // Exited but not yet reaped (its parent is gone): not running.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function runningPid(pidFile: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
}

/**
 * `<unit>.journal`: `start <ns>` written just before the process is spawned (at or before it
 * runs) and `stopped <ns>` once it is seen gone (at or after it exited), on CLOCK_MONOTONIC,
 * which every namespace of this machine shares. So two hosts' journals prove their nodes
 * never ran at once whenever one's `stopped` precedes the other's `start`.
 */
function journal(dir: string, unit: string, event: 'start' | 'stopped'): void {
  appendFileSync(join(dir, `${unit}.journal`), `${event} ${process.hrtime.bigint()}\n`, {
    mode: 0o600,
  });
}

async function main(verb: string, dir: string, unit: string): Promise<number> {
  if (!/^[A-Za-z0-9@._:-]+$/.test(unit)) throw new Error(`bad unit name ${unit}`);
  const pidFile = join(dir, `${unit}.pid`);
  const pid = runningPid(pidFile);
  // Died since it was started (a SIGKILL at the lease deadline signals the pid file directly).
  if (pid === undefined && existsSync(pidFile)) {
    journal(dir, unit, 'stopped');
    rmSync(pidFile, { force: true });
  }
  switch (verb) {
    case 'start': {
      if (pid !== undefined) return 0;
      const u = UnitFileSchema.parse(JSON.parse(readFileSync(join(dir, `${unit}.json`), 'utf8')));
      for (const other of u.conflicts) await main('stop', dir, other);
      const log = openSync(u.logFile, 'a', 0o600);
      journal(dir, unit, 'start');
      try {
        const child = spawn(u.argv[0]!, u.argv.slice(1), {
          detached: true,
          stdio: ['ignore', log, log],
        });
        if (child.pid === undefined) throw new Error(`could not start ${unit}`);
        writeFileSync(pidFile, `${child.pid}\n`, { mode: 0o600 });
        child.unref();
      } finally {
        closeSync(log);
      }
      return 0;
    }
    case 'stop': {
      if (pid === undefined) return 0;
      process.kill(pid, 'SIGTERM');
      // systemd's default stop timeout is 90 s; the watchdog's own deadline is what bounds
      // this, so a short wait then SIGKILL, as the unit's KillMode would.
      for (let i = 0; i < 100 && alive(pid); i++) await sleep(50);
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 100 && alive(pid); i++) await sleep(20);
      journal(dir, unit, 'stopped');
      rmSync(pidFile, { force: true });
      return 0;
    }
    case 'inactive':
      return pid === undefined ? 0 : 1;
    default:
      throw new Error(`unknown verb ${verb} (start, stop, inactive)`);
  }
}

const [verb, dir, unit] = process.argv.slice(2);
main(verb ?? '', dir ?? '', unit ?? '').then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`local unit: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
