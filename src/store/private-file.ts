/**
 * Files holding watermarks are owner-only. SQLite creates its database with mode 0644 minus the
 * umask and gives the -wal and -shm files the database file's mode, so creating the file
 * ourselves with 0600 before SQLite opens it makes all three owner-only.
 */
import { closeSync, fchmodSync, openSync } from 'node:fs';

/** Creates `path` if missing (never truncates) and sets it to mode 0600 whatever the umask. */
export function createPrivateFile(path: string): void {
  const fd = openSync(path, 'a', 0o600);
  try {
    // The mode given to open() is filtered by the umask; fchmod is not.
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
}
