/**
 * The validators' countersigning loop (src/registry/countersigner.ts), the same on every engine:
 * three validators, each with its own store connection, countersigner and local file.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { VigilError } from '../../src/errors.js';
import type { Ed25519Key } from '../../src/keys/ed25519.js';
import { Countersigner } from '../../src/registry/countersigner.js';
import { peerIdFromEd25519 } from '../../src/registry/peer-id.js';
import {
  RegistryError,
  encodeRecord,
  signFlagsGrant,
  verifyRecord,
} from '../../src/registry/record.js';
import type { RegistryStore } from '../../src/registry/store.js';
import { NOW, SET, VALIDATORS, keyOf, signedRecord, submission } from './fixtures.js';
import { refusedWith } from './store-suite.js';

/** Polls `probe` until it answers true; fails after `ms` (bounded). */
export async function waitFor(what: string, probe: () => Promise<boolean>, ms = 15_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`not within ${ms} ms: ${what}`);
}

async function counter(reg: Registry, name: string, reason?: string): Promise<number> {
  const m = await reg.getSingleMetric(name)!.get();
  return m.values
    .filter((v) => reason === undefined || v.labels.reason === reason)
    .reduce((a, v) => a + v.value, 0);
}
const refusals = (reg: Registry, reason: string) =>
  counter(reg, 'vigil_registry_countersign_refusals_total', reason);

interface Validator {
  store: RegistryStore;
  countersigner: Countersigner;
  metrics: Registry;
  statePath: string;
  refused: RegistryError[];
}

