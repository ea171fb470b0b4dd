/**
 * Live validator-set change (issue 15): the set record's codec and checks, the chain of sets a
 * node keeps, which countersignatures count after a change, and a change through the SQLite
 * store (the etcd store runs the same checks in store-etcd.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import type { Ed25519Key } from '../../src/keys/ed25519.js';
import {
  countersign,
  decodeRecord,
  encodeRecord,
  verifyRecordAt,
  withCommit,
  signSubmission,
  type Countersignature,
  type SignedRecord,
} from '../../src/registry/record.js';
import { RegistryStore } from '../../src/registry/store.js';
import { SqliteRegistryCells } from '../../src/registry/store-sqlite.js';
import {
  SET_LIMITS,
  ValidatorSetChain,
  decodeSetRecord,
  encodeSetRecord,
  proposeNextSet,
  setRecord,
  signSetBody,
} from '../../src/registry/validator-set.js';
import { tempDir } from '../helpers/guard-fixtures.js';
import { NOW, SET, content, keyOf, setOf } from './fixtures.js';
import { refusedWith } from './store-suite.js';
import { checkSetChangeThroughStore, nextSet } from './validator-set-fixtures.js';

const [A, B, C, D] = [100, 101, 102, 103].map(keyOf) as [
  Ed25519Key,
  Ed25519Key,
  Ed25519Key,
  Ed25519Key,
];
const GRACE = 60_000;

/** Genesis {A, B, C} q2 → epoch 1 adds D (q3 of 4) → epoch 2 removes A ({B, C, D} q2). */
function threeEpochs(): ValidatorSetChain {
  const chain = new ValidatorSetChain(SET, GRACE);
  assert.equal(chain.offer(nextSet(chain, [A, B], { add: [D] }), NOW), 'accepted');
  assert.equal(chain.offer(nextSet(chain, [B, C, D], { remove: [A] }), NOW + 5000), 'accepted');
  return chain;
}

/** A committed record of subject 7 at seq 1, countersigned by `sigs` ([key, epoch]). */
function attested(sigs: Array<[Ed25519Key, bigint]>): { record: SignedRecord; bytes: Uint8Array } {
  const subject = keyOf(7);
  const s = signSubmission(content(subject), subject);
  const bare = withCommit(s, 1n);
  const record = withCommit(
    s,
    1n,
    sigs.map(([k, e]) => countersign(bare, k, e)),
  );
  return { record, bytes: encodeRecord(record) };
}

describe('validator-set record', () => {
  it('encodes canonically and round-trips; a bad or oversized envelope is refused', () => {
    const chain = new ValidatorSetChain(SET);
    const bytes = nextSet(chain, [B, A], { add: [D] });
    const rec = decodeSetRecord(bytes);
    assert.equal(rec.epoch, 1n);
    assert.equal(rec.quorum, 3, 'a majority of 4 by default');
    assert.equal(rec.members.length, 4);
    assert.deepEqual(encodeSetRecord(rec), bytes, 'one record, one byte string');
    assert.equal(bytes[0], 0x56, "told apart from a node record by its first byte ('V')");
    assert.throws(
      () => decodeSetRecord(bytes.subarray(0, bytes.length - 1)),
      refusedWith('REGISTRY_RECORD_MALFORMED'),
    );
    assert.throws(
      () => decodeSetRecord(Uint8Array.from([...bytes, 0])),
      refusedWith('REGISTRY_RECORD_MALFORMED'),
    );
    // Signatures out of order: not canonical.
    const sigs = [...rec.signatures].reverse();
    const swapped = Buffer.from(bytes);
    const at = bytes.length - 96 * sigs.length;
    sigs.forEach((s, i) => {
      swapped.set(s.validator, at + 96 * i);
      swapped.set(s.signature, at + 96 * i + 32);
    });
    assert.throws(() => decodeSetRecord(swapped), refusedWith('REGISTRY_RECORD_MALFORMED'));
    assert.throws(
      () => decodeSetRecord(new Uint8Array(SET_LIMITS.envelopeBytes + 1).fill(0x56)),
      refusedWith('REGISTRY_RECORD_TOO_LARGE'),
    );
    // A proposal that removes a non-member or adds a member is refused before anyone signs.
    assert.throws(
      () => proposeNextSet(chain, { remove: [D.publicKey], issuedAtMs: NOW }),
      refusedWith('REGISTRY_INVALID_FIELD'),
    );
    assert.throws(
      () => proposeNextSet(chain, { add: [A.publicKey], issuedAtMs: NOW }),
      refusedWith('REGISTRY_INVALID_FIELD'),
    );
  });

  it('is checked in order: signatures, signers in the previous set, its quorum, epoch and chain', () => {
    const chain = new ValidatorSetChain(SET);
    const body = proposeNextSet(chain, { add: [D.publicKey], issuedAtMs: NOW });
    const forged: Countersignature = { validator: A.publicKey, signature: new Uint8Array(64) };
    assert.throws(
      () => chain.offer(encodeSetRecord(setRecord(body, [forged, signSetBody(body, B)])), NOW),
      refusedWith('REGISTRY_BAD_SIGNATURE'),
    );
    assert.throws(
      () =>
        chain.offer(
          encodeSetRecord(setRecord(body, [signSetBody(body, D), signSetBody(body, B)])),
          NOW,
        ),
      refusedWith('REGISTRY_UNKNOWN_SIGNER'),
    );
    assert.throws(
      () => chain.offer(encodeSetRecord(setRecord(body, [signSetBody(body, C)])), NOW),
      refusedWith('REGISTRY_NO_QUORUM'),
    );
    // On top of another genesis set (another digest): refused even with a quorum.
    const other = new ValidatorSetChain(setOf([A, B, C], 3));
    assert.throws(
      () => chain.offer(nextSet(other, [A, B, C], { add: [D] }), NOW + 10_000),
      refusedWith('REGISTRY_EPOCH_CONFLICT'),
    );
    // Issued in the future.
    assert.throws(
      () => chain.offer(nextSet(chain, [A, B], { add: [D], issuedAtMs: NOW + 3_600_000 }), NOW),
      refusedWith('REGISTRY_INVALID_FIELD'),
    );
    assert.equal(chain.head.epoch, 0n, 'nothing was taken');
    const ok = encodeSetRecord(setRecord(body, [signSetBody(body, A), signSetBody(body, C)]));
    assert.equal(chain.offer(ok, NOW), 'accepted');
    assert.equal(chain.offer(ok, NOW), 'duplicate');
    // The same change with other signatures is the same change.
    assert.equal(
      chain.offer(
        encodeSetRecord(setRecord(body, [signSetBody(body, A), signSetBody(body, B)])),
        NOW,
      ),
      'duplicate',
    );
    // Another change for epoch 1 (a quorum of the genesis set signed two): a conflict.
    const rival = new ValidatorSetChain(SET);
    assert.throws(
      () => chain.offer(nextSet(rival, [A, B], { remove: [C] }), NOW),
      refusedWith('REGISTRY_EPOCH_CONFLICT'),
    );
    // Epoch 3 before epoch 2: a gap, to be filled by a sync.
    const ahead = threeEpochs();
    const epoch3 = nextSet(ahead, [B, C], { remove: [B] });
    assert.equal(chain.offer(epoch3, NOW + 10_000), 'gap');
  });
});

