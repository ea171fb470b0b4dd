/**
 * The registry stays writable while things change under it (issue 15, item 6 and "Tests"):
 *
 * 1. Three validators on a real three-member etcd cluster; peers submit new versions of their
 *    records one after another the whole time, while an etcd member is added (learner, then
 *    promoted) and another — the raft leader, leadership moved first — removed
 *    (src/etcd/resize.ts, the calls behind `vigil cluster member`). No submission may fail;
 *    afterwards every committed version is in the store, countersigned by a quorum, and in
 *    every node's view.
 * 2. A validator process joins the running network and another leaves, with submissions going
 *    on. Here the set stays the same (four keys, a quorum of two) and what changes is which of
 *    its members run: three run, the fourth starts, then one stops. Changing the set itself
 *    (a validator-set record, a new epoch) is tested in valset-network.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { EtcdClient } from '../../src/etcd/client.js';
import { newMemberFlags } from '../../src/etcd/membership.js';
import { ClusterResizer } from '../../src/etcd/resize.js';
import { openEtcdStore } from '../../src/store/etcd.js';
import type { ValidatorSet } from '../../src/registry/record.js';
import { RegistryPeer, RegistryValidator } from '../../src/registry/service.js';
import { EtcdRegistryCells } from '../../src/registry/store-etcd.js';
import { RegistryStore } from '../../src/registry/store.js';
import { EtcdTestCluster, etcdSkip, freePort, sleep } from '../helpers/etcd-cluster.js';
import { tempDir } from '../helpers/guard-fixtures.js';
import { keyOf, setOf } from './fixtures.js';
import { Submitter, seedOf, until } from './network-fixture.js';

const skip = etcdSkip();
const LOOPBACK = ['/ip4/127.0.0.1/tcp/0'];

interface Net {
  validators: RegistryValidator[];
  peers: RegistryPeer[];
  close(): Promise<void>;
}

describe('registry while etcd and the validators change', { skip, timeout: 180_000 }, () => {
  let root: string;
  let cleanup: () => void;
  let cluster: EtcdTestCluster;
  const extra: ChildProcess[] = [];
  let newPorts: { client: number; peer: number };
  /** Every member the cluster will ever have: the validators keep one list throughout. */
  let allEndpoints: string[];
  before(async () => {
    ({ dir: root, cleanup } = tempDir('vigil-registry-resize-'));
    cluster = await EtcdTestCluster.start({ size: 3 });
    newPorts = { client: await freePort(), peer: await freePort() };
    allEndpoints = [...cluster.endpoints, `http://127.0.0.1:${newPorts.client}`];
  });
  after(async () => {
    for (const p of extra)
      if (p.exitCode === null && p.signalCode === null) {
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGKILL');
        await exited;
      }
    await cluster?.close();
    cleanup?.();
  });

  const storeOn = async (prefix: string, set: ValidatorSet) =>
    new RegistryStore(
      await EtcdRegistryCells.open(
        new EtcdClient({ endpoints: allEndpoints, callTimeoutMs: 1000 }),
        // A write waits out an election or a member's removal instead of failing.
        { prefix, updateMs: 20_000, retries: 60 },
      ),
      { validators: set },
    );

  async function startValidator(
    net: Net,
    tag: number,
    prefix: string,
    set: ValidatorSet,
    dir: string,
  ): Promise<RegistryValidator> {
    const v = await RegistryValidator.start({
      seed: seedOf(tag),
      listen: LOOPBACK,
      bootstrap: [...net.validators, ...net.peers].map((n) => n.addresses[0]!),
      validators: set,
      viewPath: join(dir, `v${tag}-view.db`),
      metrics: new Registry(),
      store: await storeOn(prefix, set),
      countersignStatePath: join(dir, `v${tag}-countersigned.db`),
      ratePoints: 10_000,
    });
    net.validators.push(v);
    return v;
  }

  async function startNet(
    name: string,
    set: ValidatorSet,
    validatorTags: number[],
    peers: number,
  ): Promise<Net> {
    const prefix = `/vigil-registry-resize-${name}/`;
    await (await openEtcdStore(cluster.storeConfig({ prefix }), { create: true })).close();
    const dir = join(root, name);
    const net: Net = {
      validators: [],
      peers: [],
      close: async () => {
        for (const n of [...net.peers, ...net.validators]) await n.stop().catch(() => undefined);
      },
    };
    for (const tag of validatorTags) await startValidator(net, tag, prefix, set, dir);
    for (let i = 0; i < peers; i++)
      net.peers.push(
        await RegistryPeer.start({
          seed: seedOf(1 + i),
          listen: LOOPBACK,
          bootstrap: net.validators.map((v) => v.addresses[0]!),
          validators: set,
          viewPath: join(dir, `p${i}-view.db`),
          metrics: new Registry(),
        }),
      );
    return net;
  }

  /** Every submitter's last version: in the store with a quorum, and in every live view. */
  async function checkConverged(net: Net, subs: Submitter[], set: ValidatorSet): Promise<void> {
    const store = net.validators[0]!.store;
    for (const s of subs) {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const rec = await store.get(s.peer.peerId);
        assert.equal(rec?.seq, s.committed, 'the last committed version is the stored one');
        if (rec.countersignatures.length >= set.quorum) break;
        assert.ok(Date.now() < deadline, `${s.peer.peerId} seq ${s.committed} has no quorum`);
        await sleep(50);
      }
    }
    const everyone = [...net.validators, ...net.peers];
    await until(
      'every node holds every last version',
      () => subs.every((s) => everyone.every((n) => n.view.seq(s.peer.peerId) === s.committed)),
      20_000,
    );
  }

  it('etcd grows by a learner (promoted) and loses its leader while peers submit: no failure', async (t) => {
    const set = setOf([100, 101, 102].map(keyOf));
    const net = await startNet('etcd', set, [100, 101, 102], 3);
    const client = new EtcdClient({ endpoints: allEndpoints, callTimeoutMs: 2000 });
    const resizer = new ClusterResizer(client);
    const subs = net.peers.map((p) => new Submitter(p, () => net.validators.map((v) => v.peerId)));
    try {
      const clusterId = (await resizer.view()).clusterId;
      subs.forEach((s) => s.start());
      await sleep(500);

      const { plan, member } = await resizer.addLearner(clusterId, 'n0', [
        `http://127.0.0.1:${newPorts.peer}`,
      ]);
      assert.equal(member.isLearner, true, 'joins as a learner');
      const flags = newMemberFlags(plan, {
        clientUrls: [`http://127.0.0.1:${newPorts.client}`],
        dataDir: join(cluster.root, 'n0'),
      });
      extra.push(spawn('etcd', [...flags, '--log-level=error'], { stdio: 'ignore' }));
      const promoted = await resizer.promote(clusterId, member.id, 60_000);
      assert.equal(promoted.isLearner, false);
      const atGrow = subs.reduce((a, s) => a + s.committed, 0n);

      let view = await resizer.view();
      assert.equal(view.members.length, 4);
      const leader = view.members.find((m) => m.id === view.leaderId)!;
      const removed = await resizer.remove(clusterId, leader.id, { moveLeader: true });
      assert.equal(removed.member.id, leader.id);
      const gone = cluster.members.findIndex((m) => m.name === leader.name);
      // A removed member stops by itself; its process is ended here in any case.
      if (gone >= 0) await cluster.killMember(gone);
      else await new Promise((r) => (extra[0]!.kill('SIGKILL'), extra[0]!.once('exit', r)));
      view = await resizer.view();
      assert.equal(view.members.length, 3);
      assert.equal(view.clusterId, clusterId, 'the cluster id is kept');

      await sleep(1000); // writes go on on the resized cluster
      await Promise.all(subs.map((s) => s.stop()));
      const total = subs.reduce((a, s) => a + s.committed, 0n);
      assert.deepEqual(
        subs.flatMap((s) => s.failures),
        [],
        'no submission failed',
      );
      t.diagnostic(`${total} submissions committed, ${atGrow} before the leader's removal`);
      assert.ok(atGrow >= 3n, `submissions committed before the removal (${atGrow})`);
      assert.ok(total > atGrow, `submissions committed after the removal (${total} > ${atGrow})`);
      await checkConverged(net, subs, set);
    } finally {
      await Promise.all(subs.map((s) => s.stop()));
      client.close();
      await net.close();
    }
  });

  it('a validator joins the running network and another leaves while peers submit: no failure', async (t) => {
    // Four keys, quorum two: three run at first, the fourth joins, then the first leaves.
    const set = setOf([110, 111, 112, 113].map(keyOf), 2);
    const net = await startNet('validators', set, [110, 111, 112], 3);
    const prefix = '/vigil-registry-resize-validators/';
    const subs = net.peers.map((p) => new Submitter(p, () => net.validators.map((v) => v.peerId)));
    try {
      subs.forEach((s) => s.start());
      await sleep(500);
      const joined = await startValidator(net, 113, prefix, set, join(root, 'validators'));
      // The newcomer countersigns what is committed from now on.
      const mark = new Map(subs.map((s) => [s.peer.peerId, s.committed]));
      await sleep(1500);
      const leaving = net.validators.shift()!;
      await leaving.stop();
      await sleep(1500);
      await Promise.all(subs.map((s) => s.stop()));
      assert.deepEqual(
        subs.flatMap((s) => s.failures),
        [],
        'no submission failed',
      );
      t.diagnostic(
        `${subs.reduce((a, s) => a + s.committed, 0n)} submissions committed, ${[...mark.values()].reduce((a, b) => a + b, 0n)} before the join`,
      );
      for (const s of subs)
        assert.ok(
          s.committed > (mark.get(s.peer.peerId) ?? 0n) + 2n,
          'submissions went on after the change',
        );
      await checkConverged(net, subs, set);
      // The newcomer's countersignature is on the versions committed after it joined.
      const joinedKey = keyOf(113).publicKey;
      for (const s of subs) {
        const deadline = Date.now() + 20_000;
        for (;;) {
          const rec = await joined.store.get(s.peer.peerId);
          if (rec?.countersignatures.some((c) => Buffer.compare(c.validator, joinedKey) === 0))
            break;
          assert.ok(Date.now() < deadline, `${s.peer.peerId}: not countersigned by the newcomer`);
          await sleep(50);
        }
      }
    } finally {
      await Promise.all(subs.map((s) => s.stop()));
      await net.close();
    }
  });
});
