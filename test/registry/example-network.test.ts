/**
 * The README's two commands (issue 15, "Done when"): `examples/registry/network.sh up` then
 * `demo`, then `down`, exactly as a reader runs them, in a temp work dir. With etcd installed the
 * validators write through the etcd cluster the script starts; without it the script falls back
 * to SQLite and says so, and this test checks that it said so.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/package-root.js';
import { tempDir } from '../helpers/guard-fixtures.js';
import { etcdAvailable } from '../helpers/etcd-cluster.js';

const SCRIPT = join(packageRoot(), 'examples', 'registry', 'network.sh');

interface Run {
  code: number | null;
  out: string;
}

function script(args: string[], env: NodeJS.ProcessEnv, ms: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [SCRIPT, ...args], {
      cwd: packageRoot(),
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`network.sh ${args.join(' ')}: still running after ${ms} ms\n${out}`));
    }, ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      setImmediate(() => resolve({ code, out }));
    });
  });
}

/** Pids the script recorded that still run (their command line names the work dir). */
function livePids(work: string): number[] {
  const dir = join(work, 'pids');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((f) => Number(readFileSync(join(dir, f), 'utf8').trim()))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${work}/`);
      } catch {
        return false;
      }
    });
}

describe('examples/registry/network.sh', { timeout: 400_000 }, () => {
  let root: string;
  let cleanup: () => void;
  let env: NodeJS.ProcessEnv;
  let work: string;
  before(() => {
    ({ dir: root, cleanup } = tempDir('vigil-registry-example-'));
    work = join(root, 'net');
    env = { VIGIL_REGISTRY_WORK: work };
  });
  after(async () => {
    // Whatever happened, nothing the script started outlives the test.
    if (existsSync(join(work, 'pids'))) await script(['down'], env, 120_000).catch(() => undefined);
    for (const pid of livePids(work)) process.kill(pid, 'SIGKILL');
    cleanup();
  });

  it('up, demo, down: every record on every node with a quorum, a typed refusal, a clean stop', async () => {
    const up = await script(['up'], env, 180_000);
    assert.equal(up.code, 0, up.out);
    if (etcdAvailable()) assert.match(up.out, /etcd store under \/vigil-registry\/ ready: store /);
    else assert.match(up.out, /will share ONE SQLite/);
    for (const n of ['validator-1', 'validator-2', 'validator-3', 'peer-1', 'peer-2', 'peer-3'])
      assert.match(up.out, new RegExp(`${n} +ready at http://127\\.0\\.0\\.1:\\d+/readyz`));

    const demo = await script(['demo'], env, 180_000);
    assert.equal(demo.code, 0, demo.out);
    assert.match(demo.out, /3 of 3 reachable: a quorum/);
    assert.equal(
      demo.out.match(/committed 12D3KooW\w+ seq 1, validator-set epoch 0$/gm)?.length,
      3,
      demo.out,
    );
    assert.match(demo.out, /3 records on all 6 nodes, each with a quorum/);
    assert.match(demo.out, /^countersigned: [23] of quorum 2$/m);
    assert.match(demo.out, /committed 12D3KooW\w+ seq 2, validator-set epoch 0$/m);
    assert.match(demo.out, /vigil: error \[REGISTRY_NOT_ADMITTED\]: 12D3KooW\w+ is not admitted/);
    assert.match(demo.out, /peer-1 +\d+ record\(s\) received, mean \d+ ms/);

    const pids = livePids(work);
    assert.equal(pids.length, etcdAvailable() ? 9 : 6, 'every process the script started runs');
    const down = await script(['down'], env, 120_000);
    assert.equal(down.code, 0, down.out);
    assert.doesNotMatch(down.out, /SIGKILL/, 'every process stopped on SIGTERM');
    assert.equal(down.out.match(/: stopped$/gm)?.length, pids.length, down.out);
    assert.ok(!existsSync(work), 'the work dir is removed');
    for (const pid of pids)
      assert.throws(() => process.kill(pid, 0), /ESRCH/, `pid ${pid} is gone after down`);
  });
});