describe('countersignatures after a set change', () => {
  it('name their epoch: one made under epoch 1 does not verify as epoch 2', () => {
    const chain = threeEpochs();
    const { record } = attested([
      [B, 1n],
      [C, 1n],
    ]);
    const relabelled = {
      ...record,
      countersignatures: record.countersignatures.map((c) => ({ ...c, epoch: 2n })),
    };
    assert.throws(
      () => verifyRecordAt(encodeRecord(relabelled), { validators: chain.rules(NOW), nowMs: NOW }),
      refusedWith('REGISTRY_BAD_SIGNATURE'),
    );
    // A genesis-epoch record keeps the layout-1 bytes; a later epoch's uses layout 2.
    assert.equal(attested([[A, 0n]]).bytes[0], 1);
    assert.equal(record.countersignatures.length, 2);
    assert.equal(encodeRecord(record)[0], 2);
    assert.deepEqual(
      decodeRecord(encodeRecord(record)).countersignatures,
      record.countersignatures,
    );
  });

  it('a removed validator has no power from the change on, even in the grace; the kept ones do', () => {
    const chain = threeEpochs();
    const rules = chain.rules(NOW + 6000); // within epoch 2's grace
    assert.equal(rules.previous?.epoch, 1n);
    const verify = (sigs: Array<[Ed25519Key, bigint]>, r = rules) =>
      verifyRecordAt(attested(sigs).bytes, { validators: r, nowMs: NOW }).epoch;
    assert.equal(
      verify([
        [B, 2n],
        [C, 2n],
      ]),
      2n,
    );
    // The removed validator under the current epoch: not a member.
    assert.throws(
      () =>
        verify([
          [A, 2n],
          [B, 2n],
        ]),
      refusedWith('REGISTRY_UNKNOWN_SIGNER'),
    );
    // The removed validator under the previous epoch, with a minority: no quorum.
    assert.throws(
      () =>
        verify([
          [A, 1n],
          [B, 1n],
        ]),
      refusedWith('REGISTRY_NO_QUORUM'),
    );
    assert.throws(
      () =>
        verify([
          [A, 1n],
          [B, 1n],
          [C, 1n],
        ]),
      refusedWith('REGISTRY_NO_QUORUM'),
    );
    // Epoch 1's quorum (3) of validators kept in epoch 2: valid in the grace...
    assert.equal(
      verify([
        [B, 1n],
        [C, 1n],
        [D, 1n],
      ]),
      1n,
    );
    // ...and not after it.
    assert.throws(
      () =>
        verify(
          [
            [B, 1n],
            [C, 1n],
            [D, 1n],
          ],
          chain.rules(NOW + 5000 + GRACE),
        ),
      refusedWith('REGISTRY_NO_QUORUM'),
    );
    // The genesis epoch no longer counts at all; an epoch not known yet is not judged.
    assert.throws(
      () =>
        verify([
          [B, 0n],
          [C, 0n],
        ]),
      refusedWith('REGISTRY_NO_QUORUM'),
    );
    assert.throws(
      () =>
        verify([
          [B, 3n],
          [C, 3n],
        ]),
      refusedWith('REGISTRY_UNKNOWN_EPOCH'),
    );
  });

  it('property: no set change and no record is accepted without a quorum of the right epoch', () => {
    const pool = Array.from({ length: 7 }, (_, i) => keyOf(120 + i));
    const subset = fc.subarray(
      pool.map((_, i) => i),
      { minLength: 1 },
    );
    fc.assert(
      fc.property(
        subset,
        fc.nat({ max: 6 }),
        subset,
        fc.nat({ max: 6 }),
        subset,
        fc.array(fc.tuple(fc.nat({ max: 6 }), fc.constantFrom(0n, 1n, 2n)), { maxLength: 10 }),
        fc.boolean(),
        (genesisIdx, q0, nextIdx, q1, setSigners, recordSigs, inGrace) => {
          const genesis = setOf(
            genesisIdx.map((i) => pool[i]!),
            1 + (q0 % genesisIdx.length),
          );
          const chain = new ValidatorSetChain(genesis, GRACE);
          const nextMembers = nextIdx.map((i) => pool[i]!);
          const quorum1 = 1 + (q1 % nextMembers.length);
          const body = proposeNextSet(chain, {
            add: nextMembers
              .filter((k) => !genesisIdx.some((g) => pool[g] === k))
              .map((k) => k.publicKey),
            remove: genesisIdx.filter((g) => !nextIdx.includes(g)).map((g) => pool[g]!.publicKey),
            quorum: quorum1,
            issuedAtMs: NOW,
          });
          const setBytes = encodeSetRecord(
            setRecord(
              body,
              setSigners.map((i) => signSetBody(body, pool[i]!)),
            ),
          );
          // The set change: accepted exactly when every signer is in the genesis set and
          // they make its quorum.
          const setOk =
            setSigners.every((i) => genesisIdx.includes(i)) && setSigners.length >= genesis.quorum;
          let taken: boolean;
          try {
            taken = chain.offer(setBytes, NOW) === 'accepted';
          } catch {
            taken = false;
          }
          assert.equal(taken, setOk);

          // A record under the chain as it now stands.
          const uniq = new Map(
            recordSigs.map(([i, e]) => [`${e}:${i}`, [pool[i]!, e] as [Ed25519Key, bigint]]),
          );
          const sigs = [...uniq.values()];
          const rules = chain.rules(inGrace ? NOW + 1 : NOW + GRACE);
          const headEpoch = chain.head.epoch;
          const members = (e: bigint) =>
            e === headEpoch ? chain.head.members : (chain.at(e)?.members ?? []);
          const isIn = (k: Ed25519Key, e: bigint) =>
            members(e).some((m) => Buffer.compare(m, k.publicKey) === 0);
          let expected: bigint | 'unknown' | 'refused';
          if (sigs.some(([, e]) => e > headEpoch)) expected = 'unknown';
          else if (sigs.some(([k, e]) => e === headEpoch && !isIn(k, e))) expected = 'refused';
          else if (
            rules.previous &&
            sigs.some(([k, e]) => e === rules.previous!.epoch && !isIn(k, e))
          )
            expected = 'refused';
          else {
            const now = sigs.filter(([, e]) => e === headEpoch).length;
            const before = rules.previous
              ? sigs.filter(([k, e]) => e === rules.previous!.epoch && isIn(k, headEpoch)).length
              : 0;
            expected =
              now >= chain.head.quorum
                ? headEpoch
                : rules.previous && before >= rules.previous.quorum
                  ? rules.previous.epoch
                  : 'refused';
          }
          let got: bigint | 'unknown' | 'refused';
          try {
            got = verifyRecordAt(attested(sigs).bytes, { validators: rules, nowMs: NOW }).epoch;
          } catch (err) {
            got =
              (err as { code?: string }).code === 'REGISTRY_UNKNOWN_EPOCH' ? 'unknown' : 'refused';
          }
          assert.equal(got, expected);
          if (typeof got === 'bigint') {
            // The quorum of the epoch it is attested at, by members of that epoch and of now.
            const q = chain.at(got)!.quorum;
            const counted = sigs.filter(
              ([k, e]) => e === got && isIn(k, got as bigint) && isIn(k, headEpoch),
            );
            assert.ok(counted.length >= q);
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('a set change through the SQLite store', () => {
  let dir: string;
  let cleanup: () => void;
  before(() => ({ dir, cleanup } = tempDir('vigil-registry-valset-')));
  after(() => cleanup?.());

  it('needs a quorum of the current set, refuses stale and conflicting epochs, re-attests under the new epoch', async () => {
    const path = join(dir, 'registry.db');
    await new SqliteRegistryCells({ path, create: true }).close();
    await checkSetChangeThroughStore(
      async () =>
        new RegistryStore(new SqliteRegistryCells({ path }), {
          validators: SET,
          nowMs: () => NOW + 60_000,
        }),
    );
  });
});
