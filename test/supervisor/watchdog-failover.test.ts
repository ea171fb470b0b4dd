/**
 * Issue 10: a supervised node whose agent is frozen, killed or asked to stop must never
 * produce at the same time as its successor. Real processes throughout: two `vigil agent`s on
 * one SQLite store (and a few trials on a real 3-member etcd cluster), each node under its own
 * `vigil watchdog`; the fault hits the holder's agent only, never its node or watchdog.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EtcdTestCluster, etcdSkip } from '../helpers/etcd-cluster.js';
import {
  producedStamps,
  RoleHarness,
  failoverTrial,
  frozenHostTrial,
  summary,
  type Fault,
  type HarnessMode,
} from './role-harness.js';

const MODE = (process.env.VIGIL_SUPERVISOR_MODE ?? 'watchdog') as HarnessMode;
const TRIALS = Number(process.env.VIGIL_FROZEN_TRIALS ?? 20);

async function trials(h: RoleHarness, fault: Fault, n: number): Promise<number[]> {
  await Promise.all(h.hosts.map((x) => h.startHost(x)));
  const times: number[] = [];
  let locked = 0;
  for (let i = 0; i < n; i++) {
    const r = await failoverTrial(h, fault);
    if (r.lockedByFrozenAgent) locked++;
    assert.equal(
      r.overlapLines,
      0,
      `trial ${i} (${fault}): the old node produced ${r.overlapLines} times after the successor started`,
    );
    times.push(r.failoverMs);
  }
  if (locked > 0)
    console.log(
      `# ${locked} of ${n} trials: the agent froze holding the SQLite write lock; no successor until it thawed (its node was stopped)`,
    );
  assert.ok(locked < n, 'at least one real failover');
  return times;
}

describe(`supervised node under a watchdog (${MODE}), SQLite store`, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-wd-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const harness = (name: string, stopDelayMs = 0) =>
    new RoleHarness({
      dir: join(dir, name),
      mode: MODE,
      store: { engine: 'sqlite', path: join(dir, `${name}.db`) },
      stopDelayMs,
    });

  it(`a frozen agent (SIGSTOP) never leaves its node producing beside the successor (${TRIALS} trials)`, async () => {
    const h = harness('frozen');
    try {
      const times = await trials(h, 'SIGSTOP', TRIALS);
      console.log(`# SIGSTOP agent → successor producing: ${summary(times)}`);
    } finally {
      await h.close();
    }
  });

  it('a killed agent (SIGKILL) never leaves its node producing beside the successor', async () => {
    const h = harness('killed');
    try {
      const times = await trials(h, 'SIGKILL', 5);
      console.log(`# SIGKILL agent → successor producing: ${summary(times)}`);
    } finally {
      await h.close();
    }
  });

  it('a restarted watchdog: the agent notices, the role is taken up again, no overlap', async () => {
    const h = harness('restart');
    try {
      await Promise.all(h.hosts.map((x) => h.startHost(x)));
      const old = await h.waitProducing();
      const stoppedAt = process.hrtime.bigint();
      const exited = new Promise((r) => old.watchdog!.once('exit', r));
      old.watchdog!.kill('SIGTERM');
      await exited;
      old.watchdog = undefined;
      await h.startHost(old); // a new watchdog; the agent is still the one that held the role
      const next = await h.waitProducing();
      const first = producedStamps(next).find((t) => t > stoppedAt)!;
      const others = h.hosts.filter((x) => x !== next);
      for (const x of others)
        assert.equal(producedStamps(x).filter((t) => t >= first).length, 0, `${x.name} overlaps`);
      console.log(`# watchdog restarted under the active agent: ${next.name} producing again`);
    } finally {
      await h.close();
    }
  });

  it('a handover waits until the node has stopped forging, not until SIGHUP was sent', async () => {
    // The node takes 400 ms to act on SIGHUP; the agent stops (SIGTERM) and hands the role
    // back: the successor may start only once the old node confirmed it stopped.
    const h = harness('handover', 400);
    try {
      const times = await trials(h, 'SIGTERM', 5);
      console.log(`# SIGTERM agent (node slow to stop) → successor producing: ${summary(times)}`);
    } finally {
      await h.close();
    }
  });
});

describe('a frozen host (agent, watchdog and node paused together), SQLite store', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-wd-vm-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('on thaw the watchdog stops the node by itself; what the node did first is measured', async () => {
    if (MODE !== 'watchdog') return;
    const h = new RoleHarness({
      dir,
      mode: MODE,
      store: { engine: 'sqlite', path: join(dir, 'vm.db') },
    });
    try {
      await Promise.all(h.hosts.map((x) => h.startHost(x)));
      const results = [];
      for (let i = 0; i < 5; i++) results.push(await frozenHostTrial(h));
      console.log(
        `# frozen host → successor producing: ${summary(results.map((r) => r.failoverMs))}`,
      );
      console.log(
        `# after thaw (node first), lines the old node produced before its watchdog stopped it: ${results.map((r) => r.linesAfterThaw).join(' ')}; last one at +${results.map((r) => r.lastLineAfterThawMs.toFixed(1)).join(' ')} ms`,
      );
    } finally {
      await h.close();
    }
  });
});

const skip = etcdSkip();
describe(`supervised node under a watchdog (${MODE}), 3-member etcd cluster`, { skip }, () => {
  let cluster: EtcdTestCluster;
  let dir: string;
  before(async () => {
    cluster = await EtcdTestCluster.start();
    dir = mkdtempSync(join(tmpdir(), 'vigil-wd-etcd-'));
  });
  after(async () => {
    await cluster?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a frozen agent never leaves its node producing beside the successor (3 trials)', async () => {
    const h = new RoleHarness({
      dir,
      mode: MODE,
      store: {
        engine: 'etcd',
        ...cluster.storeConfig({ timeouts: { callMs: 400, updateMs: 800 } }),
      },
    });
    try {
      const times = await trials(h, 'SIGSTOP', 3);
      console.log(`# etcd: SIGSTOP agent → successor producing: ${summary(times)}`);
    } finally {
      await h.close();
    }
  });
});