export function countersignerSuite(o: {
  /** A new connection to the shared, initialised registry. */
  open: () => Promise<RegistryStore>;
  /** Writes raw bytes under a subject, as someone bypassing Vigil would. */
  writeRaw: (subject: string, bytes: Uint8Array) => Promise<void>;
  /** A fresh directory for the validators' local files. */
  dir: () => string;
  /** Subject tags used by this engine's run (distinct per engine sharing nothing). */
  tag: number;
}): void {
  const validators: Validator[] = [];
  const start = (i: number, store: RegistryStore, statePath: string): Validator => {
    const metrics = new Registry();
    const refused: RegistryError[] = [];
    const countersigner = new Countersigner({
      store,
      signer: VALIDATORS[i]!,
      statePath,
      metrics,
      nowMs: () => NOW,
      pollMs: 50,
      connectMs: 2000,
      retryMs: 100,
      onRefusal: (_s, err) => refused.push(err),
    });
    countersigner.start();
    return { store, countersigner, metrics, statePath, refused };
  };

  before(async () => {
    const dir = o.dir();
    for (let i = 0; i < 3; i++)
      validators.push(start(i, await o.open(), join(dir, `validator-${i}`, 'countersigned.db')));
  });
  after(async () => {
    for (const v of validators) {
      await v.countersigner.stop();
      await v.store.close();
    }
  });

  const peer = (k: Ed25519Key) => peerIdFromEd25519(k.publicKey);
  const stored = (k: Ed25519Key) => validators[0]!.store.get(peer(k));
  const countersigned = async (k: Ed25519Key, seq: bigint, n: number) => {
    const r = await stored(k);
    return r?.seq === seq && r.countersignatures.length === n;
  };

  it('a submitted record is countersigned by every validator and reaches quorum by itself', async () => {
    const subject = keyOf(o.tag);
    await validators[0]!.store.submit(submission(subject));
    await waitFor('three countersignatures at seq 1', () => countersigned(subject, 1n, 3));
    const rec = (await stored(subject))!;
    assert.equal(verifyRecord(encodeRecord(rec), { validators: SET, nowMs: NOW }).seq, 1n);
    // A new version is countersigned again, from nothing.
    await validators[1]!.store.submit(submission(subject, { prevSeq: 1n, role: 'relay' }));
    await waitFor('three countersignatures at seq 2', () => countersigned(subject, 2n, 3));
    for (const v of validators) {
      assert.ok(
        (await counter(v.metrics, 'vigil_registry_countersignatures_total')) >= 2,
        'counted',
      );
      assert.deepEqual(v.refused, []);
      // The local record is owner-only.
      assert.equal(statSync(v.statePath).mode & 0o777, 0o600);
    }
  });

  it('flags changed by a raw write are never countersigned; a quorum grant’s change is', async () => {
    const subject = keyOf(o.tag + 1);
    const peerId = peer(subject);
    await validators[0]!.store.submit(submission(subject, { flags: 1 }));
    await waitFor('seq 1 countersigned', () => countersigned(subject, 1n, 3));
    // Someone with raw write access stores seq 2 with other flags (signed by the subject, so
    // everything else verifies), bypassing the submit path's flags rule.
    await o.writeRaw(peerId, signedRecord(subject, [], { prevSeq: 1n, flags: 3 }).bytes);
    for (const v of validators)
      await waitFor(
        'a flags_changed refusal',
        async () => (await refusals(v.metrics, 'flags_changed')) === 1,
      );
    const raw = (await stored(subject))!;
    assert.equal(raw.seq, 2n);
    assert.deepEqual(raw.countersignatures, [], 'no honest validator countersigned it');
    assert.throws(
      () => verifyRecord(encodeRecord(raw), { validators: SET, nowMs: NOW }),
      refusedWith('REGISTRY_NO_QUORUM'),
    );
    for (const v of validators)
      assert.equal(
        v.refused.find((e) => e.code === 'REGISTRY_FLAGS_IMMUTABLE')?.code,
        'REGISTRY_FLAGS_IMMUTABLE',
      );
    // The same change through the admin operation: the version carries the quorum grant.
    const flagsGrant = {
      subjectKey: subject.publicKey,
      baseSeq: 2n,
      flags: 3,
      signatures: VALIDATORS.slice(0, 2).map((v) => signFlagsGrant(subject.publicKey, 2n, 3, v)),
    };
    await validators[2]!.store.submit(
      submission(subject, { prevSeq: 2n, flags: 3, role: 'granted' }),
      { flagsGrant },
    );
    await waitFor('the granted change countersigned', () => countersigned(subject, 3n, 3));
    // The refused version was examined once per validator, not on every re-read.
    for (const v of validators) assert.equal(await refusals(v.metrics, 'flags_changed'), 1);
  });

  it('a second content at a (subject, seq) already countersigned, written raw, is refused and counted', async () => {
    const subject = keyOf(o.tag + 2);
    const peerId = peer(subject);
    await validators[0]!.store.submit(submission(subject));
    await waitFor('seq 1 countersigned', () => countersigned(subject, 1n, 3));
    // Same seq, other content, signed by the subject: a fork of seq 1.
    await o.writeRaw(peerId, signedRecord(subject, [], { role: 'forked' }).bytes);
    for (const v of validators)
      await waitFor(
        'a conflict refusal',
        async () => (await refusals(v.metrics, 'conflict')) === 1,
      );
    for (const v of validators) {
      const err = v.refused.find((e) => e.code === 'REGISTRY_COUNTERSIGN_CONFLICT');
      assert.ok(err instanceof RegistryError, 'a typed refusal');
    }
    const forked = (await stored(subject))!;
    assert.equal(forked.content.role, 'forked');
    assert.deepEqual(forked.countersignatures, []);
    // A rollback to a version before one countersigned is refused too, even to seq 1's own.
    await o.writeRaw(peerId, signedRecord(subject, [], { prevSeq: 1n, role: 'next' }).bytes);
    await waitFor('seq 2 countersigned', () => countersigned(subject, 2n, 3));
    await o.writeRaw(peerId, signedRecord(subject, []).bytes);
    for (const v of validators)
      await waitFor('a stale refusal', async () => (await refusals(v.metrics, 'stale')) === 1);
    assert.deepEqual((await stored(subject))!.countersignatures, []);
  });

  it('a countersigner stopped while records are committed catches up after restart', async () => {
    const down = validators[2]!;
    await down.countersigner.stop();
    const a = keyOf(o.tag + 3);
    const b = keyOf(o.tag + 4);
    await validators[0]!.store.submit(submission(a));
    await validators[0]!.store.submit(submission(b));
    await validators[1]!.store.submit(submission(b, { prevSeq: 1n, role: 'relay' }));
    // The two running validators make the quorum meanwhile.
    await waitFor('a at quorum', () => countersigned(a, 1n, 2));
    await waitFor('b at quorum', () => countersigned(b, 2n, 2));
    // Same key, same local file, a new process part: it reads what it missed.
    validators[2] = start(2, down.store, down.statePath);
    await waitFor('a countersigned by all', () => countersigned(a, 1n, 3));
    await waitFor('b countersigned by all', () => countersigned(b, 2n, 3));
    assert.ok((await counter(validators[2]!.metrics, 'vigil_registry_follow_relists_total')) >= 1);
  });

  it('refuses a key outside the validator set, and a local file already in use', async () => {
    const v = validators[0]!;
    assert.throws(
      () =>
        new Countersigner({
          store: v.store,
          signer: keyOf(77),
          statePath: join(o.dir(), 'x.db'),
          metrics: new Registry(),
        }),
      refusedWith('REGISTRY_UNKNOWN_SIGNER'),
    );
    assert.throws(
      () =>
        new Countersigner({
          store: v.store,
          signer: VALIDATORS[0]!,
          statePath: v.statePath,
          metrics: new Registry(),
        }),
      (err: unknown) =>
        err instanceof VigilError && err.code === 'REGISTRY_COUNTERSIGN_STATE_UNAVAILABLE',
    );
  });
}
