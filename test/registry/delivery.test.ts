/**
 * How records are delivered (distribution.ts), on real libp2p nodes on loopback: a record
 * published before the validator knew a node's subscription still reaches it (the view
 * exchange the subscription starts), without any re-broadcast; a validator publishes on gossip
 * before its DHT put, which runs in a bounded background queue that reports failures and is
 * cancelled cleanly on stop.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { multiaddr } from '@multiformats/multiaddr';
import { Registry } from 'prom-client';
import { GOSSIP_TOPIC } from '../../src/registry/distribution.js';
import { dhtKey } from '../../src/registry/node.js';
import { RegistryPeer } from '../../src/registry/service.js';
import { tempDir } from '../helpers/guard-fixtures.js';
import { SET, VALIDATORS, keyOf, signedRecord } from './fixtures.js';
import { counterValue, seedOf, startNetwork, until, type Network } from './network-fixture.js';

let root: string;
let cleanup: () => void;
before(() => ({ dir: root, cleanup } = tempDir('vigil-registry-delivery-')));
after(() => cleanup());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A live record of the node with key tag `tag`, countersigned by every validator. */
function liveRecord(tag: number, over: { role?: string } = {}) {
  const now = Date.now();
  const { record, bytes } = signedRecord(keyOf(tag), VALIDATORS, {
    issuedAtMs: now,
    expiresAtMs: now + 3_600_000,
    ...over,
  });
  return { subject: record.peerId, bytes };
}

/**
 * Holds `node`'s DHT puts until `open()` (each put still honours its abort signal, as kad-dht's
 * own does); the real put runs after. Records every put started.
 */
function gateDhtPuts(node: RegistryPeer) {
  const dht = node.node.services.dht;
  const real = dht.put.bind(dht);
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const started: string[] = [];
  dht.put = async function* (key, value, options) {
    started.push(new TextDecoder().decode(key));
    await new Promise<void>((resolve, reject) => {
      void opened.then(resolve);
      const signal = options?.signal;
      if (signal?.aborted) reject(signal.reason as Error);
      signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    });
    yield* real(key, value, options);
  };
  return { open, started, restore: () => (dht.put = real) };
}

