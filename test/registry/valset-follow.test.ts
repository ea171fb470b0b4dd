/**
 * Nodes follow the current validator set (issue 15, src/registry/current-set.ts): real libp2p
 * nodes on loopback, a real etcd store. A peer whose config names only the three genesis
 * validators and allows connections only from validators reaches a fourth validator added by a
 * set change (its gater lets it in, it dials it at the address of its record) and submits
 * through it; after a validator is removed, the peer closes and refuses its connections, the
 * removed node refuses submissions (REGISTRY_NOT_A_VALIDATOR, the client goes on to the next
 * validator) and its own submissions are no longer admitted by an admission allow-list.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chmodSync, writeFileSync } from 'node:fs';
import { multiaddr } from '@multiformats/multiaddr';
import { Registry } from 'prom-client';
import { EtcdClient } from '../../src/etcd/client.js';
import type { Ed25519Key } from '../../src/keys/ed25519.js';
import { encodeSubmission, signSubmission, type ValidatorSet } from '../../src/registry/record.js';
import { NOT_A_VALIDATOR, RegistryPeer, RegistryValidator } from '../../src/registry/service.js';
import { RegistryConfigSchema, type RegistryConfig } from '../../src/registry/config.js';
import { probeValidators, submitOwnRecord } from '../../src/registry/daemon.js';
import { startRegistryHttp } from '../../src/registry/http.js';
import { RegistryDistribution } from '../../src/registry/distribution.js';
import { createRegistryNode, dhtSetRecordValidator, setDhtKey } from '../../src/registry/node.js';
import { ValidatorSetChain } from '../../src/registry/validator-set.js';
import { RegistryView } from '../../src/registry/view.js';
import { EtcdRegistryCells } from '../../src/registry/store-etcd.js';
import { RegistryStore } from '../../src/registry/store.js';
import { isRefusal } from '../../src/registry/submit.js';
import { etcdSkip } from '../helpers/etcd-cluster.js';
import { keyOf, setOf } from './fixtures.js';
import { counterValue, etcdRegistrySuite, liveContent, seedOf, until } from './network-fixture.js';
import { nextSet } from './validator-set-fixtures.js';

const skip = etcdSkip();
const LOOPBACK = ['/ip4/127.0.0.1/tcp/0'];
const PREFIX = '/vigil-registry-valset-follow/';
const bare = (a: string) => a.slice(0, a.lastIndexOf('/p2p/'));

/** A peer's config naming the genesis validators only (what `vigil registry submit` reads). */
function genesisConfig(
  dir: string,
  tag: number,
  genesis: RegistryValidator[],
  http?: { host: string; port: number },
): RegistryConfig {
  const keyFile = join(dir, `${tag}.key`);
  writeFileSync(keyFile, Buffer.from(seedOf(tag)).toString('hex') + '\n', { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  return RegistryConfigSchema.parse({
    role: 'peer',
    identity: { keyFile },
    dataDir: join(dir, `data-${tag}`),
    bootstrap: genesis.map((v) => v.addresses[0]!),
    validators: { members: genesis.map((v) => ({ peerId: v.peerId })) },
    connectionAllowList: [],
    ...(http ? { http } : {}),
  });
}

describe('registry: nodes follow the current validator set', { skip, timeout: 120_000 }, () => {
  const suite = etcdRegistrySuite(PREFIX, 'vigil-registry-valset-follow-');

  it('an added validator is trusted, dialled and submitted to; a removed one is cut off and refuses', async () => {
    const { dir, cluster } = suite;
    const [k140, k141, k142, k143] = [140, 141, 142, 143].map(keyOf) as Ed25519Key[];
    const genesis: ValidatorSet = setOf([k140!, k141!, k142!]);
    const validators = new Map<number, RegistryValidator>();
    const metrics = new Map<string, Registry>();
    const nodes: RegistryPeer[] = [];
    const peerIdOf = (k: Ed25519Key) => signSubmission(liveContent(k), k).peerId;
    const [pId, qId, rId] = [11, 12, 13].map((t) => peerIdOf(keyOf(t)));
    const startValidator = async (tag: number) => {
      const reg = new Registry();
      const v = await RegistryValidator.start({
        seed: seedOf(tag),
        listen: LOOPBACK,
        bootstrap: [...validators.values()].map((n) => n.addresses[0]!),
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
        // Only the two peers are listed: the validators get in as validators.
        admissionList: [pId!, qId!, rId!],
        ratePoints: 10_000,
      });
      metrics.set(v.peerId, reg);
      validators.set(tag, v);
      nodes.push(v);
      return v;
    };
    const startPeer = async (tag: number, allowList?: string[]) => {
      const p = await RegistryPeer.start({
        seed: seedOf(tag),
        listen: LOOPBACK,
        // Its config names the genesis validators only.
        bootstrap: [140, 141, 142].map((t) => validators.get(t)!.addresses[0]!),
        validators: genesis,
        viewPath: join(dir, `p${tag}-view.db`),
        metrics: new Registry(),
        ...(allowList ? { allowList } : {}),
      });
      nodes.push(p);
      return p;
    };
    try {
      for (const tag of [140, 141, 142]) await startValidator(tag);
      const v140 = validators.get(140)!;
      // P: connections from validators only; Q: an open node.
      const p = await startPeer(11, []);
      const q = await startPeer(12);
      assert.equal(p.peerId, pId);
      assert.equal(q.peerId, qId);
      assert.equal(p.currentSet().epoch, 0n);

      // The genesis validators are admitted as validators (not listed): v140's own record.
      const own140 = await v140.submitOwn(liveContent(v140.key), [validators.get(141)!.peerId]);
      assert.equal(own140.seq, 1n);

      // Epoch 1 adds validator 143, which submits its own record with its address.
      const store = v140.store;
      await store.refreshSets();
      assert.equal(
        (
          await store.commitSet(
            nextSet(store.chain, [k140!, k141!], { add: [k143!], issuedAtMs: Date.now() }),
          )
        ).epoch,
        1n,
      );
      const v143 = await startValidator(143);
      await v143.store.submit(
        encodeSubmission(
          signSubmission(
            liveContent(v143.key, { addresses: [bare(v143.addresses[0]!)] }),
            v143.key,
          ),
        ),
      );
      await until(
        'P is at epoch 1 and holds the new validator’s record',
        () => p.currentSet().epoch === 1n && p.view.get(v143.peerId) !== undefined,
        15_000,
      );
      assert.deepEqual(p.currentSet().added, [v143.peerId]);
      // What `vigil registry run` does every few seconds: dial the current validators.
      await until(
        'P is connected to the added validator',
        () => {
          void p.dialValidators();
          return p.node.getPeers().some((x) => x.toString() === v143.peerId);
        },
        15_000,
      );
      assert.ok(p.validatorTargets().includes(v143.peerId));
      const viaNew = await p.submitOwn(liveContent(p.key), [v143.peerId]);
      assert.equal(viaNew.seq, 1n);
      assert.equal(
        await counterValue(metrics.get(v143.peerId)!, 'vigil_registry_submissions_total', {
          result: 'committed',
        }),
        1,
        'the added validator committed P’s submission',
      );

      // The CLI's short-lived node (`vigil registry validators`) learns epoch 1 from the
      // network and reaches the added validator at its record's address.
      const genesisNodes = [140, 141, 142].map((t) => validators.get(t)!);
      const r = genesisConfig(dir, 13, genesisNodes);
      const probed1 = await probeValidators(r);
      assert.equal(probed1.set.epoch, 1n);
      assert.equal(probed1.source, 'network');
      assert.deepEqual(
        probed1.validators.map((x) => [x.peerId, x.reachable]),
        [...genesisNodes, v143].map((v) => [v.peerId, true]),
      );

      // Epoch 2 removes validator 140 (signed by 3 of the 4); it keeps running.
      assert.equal(
        (
          await store.commitSet(
            nextSet(store.chain, [k141!, k142!, k143!], {
              remove: [k140!],
              issuedAtMs: Date.now(),
            }),
          )
        ).epoch,
        2n,
      );
      await until(
        'every node is at epoch 2',
        () => nodes.every((n) => n.currentSet().epoch === 2n),
        15_000,
      );
      assert.deepEqual(p.currentSet().removed, [v140.peerId]);
      // P's gater: its connection to the removed validator closed, a new one refused both ways.
      await until('P is no longer connected to the removed validator', () =>
        p.node.getPeers().every((x) => x.toString() !== v140.peerId),
      );
      await assert.rejects(
        p.node.dial(multiaddr(v140.addresses[0]!), { signal: AbortSignal.timeout(3000) }),
        'P refuses to dial the removed validator',
      );
      await assert.rejects(
        v140.node
          .dial(multiaddr(p.addresses[0]!), { signal: AbortSignal.timeout(3000) })
          .then(async (conn) => {
            // Noise completes before the gater's inbound check closes it: wait for that.
            await until('P closed the inbound connection', () => conn.status !== 'open', 3000);
            throw new Error('closed');
          }),
        'P refuses the removed validator’s connection',
      );
      assert.ok(!p.validatorTargets().some((t) => t.includes(v140.peerId)));

      // `vigil registry submit` and `validators` with the genesis config: the current set.
      const probed2 = await probeValidators(r);
      assert.equal(probed2.set.epoch, 2n);
      assert.deepEqual(probed2.set.removed, [v140.peerId]);
      assert.deepEqual(
        probed2.validators.map((x) => x.peerId),
        [141, 142, 143].map((t) => validators.get(t)!.peerId),
      );
      // With an HTTP listener in the config, the set comes from the node's own process first
      // (verified against the genesis set here): the bootstrap's removed validator is then no
      // longer let in.
      const http = await startRegistryHttp({
        node: p,
        role: 'peer',
        validators: genesis,
        metrics: new Registry(),
        host: '127.0.0.1',
        port: 0,
      });
      try {
        const port = Number(new URL(http.url).port);
        const viaHttp = {
          ...genesisConfig(dir, 14, genesisNodes, { host: '127.0.0.1', port }),
          bootstrap: [v140.addresses[0]!],
        };
        const probedHttp = await probeValidators(viaHttp, { timeoutMs: 1000 });
        assert.equal(probedHttp.set.epoch, 2n);
        assert.equal(probedHttp.source, 'http');
        const submitted = await submitOwnRecord(r);
        assert.equal(submitted.epoch, 2n);
        assert.equal(submitted.seq, 1n);
      } finally {
        await http.close();
      }

      // A submission sent to the removed validator is refused with a typed refusal …
      await assert.rejects(q.submitOwn(liveContent(q.key), [v140.peerId]), (err) =>
        isRefusal(err, NOT_A_VALIDATOR),
      );
      assert.equal(q.view.get(q.peerId), undefined, 'nothing was committed for Q');
      // Counted as the refusal it is, not as the validator failing.
      assert.ok(
        (await counterValue(metrics.get(v140.peerId)!, 'vigil_registry_submissions_total', {
          result: 'refused',
        })) >= 1,
      );
      assert.equal(
        await counterValue(metrics.get(v140.peerId)!, 'vigil_registry_submissions_total', {
          result: 'error',
        }),
        0,
      );
      // … and a client goes on to the next validator.
      const viaNext = await q.submitOwn(liveContent(q.key), [
        v140.peerId,
        validators.get(141)!.peerId,
      ]);
      assert.equal(viaNext.seq, 1n);
      // The removed validator is no longer admitted as a validator (it is not listed).
      await assert.rejects(
        v140.submitOwn(liveContent(v140.key, { prevSeq: own140.seq }), [
          validators.get(141)!.peerId,
        ]),
        (err) => isRefusal(err, 'REGISTRY_NOT_ADMITTED'),
      );

      // Set records in the DHT: a node that starts late, with no view exchange and no gossip
      // (a bare libp2p node and an unstarted distribution), fetches epochs 1 and 2 from it.
      for (const v of validators.values()) await v.distribution.dhtIdle();
      const chain = new ValidatorSetChain(genesis);
      const late = await createRegistryNode({
        seed: seedOf(15),
        listen: LOOPBACK,
        validators: genesis,
        setChain: () => chain,
        metrics: new Registry(),
        libp2pMetrics: false,
      });
      const view = new RegistryView(':memory:');
      const lateMetrics = new Registry();
      try {
        const dist = new RegistryDistribution({
          node: late,
          view,
          validators: genesis,
          chain,
          metrics: lateMetrics,
        });
        for (const t of [141, 142, 143])
          await late.dial(multiaddr(validators.get(t)!.addresses[0]!));
        await until(
          'the late node took epochs 1 and 2 from the DHT',
          () => {
            if (chain.head.epoch < 2n) void dist.fetchSetsFromDht({ timeoutMs: 2000 });
            return chain.head.epoch === 2n;
          },
          20_000,
        );
        assert.equal(
          await counterValue(lateMetrics, 'vigil_registry_records_received_total', {
            source: 'dht',
            result: 'accepted',
          }),
          2,
          'both set records came from the DHT',
        );
        // The DHT validator refuses a record that does not follow the chain it holds.
        const check = dhtSetRecordValidator(() => new ValidatorSetChain(genesis), Date.now);
        assert.throws(() => check(setDhtKey(2n), chain.records()[1]!), /does not follow/);
        assert.throws(() => check(setDhtKey(2n), chain.records()[0]!), /is for epoch 1/);
        const forged = Uint8Array.from(chain.records()[0]!);
        forged[forged.length - 1]! ^= 1;
        assert.throws(() => check(setDhtKey(1n), forged), /does not verify/);
        check(setDhtKey(1n), chain.records()[0]!);
      } finally {
        await late.stop();
        view.close();
      }
    } finally {
      for (const n of nodes.reverse()) await n.stop().catch(() => undefined);
    }
  });
});
