/**
 * The registry over real libp2p nodes on loopback: three validators on one SQLite registry
 * file, several peers (issue 15, "Tests").
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  countersign,
  decodeRecord,
  encodeContent,
  encodeRecord,
  encodeSubmission,
  signSubmission,
  subjectMessage,
  withCommit,
  type SignedRecord,
} from '../../src/registry/record.js';
import { GOSSIP_TOPIC } from '../../src/registry/distribution.js';
import { dhtKey, dhtRecordValidator } from '../../src/registry/node.js';
import { submitToValidator } from '../../src/registry/submit.js';
import { tempDir } from '../helpers/guard-fixtures.js';
import { SET, VALIDATORS, keyOf, validatorKeys } from './fixtures.js';
import { counterValue, liveContent, startNetwork, until, type Network } from './network-fixture.js';

let root: string;
let cleanup: () => void;
let dirs = 0;
before(() => ({ dir: root, cleanup } = tempDir('vigil-registry-net-')));
after(() => cleanup());
const freshDir = () => join(root, `n${dirs++}`);

const everyone = (net: Network) => [...net.validators, ...net.peers];
const seqEverywhere = (net: Network, subject: string, seq: bigint) =>
  everyone(net).every((n) => n.view.seq(subject) === seq);

/** A record countersigned by `signers`, committed at prevSeq + 1, built outside any store. */
function attested(content: ReturnType<typeof liveContent>, signers = VALIDATORS): SignedRecord {
  const subject = [...Array(255).keys()]
    .map((t) => keyOf(t + 1))
    .find((k) => Buffer.compare(k.publicKey, content.subjectKey) === 0)!;
  const s = signSubmission(content, subject);
  const bare = withCommit(s, s.content.prevSeq + 1n);
  return withCommit(
    s,
    bare.seq,
    signers.map((v) => countersign(bare, v)),
  );
}

