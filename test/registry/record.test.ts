/** The registry record (src/registry/record.ts): peer ids, layout, signatures, verify order. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Ed25519Key } from '../../src/keys/ed25519.js';
import {
  ed25519FromPeerId,
  ed25519PublicKeyProtobuf,
  peerIdFromEd25519,
} from '../../src/registry/peer-id.js';
import {
  LIMITS,
  RegistryError,
  checkMultiaddr,
  countersign,
  countersignMessage,
  decodeContent,
  decodeRecord,
  decodeSubmission,
  encodeContent,
  encodeRecord,
  signFlagsGrant,
  signSubmission,
  subjectMessage,
  validatorSet,
  verifyFlagsGrant,
  verifyRecord,
  verifySubmission,
  withCommit,
  type RegistryErrorCode,
} from '../../src/registry/record.js';
import { NOW, content, keyOf, setOf, signedRecord, submission, validatorKeys } from './fixtures.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));

function refusedWith(code: RegistryErrorCode) {
  return (err: unknown) => {
    assert.ok(err instanceof RegistryError, `expected RegistryError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

describe('libp2p peer ids of Ed25519 keys', () => {
  it('matches the libp2p specs vector tls/tls.md #1 (key a77f…11b9 is 12D3KooWM6Cg…4Ksv)', () => {
    // libp2p/specs tls/tls.md "Test vectors" 1: the certificate's extension carries the
    // protobuf PublicKey 08011220a77f…11b9 and the peer id below.
    const key = hex('a77f1d92fedb59dddaea5a1c4abd1ac2fbde7d7b879ed364501809923d7c11b9');
    assert.equal(peerIdFromEd25519(key), '12D3KooWM6CgA9iBFZmcYAHA6A2qvbAxqfkmrYiRQuz3XEsk4Ksv');
    assert.deepEqual(
      ed25519FromPeerId('12D3KooWM6CgA9iBFZmcYAHA6A2qvbAxqfkmrYiRQuz3XEsk4Ksv'),
      key,
    );
  });

  it('encodes the public key protobuf as libp2p specs peer-ids/peer-ids.md "Test vectors"', () => {
    // The spec's ED25519 private key is the protobuf of seed ‖ public key; its public key
    // protobuf is 080112201ed1…e27e.
    const key = Ed25519Key.fromSeed(
      hex('7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d'),
    );
    assert.equal(
      Buffer.from(ed25519PublicKeyProtobuf(key.publicKey)).toString('hex'),
      '080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e',
    );
  });

  it("round-trips the spec's example Ed25519 peer id and refuses non-Ed25519 ones", () => {
    const id = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA';
    assert.equal(peerIdFromEd25519(ed25519FromPeerId(id)), id);
    // peer-ids.md: a sha256 (RSA) peer id, and tls.md #3: a secp256k1 one.
    for (const other of [
      'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N',
      '16Uiu2HAkutTMoTzDw1tCvSRtu6YoixJwS46S1ZFxW8hSx9fWHiPs',
      '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5S',
      'not base58 0OIl',
    ])
      assert.throws(() => ed25519FromPeerId(other), { code: 'INVALID_INPUT' });
  });
});

describe('record layout', () => {
  const subject = keyOf(1);

  it('round-trips content, submissions and records byte for byte', () => {
    const c = content(subject, { prevSeq: 41n, flags: 0xffffffff });
    const bytes = encodeContent(c);
    assert.deepEqual(decodeContent(bytes), c);
    const sub = submission(subject, { prevSeq: 41n });
    assert.deepEqual(
      decodeSubmission(sub).contentBytes,
      encodeContent(content(subject, { prevSeq: 41n })),
    );
    const { record, bytes: rec } = signedRecord(subject, validatorKeys(3), { prevSeq: 41n });
    const back = decodeRecord(rec);
    assert.equal(back.seq, 42n);
    assert.equal(back.peerId, peerIdFromEd25519(subject.publicKey));
    assert.deepEqual(encodeRecord(back), rec);
    assert.deepEqual(back.countersignatures, record.countersignatures);
  });

  it('a record is committed only at prevSeq + 1', () => {
    const s = signSubmission(content(subject, { prevSeq: 3n }), subject);
    assert.throws(() => withCommit(s, 3n), refusedWith('REGISTRY_SEQ_CONFLICT'));
    assert.throws(() => withCommit(s, 5n), refusedWith('REGISTRY_SEQ_CONFLICT'));
    assert.equal(withCommit(s, 4n).seq, 4n);
  });

  it('refuses trailing bytes, a wrong seq, unsorted or repeated countersignatures', () => {
    const { bytes } = signedRecord(subject, validatorKeys(3));
    assert.throws(
      () => decodeRecord(new Uint8Array([...bytes, 0])),
      refusedWith('REGISTRY_RECORD_MALFORMED'),
    );
    assert.throws(
      () => decodeRecord(bytes.subarray(0, -1)),
      refusedWith('REGISTRY_RECORD_MALFORMED'),
    );
    const b = Buffer.from(bytes);
    const seqAt = 3 + b.readUInt16BE(1) + 64;
    const wrongSeq = Buffer.from(b);
    wrongSeq.writeBigUInt64BE(7n, seqAt);
    assert.throws(() => decodeRecord(wrongSeq), refusedWith('REGISTRY_RECORD_MALFORMED'));
    // Swap the first two countersignatures (96 bytes each): out of order.
    const csAt = seqAt + 9;
    const swapped = Buffer.concat([
      b.subarray(0, csAt),
      b.subarray(csAt + 96, csAt + 192),
      b.subarray(csAt, csAt + 96),
      b.subarray(csAt + 192),
    ]);
    assert.throws(() => decodeRecord(swapped), refusedWith('REGISTRY_RECORD_MALFORMED'));
    // The first countersignature twice (count 2).
    const twice = Buffer.concat([
      b.subarray(0, csAt - 1),
      Buffer.of(2),
      b.subarray(csAt, csAt + 96),
      b.subarray(csAt, csAt + 96),
    ]);
    assert.throws(() => decodeRecord(twice), refusedWith('REGISTRY_RECORD_MALFORMED'));
  });

  it('refuses non-canonical content: unsorted or repeated capabilities, repeated addresses, bad fields', () => {
    const good = encodeContent(content(subject, { capabilities: ['a', 'b'] }));
    // Swap "a" and "b" in the encoded bytes: same lengths, now unsorted.
    const i = Buffer.from(good).indexOf(Buffer.from([1, 0x61, 1, 0x62]));
    assert.ok(i > 0);
    const unsorted = Buffer.from(good);
    unsorted[i + 1] = 0x62;
    unsorted[i + 3] = 0x61;
    assert.throws(() => decodeContent(unsorted), refusedWith('REGISTRY_RECORD_MALFORMED'));
    for (const over of [
      { capabilities: ['b', 'a'] },
      { capabilities: ['a', 'a'] },
      { addresses: ['/ip4/1.2.3.4/tcp/1', '/ip4/1.2.3.4/tcp/1'] },
      { role: 'Worker' },
      { role: '' },
      { role: 'r'.repeat(LIMITS.roleBytes + 1) },
      { flags: 2 ** 32 },
      { expiresAtMs: NOW },
      { expiresAtMs: NOW + LIMITS.lifetimeMs + 1 },
      {
        addresses: Array.from({ length: LIMITS.addresses + 1 }, (_, k) => `/ip4/10.0.0.${k}/tcp/1`),
      },
      {
        capabilities: Array.from(
          { length: LIMITS.capabilities + 1 },
          (_, k) => `c${String(k).padStart(2, '0')}`,
        ),
      },
    ])
      assert.throws(
        () => encodeContent(content(subject, over)),
        refusedWith('REGISTRY_INVALID_FIELD'),
      );
  });

  it('checks multiaddr shapes, and that a trailing /p2p/ names the subject', () => {
    const me = peerIdFromEd25519(subject.publicKey);
    const other = peerIdFromEd25519(keyOf(2).publicKey);
    for (const ok of [
      '/ip4/127.0.0.1/tcp/4001',
      '/ip6/::1/udp/4001/quic-v1',
      '/dns4/node.example.org/tcp/443/wss',
      `/ip4/10.0.0.1/tcp/4001/p2p/${me}`,
      `/ip4/10.0.0.1/tcp/4001/p2p/${other}/p2p-circuit`,
      `/ip4/10.0.0.1/tcp/4001/p2p/${other}/p2p-circuit/p2p/${me}`,
    ])
      checkMultiaddr(ok, me);
    for (const bad of [
      '',
      'ip4/127.0.0.1/tcp/1',
      '/ip4/256.0.0.1/tcp/1',
      '/ip4/01.0.0.1/tcp/1',
      '/ip4/127.0.0.1/tcp/65536',
      '/ip4/127.0.0.1/tcp/007',
      '/ip4/127.0.0.1/tcp',
      '/tcp/4001',
      '/ip4/127.0.0.1/smtp/25',
      '/ip6/fe80::1%eth0/tcp/1',
      `/ip4/10.0.0.1/tcp/4001/p2p/${other}`,
      '/dns4/' + 'a'.repeat(300) + '/tcp/1',
      '/ip4/127.0.0.1/tcp/1/',
    ])
      assert.throws(() => checkMultiaddr(bad, me), refusedWith('REGISTRY_INVALID_FIELD'), bad);
  });

  it('makes the default quorum a majority, and refuses a quorum outside 1..n', () => {
    for (let n = 1; n <= 7; n++)
      assert.equal(setOf(validatorKeys(n)).quorum, Math.floor(n / 2) + 1);
    assert.equal(setOf(validatorKeys(5), 5).quorum, 5);
    for (const q of [0, 6, 2.5])
      assert.throws(() => setOf(validatorKeys(5), q), refusedWith('REGISTRY_INVALID_FIELD'));
    assert.throws(() => validatorSet([]), refusedWith('REGISTRY_INVALID_FIELD'));
    const k = keyOf(9).publicKey;
    assert.throws(() => validatorSet([k, k]), refusedWith('REGISTRY_INVALID_FIELD'));
  });

  it("refuses to sign another subject's content", () => {
    assert.throws(
      () => signSubmission(content(keyOf(1)), keyOf(2)),
      refusedWith('REGISTRY_INVALID_FIELD'),
    );
  });
});

describe('signatures and domain separation', () => {
  const subject = keyOf(1);
  const vals = validatorKeys(3);
  const set = setOf(vals);

  it('verifies a record countersigned by a quorum', () => {
    const { bytes } = signedRecord(subject, vals.slice(0, 2));
    const rec = verifyRecord(bytes, { validators: set, nowMs: NOW });
    assert.equal(rec.seq, 1n);
  });

  it('signs with the domain prefixes: a bare-content or cross-domain signature does not verify', () => {
    const s = signSubmission(content(subject), subject);
    assert.ok(
      Buffer.from(subjectMessage(s.contentBytes))
        .subarray(0, 25)
        .equals(Buffer.from('vigil/registry/record/v1\0')),
    );
    // The subject's signature over the content without the prefix: refused.
    const bare = { ...s, subjectSignature: subject.sign(s.contentBytes) };
    assert.throws(
      () => verifySubmission(encodeSubmissionOf(bare), { nowMs: NOW }),
      refusedWith('REGISTRY_BAD_SIGNATURE'),
    );
    // A validator's signature in the subject's domain is not a countersignature.
    const rec = withCommit(s, 1n);
    const cross = withCommit(
      s,
      1n,
      vals.slice(0, 2).map((v) => ({
        validator: v.publicKey,
        signature: v.sign(subjectMessage(s.contentBytes)),
      })),
    );
    assert.throws(
      () => verifyRecord(encodeRecord(cross), { validators: set, nowMs: NOW }),
      refusedWith('REGISTRY_BAD_SIGNATURE'),
    );
    // A countersignature binds the seq: one made for seq 2 does not count at seq 1.
    const otherSeq = withCommit(
      s,
      1n,
      vals.slice(0, 2).map((v) => ({
        validator: v.publicKey,
        signature: v.sign(countersignMessage(s.contentBytes, 2n)),
      })),
    );
    assert.throws(
      () => verifyRecord(encodeRecord(otherSeq), { validators: set, nowMs: NOW }),
      refusedWith('REGISTRY_BAD_SIGNATURE'),
    );
    assert.equal(countersign(rec, vals[0]!).signature.length, 64);
  });

  it("any mutation of a signed record's bytes fails verification (property)", () => {
    const { bytes } = signedRecord(subject, vals);
    verifyRecord(bytes, { validators: set, nowMs: NOW });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.record({
            kind: fc.constant('flip' as const),
            at: fc.nat({ max: bytes.length - 1 }),
            xor: fc.integer({ min: 1, max: 255 }),
          }),
          fc.record({ kind: fc.constant('cut' as const), at: fc.nat({ max: bytes.length - 1 }) }),
          fc.record({
            kind: fc.constant('add' as const),
            at: fc.nat({ max: bytes.length }),
            byte: fc.nat({ max: 255 }),
          }),
        ),
        (m) => {
          const b = Buffer.from(bytes);
          const mutated =
            m.kind === 'flip'
              ? ((b[m.at]! ^= m.xor), b)
              : m.kind === 'cut'
                ? Buffer.concat([b.subarray(0, m.at), b.subarray(m.at + 1)])
                : Buffer.concat([b.subarray(0, m.at), Buffer.of(m.byte), b.subarray(m.at)]);
          assert.throws(
            () => verifyRecord(mutated, { validators: set, nowMs: NOW }),
            RegistryError,
          );
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('a quorum minus one never verifies; a quorum does (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }).chain((n) =>
          fc.record({
            n: fc.constant(n),
            quorum: fc.option(fc.integer({ min: 1, max: n }), { nil: undefined }),
            order: fc.shuffledSubarray(
              Array.from({ length: n }, (_, i) => i),
              { minLength: n, maxLength: n },
            ),
          }),
        ),
        ({ n, quorum, order }) => {
          const keys = validatorKeys(n);
          const vs = setOf(keys, quorum);
          const chosen = order.map((i) => keys[i]!);
          const short = signedRecord(subject, chosen.slice(0, vs.quorum - 1));
          assert.throws(
            () => verifyRecord(short.bytes, { validators: vs, nowMs: NOW }),
            refusedWith('REGISTRY_NO_QUORUM'),
          );
          const enough = signedRecord(subject, chosen.slice(0, vs.quorum));
          verifyRecord(enough.bytes, { validators: vs, nowMs: NOW });
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('verify order: size, signatures, signer in the set, quorum, expiry, sequence', () => {
  const subject = keyOf(1);
  const vals = validatorKeys(3);
  const set = setOf(vals);
  const outsider = keyOf(77);
  const opts = (o: { nowMs?: number; lastSeq?: bigint } = {}) => ({
    validators: set,
    nowMs: NOW,
    ...o,
  });
  const expiredNow = NOW + 3_600_000;

  it('size comes first', () => {
    const big = new Uint8Array(LIMITS.envelopeBytes + 1);
    assert.throws(() => verifyRecord(big, opts()), refusedWith('REGISTRY_RECORD_TOO_LARGE'));
    assert.throws(
      () => verifySubmission(big, { nowMs: NOW }),
      refusedWith('REGISTRY_RECORD_TOO_LARGE'),
    );
  });

  it('a bad signature is reported before an unknown signer, a missing quorum, expiry or staleness', () => {
    const { bytes } = signedRecord(subject, [outsider]);
    const b = Buffer.from(bytes);
    b[b.length - 1]! ^= 1; // the outsider's countersignature
    assert.throws(
      () => verifyRecord(b, opts({ nowMs: expiredNow, lastSeq: 5n })),
      refusedWith('REGISTRY_BAD_SIGNATURE'),
    );
  });

  it('an unknown signer before the quorum, expiry and staleness', () => {
    const { bytes } = signedRecord(subject, [...vals, outsider]);
    assert.throws(
      () => verifyRecord(bytes, opts({ nowMs: expiredNow, lastSeq: 5n })),
      refusedWith('REGISTRY_UNKNOWN_SIGNER'),
    );
  });

  it('the quorum before expiry and staleness', () => {
    const { bytes } = signedRecord(subject, vals.slice(0, 1));
    assert.throws(
      () => verifyRecord(bytes, opts({ nowMs: expiredNow, lastSeq: 5n })),
      refusedWith('REGISTRY_NO_QUORUM'),
    );
  });

  it('expiry before staleness; a record issued in the future is not yet valid', () => {
    const { bytes } = signedRecord(subject, vals);
    assert.throws(
      () => verifyRecord(bytes, opts({ nowMs: expiredNow, lastSeq: 5n })),
      refusedWith('REGISTRY_RECORD_EXPIRED'),
    );
    assert.throws(
      () => verifyRecord(bytes, opts({ nowMs: NOW - 10 * 60_000 })),
      refusedWith('REGISTRY_RECORD_NOT_YET_VALID'),
    );
    verifyRecord(bytes, opts({ nowMs: expiredNow - 1 }));
  });

  it('sequence last: a seq at or below the accepted one is stale', () => {
    const { bytes } = signedRecord(subject, vals, { prevSeq: 4n });
    assert.throws(
      () => verifyRecord(bytes, opts({ lastSeq: 5n })),
      refusedWith('REGISTRY_SEQ_STALE'),
    );
    assert.throws(
      () => verifyRecord(bytes, opts({ lastSeq: 6n })),
      refusedWith('REGISTRY_SEQ_STALE'),
    );
    assert.equal(verifyRecord(bytes, opts({ lastSeq: 4n })).seq, 5n);
  });
});

describe('flags grants', () => {
  const subject = keyOf(1);
  const vals = validatorKeys(3);
  const set = setOf(vals);

  it('needs a quorum of distinct validators: one compromised key is not enough, even twice', () => {
    const one = signFlagsGrant(subject.publicKey, 1n, 3, vals[0]!);
    const grant = (signatures: (typeof one)[]) => ({
      subjectKey: subject.publicKey,
      baseSeq: 1n,
      flags: 3,
      signatures,
    });
    assert.throws(() => verifyFlagsGrant(grant([one]), set), refusedWith('REGISTRY_NO_QUORUM'));
    assert.throws(
      () => verifyFlagsGrant(grant([one, one]), set),
      refusedWith('REGISTRY_NO_QUORUM'),
    );
    verifyFlagsGrant(grant([one, signFlagsGrant(subject.publicKey, 1n, 3, vals[1]!)]), set);
    // A signature for other flags, or from outside the set, does not count.
    assert.throws(
      () => verifyFlagsGrant(grant([one, signFlagsGrant(subject.publicKey, 1n, 7, vals[1]!)]), set),
      refusedWith('REGISTRY_BAD_SIGNATURE'),
    );
    assert.throws(
      () =>
        verifyFlagsGrant(grant([one, signFlagsGrant(subject.publicKey, 1n, 3, keyOf(77))]), set),
      refusedWith('REGISTRY_UNKNOWN_SIGNER'),
    );
  });

  it('a record carries the grant that changed its flags: bound to its version, verified with it', () => {
    const signed = (flags: number, signers: Ed25519Key[]) => ({
      subjectKey: subject.publicKey,
      baseSeq: 1n,
      flags,
      // Given unsorted and with a repeat: encoded canonically (sorted, one per validator).
      signatures: [...signers, signers[0]!]
        .reverse()
        .map((v) => signFlagsGrant(subject.publicKey, 1n, flags, v)),
    });
    const { record, bytes: plain } = signedRecord(subject, vals.slice(0, 2), {
      prevSeq: 1n,
      flags: 3,
    });
    const carried = encodeRecord({ ...record, flagsGrant: signed(3, vals.slice(0, 2)) });
    assert.equal(Buffer.compare(carried.subarray(0, plain.length), plain), 0, 'a trailer');
    const back = decodeRecord(carried);
    assert.equal(back.flagsGrant?.flags, 3);
    assert.equal(back.flagsGrant?.signatures.length, 2);
    assert.equal(Buffer.compare(encodeRecord(back), carried), 0, 'canonical');
    assert.equal(verifyRecord(carried, { validators: set, nowMs: NOW }).seq, 2n);
    // A grant for other flags is not this version's.
    assert.throws(
      () => encodeRecord({ ...record, flagsGrant: signed(7, vals.slice(0, 2)) }),
      refusedWith('REGISTRY_INVALID_FIELD'),
    );
    const b = Buffer.from(carried);
    b.writeUInt32BE(7, plain.length + 1 + 32 + 8);
    assert.throws(() => decodeRecord(b), refusedWith('REGISTRY_RECORD_MALFORMED'));
    // A carried grant below quorum fails verification of the whole record.
    const weak = encodeRecord({ ...record, flagsGrant: signed(3, vals.slice(0, 1)) });
    assert.throws(
      () => verifyRecord(weak, { validators: set, nowMs: NOW }),
      refusedWith('REGISTRY_NO_QUORUM'),
    );
  });
});

function encodeSubmissionOf(s: {
  contentBytes: Uint8Array;
  subjectSignature: Uint8Array;
}): Uint8Array {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(s.contentBytes.length);
  return new Uint8Array(Buffer.concat([Buffer.of(1), len, s.contentBytes, s.subjectSignature]));
}
