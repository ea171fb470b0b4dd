import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { InputError, StoreIdentityError, StoreUnavailableError } from '../../src/errors.js';
import type { Watermark } from '../../src/guard/watermark.js';
import { initCa, issueCert } from '../../src/etcd/pki.js';
import {
  identityKey,
  openEtcdStore,
  watermarkKey,
  type EtcdWatermarkStore,
} from '../../src/store/etcd.js';
import { encodeRecord } from '../../src/store/record-codec.js';
import { Ed25519Key } from '../../src/keys/ed25519.js';
import { KeyRing } from '../../src/keys/keyring.js';
import { binding, grandpaVote } from '../helpers/guard-fixtures.js';
import { GuardedSigner } from '../../src/signer/guarded-signer.js';
import { LocalWatermarks } from '../../src/signer/local-watermark.js';
import {
  FencedError,
  scopeId,
  type FenceToken,
  type WatermarkScope,
} from '../../src/store/types.js';
import { EtcdTestCluster, etcdSkip, sleep } from '../helpers/etcd-cluster.js';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('../etcd/agent-child.js', import.meta.url));
const skip = etcdSkip();

/** A GuardedSigner on `store` with its own key and local watermark file. */
function signerOn(store: EtcdWatermarkStore) {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-signer-'));
  const local = new LocalWatermarks(join(dir, 'local.db'));
  local.bindStore(store.identity);
  const key = Ed25519Key.fromSeed(new Uint8Array(32).fill(Math.floor(Math.random() * 255)));
  const keys = new KeyRing();
  keys.add({
    id: 'k',
    scopeKeyId: key.publicKeyHex,
    signer: key,
    binding: binding('grandpa', ['signer-test']),
  });
  const signer = new GuardedSigner({ store, keys, local, agentId: 'test' });
  return {
    sign: (slot: bigint, fence?: FenceToken) =>
      signer.sign({
        chainId: 'signer-test',
        keyId: 'k',
        payload: grandpaVote(0n, slot, 'prevote'),
        ...(fence ? { fence } : {}),
      }),
    close: () => {
      local.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const scope = (keyId = 'aa'): WatermarkScope => ({ chainId: 'test-1', keyId, family: 'slot' });
const mark = (slot: bigint, writer = 'w'): Watermark => ({
  family: 'slot',
  position: [slot],
  payloadHash: new Uint8Array(32).fill(Number(slot % 256n)),
  writer,
});

/** A decide that raises the slot watermark to `slot` if it is higher, else refuses. */
const raiseTo =
  (slot: bigint, writer = 'w') =>
  (current: Watermark | undefined) =>
    current === undefined || current.position[0]! < slot
      ? { write: mark(slot, writer), result: 'granted' as const }
      : { result: 'refused' as const };

describe('etcd watermark store on a real 3-member cluster', { skip }, () => {
  let cluster: EtcdTestCluster;
  const stores: EtcdWatermarkStore[] = [];
  const open = async (overrides: Record<string, unknown> = {}) => {
    const s = await openEtcdStore(cluster.storeConfig(overrides) as never, { create: true });
    stores.push(s);
    return s;
  };

  before(async () => {
    cluster = await EtcdTestCluster.start();
  });
  after(async () => {
    for (const s of stores) await s.close();
    await cluster?.close();
  });

  it('has an identity only once initialised; racing inits agree; ping refuses a replaced one', async () => {
    const prefix = '/vigil-identity-test/';
    const config = cluster.storeConfig({ prefix }) as never;
    await assert.rejects(
      openEtcdStore(config),
      (e: unknown) =>
        e instanceof StoreIdentityError &&
        /no initialised Vigil watermark store under prefix \/vigil-identity-test\//.test(
          e.message,
        ) &&
        /vigil state init/.test(e.message),
    );
    const racing = await Promise.all(
      [0, 1, 2, 3].map(() => openEtcdStore(config, { create: true })),
    );
    stores.push(...racing);
    const id = racing[0]!.identity;
    assert.match(id.storeId, /^[0-9a-f-]{36}$/);
    assert.equal(id.engine, 'etcd');
    for (const s of racing) assert.deepEqual(s.identity, id);
    const reopened = await openEtcdStore(config);
    stores.push(reopened);
    assert.deepEqual(reopened.identity, id);
    await reopened.ping();
    // The cluster wiped and re-initialised under a running agent: readiness says so.
    const raw = cluster.client(2000);
    try {
      await raw.txn('wipe', [], [{ delete: { key: identityKey(prefix) } }]);
      await assert.rejects(
        reopened.ping(),
        (e: unknown) => e instanceof StoreIdentityError && /now \(none\)/.test(e.message),
      );
      const again = await openEtcdStore(config, { create: true });
      stores.push(again);
      assert.notEqual(again.identity.storeId, id.storeId);
      await assert.rejects(reopened.ping(), StoreIdentityError);
      // A prefix holding watermarks from before identities is adopted only when acknowledged.
      const legacy = '/vigil-identity-legacy/';
      await raw.put(watermarkKey(legacy, 'c/k/slot'), encodeRecord(mark(3n)));
      const legacyConfig = cluster.storeConfig({ prefix: legacy }) as never;
      await assert.rejects(
        openEtcdStore(legacyConfig, { create: true }),
        (e: unknown) => e instanceof StoreIdentityError && /--adopt-existing/.test(e.message),
      );
      const adopted = await openEtcdStore(legacyConfig, { create: true, adoptExisting: true });
      stores.push(adopted);
      assert.equal((await adopted.list()).length, 1);
    } finally {
      raw.close();
    }
  });

  it('commits, reads back and lists the record-codec bytes under the prefix', async () => {
    const store = await open();
    assert.equal(await store.update(scope('a1'), raiseTo(5n)), 'granted');
    assert.equal(await store.update(scope('a1'), raiseTo(5n)), 'refused');
    assert.deepEqual((await store.get(scope('a1')))?.position, [5n]);
    const raw = await store.client.get(watermarkKey('/vigil-test/', scopeId(scope('a1'))));
    assert.equal(raw.kv?.value.toString(), encodeRecord(mark(5n)));
    const listed = await store.list();
    assert.ok(listed.some((e) => e.scope.keyId === 'a1' && e.watermark.position[0] === 5n));
  });

  it('a stale cache loses the compare, re-reads and decides on the winner', async () => {
    const a = await open();
    const b = await open();
    await a.update(scope('a2'), raiseTo(1n, 'a'));
    await b.update(scope('a2'), raiseTo(7n, 'b')); // a's cache now says 1 at an old revision
    let seen: Watermark | undefined;
    const result = await a.update(scope('a2'), (current) => {
      seen = current;
      return raiseTo(6n, 'a')(current);
    });
    assert.equal(result, 'refused');
    assert.deepEqual(seen?.position, [7n]);
    assert.equal((await b.get(scope('a2')))?.writer, 'b');
  });

  it('concurrent conflicting requests from separate agent processes: exactly one grant', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-race-'));
    try {
      for (let round = 0; round < 3; round++) {
        const startAt = Date.now() + 1200;
        const racers = Array.from({ length: 5 }, (_, i) =>
          run(process.execPath, [
            CHILD,
            'race',
            JSON.stringify({
              store: cluster.storeConfig(),
              chainId: `race-${round}`,
              seedHex: '07'.repeat(32),
              slot: '42',
              payload: `block-from-agent-${i}`,
              localPath: join(dir, `agent-${round}-${i}.db`),
              startAt,
            }),
          ]),
        );
        const answers = (await Promise.all(racers)).map(
          (r) => JSON.parse(r.stdout.trim()) as { outcome: string; signature?: string },
        );
        const outcomes = answers.map((a) => a.outcome);
        assert.equal(outcomes.filter((o) => o === 'granted').length, 1, outcomes.join(','));
        assert.ok(
          outcomes.every((o) => o === 'granted' || o === 'refused:conflict'),
          outcomes.join(','),
        );
        assert.equal(answers.filter((a) => a.signature).length, 1, 'exactly one signature left');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('property: concurrent agents never grant one slot twice, and the store ends at the highest grant', async () => {
    const agents = await Promise.all([0, 1, 2, 3].map(() => open()));
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.bigInt({ min: 1n, max: 40n }), { minLength: 1, maxLength: 12 }), {
          minLength: 4,
          maxLength: 4,
        }),
        async (plans) => {
          const s = scope(`prop-${run++}`);
          const granted: bigint[] = [];
          await Promise.all(
            plans.map(async (slots, i) => {
              for (const slot of slots) {
                if ((await agents[i]!.update(s, raiseTo(slot, `a${i}`))) === 'granted')
                  granted.push(slot);
              }
            }),
          );
          assert.equal(new Set(granted).size, granted.length, `a slot granted twice: ${granted}`);
          const max = granted.reduce((a, b) => (b > a ? b : a), 0n);
          assert.deepEqual((await agents[0]!.get(s))?.position, [max]);
        },
      ),
      { numRuns: 15 },
    );
  });

  it('fenced updates commit only while the leader key holds that exact revision', async () => {
    const store = await open();
    const key = store.leaderKey('producer');
    const created = await store.client.txn(
      'campaign',
      [{ key, target: 'create', revision: 0n }],
      [{ put: { key, value: 'agent-a' } }],
    );
    assert.ok(created.succeeded);
    const fence = { role: 'producer', token: created.revision, clusterId: created.clusterId };
    assert.equal(await store.update(scope('f1'), raiseTo(1n), { fence }), 'granted');
    // Leadership moves: the key is deleted and recreated by someone else.
    await store.client.txn('resign', [], [{ delete: { key } }]);
    await store.client.put(key, 'agent-b');
    await assert.rejects(store.update(scope('f1'), raiseTo(2n), { fence }), FencedError);
    await assert.rejects(
      store.update(scope('f1'), raiseTo(3n), { fence }),
      (e: unknown) => e instanceof FencedError && e.code === 'FENCED',
    );
    assert.deepEqual((await store.get(scope('f1')))?.position, [1n]);
  });

  it('a fence token from another cluster, or naming none, is fenced: nothing is written', async () => {
    const store = await open();
    const key = store.leaderKey('other-cluster-role');
    const created = await store.client.txn(
      'campaign',
      [{ key, target: 'create', revision: 0n }],
      [{ put: { key, value: 'agent-a' } }],
    );
    const mine: FenceToken = {
      role: 'other-cluster-role',
      token: created.revision,
      clusterId: created.clusterId,
    };
    assert.equal(await store.update(scope('f2'), raiseTo(1n), { fence: mine }), 'granted');
    assert.equal(store.clusterId, created.clusterId);
    // Same role, same revision (the leader key really was created there), other cluster: a
    // rebuilt cluster hands out the same revisions again.
    const elsewhere: FenceToken = { ...mine, clusterId: created.clusterId ^ 1n };
    await assert.rejects(
      store.update(scope('f2'), raiseTo(2n), { fence: elsewhere }),
      (e: unknown) => e instanceof FencedError && /issued by etcd cluster/.test(e.message),
    );
    const { clusterId: _dropped, ...bare } = mine;
    await assert.rejects(
      store.update(scope('f2'), raiseTo(3n), { fence: bare }),
      (e: unknown) => e instanceof FencedError && /names no etcd cluster/.test(e.message),
    );
    assert.deepEqual((await store.get(scope('f2')))?.position, [1n]);
    assert.equal(await store.update(scope('f2'), raiseTo(4n), { fence: mine }), 'granted');
  });

  it('a cached "no record" is compared as absence: it cannot overwrite a record created since', async () => {
    // etcd fails a value compare on a missing key, so absence is compared as version 0.
    const a = await open();
    const b = await open();
    assert.equal(await a.get(scope('v2')), undefined);
    await b.update(scope('v2'), raiseTo(4n, 'b'));
    let seen: Watermark | undefined;
    const result = await a.update(scope('v2'), (current) => {
      seen = current;
      return raiseTo(3n, 'a')(current);
    });
    assert.equal(result, 'refused');
    assert.deepEqual(seen?.position, [4n]);
    assert.equal((await a.get(scope('v2')))?.writer, 'b');
  });

  it('keeps serving when the etcd leader member is killed', async () => {
    const store = await open();
    await store.update(scope('l1'), raiseTo(1n));
    const leader = await cluster.leaderIndex();
    await cluster.killMember(leader);
    try {
      for (let slot = 2n; slot < 12n; slot++) {
        assert.equal(await store.update(scope('l1'), raiseTo(slot)), 'granted');
      }
      assert.deepEqual((await store.get(scope('l1')))?.position, [11n]);
    } finally {
      cluster.startMember(leader);
      await cluster.waitHealthy();
    }
  });

  it('an agent started while its first endpoint hangs (paused member) uses the others', async () => {
    // A frozen or black-holed member accepts TCP but never completes the handshake: grpc-js
    // keeps the call "waiting for LB pick" until the deadline. That request was never sent,
    // so the client must move to the next endpoint instead of calling it ambiguous and
    // refusing until the member comes back.
    const pid = cluster.members[0]!.proc!.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      const store = await open({ timeouts: { callMs: 400, updateMs: 3000 } });
      for (let slot = 1n; slot < 4n; slot++) {
        assert.equal(await store.update(scope('d1'), raiseTo(slot)), 'granted');
      }
    } finally {
      process.kill(pid, 'SIGCONT');
      await cluster.waitHealthy();
    }
  });

  it('refuses everything without a quorum and resumes when members return', async () => {
    const store = await open({ timeouts: { callMs: 300, updateMs: 900 }, retries: 3 });
    const rig = signerOn(store);
    await store.update(scope('q1'), raiseTo(1n));
    assert.equal((await rig.sign(1n)).outcome, 'granted');
    const leader = await cluster.leaderIndex();
    const victims = [leader, (leader + 1) % 3];
    for (const v of victims) await cluster.killMember(v);
    try {
      for (let slot = 2n; slot < 7n; slot++) {
        await assert.rejects(
          store.update(scope('q1'), raiseTo(slot)),
          (e: unknown) => e instanceof StoreUnavailableError && /etcd/.test(e.message),
        );
      }
      await assert.rejects(store.get(scope('q1')), StoreUnavailableError);
      await assert.rejects(store.ping(), StoreUnavailableError);
      for (let slot = 2n; slot < 5n; slot++) {
        const r = await rig.sign(slot);
        assert.equal(r.outcome, 'refused');
        assert.equal(r.outcome === 'refused' && r.reason, 'store_unavailable');
        assert.equal((r as { signature?: unknown }).signature, undefined, 'nothing signed');
      }
    } finally {
      for (const v of victims) cluster.startMember(v);
    }
    await cluster.waitHealthy();
    // Whatever was attempted without quorum, nothing was committed.
    assert.deepEqual((await store.get(scope('q1')))?.position, [1n]);
    let resumed = false;
    for (let i = 0; i < 50 && !resumed; i++) {
      try {
        resumed = (await store.update(scope('q1'), raiseTo(2n))) === 'granted';
      } catch {
        await sleep(100);
      }
    }
    assert.ok(resumed, 'service resumed after the members came back');
    assert.equal((await rig.sign(5n)).outcome, 'granted');
    rig.close();
  });

  it('the signer answers refused/fenced for a deposed leader and signs nothing', async () => {
    const store = await open();
    const rig = signerOn(store);
    const key = store.leaderKey('signer-role');
    const won = await store.client.txn(
      'campaign',
      [{ key, target: 'create', revision: 0n }],
      [{ put: { key, value: 'me' } }],
    );
    const fence = { role: 'signer-role', token: won.revision, clusterId: won.clusterId };
    assert.equal((await rig.sign(1n, fence)).outcome, 'granted');
    await store.client.txn('depose', [], [{ delete: { key } }]);
    const r = await rig.sign(2n, fence);
    assert.equal(r.outcome, 'refused');
    assert.equal(r.outcome === 'refused' && r.reason, 'fenced');
    assert.equal((r as { signature?: unknown }).signature, undefined);
    rig.close();
  });
});

