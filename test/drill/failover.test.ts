/**
 * `vigil drill failover` against the real thing: a real etcd member, two `vigil agent`
 * processes supervising one exclusive role, each node (test/supervisor/fake-node.ts: appends
 * a CLOCK_MONOTONIC stamp per tick while it holds its credential) run by its own
 * `vigil watchdog`, and the drill itself run as the CLI. Overlap is judged from the nodes'
 * stamps, not from what the agents or the drill say.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EtcdTestCluster, etcdSkip, sleep } from '../helpers/etcd-cluster.js';
import { CLI_ENTRY } from '../helpers/paths.js';
import { RoleHarness, producedStamps, type Host } from '../supervisor/role-harness.js';

const ROLE = 'cardano/test/POOL-producer';

interface DrillRun {
  code: number | string;
  stdout: string;
  stderr: string;
}

/** Runs the drill CLI; `onStderr` sees each progress line and may signal the process. */
function runDrill(
  args: string[],
  onStderr?: (line: string, pid: number) => void,
): Promise<DrillRun> {
  const child = spawn(process.execPath, [CLI_ENTRY, 'drill', 'failover', '--role', ROLE, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    const text = d.toString();
    stderr += text;
    for (const line of text.split('\n')) if (line) onStderr?.(line, child.pid!);
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code: code ?? signal ?? 'unknown', stdout, stderr });
    }),
  );
}

/** Which host produced each stamp since `since`, merged in time order, as runs: ['A','B','A']. */
function producerRuns(hosts: Host[], since: bigint): string[] {
  const all = hosts
    .flatMap((h) =>
      producedStamps(h)
        .filter((t) => t >= since)
        .map((t) => ({ t, h: h.name })),
    )
    .sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
  const runs: string[] = [];
  for (const x of all) if (runs[runs.length - 1] !== x.h) runs.push(x.h);
  return runs;
}

interface RolesAnswer {
  roles: Array<{ role: string; state: string; token?: string; holderId: string }>;
}

const skip = etcdSkip();

