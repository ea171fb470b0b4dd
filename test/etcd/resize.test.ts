/**
 * Resizing a real etcd cluster live, 3 → 5 → 3 members, while an agent's watermark store keeps
 * doing compare-and-swap writes through Vigil's etcd client: no write may fail, the cluster id
 * and the store identity stay the same. New members are added with `vigil cluster member add`
 * and started with exactly the etcd flags it printed. Then the CLI's refusals: a wrong
 * `--cluster-id`, and a removal that would lose quorum.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { EtcdClient } from '../../src/etcd/client.js';
import { ClusterResizer } from '../../src/etcd/resize.js';
import { openEtcdStore, type EtcdWatermarkStore } from '../../src/store/etcd.js';
import type { WatermarkScope } from '../../src/store/types.js';
import { EtcdTestCluster, etcdSkip, freePort, sleep } from '../helpers/etcd-cluster.js';
import { CLI_ENTRY } from '../helpers/paths.js';

const skip = etcdSkip();
const run = promisify(execFile);
const vigil = (...args: string[]) => run(process.execPath, [CLI_ENTRY, ...args]);
const prefix = '/vigil-resize/';

/** Runs the CLI expecting failure; resolves with its stderr. */
async function vigilFails(...args: string[]): Promise<string> {
  try {
    await vigil(...args);
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    assert.equal(e.code, 1, `exit code: ${e.stderr}`);
    return e.stderr ?? '';
  }
  throw new Error(`vigil ${args.join(' ')} succeeded; it should have been refused`);
}

/** An agent-like writer: one CAS update after another, each raising the slot by one. */
class Writer {
  granted = 0n;
  readonly failures: string[] = [];
  private stopped = false;
  private done: Promise<void> | undefined;

  constructor(
    private readonly store: EtcdWatermarkStore,
    private readonly scope: WatermarkScope,
  ) {}

