/**
 * The registry network's gates: the allow-list gater, the submission rate limit, and
 * convergence after a partition heals (real libp2p nodes on loopback).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { multiaddr } from '@multiformats/multiaddr';
import { Registry } from 'prom-client';
import { RegistryPeer } from '../../src/registry/service.js';
import { SUBMIT_PROTOCOL } from '../../src/registry/submit.js';
import { LIMITS } from '../../src/registry/record.js';
import { lpStream } from '@libp2p/utils';
import { peerIdFromEd25519 } from '../../src/registry/peer-id.js';
import { tempDir } from '../helpers/guard-fixtures.js';
import { SET, keyOf } from './fixtures.js';
import { liveContent, seedOf, startNetwork, until, type Network } from './network-fixture.js';

let root: string;
let cleanup: () => void;
let dirs = 0;
before(() => ({ dir: root, cleanup } = tempDir('vigil-registry-policy-')));
after(() => cleanup());
const freshDir = () => join(root, `n${dirs++}`);

describe('allow-list and rate limit', { timeout: 60_000 }, () => {
  let net: Network;
  // Validators 100..102 and peers 1..2 are listed; peer 9 is not.
  const listed = new Set([100, 101, 102, 1, 2].map((t) => peerIdFromEd25519(keyOf(t).publicKey)));
  let outsider: RegistryPeer;
  before(async () => {
    net = await startNetwork({
      dir: freshDir(),
      peers: 2,
      allowList: (p) => listed.has(p),
      ratePoints: 3,
    });
    outsider = await RegistryPeer.start({
      seed: seedOf(9),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      validators: SET,
      viewPath: join(freshDir(), 'outsider.db'),
      metrics: new Registry(),
    });
  });
  after(async () => {
    await outsider?.stop();
    await net?.close();
  });

  it('a peer not on the allow-list cannot connect or submit', async () => {
    // The validator's gater refuses the connection once Noise has told it who dialled; the
    // dialler may see it open for a moment before it is closed.
    await outsider.node.dial(multiaddr(net.validatorAddrs[0]!)).catch(() => undefined);
    await assert.rejects(
      outsider.submitOwn(liveContent(outsider.key), [net.validatorAddrs[0]!]),
      (e: { code?: string }) => e.code === 'REGISTRY_UNAVAILABLE',
    );
    for (const v of net.validators)
      assert.ok(!v.node.getPeers().some((p) => p.toString() === outsider.peerId));
    assert.equal(await net.validators[0]!.store.get(outsider.peerId), undefined);
  });

  it('a peer gets ratePoints submissions per window, then REGISTRY_RATE_LIMITED', async () => {
    const p = net.peers[0]!;
    const v = net.validators[0]!.peerId;
    const c = liveContent(p.key);
    for (let i = 0; i < 3; i++) await p.submitOwn(c, [v]); // the first commits, retries answer it
    await assert.rejects(
      p.submitOwn(c, [v]),
      (e: { code?: string }) => e.code === 'REGISTRY_RATE_LIMITED',
    );
    // Another peer is not held back by the first one's budget.
    const q = net.peers[1]!;
    assert.equal((await q.submitOwn(liveContent(q.key), [v])).seq, 1n);
  });

  it('a submission frame over the record limit is refused before it is buffered', async () => {
    const p = net.peers[1]!;
    const stream = await p.node.dialProtocol(net.validators[2]!.node.peerId, SUBMIT_PROTOCOL);
    const lp = lpStream(stream, { maxDataLength: 64 * 1024 });
    await lp.write(new Uint8Array(LIMITS.envelopeBytes + 1).fill(1));
    const answer = JSON.parse(new TextDecoder().decode((await lp.read()).subarray()));
    assert.equal(answer.code, 'REGISTRY_RECORD_TOO_LARGE');
    await stream.close().catch(() => undefined);
  });
});

describe('partition and heal', { timeout: 60_000 }, () => {
  let net: Network;
  const cut = new Set<string>();
  before(async () => {
    // Peers 11..14; while `cut` holds a peer id, it can reach nobody and nobody can reach it.
    net = await startNetwork({
      dir: freshDir(),
      peers: 4,
      peerTag: 11,
      allowList: (p) => !cut.has(p),
    });
  });
  after(async () => net?.close());

  it('records written during a partition reach the cut-off peers once it heals', async () => {
    const [a, b, c, d] = net.peers;
    const isolated = [c!, d!];
    await until('everyone connected', () => isolated.every((p) => p.node.getPeers().length >= 3));
    for (const p of isolated) {
      cut.add(p.peerId);
      await Promise.all(p.node.getPeers().map((x) => p.node.hangUp(x)));
    }
    await until('isolated', () => isolated.every((p) => p.node.getPeers().length === 0));
    await a!.submitOwn(liveContent(a!.key), [net.validators[0]!.peerId]);
    await b!.submitOwn(liveContent(b!.key), [net.validators[1]!.peerId]);
    await until('the connected side has both', () =>
      [...net.validators, a!, b!].every((n) => n.view.count() === 2),
    );
    assert.ok(isolated.every((p) => p.view.count() === 0));
    cut.clear();
    for (const p of isolated) await p.node.dial(multiaddr(net.validatorAddrs[0]!));
    const nodes = [...net.validators, ...net.peers];
    await until('every node holds the same two records', () => {
      const views = nodes.map((n) =>
        n.view
          .list()
          .map((e) => `${e.record.peerId}@${e.record.seq}`)
          .join(','),
      );
      return views.every((v) => v === views[0]) && nodes[0]!.view.count() === 2;
    });
  });
});
