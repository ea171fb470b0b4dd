/**
 * examples/local/cosmos-guarded.yaml (`provider: local`: a validator, two sentries, three etcd
 * guard members, a monitor) applied on this machine, as `vigil apply` does for it: every flow the plan allows works and every other one is blocked
 * (agents → etcd open; sentries, the monitor and the internet → etcd's client port blocked),
 * the validator's simulated node gets verified signatures through the Vigil agent whose
 * watermarks are in etcd, and destroy leaves no namespace, link or process behind. Needs root,
 * ip, nft, wg, wireguard-go and etcd: skipped loudly when any is missing, unless
 * VIGIL_REQUIRE_ETCD=1 (CI), where a missing tool fails the test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  applyLocal,
  destroyLocal,
  RUN_RECORD,
  type LocalFleet,
  type LocalUnit,
} from '../../src/provision/local/fleet.js';
import { healHost, killHost, partitionHost } from '../../src/provision/local/faults.js';
import type { SimUnitStatus } from '../../src/provision/local/sim-unit-config.js';
import { REQUIRED_TOOLS, missingTools, pidAlive } from '../../src/provision/local/exec.js';
import { pidRunning } from '../../src/provision/local/processes.js';
import { MONITOR_TOOLS } from '../../src/provision/local/monitor.js';
import {
  deriveFlows,
  formatFlow,
  probeFlows,
  servicesOf,
} from '../../src/provision/local/reachability.js';
import { readNodeStatus } from '../../src/provision/local/chain-nodes.js';
import { RunRecordFile, type RunRecord } from '../../src/provision/local/run-record.js';
import { planFleet } from '../../src/render/fleet.js';
import { planExample } from '../render/helpers.js';
import { CLI_ENTRY as CLI } from '../helpers/paths.js';

function localSkip(): string | false {
  const why: string[] = [];
  if (process.getuid?.() !== 0) why.push('not root');
  why.push(
    ...missingTools([...REQUIRED_TOOLS, 'etcd', ...MONITOR_TOOLS]).map((t) => `${t} missing`),
  );
  if (why.length === 0) return false;
  if (process.env.VIGIL_REQUIRE_ETCD === '1')
    throw new Error(`VIGIL_REQUIRE_ETCD=1 but the local fleet cannot run: ${why.join(', ')}`);
  const msg = `local fleet: SKIPPING (${why.join(', ')})`;
  console.error(`\n!!! ${msg} !!!\n`);
  return msg;
}

const netnsList = () =>
  spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((l) => l !== '');

test(
  'examples/local/cosmos-guarded (etcd guard) applied: planned flows, signatures, clean destroy',
  {
    skip: localSkip(),
    timeout: 150_000,
  },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgl-lf-'));
    const state = join(dir, 's');
    let applied = false;
    try {
      const r = planFleet('examples/local/cosmos-guarded.yaml', { state, write: false });
      assert.ok(r.plan && r.files, JSON.stringify(r.findings));
      const steps: string[] = [];
      const t0 = performance.now();
      const fleet = await applyLocal({
        plan: r.plan!,
        files: r.files!,
        stateDir: state,
        progress: { step: (label, _ms, err) => steps.push(err ? `FAIL ${label}` : label) },
      });
      applied = true;
      const applyMs = performance.now() - t0;
      assert.ok(applyMs < 180_000, `apply took ${applyMs} ms`);
      assert.ok(
        steps.every((s) => !s.startsWith('FAIL')),
        steps.join('\n'),
      );
      // One step per layer per host, shown as it happens.
      for (const layer of ['nftables', 'WireGuard wg0', 'uplink'])
        assert.equal(steps.filter((s) => s.includes(layer)).length, 7, layer);
      assert.equal(steps.filter((s) => s.includes(': etcd member (')).length, 3);
      assert.ok(
        steps.some((s) => /3 etcd members have a quorum/.test(s)),
        steps.join('\n'),
      );

      // The record lists every namespace and process, and they exist.
      const record = RunRecordFile.load(join(state, RUN_RECORD)).record;
      const recordedNs = record.created.flatMap((c) => (c.kind === 'netns' ? [c.name] : []));
      const pids = record.created.flatMap((c) => (c.kind === 'process' ? [c.pid] : []));
      assert.equal(recordedNs.length, 8);
      const etcdPids = record.created.filter((c) => c.kind === 'process' && /^etcd/.test(c.what));
      assert.equal(etcdPids.length, 3);
      for (const ns of recordedNs) assert.ok(netnsList().includes(ns), ns);
      for (const pid of pids) assert.ok(pidAlive(pid), `pid ${pid}`);

      // Reachability: every flow derived from the plan, as the plan says.
      const publicAddress = new Map(record.hosts.map((h) => [h.name, h.publicAddress]));
      const flows = deriveFlows(r.plan!, servicesOf(r.plan!, r.files!), publicAddress);
      const has = (from: string, to: string, purpose: string, expect: string) =>
        flows.some(
          (f) =>
            f.from.startsWith(from) &&
            f.to === to &&
            f.purpose.includes(purpose) &&
            f.expect === expect,
        );
      // The flows the issue names are among those derived (and not hand-written here).
      assert.ok(has('sentry', 'validator', 'p2p', 'open'), 'sentry → validator p2p');
      assert.ok(has('monitor', 'validator', 'metrics', 'open'), 'monitor → metrics');
      assert.ok(has('internet', 'validator', 'p2p', 'blocked'), 'internet → validator p2p');
      assert.ok(has('sentry', 'validator', 'privval', 'blocked'), 'sentry → signing link');
      assert.ok(has('validator', 'guard-1', 'etcd client', 'open'), 'agent → etcd');
      assert.ok(has('sentry', 'guard-1', 'etcd client', 'blocked'), 'sentry → etcd');
      assert.ok(has('monitor', 'guard-1', 'etcd client', 'blocked'), 'monitor → etcd');
      assert.ok(has('internet', 'guard-1', 'etcd client', 'blocked'), 'internet → etcd');
      assert.ok(has('guard-2', 'guard-1', 'etcd peer', 'open'), 'member → member');
      assert.ok(has('monitor', 'guard-1', 'etcd metrics', 'open'), 'monitor → etcd metrics');
      const results = await probeFlows(record, flows);
      const wrong = results.filter((x) => !x.ok);
      assert.deepEqual(wrong.map(formatFlow), []);
      assert.ok(results.filter((x) => x.result === 'open').length >= 10);
      assert.ok(results.filter((x) => x.result === 'timeout').length >= 10);

      // Signatures granted through the agent's guard reach the validator's node, verified.
      const statusFile = fleet.nodeStatusFiles.get('validator')!;
      const deadline = Date.now() + 20_000;
      while ((readNodeStatus(statusFile)?.verified ?? 0) < 6 && Date.now() < deadline)
        await sleep(200);
      const status = readNodeStatus(statusFile)!;
      assert.ok(status.verified >= 6, JSON.stringify(status));
      assert.equal(status.refused, 0);
      assert.equal(status.verified, status.signed);
      // The validator's node reaches each sentry's p2p port over WireGuard.
      assert.equal(status.peersConnected.length, 2, JSON.stringify(status));
      const agentLog = readFileSync(join(record.runDir, 'validator', 'agent.log'), 'utf8');
      assert.match(agentLog, /agent ready/);
      // The watermark behind those signatures is in the guard cluster: read back over the VPN
      // by `vigil state show` from the validator's namespace with its (re-rooted) agent.yaml.
      const validatorNs = record.hosts.find((h) => h.name === 'validator')!.netns;
      const shown = spawnSync(
        'ip',
        [
          'netns',
          'exec',
          validatorNs,
          process.execPath,
          CLI,
          'state',
          'show',
          '--json',
          '--config',
          join(record.runDir, 'validator', 'root', 'etc/vigil/agent.yaml'),
        ],
        { encoding: 'utf8', timeout: 30_000 },
      );
      assert.equal(shown.status, 0, shown.stderr);
      const stored = JSON.parse(shown.stdout) as {
        store: { engine: string };
        watermarks: { chainId: string; position: string[] }[];
      };
      assert.equal(stored.store.engine, 'etcd');
      const mark = stored.watermarks.find((w) => w.chainId === 'cosmoshub-4');
      assert.ok(mark && BigInt(mark.position[0]!) >= 2n, shown.stdout);

      await destroyLocal(state);
      applied = false;
      for (const ns of recordedNs) assert.ok(!netnsList().includes(ns), `${ns} left`);
      // destroyLocal waited for each to exit; one this process started may still be a zombie
      // until Node reaps it (more likely with the monitor's ten more processes on a busy box).
      for (const pid of pids) assert.ok(!pidRunning(pid), `pid ${pid} left`);
      const links = spawnSync('ip', ['-o', 'link'], { encoding: 'utf8' }).stdout;
      assert.doesNotMatch(links, new RegExp(`vgl${record.fleetId}`));
      assert.ok(!existsSync(join(state, RUN_RECORD)));
      assert.ok(!existsSync(record.runDir));
    } finally {
      if (applied) await destroyLocal(state).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

/** Applies `topology`, proves its flows, runs `more`, destroys; checks nothing is left. */
async function applyCheckDestroy(
  name: string,
  more: (fleet: LocalFleet, record: RunRecord) => Promise<void> | void,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vgl-lf-'));
  const state = join(dir, 's');
  let applied = false;
  try {
    const r = planExample(name, state);
    const t0 = performance.now();
    const fleet = await applyLocal({ plan: r.plan!, files: r.files!, stateDir: state });
    applied = true;
    const applyMs = performance.now() - t0;
    assert.ok(applyMs < 180_000, `${name}: apply took ${applyMs} ms`);
    const record = fleet.record;
    const publicAddress = new Map(record.hosts.map((h) => [h.name, h.publicAddress]));
    const flows = deriveFlows(r.plan!, servicesOf(r.plan!, r.files!), publicAddress);
    const results = await probeFlows(record, flows);
    assert.deepEqual(results.filter((x) => !x.ok).map(formatFlow), [], name);
    assert.ok(results.filter((x) => x.result === 'open').length >= 6, name);
    await more(fleet, record);
    const unitPids = fleet.units.flatMap((u) => {
      const st = readUnitStatus(u.statusFile);
      return st ? [st.pid] : [];
    });
    const recordedNs = record.created.flatMap((c) => (c.kind === 'netns' ? [c.name] : []));
    const pids = record.created.flatMap((c) => (c.kind === 'process' ? [c.pid] : []));
    await destroyLocal(state);
    applied = false;
    for (const ns of recordedNs) assert.ok(!netnsList().includes(ns), `${ns} left`);
    for (const pid of [...pids, ...unitPids]) assert.ok(!pidRunning(pid), `pid ${pid} left`);
  } finally {
    if (applied) await destroyLocal(state).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

function readUnitStatus(file: string): SimUnitStatus | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SimUnitStatus;
  } catch {
    return undefined;
  }
}