  start(): void {
    this.done = (async () => {
      while (!this.stopped) {
        try {
          this.granted = await this.store.update(this.scope, (current) => {
            const next = (current?.position[0] ?? 0n) + 1n;
            return { write: { family: 'slot', position: [next], writer: 'resize' }, result: next };
          });
        } catch (err) {
          this.failures.push((err as Error).message);
        }
        await sleep(20);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

describe('etcd cluster resize, live', { skip }, () => {
  let cluster: EtcdTestCluster;
  const extra: ChildProcess[] = [];
  const newPorts: Array<{ client: number; peer: number }> = [];
  before(async () => {
    cluster = await EtcdTestCluster.start({ size: 3 });
    for (let i = 0; i < 2; i++) newPorts.push({ client: await freePort(), peer: await freePort() });
    await (await openEtcdStore(cluster.storeConfig({ prefix }), { create: true })).close();
  });
  after(async () => {
    for (const p of extra) {
      if (p.exitCode === null && p.signalCode === null) {
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGKILL');
        await exited;
      }
    }
    await cluster?.close();
  });

  const newClientUrl = (i: number) => `http://127.0.0.1:${newPorts[i]!.client}`;
  const newPeerUrl = (i: number) => `http://127.0.0.1:${newPorts[i]!.peer}`;
  /** Every member the test will ever have: the writer keeps one list throughout. */
  const allEndpoints = () => [...cluster.endpoints, newClientUrl(0), newClientUrl(1)];
  /** Kills a member by name: one of the cluster's own (m*) or one this test started (n*). */
  const killMember = async (name: string) => {
    if (name.startsWith('m')) return cluster.killMember(Number(name.slice(1)));
    const p = extra[Number(name.slice(1))]!;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  };
  /** Client URLs of the three members left after the resize. */
  let survivors: string[] = [];

  it('grows 3 → 5 and shrinks to 3 while CAS writes go on: none fails, identity kept', async () => {
    const store = await openEtcdStore(
      cluster.storeConfig({
        prefix,
        endpoints: allEndpoints(),
        timeouts: { callMs: 1000, updateMs: 20_000 },
        retries: 50,
      }),
    );
    const identity = store.identity.storeId;
    const client = new EtcdClient({ endpoints: allEndpoints(), callTimeoutMs: 2000 });
    const resizer = new ClusterResizer(client);
    const writer = new Writer(store, { chainId: 'resize', keyId: 'k', family: 'slot' });
    try {
      const clusterId = (await resizer.view()).clusterId;
      writer.start();
      const connection = ['--endpoints', cluster.endpoints.join(',')];

      for (const i of [0, 1]) {
        const name = `n${i}`;
        const { stdout } = await vigil(
          'cluster',
          'member',
          'add',
          ...connection,
          '--cluster-id',
          clusterId,
          '--name',
          name,
          '--peer-url',
          newPeerUrl(i),
          '--client-url',
          newClientUrl(i),
          '--data-dir',
          join(cluster.root, name),
          '--json',
        );
        const added = JSON.parse(stdout) as {
          member: { id: string; isLearner: boolean };
          flags: string[];
        };
        assert.equal(added.member.isLearner, true, 'joins as a learner');
        // Started with the flags the command printed, nothing else but quieter logs.
        extra.push(spawn('etcd', [...added.flags, '--log-level=error'], { stdio: 'ignore' }));
        // By id: etcd knows a member's name only once it has started.
        const promoted = await resizer.promote(clusterId, added.member.id, 30_000);
        assert.equal(promoted.isLearner, false);
      }
      let view = await resizer.view();
      assert.equal(view.members.filter((m) => !m.isLearner).length, 5);
      assert.equal(view.healthy.size, 5, 'all five answer');

      // Shrink by two: the raft leader first (leadership moves away before it goes), then
      // another of the original members.
      const leader = view.members.find((m) => m.id === view.leaderId)!;
      const second = view.members.find((m) => m.id !== leader.id && /^m\d$/.test(m.name))!;
      for (const [i, gone] of [leader, second].entries()) {
        const plan = await resizer.remove(clusterId, gone.name, { moveLeader: true });
        assert.equal(plan.member.id, gone.id);
        if (i === 0) assert.ok(plan.moveLeaderTo, 'leadership was moved first');
        view = await resizer.view();
        assert.ok(!view.members.some((m) => m.id === gone.id), `${gone.name} is gone`);
      }
      assert.equal(view.members.length, 3);
      survivors = view.members.map((m) => m.clientUrls[0]!);
      assert.equal(view.clusterId, clusterId, 'the cluster id is preserved');
      await sleep(500); // writes keep going on the shrunk cluster
      await writer.stop();
      assert.deepEqual(writer.failures, [], 'no write failed');
      assert.ok(writer.granted >= 20n, `writes went on during the resize (${writer.granted})`);
      const stored = await store.get({ chainId: 'resize', keyId: 'k', family: 'slot' });
      assert.equal(stored?.position[0], writer.granted, 'the last grant is what is stored');
      await store.ping(); // the store identity is the one opened before the resize
      assert.equal(store.identity.storeId, identity);
    } finally {
      await writer.stop();
      client.close();
      await store.close();
    }
  });

  it('the CLI refuses a wrong --cluster-id and a removal that would lose quorum', async () => {
    const endpoints = ['--endpoints', survivors.join(',')];
    const { stdout } = await vigil('cluster', 'member', 'list', ...endpoints, '--json');
    const listed = JSON.parse(stdout) as { clusterId: string; members: Array<{ name: string }> };
    assert.equal(listed.members.length, 3);

    const wrong = (BigInt(`0x${listed.clusterId}`) ^ 1n).toString(16);
    const refusedId = await vigilFails(
      'cluster',
      'member',
      'remove',
      'n1',
      ...endpoints,
      '--cluster-id',
      wrong,
    );
    assert.match(refusedId, /ETCD_WRONG_CLUSTER/);

    // Take one survivor down: removing another would leave two voters with one answering.
    const [keep, down] = listed.members.map((m) => m.name);
    await killMember(down!);
    const refusedQuorum = await vigilFails(
      'cluster',
      'member',
      'remove',
      keep!,
      ...endpoints,
      '--cluster-id',
      listed.clusterId,
      '--move-leader',
    );
    assert.match(refusedQuorum, /ETCD_QUORUM_LOSS/);
    const after = await vigil('cluster', 'member', 'list', ...endpoints, '--json');
    assert.equal(
      (JSON.parse(after.stdout) as { members: unknown[] }).members.length,
      3,
      'nothing removed',
    );
  });
});
