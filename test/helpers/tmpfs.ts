/**
 * A small tmpfs mounted by the test, for full-disk and vanished-directory cases. Mounting needs
 * root: without it the tests skip loudly, except under CI=true or VIGIL_REQUIRE_TMPFS=1, where
 * a missing mount is a failure (a skipped full-disk test proves nothing).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function required(): boolean {
  return process.env.CI === 'true' || process.env.VIGIL_REQUIRE_TMPFS === '1';
}

export interface Tmpfs {
  /** The mount point. */
  readonly dir: string;
  /** Writes a filler file until the filesystem answers ENOSPC; returns the bytes written. */
  fill(): number;
  /** Removes the filler file. */
  free(): void;
  unmount(): void;
}

function mountAt(dir: string, sizeBytes: number): string | undefined {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', dir], {
    encoding: 'utf8',
  });
  if (r.error) return r.error.message;
  return r.status === 0 ? undefined : r.stderr.trim() || `mount exited ${r.status}`;
}

/** For `describe(..., { skip: tmpfsSkip() })`: mounts and unmounts a probe once. */
export function tmpfsSkip(): string | false {
  const why = (() => {
    if (process.getuid?.() !== 0) return 'not root';
    const probe = mkdtempSync(join(tmpdir(), 'vigil-tmpfs-probe-'));
    try {
      const err = mountAt(probe, 64 * 1024);
      if (err !== undefined) return err;
      spawnSync('umount', [probe]);
      return undefined;
    } finally {
      rmSync(probe, { recursive: true, force: true });
    }
  })();
  if (why === undefined) return false;
  if (required()) throw new Error(`CI or VIGIL_REQUIRE_TMPFS=1, but cannot mount a tmpfs: ${why}`);
  const msg = `cannot mount a tmpfs (${why}): SKIPPING full-disk tests (run as root)`;
  console.error(`\n!!! ${msg} !!!\n`);
  return msg;
}

export function mountTmpfs(sizeBytes: number): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-tmpfs-'));
  const err = mountAt(dir, sizeBytes);
  if (err !== undefined) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`cannot mount a tmpfs on ${dir}: ${err}`);
  }
  const filler = join(dir, 'filler');
  let mounted = true;
  return {
    dir,
    fill() {
      const fd = openSync(filler, 'a');
      let written = 0;
      try {
        // Large chunks first, then single bytes, so not even a partial page is left.
        for (const size of [64 * 1024, 4096, 1]) {
          const chunk = Buffer.alloc(size, 0x5a);
          for (let i = 0; i < 1_000_000; i++) {
            try {
              written += writeSync(fd, chunk);
            } catch (e) {
              if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
              throw e;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
      return written;
    },
    free() {
      rmSync(filler, { force: true });
    },
    unmount() {
      if (!mounted) return;
      mounted = false;
      const r = spawnSync('umount', ['-l', dir], { encoding: 'utf8' });
      if (r.status !== 0) console.error(`umount ${dir}: ${r.stderr}`);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
