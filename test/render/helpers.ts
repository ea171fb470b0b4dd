/** Plans example topologies into temporary directories for the render tests. */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { stringify as toYaml } from 'yaml';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { planFleet } from '../../src/render/fleet.js';
import { ManifestSchema } from '../../src/render/bundle.js';

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

/**
 * What a host's bundle installs and runs, in the shape the render tests read (the shape the
 * cloud-config had before the bundle took it over): users, packages, files with their
 * content, and the commands in order.
 */
export interface HostSetupView {
  users: Array<{ name: string; homedir?: string; uid?: number }>;
  packages: string[];
  write_files: Array<{ path: string; owner: string; permissions: string; content: string }>;
  runcmd: string[][];
}

/** `files`: the rendered map, or a plan directory on disk. */
export function hostSetup(
  files: ReadonlyMap<string, string> | string,
  host: string,
): HostSetupView {
  const get = (rel: string): string | undefined =>
    typeof files === 'string'
      ? existsSync(join(files, rel))
        ? readFileSync(join(files, rel), 'utf8')
        : undefined
      : files.get(rel);
  const text = get(`hosts/${host}/bundle/manifest.json`);
  if (text === undefined) throw new Error(`no bundle manifest for ${host}`);
  const m = ManifestSchema.parse(JSON.parse(text));
  return {
    users: m.users,
    packages: m.packages,
    // In cloud-init's write_files order, so text checks read the same either way.
    write_files: m.files.map((f) => ({
      path: f.path,
      content: get(`hosts/${host}/${f.source}`)!,
      permissions: f.mode,
      owner: f.owner,
    })),
    runcmd: m.commands,
  };
}

/** The same as YAML text, for checks that read it as text. */
export function hostSetupYaml(files: ReadonlyMap<string, string> | string, host: string): string {
  return toYaml(hostSetup(files, host), { lineWidth: 0 });
}
