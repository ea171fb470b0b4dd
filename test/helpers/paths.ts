import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

/** The compiled CLI entry next to this compiled helper, whatever the build's outDir. */
export const CLI_ENTRY = fileURLToPath(new URL('../../src/cli/run.js', import.meta.url));

/** Protocol vectors: the repository's own copy of the team's shared vectors (tests run from the
 * repository root), so a fresh clone passes without `../shared`. */
export function vectorsDir(): string {
  return process.env.VIGIL_VECTORS ?? resolve(process.cwd(), 'test', 'vectors');
}

/** The team's shared vectors beside the repository, when present; the copy must match them. */
export function sharedVectorsDir(): string {
  return resolve(process.cwd(), '..', 'shared', 'vectors');
}
