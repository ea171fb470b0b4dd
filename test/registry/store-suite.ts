/**
 * The registry store's behaviour, the same on every engine: `open()` gives a new connection
 * (its own SQLite handle or etcd client) to one shared, initialised registry.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Ed25519Key } from '../../src/keys/ed25519.js';
import { peerIdFromEd25519 } from '../../src/registry/peer-id.js';
import {
  RegistryError,
  encodeRecord,
  signFlagsGrant,
  verifyRecord,
  withCommit,
  type RegistryErrorCode,
} from '../../src/registry/record.js';
import type { RegistryStore } from '../../src/registry/store.js';
import { NOW, SET, VALIDATORS, keyOf, signedRecord, submission, submitOnTop } from './fixtures.js';

export function refusedWith(code: RegistryErrorCode) {
  return (err: unknown) => {
    assert.ok(err instanceof RegistryError, `expected RegistryError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

/** Several connections submit concurrently for one subject: every commit gets its own seq. */
export async function checkConcurrentSubmissions(
  stores: readonly RegistryStore[],
  perStore: number,
  subjectTag: number,
): Promise<void> {
  const subject = keyOf(subjectTag);
  const results = await Promise.all(
    stores.map(async (store, w) => {
      const seqs: Array<{ seq: bigint; tag: number }> = [];
      for (let i = 0; i < perStore; i++) {
        const tag = w * 10_000 + i + 1;
        seqs.push({ seq: await submitOnTop(store, subject, tag), tag });
      }
      return seqs;
    }),
  );
  checkSeqs(results, stores.length * perStore);
  const final = await stores[0]!.get(peerIdFromEd25519(subject.publicKey));
  const last = results.flat().find((r) => r.seq === BigInt(stores.length * perStore))!;
  assert.equal(final?.seq, BigInt(stores.length * perStore));
  assert.equal(final?.content.issuedAtMs, NOW + last.tag, 'the last commit is the stored record');
}

/** Each writer's seqs strictly increase; together they are exactly 1..total (none lost). */
export function checkSeqs(perWriter: Array<Array<{ seq: bigint }>>, total: number): void {
  for (const seqs of perWriter)
    for (let i = 1; i < seqs.length; i++)
      assert.ok(seqs[i]!.seq > seqs[i - 1]!.seq, 'a writer saw its seqs go backwards');
  const all = perWriter
    .flat()
    .map((r) => r.seq)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  assert.deepEqual(
    all,
    Array.from({ length: total }, (_, i) => BigInt(i + 1)),
    'every commit has its own seq, none skipped or repeated',
  );
}

