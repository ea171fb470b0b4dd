import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

/** The compiled CLI entry next to this compiled helper, whatever the build's outDir. */
export const CLI_ENTRY = fileURLToPath(new URL('../../src/cli/run.js', import.meta.url));

/** Shared protocol vectors live beside the repository (tests run from the repository root). */
export function vectorsDir(): string {
  return process.env.VIGIL_VECTORS ?? resolve(process.cwd(), '..', 'shared', 'vectors');
}