describe('etcd watermark store with mutual TLS', { skip }, () => {
  let cluster: EtcdTestCluster;
  let otherCa: string;
  before(async () => {
    cluster = await EtcdTestCluster.start({ tls: true });
    otherCa = mkdtempSync(join(tmpdir(), 'vigil-otherca-'));
    await initCa(otherCa, { commonName: 'Impostor CA' });
    await issueCert(otherCa, { name: 'intruder', kind: 'client' });
  });
  after(async () => {
    await cluster?.close();
    if (otherCa) rmSync(otherCa, { recursive: true, force: true });
  });

  it('serves an agent holding a client certificate from the cluster CA', async () => {
    const store = await openEtcdStore(cluster.storeConfig() as never, { create: true });
    try {
      assert.equal(await store.update(scope('t1'), raiseTo(3n)), 'granted');
    } finally {
      await store.close();
    }
  });

  it('refuses an agent with no client certificate', async () => {
    // https:// without certificates is a configuration error, caught before any connection.
    await assert.rejects(
      openEtcdStore({ endpoints: cluster.endpoints, prefix: '/vigil-test/' }),
      (e: unknown) => e instanceof InputError && /no tls files/.test(e.message),
    );
    // Plain gRPC against the TLS port fails, already when the store's identity is read.
    await assert.rejects(
      openEtcdStore({
        endpoints: cluster.endpoints.map((e) => e.replace('https://', '')),
        prefix: '/vigil-test/',
        timeouts: { callMs: 500, updateMs: 1500 },
        retries: 1,
      }),
      StoreUnavailableError,
    );
    // TLS that trusts the server but presents no certificate: client-cert-auth turns it away.
    const { EtcdClient } = await import('../../src/etcd/client.js');
    const noCert = new EtcdClient({
      endpoints: cluster.endpoints,
      tls: { ca: cluster.tls!.ca },
      callTimeoutMs: 500,
    });
    try {
      await assert.rejects(noCert.get('/vigil-test/x'));
    } finally {
      noCert.close();
    }
  });

  it('refuses an agent whose certificate comes from another CA', async () => {
    await assert.rejects(
      openEtcdStore({
        endpoints: cluster.endpoints,
        prefix: '/vigil-test/',
        tls: {
          ca: cluster.tls!.ca,
          cert: join(otherCa, 'intruder.crt'),
          key: join(otherCa, 'intruder.key'),
        },
        timeouts: { callMs: 500, updateMs: 1500 },
        retries: 1,
      }),
      StoreUnavailableError,
    );
  });
});
