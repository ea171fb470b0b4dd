import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  decodePrivvalHex,
  decodePrivvalMessage,
  emptyProposal,
  emptyVote,
  encodePrivvalFrame,
  encodePrivvalMessage,
  signBytesOfProposal,
  signBytesOfVote,
  takeDelimited,
  type PrivvalMessage,
  type PrivvalProtocol,
  type Proposal,
  type Vote,
} from '../../../src/protocols/cometbft/privval.js';
import { parseSignBytes, parseTimestamp } from '../../../src/protocols/cometbft/sign-bytes.js';
import { ProtoError } from '../../../src/protocols/cometbft/proto.js';
import { Ed25519Key } from '../../../src/keys/ed25519.js';
import { vectorsDir } from '../../helpers/paths.js';

const file = JSON.parse(
  readFileSync(join(vectorsDir(), 'cometbft', 'privval-v0.38-messages.json'), 'utf8'),
) as { key: { public_key_hex: string }; cases: Array<{ name: string; hex: string }> };

const sha = (s: string) => new Uint8Array(createHash('sha256').update(s).digest());
const ascii = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const timestamp = parseTimestamp('2019-10-13T16:14:44Z');
const blockId = {
  hash: sha('blockID_hash'),
  partSetHeader: { total: 1_000_000, hash: sha('blockID_part_set_header_hash') },
};
const exampleVote: Vote = {
  ...emptyVote(),
  type: 2,
  height: 3n,
  round: 2n,
  blockId,
  timestamp,
  validatorAddress: sha('validator_address').subarray(0, 20),
  validatorIndex: 56789,
  extension: ascii('extension'),
};
const exampleProposal: Proposal = {
  type: 1,
  height: 3n,
  round: 2n,
  polRound: 2n,
  blockId,
  timestamp,
  signature: ascii("it's a signature"),
};
const remoteError = { code: 1, description: "it's a error" };
const key = Ed25519Key.fromSeed(sha("it's a secret"));

const expected: Record<string, PrivvalMessage> = {
  'ping request': { kind: 'pingRequest' },
  'ping response': { kind: 'pingResponse' },
  'pubkey request (empty chain_id)': { kind: 'pubKeyRequest', chainId: '' },
  'pubkey response': {
    kind: 'pubKeyResponse',
    pubKey: { type: 'ed25519', bytes: key.publicKey },
  },
  'pubkey response with error (empty key)': { kind: 'pubKeyResponse', error: remoteError },
  'sign vote request (example vote, no chain_id)': {
    kind: 'signVoteRequest',
    vote: exampleVote,
    chainId: '',
  },
  'signed vote response (example vote)': { kind: 'signedVoteResponse', vote: exampleVote },
  'signed vote response with error (zero vote)': {
    kind: 'signedVoteResponse',
    vote: emptyVote(),
    error: remoteError,
  },
  'sign proposal request (example proposal)': {
    kind: 'signProposalRequest',
    proposal: exampleProposal,
    chainId: '',
  },
  'signed proposal response (example proposal)': {
    kind: 'signedProposalResponse',
    proposal: exampleProposal,
  },
  'signed proposal response with error (zero proposal)': {
    kind: 'signedProposalResponse',
    proposal: emptyProposal(),
    error: remoteError,
  },
};

test('the vector key is the one the seed describes', () => {
  assert.equal(key.publicKeyHex, file.key.public_key_hex);
});

test('v0.38: every shared vector encodes byte-exactly and decodes back', () => {
  assert.equal(file.cases.length, Object.keys(expected).length);
  for (const c of file.cases) {
    const m = expected[c.name];
    assert.ok(m, `no expectation for vector ${c.name}`);
    assert.equal(hex(encodePrivvalMessage(m, 'v0.38')), c.hex, c.name);
    assert.deepEqual(decodePrivvalMessage(Buffer.from(c.hex, 'hex'), 'v0.38'), m, c.name);
    const framed = encodePrivvalFrame(m, 'v0.38');
    const taken = takeDelimited(framed);
    assert.ok(taken);
    assert.equal(taken.consumed, framed.length);
    assert.equal(hex(taken.message), c.hex);
  }
});

test('decodePrivvalHex accepts hex with and without the length prefix', () => {
  for (const c of file.cases) {
    const bare = decodePrivvalHex(c.hex, 'v0.38');
    assert.equal(bare.lengthPrefixed, false);
    const framed = decodePrivvalHex(hex(encodePrivvalFrame(bare.message, 'v0.38')), 'v0.38');
    assert.equal(framed.lengthPrefixed, true);
    assert.deepEqual(framed.message, bare.message);
  }
  assert.throws(() => decodePrivvalHex('zz', 'v0.38'), ProtoError);
});

test('sign bytes of the example vote and proposal parse to their contents', () => {
  const v = parseSignBytes(signBytesOfVote(exampleVote, 'test_chain_id'));
  assert.equal(v.kind, 'vote');
  assert.equal(v.height, 3n);
  assert.equal(v.round, 2n);
  assert.equal(v.blockIdNil, false);
  assert.equal(v.chainId, 'test_chain_id');
  const p = parseSignBytes(signBytesOfProposal(exampleProposal, 'test_chain_id'));
  assert.equal(p.kind, 'proposal');
  assert.equal(p.polRound, 2n);
});

