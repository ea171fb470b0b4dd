/**
 * The record envelope limit is derived from the worst case the layouts allow (record.ts,
 * LIMITS.envelopeBytes): content at every field limit, 32 validators × two epochs of
 * countersignatures, a flags grant signed by 32 validators. That record is built for real,
 * signed, encoded and verified; it is exactly the limit, and one byte more is refused before
 * anything is decoded.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  LIMITS,
  countersign,
  decodeRecord,
  encodeRecord,
  signFlagsGrant,
  signSubmission,
  verifyRecordAt,
  withCommit,
  type RecordContent,
} from '../../src/registry/record.js';
import { NOW, keyOf, setOf } from './fixtures.js';
import { refusedWith } from './store-suite.js';

const VALIDATORS = Array.from({ length: LIMITS.validators }, (_, i) => keyOf(100 + i));

/** `/dns4/<host>/tcp/<port>` of exactly `LIMITS.addressBytes` characters. */
function longAddress(i: number): string {
  const port = String(40001 + i);
  const hostLen = LIMITS.addressBytes - '/dns4/'.length - '/tcp/'.length - port.length;
  const labels: string[] = [];
  let left = hostLen;
  for (; left > 61; left -= 61) labels.push(String.fromCharCode(97 + labels.length).repeat(60));
  labels.push('z'.repeat(left));
  const addr = `/dns4/${labels.join('.')}/tcp/${port}`;
  assert.equal(addr.length, LIMITS.addressBytes);
  return addr;
}

function worstCase(): Uint8Array {
  const subject = keyOf(7);
  const content: RecordContent = {
    subjectKey: subject.publicKey,
    prevSeq: 41n,
    issuedAtMs: NOW,
    expiresAtMs: NOW + LIMITS.lifetimeMs,
    flags: 0xffffffff,
    role: 'r'.repeat(LIMITS.roleBytes),
    capabilities: Array.from(
      { length: LIMITS.capabilities },
      (_, i) => `c${String(i).padStart(2, '0')}${'x'.repeat(LIMITS.capabilityBytes - 3)}`,
    ),
    addresses: Array.from({ length: LIMITS.addresses }, (_, i) => longAddress(i)),
  };
  const bare = withCommit(signSubmission(content, subject), 42n);
  const countersignatures = [1n, 2n].flatMap((epoch) =>
    VALIDATORS.map((k) => countersign(bare, k, epoch)),
  );
  assert.equal(countersignatures.length, LIMITS.countersignatures);
  return encodeRecord({
    ...withCommit(bare, 42n, countersignatures),
    flagsGrant: {
      subjectKey: subject.publicKey,
      baseSeq: content.prevSeq,
      flags: content.flags,
      signatures: VALIDATORS.map((k) => signFlagsGrant(subject.publicKey, 41n, content.flags, k)),
    },
  });
}

describe('registry: the envelope limit', () => {
  it('is the worst case: it fits and verifies; one byte more is refused', () => {
    const bytes = worstCase();
    assert.equal(bytes.length, LIMITS.envelopeBytes);
    assert.ok(LIMITS.envelopeBytes > 8192, 'the old fixed limit did not hold it');
    const set = setOf(VALIDATORS);
    const at = NOW + 1000;
    const { record, epoch } = verifyRecordAt(bytes, {
      validators: {
        current: { ...set, epoch: 2n, issuedAtMs: NOW },
        previous: { ...set, epoch: 1n, issuedAtMs: NOW - 1000 },
        known: [set],
      },
      nowMs: at,
    });
    assert.equal(epoch, 2n);
    assert.equal(record.countersignatures.length, 64);
    assert.equal(decodeRecord(bytes).flagsGrant?.signatures.length, 32);

    const over = new Uint8Array(bytes.length + 1);
    over.set(bytes);
    assert.throws(() => decodeRecord(over), refusedWith('REGISTRY_RECORD_TOO_LARGE'));
  });
});
