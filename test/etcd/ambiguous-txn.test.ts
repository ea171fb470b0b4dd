/**
 * Transactions whose answer is lost, on a real 3-member etcd cluster. A TcpProxy in front of
 * member m0 forwards the request and then drops etcd's answer and resets the connection
 * (`dropResponses`): etcd applied the transaction, the client never heard. The client must call
 * that an unknown outcome (not "not sent", and not re-send the write to another member), and
 * the watermark store, the registry and the lease campaign must settle it by reading back what
 * is stored — never by assuming it failed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { TcpProxy } from '../../src/devnet/tcp-proxy.js';
import { EtcdCallError, EtcdClient } from '../../src/etcd/client.js';
import type { Watermark } from '../../src/guard/watermark.js';
import { EtcdLeaderElection } from '../../src/lease/etcd.js';
import { LeaseTimingSchema } from '../../src/lease/types.js';
import { RegistryStore } from '../../src/registry/store.js';
import { EtcdRegistryCells } from '../../src/registry/store-etcd.js';
import { openEtcdStore } from '../../src/store/etcd.js';
import type { StoreUpdate, WatermarkScope } from '../../src/store/types.js';
import { EtcdTestCluster, etcdSkip } from '../helpers/etcd-cluster.js';
import { NOW, SET, keyOf, submission } from '../registry/fixtures.js';

const skip = etcdSkip();
const prefix = '/vigil-ambiguous/';

/** What one agent released for one sign request. */
type Outcome =
  | { readonly outcome: 'granted' | 'replayed'; readonly signature: string }
  | { readonly outcome: 'refused' };

const sha256 = (s: string) => new Uint8Array(createHash('sha256').update(s).digest());

/**
 * The guard's rule reduced to one position: grant an empty scope, answer the stored signature
 * to the identical payload, refuse any other. The signature is fixed before the update, as the
 * guarded signer does, so a retried transaction records the one it releases.
 */
function signAt(
  position: bigint,
  payload: string,
  signature: string,
  writer: string,
): (current: Watermark | undefined) => StoreUpdate<Outcome> {
  const payloadHash = sha256(payload);
  return (current) => {
    if (current === undefined || current.position[0]! < position) {
      return {
        write: {
          family: 'slot',
          position: [position],
          payloadHash,
          signature: Buffer.from(signature),
          writer,
          updatedAtMs: Date.now(),
        },
        result: { outcome: 'granted', signature },
      };
    }
    if (
      current.position[0] === position &&
      current.payloadHash !== undefined &&
      Buffer.from(current.payloadHash).equals(payloadHash)
    )
      return {
        result: { outcome: 'replayed', signature: Buffer.from(current.signature!).toString() },
      };
    return { result: { outcome: 'refused' } };
  };
}