export function registryStoreSuite(
  open: () => Promise<RegistryStore>,
  /** Writes raw bytes under a subject, as someone bypassing Vigil would. */
  writeRaw: (subject: string, bytes: Uint8Array) => Promise<void>,
): void {
  it('admits a subject at seq 1, answers a repeated submission with its seq, and refuses a replay', async () => {
    const store = await open();
    try {
      const subject = keyOf(11);
      const peerId = peerIdFromEd25519(subject.publicKey);
      const first = submission(subject);
      assert.deepEqual(await store.submit(first), { seq: 1n, duplicate: false });
      assert.deepEqual(await store.submit(first), { seq: 1n, duplicate: true });
      const stored = await store.get(peerId);
      assert.equal(stored?.seq, 1n);
      assert.deepEqual(stored?.countersignatures, []);
      // Another first admission (prevSeq 0) after seq 1: stale.
      await assert.rejects(
        store.submit(submission(subject, { issuedAtMs: NOW + 1 })),
        refusedWith('REGISTRY_SEQ_STALE'),
      );
      // Replacing a version never committed: conflict.
      await assert.rejects(
        store.submit(submission(subject, { prevSeq: 5n })),
        refusedWith('REGISTRY_SEQ_CONFLICT'),
      );
      const next = submission(subject, { prevSeq: 1n, addresses: ['/ip4/10.1.1.1/tcp/4001'] });
      assert.deepEqual(await store.submit(next), { seq: 2n, duplicate: false });
      // The seq-1 submission again, now that seq 2 exists: stale, not a duplicate.
      await assert.rejects(store.submit(first), refusedWith('REGISTRY_SEQ_STALE'));
      assert.deepEqual((await store.get(peerId))?.content.addresses, ['/ip4/10.1.1.1/tcp/4001']);
      assert.ok((await store.list()).some((r) => r.peerId === peerId));
    } finally {
      await store.close();
    }
  });

  it('refuses a bad subject signature and an expired submission before the store', async () => {
    const store = await open();
    try {
      const subject = keyOf(12);
      const bytes = Buffer.from(submission(subject));
      bytes[bytes.length - 1]! ^= 1;
      await assert.rejects(store.submit(bytes), refusedWith('REGISTRY_BAD_SIGNATURE'));
      await assert.rejects(
        store.submit(submission(subject, { issuedAtMs: NOW - 7200_000, expiresAtMs: NOW - 1 })),
        refusedWith('REGISTRY_RECORD_EXPIRED'),
      );
      assert.equal(await store.get(peerIdFromEd25519(subject.publicKey)), undefined);
    } finally {
      await store.close();
    }
  });

  it('sets flags only at admission; a change needs a quorum grant, one compromised validator cannot', async () => {
    const store = await open();
    try {
      const subject = keyOf(13);
      const peerId = peerIdFromEd25519(subject.publicKey);
      await store.submit(submission(subject, { flags: 1 }));
      const change = submission(subject, { prevSeq: 1n, flags: 3 });
      await assert.rejects(store.submit(change), refusedWith('REGISTRY_FLAGS_IMMUTABLE'));
      const grant = (signers: Ed25519Key[], baseSeq = 1n, flags = 3) => ({
        subjectKey: subject.publicKey,
        baseSeq,
        flags,
        signatures: signers.map((v) => signFlagsGrant(subject.publicKey, baseSeq, flags, v)),
      });
      // One (compromised) validator alone: no quorum.
      await assert.rejects(
        store.submit(change, { flagsGrant: grant([VALIDATORS[0]!]) }),
        refusedWith('REGISTRY_NO_QUORUM'),
      );
      // A quorum grant for another base seq or other flags does not apply.
      await assert.rejects(
        store.submit(change, { flagsGrant: grant(VALIDATORS.slice(0, 2), 0n) }),
        refusedWith('REGISTRY_SEQ_CONFLICT'),
      );
      await assert.rejects(
        store.submit(change, { flagsGrant: grant(VALIDATORS.slice(0, 2), 1n, 7) }),
        refusedWith('REGISTRY_FLAGS_IMMUTABLE'),
      );
      assert.equal((await store.get(peerId))?.content.flags, 1);
      assert.deepEqual(await store.submit(change, { flagsGrant: grant(VALIDATORS.slice(0, 2)) }), {
        seq: 2n,
        duplicate: false,
      });
      const changed = await store.get(peerId);
      assert.equal(changed?.content.flags, 3);
      // The version keeps the grant that let it change the flags, so countersigners can check it.
      assert.equal(changed?.flagsGrant?.baseSeq, 1n);
      assert.equal(changed?.flagsGrant?.signatures.length, 2);
      // Unchanged flags need no grant, and carry none.
      await store.submit(submission(subject, { prevSeq: 2n, flags: 3, role: 'relay' }));
      assert.equal((await store.get(peerId))?.flagsGrant, undefined);
    } finally {
      await store.close();
    }
  });

  it('stores validators’ countersignatures until the record verifies with a quorum', async () => {
    const store = await open();
    try {
      const subject = keyOf(14);
      const peerId = peerIdFromEd25519(subject.publicKey);
      await store.submit(submission(subject));
      await store.countersign(peerId, 1n, VALIDATORS[2]!);
      const one = await store.get(peerId);
      assert.equal(one?.countersignatures.length, 1);
      assert.throws(
        () => verifyRecord(encodeRecord(one!), { validators: SET, nowMs: NOW }),
        refusedWith('REGISTRY_NO_QUORUM'),
      );
      // Twice by the same validator: still one.
      await store.countersign(peerId, 1n, VALIDATORS[2]!);
      await store.countersign(peerId, 1n, VALIDATORS[0]!);
      const two = await store.get(peerId);
      assert.equal(two?.countersignatures.length, 2);
      assert.equal(verifyRecord(encodeRecord(two!), { validators: SET, nowMs: NOW }).seq, 1n);
      // Not a validator; a seq that is not the current one.
      await assert.rejects(
        store.countersign(peerId, 1n, keyOf(77)),
        refusedWith('REGISTRY_UNKNOWN_SIGNER'),
      );
      await assert.rejects(
        store.countersign(peerId, 2n, VALIDATORS[1]!),
        refusedWith('REGISTRY_SEQ_CONFLICT'),
      );
      // The countersigner names the content it checked: another one stored is not signed.
      await assert.rejects(
        store.countersign(peerId, 1n, VALIDATORS[1]!, {
          expectContent: signedRecord(subject, [], { role: 'other' }).record.contentBytes,
        }),
        refusedWith('REGISTRY_COUNTERSIGN_CONFLICT'),
      );
      assert.equal((await store.get(peerId))?.countersignatures.length, 2);
      await store.submit(submission(subject, { prevSeq: 1n, role: 'relay' }));
      await assert.rejects(
        store.countersign(peerId, 1n, VALIDATORS[1]!),
        refusedWith('REGISTRY_SEQ_STALE'),
      );
      // A new seq starts with no countersignatures: the old ones were over another (content, seq).
      assert.deepEqual((await store.get(peerId))?.countersignatures, []);
      await assert.rejects(
        store.countersign(peerFor(99), 1n, VALIDATORS[1]!),
        refusedWith('REGISTRY_NOT_FOUND'),
      );
    } finally {
      await store.close();
    }
  });

  it('does not countersign a record written into the store without its subject’s signature', async () => {
    const store = await open();
    try {
      const subject = keyOf(15);
      const peerId = peerIdFromEd25519(subject.publicKey);
      const { record } = signedRecord(subject, []);
      const forged = withCommit(
        { ...record, subjectSignature: keyOf(16).sign(record.contentBytes) },
        1n,
      );
      await writeRaw(peerId, encodeRecord(forged));
      await assert.rejects(
        store.countersign(peerId, 1n, VALIDATORS[0]!),
        refusedWith('REGISTRY_BAD_SIGNATURE'),
      );
      // Another subject's record filed under this subject: corruption, refused on read.
      await writeRaw(peerId, signedRecord(keyOf(16), []).bytes);
      await assert.rejects(store.get(peerId), refusedWith('REGISTRY_RECORD_MALFORMED'));
    } finally {
      await store.close();
    }
  });

  it('concurrent submissions for one subject from several connections: strictly increasing seqs, no lost update', async () => {
    const stores = await Promise.all([open(), open(), open(), open()]);
    try {
      await checkConcurrentSubmissions(stores, 8, 20);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
}

const peerFor = (tag: number) => peerIdFromEd25519(keyOf(tag).publicKey);
