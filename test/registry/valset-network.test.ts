/**
 * The validator set changes live (issue 15): real libp2p nodes on loopback, a real etcd store.
 * Three validators; peers submit new versions back to back the whole time while a fourth
 * validator is added (epoch 1) and then the first removed (epoch 2), each change signed by a
 * quorum of the set before it and committed through the store. No submission may fail; every
 * record ends up re-countersigned under epoch 2 in every view; a record countersigned by the
 * removed validator plus a minority is rejected by peers on gossip; a peer that was offline
 * during both changes catches up (sets first, then records) and accepts new records.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { EtcdClient } from '../../src/etcd/client.js';
import type { Ed25519Key } from '../../src/keys/ed25519.js';
import { GOSSIP_TOPIC } from '../../src/registry/distribution.js';
import {
  attestation,
  countersign,
  encodeRecord,
  signSubmission,
  withCommit,
  type RecordContent,
  type ValidatorSet,
} from '../../src/registry/record.js';
import { RegistryPeer, RegistryValidator } from '../../src/registry/service.js';
import { EtcdRegistryCells } from '../../src/registry/store-etcd.js';
import { RegistryStore } from '../../src/registry/store.js';
import {
  encodeSetRecord,
  proposeNextSet,
  setRecord,
  signSetBody,
} from '../../src/registry/validator-set.js';
import { etcdSkip, sleep } from '../helpers/etcd-cluster.js';
import { keyOf, setOf } from './fixtures.js';
import {
  Submitter,
  counterValue,
  etcdRegistrySuite,
  liveContent,
  seedOf,
  until,
} from './network-fixture.js';

const skip = etcdSkip();
const LOOPBACK = ['/ip4/127.0.0.1/tcp/0'];
const PREFIX = '/vigil-registry-valset-net/';

describe('registry: the validator set changes live', { skip, timeout: 120_000 }, () => {
  const suite = etcdRegistrySuite(PREFIX, 'vigil-registry-valset-net-');

  it('adds a 4th validator, removes one, with no failed submission; the removed key has no power; an offline peer catches up', async (t) => {
    const { dir, cluster } = suite;
    const [v130, v131, v132, v133] = [130, 131, 132, 133].map(keyOf) as Ed25519Key[];
    const genesis: ValidatorSet = setOf([v130!, v131!, v132!]);
    const validators: RegistryValidator[] = [];
    const peers: RegistryPeer[] = [];
    const metrics = new Map<string, Registry>();
    const startValidator = async (tag: number) => {
      const reg = new Registry();
      const v = await RegistryValidator.start({
        seed: seedOf(tag),
        listen: LOOPBACK,
        bootstrap: [...validators, ...peers].map((n) => n.addresses[0]!),
        validators: genesis,
        viewPath: join(dir, `v${tag}-view.db`),
        metrics: reg,
        store: new RegistryStore(
          await EtcdRegistryCells.open(
            new EtcdClient({ endpoints: cluster.endpoints, callTimeoutMs: 2000 }),
            { prefix: PREFIX },
          ),
          { validators: genesis },
        ),
        countersignStatePath: join(dir, `v${tag}-countersigned.db`),
        ratePoints: 10_000,
      });
      metrics.set(v.peerId, reg);
      validators.push(v);
      return v;
    };
    const startPeer = async (i: number) => {
      const reg = new Registry();
      const p = await RegistryPeer.start({
        seed: seedOf(1 + i),
        listen: LOOPBACK,
        bootstrap: validators.map((v) => v.addresses[0]!),
        validators: genesis,
        viewPath: join(dir, `p${i}-view.db`),
        metrics: reg,
      });
      metrics.set(p.peerId, reg);
      return p;
    };
    const running = () => [...validators, ...peers];
    const subs: Submitter[] = [];
    try {
      for (const tag of [130, 131, 132]) await startValidator(tag);
      for (let i = 0; i < 3; i++) peers.push(await startPeer(i));
      // Peer 2 goes offline before either change.
      const offline = peers.pop()!;
      await offline.stop();
      for (const p of peers) subs.push(new Submitter(p, () => validators.map((v) => v.peerId)));
      subs.forEach((s) => s.start());
      await sleep(500);

      // Epoch 1: add validator 133, signed by two of the three (the genesis quorum).
      const store = validators[0]!.store;
      const propose = (change: Parameters<typeof proposeNextSet>[1], signers: Ed25519Key[]) => {
        const body = proposeNextSet(store.chain, change);
        return encodeSetRecord(
          setRecord(
            body,
            signers.map((k) => signSetBody(body, k)),
          ),
        );
      };
      await store.refreshSets();
      const epoch1 = propose({ add: [v133!.publicKey], issuedAtMs: Date.now() }, [v130!, v131!]);
      assert.equal((await store.commitSet(epoch1)).epoch, 1n);
      await startValidator(133);
      const atAdd = subs.reduce((a, s) => a + s.committed, 0n);
      await until(
        'every node is at epoch 1',
        () => running().every((n) => n.distribution.chain.head.epoch === 1n),
        15_000,
      );
      await sleep(1000);

      // Epoch 2: remove validator 130, signed by three of the four (epoch 1's quorum). The
      // removed validator leaves the submitters' list and stops.
      const epoch2 = propose({ remove: [v130!.publicKey], issuedAtMs: Date.now() }, [
        v131!,
        v132!,
        v133!,
      ]);
      assert.equal((await store.commitSet(epoch2)).epoch, 2n);
      const removed = validators.shift()!;
      await until(
        'every node is at epoch 2',
        () => running().every((n) => n.distribution.chain.head.epoch === 2n),
        15_000,
      );
      await removed.stop();
      const atRemove = subs.reduce((a, s) => a + s.committed, 0n);
      await sleep(1000);
      await Promise.all(subs.map((s) => s.stop()));
      assert.deepEqual(
        subs.flatMap((s) => s.failures),
        [],
        'no submission failed',
      );
      const total = subs.reduce((a, s) => a + s.committed, 0n);
      t.diagnostic(
        `${total} submissions committed: ${atAdd} before epoch 1, ${atRemove} before epoch 2`,
      );
      assert.ok(atRemove > atAdd && total > atRemove, 'submissions went on across both changes');

      // Every last version: re-countersigned under epoch 2 in the store and in every view.
      const now = validators[0]!.store;
      await until(
        'every node holds every last version, attested at epoch 2',
        () =>
          subs.every((s) =>
            running().every((n) => {
              const e = n.view.get(s.peer.peerId);
              return (
                e?.record.seq === s.committed &&
                attestation(e.record, n.distribution.chain.rules(Date.now())) === 2n
              );
            }),
          ),
        20_000,
      );
      assert.equal(now.validators.epoch, 2n);

      // The removed validator's key: with one kept validator (a minority of epoch 2), under
      // epoch 2 or under epoch 1 (still in its grace), the record is rejected by every peer.
      const rogue = keyOf(9);
      const bareOf = (c: RecordContent) => withCommit(signSubmission(c, rogue), 1n);
      const record = (sigs: Array<[Ed25519Key, bigint]>) => {
        const bare = bareOf(liveContent(rogue));
        return encodeRecord(
          withCommit(
            bare,
            1n,
            sigs.map(([k, e]) => countersign(bare, k, e)),
          ),
        );
      };
      const sender = peers[0]!;
      const receivers = running().filter((n) => n !== sender);
      const rejected = async () => {
        let n = 0;
        for (const r of receivers)
          n += await counterValue(metrics.get(r.peerId)!, 'vigil_registry_records_received_total', {
            source: 'gossip',
            result: 'rejected',
          });
        return n;
      };
      const before = await rejected();
      await sender.node.services.pubsub.publish(
        GOSSIP_TOPIC,
        record([
          [v130!, 2n],
          [v131!, 2n],
        ]),
      );
      await sender.node.services.pubsub.publish(
        GOSSIP_TOPIC,
        record([
          [v130!, 1n],
          [v131!, 1n],
          [v132!, 1n],
        ]),
      );
      const deadline = Date.now() + 10_000;
      while ((await rejected()) < before + 2 && Date.now() < deadline) await sleep(50);
      assert.ok((await rejected()) >= before + 2, 'the gossip validators rejected both');
      // The control: the same subject attested by a quorum of epoch 2 travels the same way.
      await sender.node.services.pubsub.publish(
        GOSSIP_TOPIC,
        record([
          [v131!, 2n],
          [v133!, 2n],
        ]),
      );
      const rogueId = signSubmission(liveContent(rogue), rogue).peerId;
      await until('the epoch-2 quorum record reaches a peer', () =>
        receivers.some((r) => r.view.get(rogueId) !== undefined),
      );
      for (const r of receivers) {
        const held = r.view.get(rogueId);
        if (held)
          assert.ok(
            held.record.countersignatures.every(
              (c) => Buffer.compare(c.validator, v130!.publicKey) !== 0,
            ),
            'no view holds a version the removed validator signed',
          );
      }

      // The offline peer comes back: it learns epochs 1 and 2, then the records under them.
      const back = await startPeer(2);
      peers.push(back);
      await until(
        'the returning peer is at epoch 2',
        () => back.distribution.chain.head.epoch === 2n,
      );
      await until('the returning peer holds every last version', () =>
        subs.every((s) => back.view.get(s.peer.peerId)?.record.seq === s.committed),
      );
      const r = await peers[0]!.submitOwn(
        liveContent(peers[0]!.key, { prevSeq: subs[0]!.committed }),
        validators.map((v) => v.peerId),
      );
      await until(
        'the returning peer accepts a record committed after its return',
        () => back.view.get(peers[0]!.peerId)?.record.seq === r.seq,
      );
    } finally {
      await Promise.all(subs.map((s) => s.stop()));
      for (const n of [...peers, ...validators]) await n.stop().catch(() => undefined);
    }
  });
});
