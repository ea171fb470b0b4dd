/** Plans example topologies into temporary directories for the render tests. */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { planFleet } from '../../src/render/fleet.js';

export const EXAMPLES_DIR = 'examples/topologies';

export function exampleNames(): string[] {
  return readdirSync(EXAMPLES_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.replace(/\.yaml$/, ''))
    .sort();
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `vigil-${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function planExample(
  name: string,
  state: string,
  out?: string,
): ReturnType<typeof planFleet> {
  const r = planFleet(join(EXAMPLES_DIR, `${name}.yaml`), {
    state,
    ...(out ? { out } : {}),
    write: out !== undefined,
  });
  if (!r.files) throw new Error(`${name} did not plan: ${JSON.stringify(r.findings)}`);
  return r;
}

/**
 * Whether an external tool is installed. Missing tools skip loudly; under CI they fail,
 * because CI installs them and a silent skip would hide a broken check.
 */
export function requireTool(
  tool: string,
  versionArgs: string[] = ['--version'],
  requiredInCi = true,
): boolean {
  const r = spawnSync(tool, versionArgs, { encoding: 'utf8', timeout: 60_000 });
  if (!r.error) return true;
  if (process.env.CI && requiredInCi)
    throw new Error(`${tool} is required in CI but is not installed`);
  console.error(`\n*** SKIPPING ${tool} checks: ${tool} is not installed (CI would fail) ***\n`);
  return false;
}
