/**
 * What the `vigil chaos --local` tests share: the cosmos-ha example's hosts, the skip rule
 * (root, ip, nft, wg, wireguard-go, etcd; a missing one fails under VIGIL_REQUIRE_ETCD=1), the
 * command run in a process group of its own as a terminal runs it, and the leftover checks.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REQUIRED_TOOLS, missingTools } from '../../src/provision/local/exec.js';
import {
  applyLocal,
  destroyLocal,
  type LocalApplyOptions,
  type LocalFleet,
} from '../../src/provision/local/fleet.js';
import { planFleet } from '../../src/render/fleet.js';
import { CLI_ENTRY as CLI } from '../helpers/paths.js';

export const HA = 'examples/local/cosmos-ha.yaml';
export const HA_HOSTS = [
  'validator-a',
  'validator-b',
  'sentry-a',
  'sentry-b',
  'guard-1',
  'guard-2',
  'guard-3',
  'monitor',
];
export const GUARD = ['guard-1', 'guard-2', 'guard-3'];

export function localSkip(): string | false {
  const why: string[] = [];
  if (process.getuid?.() !== 0) why.push('not root');
  why.push(...missingTools([...REQUIRED_TOOLS, 'etcd']).map((t) => `${t} missing`));
  if (why.length === 0) return false;
  if (process.env.VIGIL_REQUIRE_ETCD === '1')
    throw new Error(`VIGIL_REQUIRE_ETCD=1 but the local fleet cannot run: ${why.join(', ')}`);
  const msg = `local chaos: SKIPPING (${why.join(', ')})`;
  console.error(`\n!!! ${msg} !!!\n`);
  return msg;
}

export const netnsList = () =>
  spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((l) => l !== '');

/** Pids of live processes whose command line names `dir` (every fleet process does). */
export function processesUnder(dir: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (cmd.includes(dir) && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z')
        out.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `vigil chaos --local …` in a process group of its own, as a terminal would. */
export function chaosCli(
  args: string[],
  onStderr?: (text: string, child: ReturnType<typeof spawn>) => void,
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'chaos', '--local', ...args], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString();
      onStderr?.(stderr, child);
    });
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, 240_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Checks that nothing of fleet `fleetId` (run under `dir`) is left. */
export function assertNothingLeft(fleetId: string, dir: string, state: string): void {
  assert.deepEqual(
    netnsList().filter((n) => n.startsWith(`vgl-${fleetId}-`)),
    [],
    'namespaces left',
  );
  const links = spawnSync('ip', ['-o', 'link'], { encoding: 'utf8' }).stdout;
  assert.doesNotMatch(links, new RegExp(`vgl${fleetId}`), 'links left');
  assert.deepEqual(processesUnder(dir), [], 'processes left');
  assert.ok(!existsSync(join(state, 'local', 'run.json')), 'run record left');
}

export const fleetIdOf = (stderr: string) =>
  /internet namespace vgl-([a-z0-9]{4})-net/.exec(stderr)?.[1];

/** Where a `withLocalFleet` body's fleet lives, and the plan it was applied from. */
export interface LocalFleetPlace {
  readonly dir: string;
  readonly state: string;
  readonly plan: LocalApplyOptions['plan'];
  readonly files: LocalApplyOptions['files'];
}

/**
 * Plans `topology` into a fresh directory (named from `tmpPrefix`), applies it as a local fleet,
 * runs `body`, then destroys the fleet and checks that nothing of it is left; when anything
 * fails, the fleet is still destroyed and the directory removed.
 */
export async function withLocalFleet(
  topology: string,
  options: Omit<LocalApplyOptions, 'plan' | 'files' | 'stateDir'> & { readonly tmpPrefix: string },
  body: (fleet: LocalFleet, where: LocalFleetPlace) => Promise<void>,
): Promise<void> {
  const { tmpPrefix, ...apply } = options;
  const dir = mkdtempSync(join(tmpdir(), tmpPrefix));
  const state = join(dir, 's');
  let applied = false;
  try {
    const r = planFleet(topology, { state, write: false });
    assert.ok(r.plan && r.files, JSON.stringify(r.findings));
    const fleet = await applyLocal({ ...apply, plan: r.plan, files: r.files, stateDir: state });
    applied = true;
    await body(fleet, { dir, state, plan: r.plan, files: r.files });
    await destroyLocal(state);
    applied = false;
    assertNothingLeft(fleet.record.fleetId, dir, state);
  } finally {
    if (applied) await destroyLocal(state).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
