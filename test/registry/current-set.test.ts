/**
 * The current validator set a node follows (src/registry/current-set.ts): from the genesis set
 * and the set records it holds, in any order, with forged and conflicting ones mixed in.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Ed25519Key } from '../../src/keys/ed25519.js';
import {
  connectionTrusted,
  currentSetOf,
  followSetRecords,
  isCurrentValidator,
} from '../../src/registry/current-set.js';
import { peerIdFromEd25519 } from '../../src/registry/peer-id.js';
import { ValidatorSetChain } from '../../src/registry/validator-set.js';
import { NOW, SET, keyOf } from './fixtures.js';
import { nextSet } from './validator-set-fixtures.js';

/** Keys 100..107: 100..102 are the genesis set (SET). */
const POOL = Array.from({ length: 8 }, (_, i) => keyOf(100 + i));
const idOf = (k: Ed25519Key) => peerIdFromEd25519(k.publicKey);
const [A, B, C, D] = POOL as [Ed25519Key, Ed25519Key, Ed25519Key, Ed25519Key];

describe('registry: the current validator set', () => {
  it('is the genesis set with no set record', () => {
    const f = followSetRecords(SET, [], NOW);
    assert.equal(f.current.epoch, 0n);
    assert.deepEqual([...f.current.members].sort(), [A, B, C].map(idOf).sort());
    assert.deepEqual(f.current.added, []);
    assert.deepEqual(f.current.removed, []);
    assert.equal(f.current.quorum, 2);
  });

  it('follows an add and a remove, given in any order; trusts only current members', () => {
    const chain = new ValidatorSetChain(SET);
    const e1 = nextSet(chain, [A, B], { add: [D] });
    chain.offer(e1, NOW + 10_000);
    const e2 = nextSet(chain, [B, C, D], { remove: [A] });
    const f = followSetRecords(SET, [e2, e1, e1], NOW + 10_000);
    assert.deepEqual(f.ignored, []);
    assert.equal(f.current.epoch, 2n);
    assert.deepEqual(f.current.added, [idOf(D)]);
    assert.deepEqual(f.current.removed, [idOf(A)]);
    assert.equal(isCurrentValidator(f.current, idOf(A)), false);
    assert.equal(isCurrentValidator(f.current, idOf(D)), true);
    assert.equal(connectionTrusted(f.current, [], idOf(A)), false);
    assert.equal(connectionTrusted(f.current, [idOf(A)], idOf(A)), true, 'listed as a plain peer');
    assert.equal(connectionTrusted(f.current, [], idOf(D)), true);
  });

  it('ignores a set record that does not verify, conflicts or leaves a gap', () => {
    const chain = new ValidatorSetChain(SET);
    // Signed by one of three: no quorum.
    const weak = nextSet(chain, [A], { add: [D] });
    // Signed by keys outside the set.
    const foreign = nextSet(chain, [POOL[5]!, POOL[6]!], { add: [POOL[5]!] });
    const good = nextSet(chain, [A, B], { add: [D] });
    const corrupt = Uint8Array.from(good);
    corrupt[corrupt.length - 1]! ^= 1;
    const other = new ValidatorSetChain(SET);
    other.offer(nextSet(other, [A, C], { add: [POOL[4]!] }), NOW + 10_000);
    // Epoch 2 on top of another epoch 1: a gap when epoch 1 is missing, a conflict else.
    const onOther = nextSet(other, [A, B, C], { remove: [B] });
    const f = followSetRecords(SET, [weak, foreign, corrupt, onOther], NOW + 10_000);
    assert.equal(f.current.epoch, 0n);
    assert.deepEqual(
      f.ignored.map((i) => i.code),
      [
        'REGISTRY_NO_QUORUM',
        'REGISTRY_UNKNOWN_SIGNER',
        'REGISTRY_BAD_SIGNATURE',
        'REGISTRY_UNKNOWN_EPOCH',
      ],
    );
    const g = followSetRecords(
      SET,
      [good, onOther, [1, 2, 3]].map((b) => Uint8Array.from(b)),
      NOW + 10_000,
    );
    assert.equal(g.current.epoch, 1n);
    assert.deepEqual(g.current.added, [idOf(D)]);
    assert.deepEqual(
      g.ignored.map((i) => i.code),
      ['REGISTRY_RECORD_MALFORMED', 'REGISTRY_EPOCH_CONFLICT'],
    );
  });

  it('never trusts a member removed in a verified later epoch; forged records change nothing (fast-check)', () => {
    const change = fc.record({
      add: fc.subarray([...POOL.keys()], { maxLength: 2 }),
      remove: fc.subarray([...POOL.keys()], { maxLength: 2 }),
      /** Which signers: a quorum of the current set, or a forged set of signers. */
      forge: fc.constantFrom('none', 'minority', 'outsiders'),
    });
    let withRemoval = 0;
    fc.assert(
      fc.property(fc.array(change, { maxLength: 5 }), fc.nat(), (changes, shuffleSeed) => {
        const chain = new ValidatorSetChain(SET);
        const records: Uint8Array[] = [];
        const everRemoved = new Set<string>();
        let t = NOW;
        for (const c of changes) {
          const head = chain.head.members.map((m) =>
            POOL.find((k) => Buffer.compare(k.publicKey, m) === 0)!,
          );
          const ids = new Set(head.map(idOf));
          const add = c.add.map((i) => POOL[i]!).filter((k) => !ids.has(idOf(k)));
          const remove = c.remove.map((i) => POOL[i]!).filter((k) => ids.has(idOf(k)));
          if (remove.length >= head.length) continue;
          const quorum = chain.head.quorum;
          const signers =
            c.forge === 'none'
              ? head.slice(0, quorum)
              : c.forge === 'minority'
                ? head.slice(0, quorum - 1)
                : POOL.filter((k) => !ids.has(idOf(k))).slice(0, quorum);
          t += 1000;
          let bytes: Uint8Array;
          try {
            bytes = nextSet(chain, signers, { add, remove, issuedAtMs: t });
          } catch {
            continue; // e.g. an empty change of a full pool: not a set record
          }
          records.push(bytes);
          if (c.forge !== 'none' || signers.length === 0) continue;
          chain.offer(bytes, t);
          for (const k of remove) everRemoved.add(idOf(k));
          for (const k of add) everRemoved.delete(idOf(k));
        }
        // Any order, with every record twice.
        const all = [...records, ...records];
        let s = shuffleSeed;
        for (let i = all.length - 1; i > 0; i--) {
          s = (s * 1103515245 + 12345) % 2 ** 31;
          const j = s % (i + 1);
          [all[i], all[j]] = [all[j]!, all[i]!];
        }
        const f = followSetRecords(SET, all, t);
        const want = currentSetOf(chain);
        assert.equal(f.current.epoch, want.epoch);
        assert.deepEqual(f.current.members, want.members);
        if (everRemoved.size > 0) withRemoval++;
        for (const id of everRemoved) {
          assert.equal(isCurrentValidator(f.current, id), false, `${id} was removed`);
          assert.equal(connectionTrusted(f.current, [], id), false);
        }
        for (const id of f.current.removed) assert.ok(!f.current.members.includes(id));
        // Every member is trusted; only genuinely verified records were taken.
        for (const id of f.current.members) assert.ok(connectionTrusted(f.current, [], id));
      }),
      { numRuns: 40 },
    );
    assert.ok(withRemoval >= 5, `only ${withRemoval} of 40 runs removed a member`);
  });
});