// ---- v1: round trips from the proto definitions (cometbft/privval/v1/types.proto) ----

const bytesArb = (max: number) => fc.uint8Array({ maxLength: max });
const tsArb = fc.record({
  seconds: fc.bigInt({ min: -62135596800n, max: 253402300799n }),
  nanos: fc.integer({ min: 0, max: 999_999_999 }),
});
const blockIdArb = fc.record({
  hash: bytesArb(32),
  partSetHeader: fc.record({ total: fc.integer({ min: 0, max: 0xffffffff }), hash: bytesArb(32) }),
});
const int32Arb = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const voteArb = (protocol: PrivvalProtocol): fc.Arbitrary<Vote> =>
  fc.record({
    type: fc.constantFrom(0, 1, 2, 32),
    height: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
    round: int32Arb.map(BigInt),
    blockId: blockIdArb,
    timestamp: tsArb,
    validatorAddress: bytesArb(20),
    validatorIndex: int32Arb,
    signature: bytesArb(64),
    extension: bytesArb(40),
    extensionSignature: bytesArb(64),
    ...(protocol === 'v1'
      ? {
          nonRpExtension: fc.uint8Array({ minLength: 1, maxLength: 8 }),
          nonRpExtensionSignature: fc.uint8Array({ minLength: 1, maxLength: 64 }),
        }
      : {}),
  }) as fc.Arbitrary<Vote>;
const proposalArb: fc.Arbitrary<Proposal> = fc.record({
  type: fc.constantFrom(0, 32),
  height: fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }),
  round: int32Arb.map(BigInt),
  polRound: int32Arb.map(BigInt),
  blockId: blockIdArb,
  timestamp: tsArb,
  signature: bytesArb(64),
});
const errArb = fc.option(fc.record({ code: int32Arb, description: fc.string({ maxLength: 30 }) }), {
  nil: undefined,
});
const opt = <T extends object>(k: string, v: T | undefined) => (v === undefined ? {} : { [k]: v });

function messageArb(protocol: PrivvalProtocol): fc.Arbitrary<PrivvalMessage> {
  const all: Array<fc.Arbitrary<PrivvalMessage>> = [
    fc.string({ maxLength: 20 }).map((chainId) => ({ kind: 'pubKeyRequest', chainId })),
    fc
      .tuple(
        fc.option(
          bytesArb(48).filter((b) => b.length > 0),
          { nil: undefined },
        ),
        errArb,
      )
      .map(([b, error]) => ({
        kind: 'pubKeyResponse',
        ...opt('pubKey', b && { type: 'ed25519', bytes: b }),
        ...opt('error', error),
      })),
    fc
      .tuple(
        fc.option(voteArb(protocol), { nil: undefined }),
        fc.string({ maxLength: 20 }),
        fc.boolean(),
      )
      .map(([vote, chainId, skip]) => ({
        kind: 'signVoteRequest',
        ...opt('vote', vote),
        chainId,
        ...(protocol === 'v1' && skip ? { skipExtensionSigning: true } : {}),
      })),
    fc.tuple(voteArb(protocol), errArb).map(([vote, error]) => ({
      kind: 'signedVoteResponse',
      vote,
      ...opt('error', error),
    })),
    fc
      .tuple(fc.option(proposalArb, { nil: undefined }), fc.string({ maxLength: 20 }))
      .map(([proposal, chainId]) => ({
        kind: 'signProposalRequest',
        ...opt('proposal', proposal),
        chainId,
      })),
    fc.tuple(proposalArb, errArb).map(([proposal, error]) => ({
      kind: 'signedProposalResponse',
      proposal,
      ...opt('error', error),
    })),
    fc.constant({ kind: 'pingRequest' }),
    fc.constant({ kind: 'pingResponse' }),
  ];
  if (protocol === 'v1') {
    all.push(bytesArb(40).map((value) => ({ kind: 'signBytesRequest', value })));
    all.push(
      fc.tuple(bytesArb(64), errArb).map(([signature, error]) => ({
        kind: 'signBytesResponse',
        signature,
        ...opt('error', error),
      })),
    );
  }
  return fc.oneof(...all);
}

const normalise = (m: PrivvalMessage) =>
  JSON.parse(
    JSON.stringify(m, (_k, v) =>
      typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? hex(v) : v,
    ),
  );