describe('registry network', { timeout: 60_000 }, () => {
  let net: Network;
  before(async () => {
    net = await startNetwork({ dir: freshDir(), peers: 3 });
  });
  after(async () => net?.close());

  it('a submission is committed, countersigned by a quorum and reaches every node', async () => {
    const [p0] = net.peers;
    const t0 = Date.now();
    const r = await p0!.submitOwn(liveContent(p0!.key), [net.validators[0]!.peerId]);
    assert.equal(r.seq, 1n);
    await until('every node holds seq 1', () => seqEverywhere(net, p0!.peerId, 1n));
    const rec = net.peers[2]!.view.get(p0!.peerId)!.record;
    assert.ok(rec.countersignatures.length >= SET.quorum);
    assert.ok(Date.now() - t0 < 10_000);
  });

  it("a node submitting another subject's record is refused, and nothing is written", async () => {
    const [, p1, p2] = net.peers;
    // p2's genuine, self-signed record, sent over p1's authenticated connection.
    const victimRecord = encodeSubmission(signSubmission(liveContent(p2!.key), p2!.key));
    await assert.rejects(
      submitToValidator(p1!.node, net.validators[1]!.node.peerId, victimRecord),
      (err: { code?: string }) => err.code === 'REGISTRY_SUBJECT_MISMATCH',
    );
    assert.equal(await net.validators[0]!.store.get(p2!.peerId), undefined);
    const reg = net.metrics.get(net.validators[1]!.peerId)!;
    assert.equal(
      await counterValue(reg, 'vigil_registry_submissions_total', { result: 'subject_mismatch' }),
      1,
    );
  });

  it('a spoofed record on the gossip topic or in the DHT is dropped', async () => {
    const [p0, p1] = net.peers;
    // p1 forges a new version of p0's record: p1 cannot sign as p0, so the subject signature
    // is p1's over p0's content; it even has three "validator" countersignatures of its own keys.
    const forgedContent = liveContent(p0!.key, { prevSeq: 1n, addresses: ['/ip4/10.6.6.6/tcp/1'] });
    const contentBytes = encodeContent(forgedContent);
    const fakeValidators = validatorKeys(3).map((_, i) => keyOf(200 + i));
    const bare = {
      content: forgedContent,
      contentBytes,
      subjectSignature: p1!.key.sign(subjectMessage(contentBytes)),
      peerId: p0!.peerId,
      seq: 2n,
      countersignatures: [],
    };
    const forged = encodeRecord(
      withCommit(
        bare,
        2n,
        fakeValidators.map((v) => countersign(bare, v)),
      ),
    );
    const rejectedBefore = await Promise.all(
      net.validators.map((v) =>
        counterValue(net.metrics.get(v.peerId)!, 'vigil_registry_records_received_total', {
          source: 'gossip',
          result: 'rejected',
        }),
      ),
    );
    await p1!.node.services.pubsub.publish(GOSSIP_TOPIC, forged);
    // p1's own genuine record under p0's DHT key: validly signed, but filed under another subject.
    const own = attested(liveContent(keyOf(2)));
    const validate = dhtRecordValidator(SET, Date.now);
    assert.throws(() => validate(dhtKey(p0!.peerId), encodeRecord(own)), /is .*'s/);
    assert.throws(() => validate(dhtKey(p0!.peerId), forged), /signature/);
    // The DHT put may be reported as failed or not; the point is what other nodes hold after it.
    try {
      for await (const _ of p1!.node.services.dht.put(dhtKey(p0!.peerId), encodeRecord(own)))
        void _;
    } catch {
      // every remote validator refused it
    }
    let rejectedAfter: number[] = [];
    await until(
      'some node rejected the forged gossip',
      () => {
        void Promise.all(
          net.validators.map((v) =>
            counterValue(net.metrics.get(v.peerId)!, 'vigil_registry_records_received_total', {
              source: 'gossip',
              result: 'rejected',
            }),
          ),
        ).then((x) => (rejectedAfter = x));
        return rejectedAfter.some((x, i) => x > rejectedBefore[i]!);
      },
      5000,
    );
    for (const n of everyone(net)) {
      assert.equal(n.view.seq(p0!.peerId), 1n);
      assert.deepEqual(n.view.get(p0!.peerId)!.record.content.addresses, [
        '/ip4/127.0.0.1/tcp/4001',
      ]);
    }
    // What the DHT holds under p0's key, asked from a validator: only p0's own record.
    const values: Uint8Array[] = [];
    for await (const ev of net.validators[2]!.node.services.dht.get(dhtKey(p0!.peerId), {
      signal: AbortSignal.timeout(5000),
    }))
      if (ev.name === 'VALUE') values.push(ev.value);
    assert.ok(values.length > 0, 'the DHT holds p0 record');
    for (const v of values) {
      const r = decodeRecord(v);
      assert.equal(r.peerId, p0!.peerId);
      assert.equal(r.seq, 1n);
    }
  });

  it('a replayed or stale record is ignored; fewer than a quorum, or one compromised key, is rejected', async () => {
    const [p0, p1] = net.peers;
    const v0 = net.validators[0]!;
    const first = net.peers[1]!.view.get(p0!.peerId)!.bytes;
    // p0 moves to seq 2 (same flags).
    const r2 = await p0!.submitOwn(liveContent(p0!.key, { prevSeq: 1n, role: 'relay' }), [
      net.validators[1]!.peerId,
    ]);
    assert.equal(r2.seq, 2n);
    await until('every node holds seq 2', () => seqEverywhere(net, p0!.peerId, 2n));
    // The old seq-1 record, replayed on the topic and re-sent to a validator.
    // gossipsub itself drops a message it already saw (same bytes, same id): Duplicate.
    await assert.rejects(p1!.node.services.pubsub.publish(GOSSIP_TOPIC, first), /Duplicate/);
    const replay = encodeSubmission(signSubmission(liveContent(p0!.key), p0!.key));
    await assert.rejects(
      submitToValidator(p0!.node, v0.node.peerId, replay),
      (e: { code?: string }) => e.code === 'REGISTRY_SEQ_STALE',
    );
    assert.equal(p1!.distribution.accept(first, 'sync'), 'stale');
    // A compromised validator key (v0's) countersigns p0's own request to change its flags:
    // one countersignature is below the quorum of 2, on the topic and at every node.
    const flagsChange = attested(liveContent(keyOf(1), { prevSeq: 2n, flags: 0xff }), [
      VALIDATORS[0]!,
    ]);
    await p1!.node.services.pubsub.publish(GOSSIP_TOPIC, encodeRecord(flagsChange));
    for (const n of everyone(net))
      assert.equal(n.distribution.accept(encodeRecord(flagsChange), 'sync'), 'rejected');
    // And the store refuses the flags change the node submits itself.
    await assert.rejects(
      p0!.submitOwn(liveContent(p0!.key, { prevSeq: 2n, flags: 0xff }), [v0.peerId]),
      (e: { code?: string }) => e.code === 'REGISTRY_FLAGS_IMMUTABLE',
    );
    await new Promise((r) => setTimeout(r, 500));
    for (const n of everyone(net)) {
      assert.equal(n.view.seq(p0!.peerId), 2n);
      assert.equal(n.view.get(p0!.peerId)!.record.content.flags, 1);
    }
  });

  it('with one of three validators down, writes continue and reach every node', async () => {
    const down = net.validators.pop()!;
    await down.stop();
    const p2 = net.peers[2]!;
    const r = await p2.submitOwn(liveContent(p2.key), [down.peerId, net.validators[0]!.peerId]);
    assert.equal(r.seq, 1n);
    await until('the two live validators countersign and every node holds it', () =>
      seqEverywhere(net, p2.peerId, 1n),
    );
    assert.equal(net.peers[0]!.view.get(p2.peerId)!.record.countersignatures.length, 2);
  });
});