describe('vigil drill failover: two agents, two watchdogs, real etcd', { skip }, () => {
  let cluster: EtcdTestCluster;
  let dir: string;
  let h: RoleHarness;
  let args: string[];
  let withTimeout: (ms: string) => string[];

  before(async () => {
    cluster = await EtcdTestCluster.start({ size: 1 });
    dir = mkdtempSync(join(tmpdir(), 'vigil-drill-'));
    h = new RoleHarness({
      dir,
      mode: 'watchdog',
      role: ROLE,
      // A node slow to stop: releasing the lease before the stop is confirmed would show up as
      // the old node's stamps after the successor's first one.
      stopDelayMs: 300,
      store: {
        engine: 'etcd',
        ...cluster.storeConfig({ timeouts: { callMs: 400, updateMs: 800 } }),
      },
    });
    await Promise.all(h.hosts.map((x) => h.startHost(x)));
    await h.waitProducing();
    const verify = `test "$(cat '${dir}'/"$(echo "$VIGIL_DRILL_ACTIVE" | sed 's/^agent-//')"/status)" = forging`;
    withTimeout = (ms: string) => [
      '--config',
      h.hosts[0]!.agentConfig,
      '--config',
      h.hosts[1]!.agentConfig,
      '--lock',
      join(dir, 'drill.lock'),
      '--timeout',
      ms,
      '--verify-run',
      verify,
    ];
    args = withTimeout('15000');
  });
  after(async () => {
    await h?.close();
    await cluster?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const roleOf = async (host: Host) =>
    (await host.agent!.client.get<RolesAnswer>('/v1/roles')).body.roles.find(
      (r) => r.role === ROLE,
    )!;

  it('a dry run checks, prints its steps and changes nothing', async () => {
    const holder = await h.waitProducing();
    const before = await roleOf(holder);
    const since = process.hrtime.bigint();
    const r = await runDrill(args);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /dry run: nothing changed/);
    assert.match(r.stdout, /with --execute it would:/);
    assert.match(r.stdout, new RegExp(`holder agent-${holder.name}`));
    await sleep(300);
    const afterRole = await roleOf(holder);
    assert.equal(afterRole.state, 'active');
    assert.equal(afterRole.token, before.token, 'the holding did not change');
    assert.deepEqual(producerRuns(h.hosts, since), [holder.name]);
    assert.ok(!holder.agent!.output().includes('handover requested'));
  });

  it('--execute moves the role to the standby and back with zero overlap and reports the switch times (3 drills)', async () => {
    for (let trial = 0; trial < 3; trial++) {
      const holder = await h.waitProducing();
      const standby = h.hosts.find((x) => x !== holder)!;
      const since = process.hrtime.bigint();
      const r = await runDrill([...args, '--execute', '--json']);
      await sleep(300);
      // The nodes' own stamps: the holder, then the standby, then the holder — never interleaved.
      assert.deepEqual(producerRuns(h.hosts, since), [holder.name, standby.name, holder.name]);
      assert.equal(r.code, 0, r.stdout + r.stderr + h.diagnose());
      const report = JSON.parse(r.stdout) as {
        outcome: string;
        legs: Array<{
          from: string;
          to: string;
          switchMs: number;
          observedMs: number;
          checks: Array<{ ok: boolean }>;
        }>;
        finalHolder: string;
        maxActiveSeen: number;
      };
      assert.equal(report.outcome, 'passed');
      assert.deepEqual(
        report.legs.map((l) => [l.from, l.to]),
        [
          [`agent-${holder.name}`, `agent-${standby.name}`],
          [`agent-${standby.name}`, `agent-${holder.name}`],
        ],
      );
      for (const l of report.legs) {
        assert.ok(l.checks.every((c) => c.ok));
        assert.ok(Number.isFinite(l.switchMs) && l.switchMs >= 0, `switchMs ${l.switchMs}`);
        assert.ok(Number.isFinite(l.observedMs) && l.observedMs >= 0);
      }
      assert.equal(report.finalHolder, `agent-${holder.name}`);
      assert.equal(report.maxActiveSeen, 1);
      console.log(
        `# drill ${trial}: ${report.legs.map((l) => `${l.from}→${l.to} switch ${l.switchMs} ms (observed ${l.observedMs} ms)`).join(', ')}`,
      );
      // The standby is an ordinary follower again, not standing aside.
      const s = (
        await standby.agent!.client.get<{ roles: Array<Record<string, unknown>> }>('/v1/roles')
      ).body.roles[0]!;
      assert.equal(s.state, 'follower');
      assert.equal(s.standingAsideUntil, undefined);
    }
  });

  it('refuses when the standby is not ready, and changes nothing', async () => {
    const holder = await h.waitProducing();
    const standby = h.hosts.find((x) => x !== holder)!;
    const before = await roleOf(holder);
    const handovers = () => holder.agent!.output().split('handover requested').length;
    const handoversBefore = handovers();
    const since = process.hrtime.bigint();
    process.kill(standby.agent!.child.pid!, 'SIGSTOP');
    let r: DrillRun;
    try {
      r = await runDrill([...withTimeout('1500'), '--execute', '--json']);
    } finally {
      process.kill(standby.agent!.child.pid!, 'SIGCONT');
    }
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as { outcome: string; reason: string; legs: unknown[] };
    assert.equal(report.outcome, 'refused');
    assert.equal(report.reason, 'standby_not_ready');
    assert.deepEqual(report.legs, []);
    await sleep(300);
    assert.equal((await roleOf(holder)).token, before.token);
    assert.deepEqual(producerRuns(h.hosts, since), [holder.name]);
    assert.equal(handovers(), handoversBefore, 'no handover was asked');
  });

  it('SIGINT mid-drill leaves exactly one holder producing', async () => {
    const holder = await h.waitProducing();
    // Let the thawed standby settle back to campaigning.
    await sleep(500);
    const since = process.hrtime.bigint();
    let sent = false;
    const r = await runDrill([...args, '--execute'], (line, pid) => {
      if (!sent && line.includes('asking') && line.includes(`agent-${holder.name}`)) {
        sent = true;
        process.kill(pid, 'SIGINT');
      }
    });
    assert.ok(sent, r.stderr);
    assert.equal(r.code, 130, r.stdout + r.stderr);
    assert.match(r.stdout, /ABORTED/);
    // Quiet time: whoever holds the role now keeps it, and only one node produces.
    await sleep(1500);
    const producing = h.producing();
    assert.ok(producing, `exactly one host producing\n${h.diagnose()}`);
    const runs = producerRuns(h.hosts, since);
    assert.ok(runs.length <= 2, `at most one switch, never interleaved: ${runs.join(' ')}`);
    assert.equal(runs[runs.length - 1], producing!.name);
    const states = await Promise.all(h.hosts.map((x) => roleOf(x)));
    assert.equal(states.filter((s) => s.state === 'active').length, 1);
  });
});
