/** Leadership on a real 3-member etcd cluster: token = leader key revision, own deadline. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EtcdLeaderElection } from '../../src/lease/etcd.js';
import { openElection } from '../../src/lease/index.js';
import { LeaseTimingSchema, now } from '../../src/lease/types.js';
import { openEtcdStore, type EtcdWatermarkStore } from '../../src/store/etcd.js';
import { FencedError } from '../../src/store/types.js';
import { EtcdTestCluster, etcdSkip, sleep } from '../helpers/etcd-cluster.js';

const skip = etcdSkip();
const scope = { chainId: 'c', keyId: 'k', family: 'slot' as const };

describe('etcd leadership', { skip }, () => {
  let cluster: EtcdTestCluster;
  let store: EtcdWatermarkStore;
  before(async () => {
    cluster = await EtcdTestCluster.start();
    store = await openEtcdStore(cluster.storeConfig() as never, { create: true });
  });
  after(async () => {
    await store?.close();
    await cluster?.close();
  });

  const election = (holder: string, ttlMs = 2000) =>
    new EtcdLeaderElection(
      store.client,
      '/vigil-test/',
      'producer',
      holder,
      LeaseTimingSchema.parse({ ttlMs, marginMs: 100 }),
    );
  const write = (slot: bigint, fence: { role: string; token: bigint }) =>
    store.update(scope, () => ({ write: { family: 'slot', position: [slot] }, result: slot }), {
      fence,
    });

  it('token is the leader key revision and cluster id; the deadline never exceeds send + TTL', async () => {
    const a = election('A');
    const before = now();
    const la = (await a.tryAcquire())!;
    assert.ok(la);
    assert.ok(la.deadline() <= before + 2000 + 1, 'deadline counts from before the grant');
    assert.equal((await a.current())?.token, la.fence.token);
    // Revisions repeat after a rebuild; the cluster that issued the token is part of it.
    assert.equal(la.fence.clusterId, (await store.client.get('/vigil-test/x')).clusterId);
    assert.equal((await a.current())?.holderId, 'A');
    assert.equal(await election('B').tryAcquire(), undefined);
    const beforeRenew = now();
    assert.ok(await la.renew());
    assert.ok(la.deadline() <= now() + 2000 && la.deadline() >= beforeRenew + 2000 - 100);
    assert.equal(await write(1n, la.fence), 1n);
    await la.release();
    assert.equal(la.held(), false);
  });

  it('openElection on the etcd store shares its connection and prefix', async () => {
    const e = openElection(store, 'other-role', 'A', LeaseTimingSchema.parse({ ttlMs: 2000 }));
    assert.ok(e instanceof EtcdLeaderElection);
    const l = (await e.tryAcquire())!;
    assert.equal(await write(7n, l.fence), 7n);
    await l.release();
    await assert.rejects(write(8n, l.fence), FencedError);
  });

  it('a holder that stops renewing is deposed by its own clock, then fenced by etcd', async () => {
    const la = (await election('A').tryAcquire())!;
    assert.ok(la);
    // Deposed locally at send + TTL − margin; etcd expires the lease a little later.
    while (la.held()) await sleep(50);
    assert.equal(await la.renew(), false);
    let lb;
    for (let i = 0; i < 60 && !lb; i++) {
      lb = await election('B').tryAcquire();
      if (!lb) await sleep(100);
    }
    assert.ok(lb, 'the role became free once etcd expired the lease');
    assert.ok(lb.fence.token > la.fence.token);
    await assert.rejects(write(2n, la.fence), FencedError);
    assert.equal(await write(3n, lb.fence), 3n);
    await lb.release();
    await assert.rejects(write(4n, lb.fence), FencedError);
  });

  it('a successor waits one TTL unless the previous holder recorded a confirmed stop', async () => {
    const role = (holder: string) =>
      new EtcdLeaderElection(
        store.client,
        '/vigil-test/',
        'handover-role',
        holder,
        LeaseTimingSchema.parse({ ttlMs: 2000, marginMs: 100 }),
      );
    // No record at all (a fresh role, or holders that predate it): wait.
    const la = (await role('A').tryAcquire())!;
    assert.ok(la.safeAfter >= now() + 2000 - 100, 'no record: waits a TTL');
    // A confirmed stop, recorded with the release: the successor may start at once.
    await la.release();
    const lb = (await role('B').tryAcquire())!;
    assert.ok(lb, 'released: free at once');
    assert.ok(lb.safeAfter <= now(), 'confirmed stop: no wait');
    // B's lease revoked by someone else (no confirmed stop recorded): C must wait a TTL.
    const holder = await store.client.get('/vigil-test/leaders/handover-role');
    await store.client.leaseRevoke(holder.kv!.lease);
    const lc = (await role('C').tryAcquire())!;
    assert.ok(lc, 'revoked: free at once');
    assert.ok(lc.safeAfter >= now() + 2000 - 100, 'revoked without a confirmed stop: waits a TTL');
    // B's late release must not record a stop for C's holding.
    await lb.release();
    assert.ok(lc.held());
    assert.equal((await role('D').current())?.holderId, 'C');
    await lc.release();
  });
});