describe('registry delivery', { timeout: 120_000 }, () => {
  let net: Network;
  const putFailures: string[] = [];
  before(async () => {
    net = await startNetwork({
      dir: join(root, 'net'),
      peers: 0,
      validatorOptions: {
        dhtQueueLimit: 2,
        onDhtPutFailed: (subject, err) =>
          putFailures.push(`${subject}: ${(err as { code?: string }).code}`),
      },
    });
  });
  after(async () => net?.close());

  it("a record published before a validator saw a node's subscription reaches the node when it does", async () => {
    const [v0] = net.validators;
    // The node lets only v0 connect, so nothing but v0 can deliver the record to it.
    const reg = new Registry();
    let nodeSyncs = 0;
    const node = await RegistryPeer.start({
      seed: seedOf(40),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      validators: SET,
      viewPath: join(root, 'late-view.db'),
      metrics: reg,
      allowList: (p) => p === v0!.peerId,
    });
    try {
      // Its subscription is held back: v0 will not know of it when it publishes.
      node.node.services.pubsub.unsubscribe(GOSSIP_TOPIC);
      await node.node.dial(multiaddr(v0!.addresses[0]!));
      // The node learns v0's subscription and runs its exchange with v0 (as a sync on
      // connect did), before the record exists: nothing to take.
      await until("the node knows v0's subscription and ran its exchange with v0", () => {
        void counterValue(reg, 'vigil_registry_syncs_total', {
          initiator: 'self',
          result: 'ok',
        }).then((n) => (nodeSyncs = n));
        const subs = node.node.services.pubsub.getSubscribers(GOSSIP_TOPIC).map(String);
        return nodeSyncs >= 1 && subs.includes(v0!.peerId);
      });
      assert.equal(node.view.count(), 0);
      const rec = liveRecord(41);
      assert.equal(await v0!.distribution.publish(rec.bytes), true);
      await until('the other validators have it by gossip', () =>
        net.validators.every((v) => v.view.seq(rec.subject) === 1n),
      );
      // Past gossipsub's gossip window (3 heartbeats of 1 s), so only the fix can deliver it.
      await sleep(3500);
      assert.equal(node.view.seq(rec.subject), undefined, 'not delivered before subscribing');
      node.node.services.pubsub.subscribe(GOSSIP_TOPIC);
      await until('the node has the record', () => node.view.seq(rec.subject) === 1n, 5000);
      assert.equal(
        await counterValue(reg, 'vigil_registry_records_received_total', {
          source: 'sync',
          result: 'accepted',
        }),
        1,
      );
      // Nothing is sent again on a timer: no further exchange and no re-delivery.
      const syncsBefore = await counterValue(reg, 'vigil_registry_syncs_total');
      await sleep(1500);
      assert.equal(await counterValue(reg, 'vigil_registry_syncs_total'), syncsBefore);
      assert.equal(
        await counterValue(reg, 'vigil_registry_records_received_total', { result: 'stale' }),
        0,
      );
    } finally {
      await node.stop();
    }
  });

  it('a validator publishes on gossip first; its DHT put follows in the background', async () => {
    const [v0, v1, v2] = net.validators;
    const gate = gateDhtPuts(v0!);
    const reg0 = net.metrics.get(v0!.peerId)!;
    const putsBefore = await counterValue(reg0, 'vigil_registry_dht_puts_total');
    try {
      const rec = liveRecord(42);
      const t0 = performance.now();
      assert.equal(await v0!.distribution.publish(rec.bytes), true);
      const publishMs = performance.now() - t0;
      // publish returned while its put is held: it did not wait for the DHT.
      await until('the put started', () => gate.started.length === 1);
      assert.equal(gate.started[0], `/vigil-registry/${rec.subject}`);
      assert.equal(await counterValue(reg0, 'vigil_registry_dht_puts_total'), putsBefore);
      await until('every validator has it by gossip while the put is held', () =>
        net.validators.every((v) => v.view.seq(rec.subject) === 1n),
      );
      assert.equal(await counterValue(reg0, 'vigil_registry_dht_puts_total'), putsBefore);
      gate.open();
      await v0!.distribution.dhtIdle();
      assert.equal(
        await counterValue(reg0, 'vigil_registry_dht_puts_total'),
        putsBefore + 1,
        `published in ${publishMs.toFixed(0)} ms`,
      );
      // The DHT holds it: asked from v2, which never put it (only the publisher puts).
      void v1;
      const values: Uint8Array[] = [];
      for await (const ev of v2!.node.services.dht.get(dhtKey(rec.subject), {
        signal: AbortSignal.timeout(5000),
      }))
        if (ev.name === 'VALUE') values.push(ev.value);
      assert.ok(values.some((v) => Buffer.from(v).equals(Buffer.from(rec.bytes))));
    } finally {
      gate.open();
      gate.restore();
    }
  });

  it('a failed DHT put is counted and reported, and the next republish pass puts it', async () => {
    const [v0] = net.validators;
    const dht = v0!.node.services.dht;
    const real = dht.put.bind(dht);
    dht.put = async function* () {
      yield* [];
      throw new Error('no peer took it');
    };
    const reg0 = net.metrics.get(v0!.peerId)!;
    await v0!.distribution.dhtIdle();
    const okBefore = await counterValue(reg0, 'vigil_registry_dht_puts_total', { result: 'ok' });
    const failedBefore = await counterValue(reg0, 'vigil_registry_dht_puts_total', {
      result: 'failed',
    });
    putFailures.length = 0;
    const rec = liveRecord(43);
    try {
      await v0!.distribution.publish(rec.bytes);
      await v0!.distribution.dhtIdle();
    } finally {
      dht.put = real;
    }
    assert.equal(
      await counterValue(reg0, 'vigil_registry_dht_puts_total', { result: 'failed' }),
      failedBefore + 1,
    );
    assert.deepEqual(putFailures, [`${rec.subject}: REGISTRY_DHT_PUT`]);
    // Due at once, however recent: a failed put is not waited out for a whole period.
    assert.ok(v0!.distribution.republishDue(3_600_000) >= 1);
    await v0!.distribution.dhtIdle();
    assert.ok(
      (await counterValue(reg0, 'vigil_registry_dht_puts_total', { result: 'ok' })) > okBefore,
    );
    assert.equal(v0!.distribution.republishDue(3_600_000), 0);
    assert.deepEqual(putFailures, [`${rec.subject}: REGISTRY_DHT_PUT`]);
  });

  it('the DHT put queue is bounded, and stop cancels what is pending with no unhandled rejection', async () => {
    const v0 = net.validators[0]!;
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    await v0.distribution.dhtIdle();
    const gate = gateDhtPuts(v0);
    try {
      putFailures.length = 0;
      const reg0 = net.metrics.get(v0.peerId)!;
      const recs = [44, 45, 46, 47].map((t) => liveRecord(t));
      // The first put runs (held); the queue (limit 2) keeps the last two; one is dropped.
      for (const r of recs) assert.equal(await v0.distribution.publish(r.bytes), true);
      await until('the first put started', () => gate.started.length === 1);
      assert.equal(
        await counterValue(reg0, 'vigil_registry_dht_puts_total', { result: 'dropped' }),
        1,
      );
      assert.deepEqual(putFailures, [`${recs[1]!.subject}: REGISTRY_DHT_QUEUE_FULL`]);
      assert.equal(await counterValue(reg0, 'vigil_registry_dht_put_queue'), 2);
      const t0 = performance.now();
      net.validators.shift();
      await v0.stop();
      assert.ok(performance.now() - t0 < 5000, 'stop does not wait out a held put');
      // The two queued and the running one.
      assert.equal(
        await counterValue(reg0, 'vigil_registry_dht_puts_total', { result: 'cancelled' }),
        3,
      );
      assert.equal(gate.started.length, 1);
      await sleep(200);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      gate.open();
      gate.restore();
    }
  });
});
