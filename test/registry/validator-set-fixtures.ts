/** Validator-set records for the registry tests, and the store behaviour of a set change. */
import assert from 'node:assert/strict';
import type { Ed25519Key } from '../../src/keys/ed25519.js';
import { peerIdFromEd25519 } from '../../src/registry/peer-id.js';
import type { RegistryStore } from '../../src/registry/store.js';
import {
  encodeSetRecord,
  proposeNextSet,
  setRecord,
  signSetBody,
  type ValidatorSetChain,
} from '../../src/registry/validator-set.js';
import { NOW, keyOf, submission } from './fixtures.js';
import { refusedWith } from './store-suite.js';

/** The next epoch's set record on top of `chain`, signed by `signers`. */
export function nextSet(
  chain: ValidatorSetChain,
  signers: readonly Ed25519Key[],
  change: { add?: Ed25519Key[]; remove?: Ed25519Key[]; quorum?: number; issuedAtMs?: number },
): Uint8Array {
  const body = proposeNextSet(chain, {
    add: (change.add ?? []).map((k) => k.publicKey),
    remove: (change.remove ?? []).map((k) => k.publicKey),
    ...(change.quorum !== undefined ? { quorum: change.quorum } : {}),
    issuedAtMs: change.issuedAtMs ?? NOW + Number(chain.head.epoch + 1n) * 1000,
  });
  return encodeSetRecord(
    setRecord(
      body,
      signers.map((k) => signSetBody(body, k)),
    ),
  );
}

const has = (
  sigs: readonly { validator: Uint8Array; epoch?: bigint }[],
  k: Ed25519Key,
  e: bigint,
) => sigs.some((c) => (c.epoch ?? 0n) === e && Buffer.compare(c.validator, k.publicKey) === 0);

/**
 * A set change through the store, on any engine. `open()` gives a new connection to one
 * fresh registry whose genesis set is validators 100, 101, 102 (quorum 2).
 */
export async function checkSetChangeThroughStore(
  open: () => Promise<RegistryStore>,
): Promise<void> {
  const [a, b, c, d] = [100, 101, 102, 103].map(keyOf) as [
    Ed25519Key,
    Ed25519Key,
    Ed25519Key,
    Ed25519Key,
  ];
  const s1 = await open();
  const s2 = await open();
  try {
    const subject = keyOf(70);
    const peerId = peerIdFromEd25519(subject.publicKey);
    await s1.submit(submission(subject));
    await s1.countersign(peerId, 1n, a);
    await s1.countersign(peerId, 1n, b);

    // One validator alone cannot change the set, and nothing is written.
    const alone = nextSet(s1.chain, [a], { add: [d] });
    await assert.rejects(s1.commitSet(alone), refusedWith('REGISTRY_NO_QUORUM'));
    // Neither can an outsider with a validator.
    await assert.rejects(
      s1.commitSet(nextSet(s1.chain, [a, d], { add: [d] })),
      refusedWith('REGISTRY_UNKNOWN_SIGNER'),
    );
    assert.deepEqual(await s1.cells.readSets(), []);

    const epoch1 = nextSet(s1.chain, [a, b], { add: [d] });
    assert.deepEqual(await s1.commitSet(epoch1), { epoch: 1n, duplicate: false });
    assert.deepEqual(await s1.commitSet(epoch1), { epoch: 1n, duplicate: true });
    // The other connection learns it from the store; a competing epoch 1 is refused.
    // s2 has not read the store since it opened: it proposes on top of the genesis set.
    const rival = nextSet(s2.chain, [b, c], { remove: [a] });
    await assert.rejects(s2.commitSet(rival), refusedWith('REGISTRY_EPOCH_STALE'));
    assert.equal(s2.validators.epoch, 1n);
    assert.equal(s2.validators.members.length, 4);
    // Raw cells: another record for a committed epoch, or a gap, is refused in the transaction.
    await assert.rejects(
      s2.cells.appendSet(1n, rival, undefined),
      refusedWith('REGISTRY_EPOCH_CONFLICT'),
    );
    await assert.rejects(
      s2.cells.appendSet(3n, rival, epoch1),
      refusedWith('REGISTRY_EPOCH_STALE'),
    );

    // Countersigning: only the current epoch, only its members.
    await assert.rejects(
      s2.countersign(peerId, 1n, c, { epoch: 0n }),
      refusedWith('REGISTRY_EPOCH_STALE'),
    );
    await assert.rejects(
      s2.countersign(peerId, 1n, keyOf(104)),
      refusedWith('REGISTRY_UNKNOWN_SIGNER'),
    );
    // Re-attestation under epoch 1 (quorum 3 of 4): the epoch-0 countersignatures are kept until
    // then, and dropped once epoch 1 has its quorum.
    let rec = await s2.countersign(peerId, 1n, d);
    assert.ok(has(rec.countersignatures, a, 0n) && has(rec.countersignatures, d, 1n));
    await s2.countersign(peerId, 1n, a);
    rec = await s2.countersign(peerId, 1n, b);
    assert.deepEqual(
      rec.countersignatures.map((x) => x.epoch),
      [1n, 1n, 1n],
      'only epoch 1 is left once it has a quorum',
    );

    // Removing a: signed by a quorum of epoch 1 (3 of 4), a's own signature not needed.
    const epoch2 = nextSet(s1.chain, [b, c, d], { remove: [a] });
    assert.deepEqual(await s1.commitSet(epoch2), { epoch: 2n, duplicate: false });
    await assert.rejects(s1.countersign(peerId, 1n, a), refusedWith('REGISTRY_UNKNOWN_SIGNER'));
    // A stale proposal made on top of epoch 1 is refused.
    await assert.rejects(
      s1.commitSet(nextSet(s2.chain, [b, c, d], { remove: [b] })),
      refusedWith('REGISTRY_EPOCH_STALE'),
    );
    assert.equal((await s1.cells.readSets()).length, 2);
  } finally {
    await s1.close();
    await s2.close();
  }
}