for (const protocol of ['v0.38', 'v1'] as const) {
  test(`${protocol}: property: every message round-trips and re-encodes to the same bytes`, () => {
    fc.assert(
      fc.property(messageArb(protocol), (m) => {
        const bytes = encodePrivvalMessage(m, protocol);
        const back = decodePrivvalMessage(bytes, protocol);
        assert.deepEqual(normalise(back), normalise(m));
        assert.equal(hex(encodePrivvalMessage(back, protocol)), hex(bytes));
      }),
      { numRuns: 400 },
    );
  });

  test(`${protocol}: property: truncated or extended messages are refused, never half-read`, () => {
    fc.assert(
      fc.property(messageArb(protocol), fc.nat(), (m, cut) => {
        const bytes = encodePrivvalMessage(m, protocol);
        const at = cut % bytes.length;
        let threw = false;
        try {
          decodePrivvalMessage(bytes.subarray(0, at), protocol);
        } catch (err) {
          threw = true;
          assert.ok(err instanceof ProtoError);
        }
        assert.ok(threw, `decoded a truncation at ${at} of ${hex(bytes)}`);
        assert.throws(
          () => decodePrivvalMessage(Buffer.concat([bytes, Buffer.from([0x3a, 0x00])]), protocol),
          ProtoError,
        );
      }),
      { numRuns: 200 },
    );
  });
}

test('v1 PubKeyResponse carries pub_key_bytes (3) and pub_key_type (4), field 1 is reserved', () => {
  const m: PrivvalMessage = {
    kind: 'pubKeyResponse',
    pubKey: { type: 'ed25519', bytes: key.publicKey },
  };
  const bytes = encodePrivvalMessage(m, 'v1');
  assert.equal(hex(bytes), '122b' + '1a20' + key.publicKeyHex + '2207' + hex(ascii('ed25519')));
  // The v0.38 form is not valid v1.
  const v038 = Buffer.from(file.cases.find((c) => c.name === 'pubkey response')!.hex, 'hex');
  assert.throws(() => decodePrivvalMessage(v038, 'v1'), /unknown field 1/);
});

test('v1 SignVoteRequest.skip_extension_signing is field 3; v0.38 refuses it', () => {
  const bytes = encodePrivvalMessage(
    { kind: 'signVoteRequest', chainId: 'c', skipExtensionSigning: true },
    'v1',
  );
  assert.equal(hex(bytes), '1a05' + '120163' + '1801');
  assert.throws(() => decodePrivvalMessage(bytes, 'v0.38'), /unknown field 3/);
});

test('strict decoding: empty, unknown member, two members, duplicated field, bad bool', () => {
  assert.throws(() => decodePrivvalMessage(new Uint8Array(), 'v0.38'), /empty/);
  assert.throws(() => decodePrivvalMessage(Buffer.from('4a00', 'hex'), 'v0.38'), /not part/);
  assert.throws(
    () => decodePrivvalMessage(Buffer.from('3a004200', 'hex'), 'v0.38'),
    /more than one/,
  );
  assert.throws(
    () => decodePrivvalMessage(Buffer.from('0a040a010a01', 'hex'), 'v0.38'),
    ProtoError,
  );
  assert.throws(() => decodePrivvalMessage(Buffer.from('1a021802', 'hex'), 'v1'), /not a bool/);
  assert.throws(() => decodePrivvalMessage(Buffer.from('3a0108', 'hex'), 'v0.38'), ProtoError);
});

test('takeDelimited waits for more bytes and refuses oversized or overlong prefixes', () => {
  assert.equal(takeDelimited(Buffer.from('05aabb', 'hex')), undefined);
  assert.equal(takeDelimited(new Uint8Array()), undefined);
  assert.throws(() => takeDelimited(Buffer.from('818001', 'hex'), 10240), /exceeds/);
  assert.throws(() => takeDelimited(Buffer.from('ffffffffff01', 'hex')), /longer than 5/);
  const t = takeDelimited(Buffer.from('02aabbcc', 'hex'));
  assert.deepEqual(t && { m: hex(t.message), c: t.consumed }, { m: 'aabb', c: 3 });
});

test('property: arbitrary bytes decode or fail with ProtoError, never another exception', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 200 }),
        // mostly-valid messages with one byte changed
        fc.tuple(messageArb('v1'), fc.nat(), fc.integer({ min: 1, max: 255 })).map(([m, at, x]) => {
          const b = Uint8Array.from(encodePrivvalMessage(m, 'v1'));
          b[at % b.length]! ^= x;
          return b;
        }),
      ),
      fc.constantFrom('v0.38', 'v1') as fc.Arbitrary<PrivvalProtocol>,
      (bytes, protocol) => {
        try {
          decodePrivvalMessage(bytes, protocol);
        } catch (err) {
          assert.ok(err instanceof ProtoError, String(err));
        }
      },
    ),
    { numRuns: 2000 },
  );
  assert.throws(
    () => decodePrivvalMessage(Buffer.from('0a030a01ff', 'hex'), 'v0.38'),
    (e) => e instanceof ProtoError && /UTF-8/.test(e.message),
  );
});

test('a present error with every field at its default still travels (fast-check counterexample)', () => {
  // CometBFT's responses hold `Error *RemoteSignerError`: any non-nil error is a failure, so an
  // error with code 0 and no description must arrive as an error, not vanish on the wire.
  const m = { kind: 'pubKeyResponse', error: { code: 0, description: '' } } as const;
  for (const protocol of ['v0.38', 'v1'] as const) {
    const bytes = encodePrivvalMessage(m, protocol);
    assert.deepEqual(decodePrivvalMessage(bytes, protocol), m, protocol);
  }
});