describe('etcd: a transaction whose answer is lost', { skip }, () => {
  let cluster: EtcdTestCluster;
  let proxy: TcpProxy;
  let direct: EtcdClient;
  before(async () => {
    cluster = await EtcdTestCluster.start({ size: 3 });
    proxy = new TcpProxy(Number(new URL(cluster.endpoints[0]!).port));
    await proxy.start();
    direct = cluster.client(2000);
    await (await openEtcdStore(cluster.storeConfig({ prefix }), { create: true })).close();
  });
  after(async () => {
    direct?.close();
    await proxy?.stop();
    await cluster?.close();
  });

  /** m0 behind the proxy first, then the other two members directly. */
  const viaProxy = () => [`127.0.0.1:${proxy.port}`, ...cluster.endpoints.slice(1)];
  const clientViaProxy = () => new EtcdClient({ endpoints: viaProxy(), callTimeoutMs: 2000 });
  const storeViaProxy = () =>
    openEtcdStore(
      cluster.storeConfig({
        prefix,
        endpoints: viaProxy(),
        timeouts: { callMs: 2000, updateMs: 10_000 },
      }),
    );

  it('is an unknown outcome, not "not sent", and the write is not sent again to another member', async () => {
    const c = clientViaProxy();
    try {
      await c.get('/warm-up'); // the connection to m0 through the proxy is up
      const key = `${prefix}t/lost`;
      const lost = proxy.dropResponses({ when: Buffer.from(key) });
      await assert.rejects(
        c.txn(
          'lost',
          [{ key, target: 'version', version: 0n }],
          [{ put: { key, value: 'first' } }],
        ),
        (err: unknown) => {
          assert.ok(err instanceof EtcdCallError, String(err));
          assert.equal(err.notSent, false, `reported as not sent: ${err.message}`);
          return true;
        },
      );
      await lost;
      // It did reach etcd: the outcome really was unknown, and etcd applied it once.
      const { kv } = await direct.get(key);
      assert.equal(kv?.value.toString(), 'first');
      assert.equal(kv.modRevision, kv.createRevision, 'written once');
    } finally {
      c.close();
    }
  });

  it('a refused connect is "not sent" and moves on to the next member', async () => {
    const refusing = new TcpProxy(Number(new URL(cluster.endpoints[0]!).port));
    await refusing.start();
    await refusing.refuse();
    const c = new EtcdClient({ endpoints: [`127.0.0.1:${refusing.port}`], callTimeoutMs: 2000 });
    const failing = new EtcdClient({
      endpoints: [`127.0.0.1:${refusing.port}`, cluster.endpoints[1]!],
      callTimeoutMs: 2000,
    });
    try {
      const key = `${prefix}t/refused`;
      await assert.rejects(c.put(key, 'x'), (err: unknown) => {
        assert.ok(err instanceof EtcdCallError, String(err));
        assert.equal(err.notSent, true, err.message);
        return true;
      });
      assert.equal((await direct.get(key)).kv, undefined, 'nothing was applied');
      // With a second member, the write that certainly was not sent goes there.
      await failing.put(key, 'y');
      assert.equal((await direct.get(key)).kv?.value.toString(), 'y');
    } finally {
      c.close();
      failing.close();
      await refusing.stop();
    }
  });

  it('a grant whose answer was lost is reported as the grant it was; no second signature for the position', async () => {
    const a = await storeViaProxy();
    const b = await openEtcdStore(cluster.storeConfig({ prefix }));
    const scope: WatermarkScope = { chainId: 'c', keyId: 'lost-grant', family: 'slot' };
    try {
      const lost = proxy.dropResponses({ when: Buffer.from('agent-A') });
      const first = await a.update(scope, signAt(7n, 'block A', 'sig-A', 'agent-A'));
      await lost;
      // etcd committed A's record: A must answer it as granted, with the signature it recorded.
      assert.deepEqual(first, { outcome: 'granted', signature: 'sig-A' });
      const stored = await b.get(scope);
      assert.equal(Buffer.from(stored!.signature!).toString(), 'sig-A');
      // Another agent asked for another payload at the same position: refused.
      assert.deepEqual(await b.update(scope, signAt(7n, 'block B', 'sig-B', 'agent-B')), {
        outcome: 'refused',
      });
      // A asking again (its node retried) gets the same signature, never a new one.
      assert.deepEqual(await a.update(scope, signAt(7n, 'block A', 'sig-A2', 'agent-A')), {
        outcome: 'replayed',
        signature: 'sig-A',
      });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('two agents racing while one loses its answers release one signature per position', async () => {
    const a = await storeViaProxy();
    const b = await openEtcdStore(cluster.storeConfig({ prefix }));
    const scope: WatermarkScope = { chainId: 'c', keyId: 'race', family: 'slot' };
    try {
      let answersLost = 0;
      for (let position = 1n; position <= 6n; position++) {
        const lost = proxy.dropResponses({ when: Buffer.from(`agent-A-${position}`) });
        // B starts at once or a little after A, so both orders of the race are exercised.
        const bDelayMs = Number(position % 3n) * 5;
        const [ra, rb] = await Promise.all([
          a.update(
            scope,
            signAt(position, `A${position}`, `sig-A${position}`, `agent-A-${position}`),
          ),
          new Promise((r) => setTimeout(r, bDelayMs)).then(() =>
            b.update(
              scope,
              signAt(position, `B${position}`, `sig-B${position}`, `agent-B-${position}`),
            ),
          ),
        ]);
        // When B committed before A read, A refused without writing: nothing was lost.
        if (!proxy.cancelDropResponses()) answersLost++;
        await lost;
        const storedSig = Buffer.from((await b.get(scope))!.signature!).toString();
        const released = [ra, rb].filter((r) => r.outcome !== 'refused');
        assert.equal(released.length, 1, `position ${position}: ${JSON.stringify([ra, rb])}`);
        assert.equal(
          released.filter((r) => r.outcome === 'granted').length,
          1,
          'exactly one grant',
        );
        for (const r of released)
          assert.equal('signature' in r && r.signature, storedSig, 'released what is stored');
      }
      assert.ok(answersLost >= 1, 'A lost at least one answer (else this proved nothing)');
    } finally {
      proxy.cancelDropResponses();
      await a.close();
      await b.close();
    }
  });

  it('a lease campaign whose answer was lost finds it won and holds the key it created', async () => {
    const store = await storeViaProxy();
    const timing = LeaseTimingSchema.parse({ ttlMs: 5000, marginMs: 100 });
    const holder = 'holder-lost-answer';
    const election = new EtcdLeaderElection(store.client, prefix, 'producer', holder, timing);
    try {
      const lost = proxy.dropResponses({ when: Buffer.from(holder) });
      const leadership = await election.tryAcquire();
      await lost;
      const { kv } = await direct.get(election.key);
      assert.equal(kv?.value.toString(), holder, 'etcd applied the campaign');
      assert.ok(leadership, 'the campaign etcd applied is reported as won');
      assert.equal(leadership.fence.token, kv.createRevision, 'the token is the key revision');
      assert.equal(leadership.fence.clusterId, (await direct.get(election.key)).clusterId);
      assert.ok(await leadership.renew(), 'its lease is ours to renew');
      // Nobody else can win while it is held.
      const other = new EtcdLeaderElection(direct, prefix, 'producer', 'other', timing);
      assert.equal(await other.tryAcquire(), undefined);
      await leadership.release();
      assert.equal((await direct.get(election.key)).kv, undefined);
    } finally {
      await store.close();
    }
  });

  it('a registry submission whose answer was lost is answered as committed, not as a duplicate', async () => {
    const subject = keyOf(77);
    const cells = await EtcdRegistryCells.open(clientViaProxy(), { prefix });
    const registry = new RegistryStore(cells, { validators: SET, nowMs: () => NOW });
    try {
      const lost = proxy.dropResponses({ when: subject.publicKey });
      const committed = await registry.submit(submission(subject));
      await lost;
      assert.deepEqual(committed, { seq: 1n, duplicate: false });
      // Submitting it again is the duplicate.
      assert.deepEqual(await registry.submit(submission(subject)), { seq: 1n, duplicate: true });
    } finally {
      await cells.close();
    }
  });
});
