/**
 * A running node renews its own record before it expires (src/registry/renew.ts), on real
 * libp2p nodes on loopback with records that live 3 s: a peer through a validator (a refusal
 * retried with backoff), a validator through its own store; each renewal gets the next seq
 * and reaches every node before the version it replaces expires.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { encodeSubmission, signSubmission } from '../../src/registry/record.js';
import type { RenewEvent } from '../../src/registry/renew.js';
import { tempDir } from '../helpers/guard-fixtures.js';
import { counterValue, liveContent, startNetwork, until, type Network } from './network-fixture.js';

const LIFETIME_MS = 3000;
const TUNING = { checkMs: 100, jitter: 0, retryMinMs: 200, retryMaxMs: 400 };

describe('registry record renewal', { timeout: 120_000 }, () => {
  let net: Network;
  let cleanup: () => void;
  let refuse = 0;
  const events: RenewEvent[] = [];
  before(async () => {
    let dir: string;
    ({ dir, cleanup } = tempDir('vigil-registry-renew-'));
    net = await startNetwork({
      dir: join(dir, 'net'),
      peers: 2,
      // A validator refuses the next `refuse` submissions of peer 0.
      validatorOptions: {
        renew: TUNING,
        admission: (peer) => !(peer.toString() === net.peers[0]!.peerId && refuse-- > 0),
      },
      peerOptions: { renew: TUNING, onRenew: (e) => events.push(e) },
    });
  });
  after(async () => {
    await net?.close();
    cleanup?.();
  });

  it('a peer and a validator renew their records before expiry, with the next seq, and every node gets them', async () => {
    const [p0, p1] = net.peers;
    const v0 = net.validators[0]!;
    const everyone = [...net.validators, ...net.peers];
    const now = Date.now();
    const first = await p0!.submitOwn(
      liveContent(p0!.key, { issuedAtMs: now, expiresAtMs: now + LIFETIME_MS }),
      [v0.peerId],
    );
    assert.equal(first.seq, 1n);
    await v0.store.submit(
      encodeSubmission(
        signSubmission(
          liveContent(v0.key, { issuedAtMs: now, expiresAtMs: now + LIFETIME_MS }),
          v0.key,
        ),
      ),
    );
    // The first renewal attempt of p0 (due at 2/3 of 3 s) is refused, then retried.
    refuse = 1;
    // p1 never submitted: it has nothing to renew.
    await until(
      'every node holds seq 2 of both records',
      () => everyone.every((n) => n.view.seq(p0!.peerId) === 2n && n.view.seq(v0.peerId) === 2n),
      LIFETIME_MS + 5000,
    );
    for (const subject of [p0!, v0]) {
      const r2 = p1!.view.get(subject.peerId)!.record;
      assert.ok(
        r2.content.issuedAtMs < now + LIFETIME_MS,
        'renewed before the first version expired',
      );
      assert.ok(r2.content.issuedAtMs >= now + (2 / 3) * LIFETIME_MS - 50, 'not before 2/3');
      assert.equal(r2.content.expiresAtMs - r2.content.issuedAtMs, LIFETIME_MS);
      assert.equal(r2.content.prevSeq, 1n);
      assert.ok(r2.countersignatures.length >= 2);
    }
    assert.deepEqual(
      events.map((e) => [e.result, e.code]),
      [
        ['refused', 'REGISTRY_NOT_ADMITTED'],
        ['renewed', undefined],
      ],
    );
    assert.ok(events[0]!.retryInMs! >= 150 && events[0]!.retryInMs! <= 250);
    // And again from the renewed version: seq 3, before seq 2 expires.
    await until(
      'every node holds seq 3 of p0',
      () => everyone.every((n) => n.view.seq(p0!.peerId) === 3n),
      LIFETIME_MS + 5000,
    );
    const r3 = p1!.view.get(p0!.peerId)!.record;
    assert.ok(r3.content.issuedAtMs < p1!.view.get(p0!.peerId)!.record.content.expiresAtMs);
    const reg = net.metrics.get(p0!.peerId)!;
    assert.equal(
      await counterValue(reg, 'vigil_registry_renewals_total', { result: 'refused' }),
      1,
    );
    assert.ok(
      (await counterValue(reg, 'vigil_registry_renewals_total', { result: 'renewed' })) >= 2,
    );
    assert.equal(
      await counterValue(net.metrics.get(p1!.peerId)!, 'vigil_registry_renewals_total'),
      0,
    );
  });
});