/** The monotonic start and stop times local-unit-main.ts journals for a unit. */
function journalOf(u: LocalUnit): { start: bigint[]; stopped: bigint[] } {
  const out = { start: [] as bigint[], stopped: [] as bigint[] };
  const file = u.pidFile.replace(/\.pid$/, '.journal');
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [event, ns] = line.split(' ');
    if (event === 'start' || event === 'stopped') out[event].push(BigInt(ns!));
  }
  return out;
}

/** Waits (bounded) until `ready()`; the caller asserts on what it then sees. */
async function until(ready: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ready() && Date.now() < deadline) await sleep(200);
}

test(
  'every example topology applied with --local: simulated nodes, planned flows, clean destroy',
  { skip: localSkip(), timeout: 400_000 },
  async () => {
    await applyCheckDestroy('cosmos-sentries', async (fleet) => {
      const statusFile = fleet.nodeStatusFiles.get('validator')!;
      await until(() => (readNodeStatus(statusFile)?.verified ?? 0) >= 3);
      const st = readNodeStatus(statusFile)!;
      assert.ok(st.verified >= 3 && st.refused === 0, JSON.stringify(st));
      assert.equal(st.peersConnected.length, 3, JSON.stringify(st));
    });
    await applyCheckDestroy('polkadot-guarded', async (fleet) => {
      // Both agents campaign for the role through the etcd guard; the winner's watchdog
      // starts its simulated Polkadot node, the other one stays down.
      const nodes = fleet.units.filter((u) => u.unit === 'polkadot-node.service');
      assert.equal(nodes.length, 2);
      assert.ok(nodes.every((u) => u.startedBy === 'watchdog'));
      const running = () => nodes.filter((u) => existsSync(u.pidFile));
      // The pid file is written at spawn, the status once the simulated node listens.
      await until(() => running().some((u) => readUnitStatus(u.statusFile) !== undefined));
      assert.equal(running().length, 1, JSON.stringify(nodes.map((u) => u.host)));
      const active = running()[0]!;
      const st = readUnitStatus(active.statusFile)!;
      // Each host's sync node runs from boot; starting the validator stopped its own host's
      // (Conflicts=), so the standby alone keeps syncing.
      const syncs = fleet.units.filter((u) => u.unit === 'polkadot-sync.service');
      assert.deepEqual(
        syncs.map((u) => u.startedBy),
        ['boot', 'boot'],
      );
      const syncOf = (host: string) => syncs.find((u) => u.host === host)!;
      assert.ok(!existsSync(syncOf(active.host).pidFile), `${active.host} syncs while validating`);
      assert.ok(
        existsSync(syncOf(nodes.find((u) => u !== active)!.host).pidFile),
        'the standby does not sync',
      );
      assert.ok(pidAlive(st.pid));
      assert.ok(st.listening.includes('0.0.0.0:30333'), JSON.stringify(st));
      const other = nodes.find((u) => u !== active)!;
      assert.ok(!existsSync(other.statusFile), `${other.host} runs a node too`);
      const log = readFileSync(join(fleet.record.runDir, active.host, 'watchdog.log'), 'utf8');
      assert.match(log, /"msg":"active"/);

      // Partition: the holder's uplink cut both ways (its WireGuard links with it). Its agent
      // loses the guard, its watchdog stops its node, and only then may the other start.
      partitionHost(fleet.record, active.host, 'both');
      await until(() => existsSync(other.pidFile), 60_000);
      assert.ok(existsSync(other.pidFile), `${other.host} never took the role`);
      const a = journalOf(active);
      const b = journalOf(other);
      assert.ok(a.stopped.length > 0, `${active.host} node never stopped`);
      assert.equal(b.start.length, 1);
      assert.ok(a.stopped.at(-1)! < b.start[0]!, 'both nodes ran at once');
      healHost(fleet.record, active.host);

      // Host loss: every process of the new holder killed (node, watchdog, agent, WireGuard).
      // The first host, healed, takes the role back, after the lost one's node was dead.
      const left = await killHost(fleet.record, other.host);
      assert.deepEqual(left, []);
      const lostAt = process.hrtime.bigint();
      await until(() => journalOf(active).start.length > a.start.length, 60_000);
      const again = journalOf(active);
      assert.equal(again.start.length, a.start.length + 1, `${active.host} did not take it back`);
      assert.ok(lostAt < again.start.at(-1)!, 'the role moved before the lost host was dead');
    });
    await applyCheckDestroy('cardano-pool', async (fleet) => {
      const producer = fleet.units.find((u) => u.host === 'producer')!;
      const standby = fleet.units.find((u) => u.host === 'standby')!;
      assert.equal(producer.startedBy, 'boot');
      // Not enabled as rendered: the standby's node waits for a manual failover.
      assert.equal(standby.startedBy, 'operator');
      assert.ok(!existsSync(standby.statusFile));
      // The producer reaches both relays (its topology.json local roots) over WireGuard.
      await until(() => (readUnitStatus(producer.statusFile)?.peersConnected.length ?? 0) === 2);
      assert.deepEqual(
        [...readUnitStatus(producer.statusFile)!.peersConnected].sort(),
        producer.peers.slice().sort(),
      );
      assert.equal(producer.peers.length, 2);
    });
    await applyCheckDestroy('decred-solo', (fleet) => {
      const dcrd = fleet.units.filter((u) => u.unit === 'dcrd.service');
      assert.equal(dcrd.length, 3);
      for (const u of dcrd)
        assert.ok(readUnitStatus(u.statusFile)?.listening.includes('0.0.0.0:9108'), u.host);
      assert.equal(fleet.units.filter((u) => u.unit === 'dcrwallet.service').length, 3);
    });
  },
);

test('a failed local apply rolls back everything it created', { skip: localSkip() }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgl-lf-'));
  const state = join(dir, 's');
  try {
    const r = planExample('cosmos-sentries', state);
    // A ruleset nft refuses, on the third host: namespaces already exist when it fails.
    const files = new Map(r.files!);
    files.set('hosts/sentry-vultr/files/etc__nftables.conf', 'table inet vigil { chain x {');
    const before = netnsList();
    await assert.rejects(
      applyLocal({ plan: r.plan!, files, stateDir: state }),
      /rolled back.*sentry-vultr|rolled back/,
    );
    assert.deepEqual(netnsList().sort(), before.sort());
    assert.ok(!existsSync(join(state, RUN_RECORD)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
