/**
 * Telling a failing disk apart from everything else. SQLite reports the same conditions with
 * its own codes (SQLITE_FULL for ENOSPC, SQLITE_READONLY / SQLITE_IOERR_* for EROFS, EIO, …),
 * and node:fs with errno names; both become one short description an operator can act on.
 */
import Database from 'better-sqlite3';

export type IoFailureKind = 'full' | 'read_only' | 'io_error' | 'missing';

const ERRNO_KIND: Record<string, IoFailureKind> = {
  ENOSPC: 'full',
  EDQUOT: 'full',
  EROFS: 'read_only',
  EACCES: 'read_only',
  EPERM: 'read_only',
  EIO: 'io_error',
  ENXIO: 'io_error',
  ESTALE: 'io_error',
  ENOENT: 'missing',
  ENOTDIR: 'missing',
};

/** The disk condition behind `err`, or undefined when it is not one (a bug, a lock, corruption). */
export function ioFailureKind(err: unknown): IoFailureKind | undefined {
  if (err instanceof Database.SqliteError) {
    const code = err.code;
    if (code === 'SQLITE_FULL') return 'full';
    // SQLITE_IOERR_WRITE and friends hide the errno; ENOSPC surfaces as SQLITE_FULL.
    if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_PERM')) return 'read_only';
    if (code.startsWith('SQLITE_IOERR')) return 'io_error';
    if (code.startsWith('SQLITE_CANTOPEN')) return 'missing';
    return undefined;
  }
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  return errno !== undefined ? ERRNO_KIND[errno] : undefined;
}

const WHAT: Record<IoFailureKind, string> = {
  full: 'the disk is full',
  read_only: 'the file or its filesystem is read-only',
  io_error: 'the disk reported an I/O error',
  missing: 'the file or its directory is gone',
};

/** "the disk is full (SQLITE_FULL: database or disk is full)", or the bare message. */
export function describeIoFailure(err: unknown): string {
  const kind = ioFailureKind(err);
  const code = (err as { code?: unknown } | undefined)?.code;
  const detail = err instanceof Error ? err.message : String(err);
  const raw = typeof code === 'string' && !detail.startsWith(code) ? `${code}: ${detail}` : detail;
  return kind === undefined ? raw : `${WHAT[kind]} (${raw})`;
}
