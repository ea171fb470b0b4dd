/**
 * One drill at a time on a host: a lock file created exclusively (O_EXCL), holding the pid of
 * the drill that made it. A lock whose process is gone (a drill killed with SIGKILL) is stale
 * and taken over; a live one refuses the second drill.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { VigilError, errorMessage } from '../errors.js';

export class DrillLockedError extends VigilError {
  constructor(path: string, holder: string) {
    super(
      'DRILL_RUNNING',
      `another drill holds ${path} (${holder})`,
      'wait for it to finish; a drill never runs beside another',
    );
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(path: string): { pid: number; text: string } | undefined {
  try {
    const text = readFileSync(path, 'utf8');
    const pid = (JSON.parse(text) as { pid?: unknown }).pid;
    return typeof pid === 'number' && Number.isInteger(pid) && pid > 0 ? { pid, text } : undefined;
  } catch {
    return undefined;
  }
}

export interface DrillLock {
  readonly path: string;
  release(): void;
}

/** Who holds the lock at `path`, if a live process does. */
export function lockHolder(path: string): string | undefined {
  const h = readHolder(path);
  return h && alive(h.pid) ? h.text.trim() : undefined;
}

export function acquireDrillLock(path: string, role: string): DrillLock {
  const content = JSON.stringify({ pid: process.pid, role, startedAt: new Date().toISOString() });
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new VigilError(
          'DRILL_LOCK',
          `cannot create the drill lock ${path}: ${errorMessage(err)}`,
          'give a writable path with --lock',
        );
      const h = readHolder(path);
      if (h && alive(h.pid)) throw new DrillLockedError(path, h.text.trim());
      // Stale (its drill is gone) or unreadable half-written: remove and try once more.
      try {
        unlinkSync(path);
      } catch {
        /* raced with another drill's cleanup; the retry decides */
      }
      continue;
    }
    try {
      writeSync(fd, content);
    } finally {
      closeSync(fd);
    }
    return {
      path,
      release() {
        // Only our own lock: never a successor's.
        if (readHolder(path)?.pid === process.pid) unlinkSync(path);
      },
    };
  }
  throw new DrillLockedError(path, 'taken over while removing a stale lock');
}
