/** The registry on a real three-member etcd cluster (src/registry/store-etcd.ts). */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StoreIdentityError } from '../../src/errors.js';
import { identityKey, openEtcdStore } from '../../src/store/etcd.js';
import { peerIdFromEd25519 } from '../../src/registry/peer-id.js';
import { RegistryStore } from '../../src/registry/store.js';
import { EtcdRegistryCells, registryKey } from '../../src/registry/store-etcd.js';
import { EtcdTestCluster, etcdSkip } from '../helpers/etcd-cluster.js';
import { NOW, SET, keyOf, submission } from './fixtures.js';
import { checkConcurrentSubmissions, registryStoreSuite } from './store-suite.js';
import { checkSetChangeThroughStore } from './validator-set-fixtures.js';

const skip = etcdSkip();

describe('registry on etcd', { skip }, () => {
  let cluster: EtcdTestCluster;
  const prefix = '/vigil-registry-test/';
  before(async () => {
    cluster = await EtcdTestCluster.start({ size: 3 });
    // The registry writes only into an initialised store (`vigil state init`).
    await (await openEtcdStore(cluster.storeConfig({ prefix }), { create: true })).close();
  });
  after(async () => cluster?.close());

  const open = async (p = prefix) =>
    new RegistryStore(await EtcdRegistryCells.open(cluster.client(2000), { prefix: p }), {
      validators: SET,
      nowMs: () => NOW,
    });

  describe('store behaviour', () => {
    registryStoreSuite(open, async (subject, bytes) => {
      const c = cluster.client();
      try {
        await c.txn(
          'raw put',
          [],
          [{ put: { key: registryKey(prefix, subject), value: Buffer.from(bytes) } }],
          [],
        );
      } finally {
        c.close();
      }
    });
  });

  it('one key per subject under the store prefix, holding the encoded record', async () => {
    const store = await open();
    try {
      const subject = keyOf(60);
      await store.submit(submission(subject));
      const c = cluster.client();
      try {
        const { kv } = await c.get(registryKey(prefix, peerIdFromEd25519(subject.publicKey)));
        assert.ok(kv, 'the subject has its key');
        assert.equal(kv.value[0], 1, 'layout v1');
      } finally {
        c.close();
      }
    } finally {
      await store.close();
    }
  });

  it('refuses a prefix with no store identity, and stops writing once the identity changes', async () => {
    await assert.rejects(
      EtcdRegistryCells.open(cluster.client(), { prefix: '/nowhere/' }),
      StoreIdentityError,
    );
    const other = '/vigil-registry-reinit/';
    await (await openEtcdStore(cluster.storeConfig({ prefix: other }), { create: true })).close();
    const store = await open(other);
    try {
      await store.submit(submission(keyOf(61)));
      // Someone wipes and re-initialises the store under the registry's feet.
      const c = cluster.client();
      try {
        await c.txn('wipe', [], [{ delete: { key: identityKey(other) } }], []);
      } finally {
        c.close();
      }
      await (await openEtcdStore(cluster.storeConfig({ prefix: other }), { create: true })).close();
      await assert.rejects(store.submit(submission(keyOf(62))), StoreIdentityError);
      assert.equal(await store.get(peerIdFromEd25519(keyOf(62).publicKey)), undefined);
    } finally {
      await store.close();
    }
  });

  it('a validator-set change: one transaction, a quorum of the current set, stale and conflicting epochs refused', async () => {
    const p = '/vigil-registry-valset/';
    await (await openEtcdStore(cluster.storeConfig({ prefix: p }), { create: true })).close();
    await checkSetChangeThroughStore(() => open(p));
  });

  it('concurrent submissions from six clients, 3 subjects at once: strictly increasing seqs, no lost update', async () => {
    const stores = await Promise.all(Array.from({ length: 6 }, () => open()));
    try {
      await Promise.all([
        checkConcurrentSubmissions(stores, 5, 70),
        checkConcurrentSubmissions(stores, 5, 71),
        checkConcurrentSubmissions(stores, 5, 72),
      ]);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});
