/**
 * GuardedSigner on a real SQLite store: every key bound to one protocol, positions read from
 * real messages (CometBFT sign bytes, GRANDPA vote payloads, unsealed BABE headers), replays,
 * refusals before the store, the local tripwire, authorizations and key ids.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { parseSignBytes, voteExtensionSignBytes } from '../../src/protocols/cometbft/sign-bytes.js';
import { encodeGrandpaSignPayload } from '../../src/protocols/substrate/grandpa.js';
import {
  encodeAuraPreDigest,
  encodeBabePreDigest,
  encodeHeader,
  headerHash,
} from '../../src/protocols/substrate/header.js';
import { verifyEd25519 } from '../../src/keys/ed25519.js';
import { KeyRing } from '../../src/keys/keyring.js';
import { verifySr25519 } from '../../src/keys/sr25519.js';
import {
  authorizationHash,
  GuardedSigner,
  type GuardResult,
} from '../../src/signer/guarded-signer.js';
import {
  babeHeader,
  binding,
  CHAIN,
  CHAIN2,
  cometSignBytes,
  grandpaVote,
  keyFromTag,
  openSignerRig,
  req,
  sha256,
  tempDir,
  type SignerRig,
} from '../helpers/guard-fixtures.js';

const enc = (s: string) => new TextEncoder().encode(s);

function granted(r: GuardResult): Extract<GuardResult, { outcome: 'granted' | 'replayed' }> {
  assert.notEqual(r.outcome, 'refused', r.outcome === 'refused' ? `${r.reason}: ${r.message}` : '');
  return r as Extract<GuardResult, { outcome: 'granted' | 'replayed' }>;
}

function refused(r: GuardResult, reason: string): Extract<GuardResult, { outcome: 'refused' }> {
  assert.equal(r.outcome, 'refused');
  const x = r as Extract<GuardResult, { outcome: 'refused' }>;
  assert.equal(x.reason, reason, x.message);
  assert.equal((r as { signature?: unknown }).signature, undefined);
  return x;
}

function removeDb(path: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
}

/**
 * A rig whose store is closed: any request that reached the store would be refused as
 * `store_unavailable`, so any other refusal proves it was decided before the store.
 */
async function closeStoreOnly(rig: SignerRig): Promise<void> {
  await rig.store.close();
  // A valid request now does reach the store and is refused for it.
  refused(await rig.signer.sign(req.grandpa(0n, 1n, 'prevote')), 'store_unavailable');
}

describe('GuardedSigner', () => {
  let dir: string;
  let cleanup: () => void;
  let n = 0;
  const rigs: SignerRig[] = [];
  /** A fresh store and local file per test. */
  const fresh = (agentId = 'agent-test') => {
    n++;
    const rig = openSignerRig(join(dir, `s${n}.db`), join(dir, `l${n}.db`), agentId);
    rigs.push(rig);
    return { rig, storePath: join(dir, `s${n}.db`), localPath: join(dir, `l${n}.db`) };
  };
  before(() => ({ dir, cleanup } = tempDir('vigil-signer-')));
  after(async () => {
    for (const r of rigs) await r.close().catch(() => undefined);
    cleanup();
  });

  it('BABE: seals an unsealed header with sr25519 over its hash; replays the stored seal', async () => {
    const { rig } = fresh('agent-x');
    const header = babeHeader(5n, 'block 5');
    const g = granted(await rig.signer.sign(req.slot(5n, 'block 5')));
    assert.equal(g.outcome, 'granted');
    // The seal signs blake2b-256 of the unsealed header, not the header bytes.
    assert.ok(g.signature && verifySr25519(rig.babeKey.publicKey, headerHash(header), g.signature));
    assert.ok(!verifySr25519(rig.babeKey.publicKey, header, g.signature));
    const scope = { chainId: CHAIN, keyId: rig.babeKey.publicKeyHex, family: 'slot' } as const;
    const stored = await rig.store.get(scope);
    assert.deepEqual(stored?.signature, g.signature);
    assert.deepEqual(stored?.position, [5n]);
    assert.deepEqual(stored?.payloadHash, sha256(header));
    assert.equal(stored?.writer, 'agent-x');

    // sr25519 is randomised: an equal signature proves the stored one was replayed.
    const again = granted(await rig.signer.sign(req.slot(5n, 'block 5')));
    assert.equal(again.outcome, 'replayed');
    assert.deepEqual(again.signature, g.signature);
    // The key can also be named by its public key, with or without 0x and in upper case.
    for (const keyId of [
      rig.babeKey.publicKeyHex,
      `0x${rig.babeKey.publicKeyHex}`,
      rig.babeKey.publicKeyHex.toUpperCase(),
    ]) {
      const byPub = granted(await rig.signer.sign(req.slot(5n, 'block 5', { keyId })));
      assert.equal(byPub.outcome, 'replayed');
      assert.deepEqual(byPub.signature, g.signature);
    }

    refused(await rig.signer.sign(req.slot(5n, 'other block')), 'conflict');
    const r = refused(await rig.signer.sign(req.slot(4n, 'block 5')), 'regression');
    assert.deepEqual(r.watermark?.position, [5n]);
    assert.deepEqual((await rig.store.get(scope))?.signature, g.signature);
  });

  it('GRANDPA: signs the vote payload with ed25519; replays it, refuses conflicts and regressions', async () => {
    const { rig } = fresh();
    const vote = grandpaVote(1n, 7n, 'prevote', 'x');
    const g = granted(await rig.signer.sign(req.grandpa(1n, 7n, 'prevote', 'x')));
    assert.equal(g.outcome, 'granted');
    assert.ok(g.signature && verifyEd25519(rig.grandpaKey.publicKey, vote, g.signature));
    const stored = await rig.store.get({
      chainId: CHAIN,
      keyId: rig.grandpaKey.publicKeyHex,
      family: 'grandpa',
    });
    assert.deepEqual(stored?.position, [1n, 7n, 2n]);
    assert.deepEqual(stored?.signature, g.signature);

    const again = granted(await rig.signer.sign(req.grandpa(1n, 7n, 'prevote', 'x')));
    assert.equal(again.outcome, 'replayed');
    assert.deepEqual(again.signature, g.signature);
    refused(await rig.signer.sign(req.grandpa(1n, 7n, 'prevote', 'y')), 'conflict');
    refused(await rig.signer.sign(req.grandpa(1n, 6n, 'precommit', 'x')), 'regression');
    refused(await rig.signer.sign(req.grandpa(0n, 9n, 'precommit', 'x')), 'regression');
    granted(await rig.signer.sign(req.grandpa(1n, 7n, 'precommit', 'x')));
    granted(await rig.signer.sign(req.grandpa(2n, 0n, 'propose', 'x')));
  });

  it('CometBFT: signs the sign bytes; a timestamp-only retry gets the stored signature and time', async () => {
    const { rig } = fresh();
    const t0 = { seconds: 1_700_000_000n, nanos: 5 };
    const spec = { height: 10n, round: 0n, step: 'prevote', block: 1, timestamp: t0 } as const;
    const signBytes = cometSignBytes(spec);
    const g = granted(await rig.signer.sign(req.comet(spec)));
    assert.equal(g.outcome, 'granted');
    assert.ok(g.signature && verifyEd25519(rig.key.publicKey, signBytes, g.signature));
    assert.equal(g.timestamp, undefined);

    const laterSpec = { ...spec, timestamp: { seconds: 1_700_000_003n, nanos: 123_456_789 } };
    const later = cometSignBytes(laterSpec);
    const r = granted(await rig.signer.sign(req.comet(laterSpec)));
    assert.equal(r.outcome, 'replayed');
    assert.deepEqual(r.signature, g.signature);
    assert.deepEqual(r.timestamp, t0);
    // The node rebuilds the vote with the stored time; the signature is valid for exactly that.
    assert.ok(verifyEd25519(rig.key.publicKey, signBytes, r.signature!));
    assert.ok(!verifyEd25519(rig.key.publicKey, later, r.signature!));

    refused(await rig.signer.sign(req.comet({ ...spec, block: 2 })), 'conflict');
    // A claim that disagrees with the bytes is refused, whichever way it points.
    refused(
      await rig.signer.sign(req.comet(spec, { claims: { position: [11n, 0n, 2n] } })),
      'invalid_request',
    );
    refused(
      await rig.signer.sign(req.comet(spec, { payload: new Uint8Array([3, 1, 2, 3]) })),
      'invalid_request',
    );
    // A matching claim is accepted.
    granted(
      await rig.signer.sign(
        req.comet(
          { ...spec, height: 11n },
          { claims: { family: 'cometbft', position: [11n, 0n, 2n] } },
        ),
      ),
    );
  });

  it('CometBFT: one key serves each of its chains on its own watermark; the bytes must name the chain', async () => {
    const { rig } = fresh();
    granted(await rig.signer.sign(req.comet({ height: 10n, step: 'prevote' })));
    // Another chain is another scope: a lower height there is fine.
    granted(await rig.signer.sign(req.comet({ height: 1n, step: 'prevote', chainId: CHAIN2 })));
    // Sign bytes for CHAIN sent as CHAIN2 (a chain the key serves) do not parse as CHAIN2's.
    const r = refused(
      await rig.signer.sign(req.comet({ height: 2n, step: 'prevote' }, { chainId: CHAIN2 })),
      'invalid_request',
    );
    assert.match(r.message, /test-chain-1/);
    const w2 = await rig.store.get({
      chainId: CHAIN2,
      keyId: rig.key.publicKeyHex,
      family: 'cometbft',
    });
    assert.deepEqual(w2?.position, [1n, 0n, 2n]);
  });

  it('CometBFT: a vote extension is signed with a non-nil precommit only', async () => {
    const { rig } = fresh();
    const extension = enc('ext');
    const g = granted(
      await rig.signer.sign(
        req.comet({ height: 3n, round: 1n, step: 'precommit', block: 9 }, { extension }),
      ),
    );
    assert.ok(g.extensionSignature);
    const extBytes = voteExtensionSignBytes({ extension, height: 3n, round: 1n, chainId: CHAIN });
    assert.ok(verifyEd25519(rig.key.publicKey, extBytes, g.extensionSignature));
    refused(
      await rig.signer.sign(
        req.comet({ height: 4n, round: 0n, step: 'precommit', nil: true }, { extension }),
      ),
      'invalid_request',
    );
    refused(
      await rig.signer.sign(
        req.comet({ height: 4n, round: 0n, step: 'prevote', block: 1 }, { extension }),
      ),
      'invalid_request',
    );
    // Only CometBFT carries extensions.
    refused(
      await rig.signer.sign(req.grandpa(1n, 1n, 'precommit', 'a', { extension })),
      'invalid_request',
    );
    refused(await rig.signer.sign(req.slot(9n, 'a', { extension })), 'invalid_request');
    // Nothing was recorded by the refused requests.
    const w = await rig.store.get({
      chainId: CHAIN,
      keyId: rig.key.publicKeyHex,
      family: 'cometbft',
    });
    assert.deepEqual(w?.position, [3n, 1n, 3n]);
    assert.equal(parseSignBytes(w!.signBytes!).height, 3n);
    assert.equal((await rig.store.list()).length, 1);
  });

  it('refuses unknown keys, and signing with an authorization-only key as wrong_protocol', async () => {
    const { rig } = fresh();
    refused(await rig.signer.sign(req.slot(1n, 'x', { keyId: 'nope' })), 'unknown_key');
    refused(
      await rig.signer.authorize(req.authorizeSlot(1n, 'n', { keyId: 'nope' })),
      'unknown_key',
    );
    refused(
      await rig.signer.sign(req.slot(1n, 'x', { keyId: keyFromTag(99).publicKeyHex })),
      'unknown_key',
    );
    for (const keyId of ['auth1', keyFromTag(9).publicKeyHex]) {
      const r = refused(await rig.signer.sign(req.slot(1n, 'x', { keyId })), 'wrong_protocol');
      assert.match(r.message, /authorization only/);
    }
    // Without a claimed family too: the key's binding alone decides.
    refused(
      await rig.signer.sign({
        chainId: CHAIN,
        keyId: 'auth2',
        payload: grandpaVote(0n, 1n, 'prevote'),
      }),
      'wrong_protocol',
    );
    assert.deepEqual(await rig.store.list(), []);
    // The authorization-only key may authorize.
    const a = granted(await rig.signer.authorize(req.authorizeSlot(1n, 'n')));
    assert.equal(a.signature, undefined);
  });

  it('authorize with a signing key, or for a duty the key is not bound to, is wrong_protocol', async () => {
    const { rig } = fresh();
    for (const keyId of ['k1', 'g1', 's1', keyFromTag(7).publicKeyHex]) {
      const r = refused(
        await rig.signer.authorize(req.authorizeSlot(3n, 'n', { keyId })),
        'wrong_protocol',
      );
      assert.match(r.message, /only an authorize key/);
    }
    const grandpaAsk = {
      chainId: CHAIN,
      family: 'grandpa',
      setId: 1n,
      round: 1n,
      stage: 'prevote',
      nodeId: 'n',
    } as const;
    // auth1 is granted slots only, auth2 GRANDPA votes only.
    refused(await rig.signer.authorize({ ...grandpaAsk, keyId: 'auth1' }), 'wrong_protocol');
    refused(
      await rig.signer.authorize(req.authorizeSlot(3n, 'n', { keyId: 'auth2' })),
      'wrong_protocol',
    );
    refused(await rig.signer.authorize({ ...grandpaAsk, keyId: 'g1' }), 'wrong_protocol');
    assert.deepEqual(await rig.store.list(), []);
    granted(await rig.signer.authorize({ ...grandpaAsk, keyId: 'auth2' }));
  });

  it('a key asked for another protocol is refused wrong_protocol before the store is touched', async () => {
    const { rig } = fresh();
    await closeStoreOnly(rig);
    // The premise "one key signs CometBFT and slots" is gone: each key has one family.
    const asks = [
      req.slot(5n, 'a', { keyId: 'k1' }),
      req.grandpa(1n, 1n, 'prevote', 'a', { keyId: 'k1' }),
      req.comet({ height: 1n, step: 'prevote' }, { keyId: 's1' }),
      req.grandpa(1n, 1n, 'prevote', 'a', { keyId: 's1' }),
      req.slot(5n, 'a', { keyId: 'g1' }),
      req.comet({ height: 1n, step: 'prevote' }, { keyId: 'g1' }),
    ];
    for (const ask of asks) {
      const r = refused(await rig.signer.sign(ask), 'wrong_protocol');
      assert.match(r.message, /is bound to/);
    }
  });

  it("a claimed family that is not the key's is wrong_protocol; the bytes are never parsed", async () => {
    const { rig } = fresh();
    // Real messages of the key's own protocol, under a wrong family label.
    refused(
      await rig.signer.sign(
        req.comet({ height: 1n, step: 'prevote' }, { claims: { family: 'slot' } }),
      ),
      'wrong_protocol',
    );
    refused(
      await rig.signer.sign(
        req.grandpa(0n, 1n, 'prevote', 'a', { claims: { family: 'cometbft' } }),
      ),
      'wrong_protocol',
    );
    refused(
      await rig.signer.sign(req.slot(1n, 'a', { claims: { family: 'grandpa' } })),
      'wrong_protocol',
    );
    assert.deepEqual(await rig.store.list(), []);
  });

  it('a chain the key does not serve is unknown_chain, checked before parsing and before the store', async () => {
    const { rig } = fresh();
    await closeStoreOnly(rig);
    const garbage = new Uint8Array([0xde, 0xad, 0xbe, 0xef]);
    // Real messages and garbage alike: the chain is checked first.
    for (const ask of [
      req.slot(1n, 'a', { chainId: 'other-chain' }),
      req.slot(1n, 'a', { chainId: CHAIN2 }),
      req.slot(1n, 'a', { chainId: 'other-chain', payload: garbage }),
      req.grandpa(0n, 1n, 'prevote', 'a', { chainId: CHAIN2 }),
      req.grandpa(0n, 1n, 'prevote', 'a', { chainId: 'other-chain', payload: garbage }),
      req.comet({ height: 1n, step: 'prevote', chainId: 'other-chain' }),
      req.comet({ height: 1n, step: 'prevote' }, { chainId: 'other-chain', payload: garbage }),
    ]) {
      const r = refused(await rig.signer.sign(ask), 'unknown_chain');
      assert.match(r.message, /does not serve chain/);
    }
    refused(
      await rig.signer.authorize(req.authorizeSlot(1n, 'n', { chainId: CHAIN2 })),
      'unknown_chain',
    );
  });

  it('a claimed position that differs from the bytes is invalid_request, nothing stored', async () => {
    const { rig } = fresh();
    const mismatches = [
      req.slot(5n, 'a', { claims: { family: 'slot', position: [6n] } }),
      req.slot(5n, 'a', { claims: { position: [4n] } }),
      req.slot(5n, 'a', { claims: { position: [5n, 0n] } }),
      req.grandpa(1n, 2n, 'prevote', 'a', { claims: { position: [1n, 2n, 3n] } }),
      req.grandpa(1n, 2n, 'prevote', 'a', { claims: { position: [2n, 2n, 2n] } }),
      req.comet(
        { height: 3n, round: 1n, step: 'precommit' },
        { claims: { position: [3n, 1n, 2n] } },
      ),
      req.comet(
        { height: 3n, round: 1n, step: 'precommit' },
        { claims: { position: [3n, 0n, 3n] } },
      ),
    ];
    for (const ask of mismatches) {
      const r = refused(await rig.signer.sign(ask), 'invalid_request');
      assert.match(r.message, /the request claims .* but the bytes are at/);
    }
    assert.deepEqual(await rig.store.list(), []);
    // The same requests with the true claim are granted.
    granted(
      await rig.signer.sign(req.slot(5n, 'a', { claims: { family: 'slot', position: [5n] } })),
    );
    granted(
      await rig.signer.sign(
        req.grandpa(1n, 2n, 'prevote', 'a', { claims: { position: [1n, 2n, 2n] } }),
      ),
    );
    granted(
      await rig.signer.sign(
        req.comet(
          { height: 3n, round: 1n, step: 'precommit' },
          { claims: { position: [3n, 1n, 3n] } },
        ),
      ),
    );
    assert.equal((await rig.store.list()).length, 3);
  });

  it("bytes that do not parse as the key's protocol are invalid_request, store untouched", async () => {
    const { rig } = fresh();
    await closeStoreOnly(rig);
    const random = new Uint8Array(Buffer.from('9f3c21a07be4d55e0c1b8a6f4420931d7e5c', 'hex'));
    const proposal = cometSignBytes({ height: 5n, round: 0n, step: 'proposal', block: 3 });
    const vote = grandpaVote(1n, 2n, 'prevote');
    const header = babeHeader(7n);
    const sealed = encodeHeader({
      parentHash: sha256('p'),
      number: 1n,
      stateRoot: sha256('s'),
      extrinsicsRoot: sha256('e'),
      digest: [
        {
          kind: 'preRuntime',
          engine: 'BABE',
          data: encodeBabePreDigest({ type: 'secondaryPlain', authorityIndex: 0, slot: 7n }),
        },
        { kind: 'seal', engine: 'BABE', data: new Uint8Array(64) },
      ],
    });
    const auraHeader = encodeHeader({
      parentHash: sha256('p'),
      number: 1n,
      stateRoot: sha256('s'),
      extrinsicsRoot: sha256('e'),
      digest: [{ kind: 'preRuntime', engine: 'aura', data: encodeAuraPreDigest(7n) }],
    });
    const u64Vote = encodeGrandpaSignPayload(
      { stage: 'prevote', targetHash: sha256('t'), targetNumber: 1n, round: 2n, setId: 1n },
      'u64',
    );
    const cases: [string, ReturnType<typeof req.slot>][] = [
      [
        'random bytes to the CometBFT key',
        req.comet({ height: 1n, step: 'prevote' }, { payload: random }),
      ],
      ['random bytes to the GRANDPA key', req.grandpa(0n, 1n, 'prevote', 'a', { payload: random })],
      ['random bytes to the BABE key', req.slot(1n, 'a', { payload: random })],
      ['empty bytes to the BABE key', req.slot(1n, 'a', { payload: new Uint8Array() })],
      [
        'a CometBFT proposal to the GRANDPA key',
        req.grandpa(0n, 1n, 'prevote', 'a', { payload: proposal }),
      ],
      ['a CometBFT proposal to the BABE key', req.slot(1n, 'a', { payload: proposal })],
      ['a GRANDPA vote to the BABE key', req.slot(1n, 'a', { payload: vote })],
      [
        'a GRANDPA vote to the CometBFT key',
        req.comet({ height: 1n, step: 'prevote' }, { payload: vote }),
      ],
      [
        'a BABE header to the GRANDPA key',
        req.grandpa(0n, 1n, 'prevote', 'a', { payload: header }),
      ],
      [
        'a BABE header to the CometBFT key',
        req.comet({ height: 1n, step: 'prevote' }, { payload: header }),
      ],
      ['a sealed header to the BABE key', req.slot(7n, 'a', { payload: sealed })],
      ['an Aura header to the BABE key', req.slot(7n, 'a', { payload: auraHeader })],
      [
        'a u64 GRANDPA vote to a u32 chain key',
        req.grandpa(1n, 2n, 'prevote', 'a', { payload: u64Vote }),
      ],
      [
        'a GRANDPA vote with a trailing byte',
        req.grandpa(1n, 2n, 'prevote', 'a', { payload: new Uint8Array([...vote, 0]) }),
      ],
      [
        'a header with a trailing byte',
        req.slot(7n, 'a', { payload: new Uint8Array([...header, 0]) }),
      ],
    ];
    for (const [what, ask] of cases) {
      const r = await rig.signer.sign(ask);
      assert.equal(r.outcome, 'refused', what);
      assert.equal(
        (r as { reason?: string }).reason,
        'invalid_request',
        `${what}: ${JSON.stringify(r)}`,
      );
      assert.equal((r as { signature?: unknown }).signature, undefined, what);
    }
  });

  it('refuses positions beyond 2^63-1 and negative authorizations without recording anything', async () => {
    const { rig } = fresh();
    refused(await rig.signer.sign(req.slot(1n << 63n)), 'invalid_request');
    refused(await rig.signer.sign(req.slot((1n << 64n) - 1n)), 'invalid_request');
    refused(await rig.signer.sign(req.grandpa(0n, 1n << 63n, 'prevote')), 'invalid_request');
    refused(await rig.signer.sign(req.grandpa(1n << 63n, 0n, 'prevote')), 'invalid_request');
    refused(await rig.signer.authorize(req.authorizeSlot(-1n, 'n')), 'invalid_request');
    refused(await rig.signer.authorize(req.authorizeSlot(1n << 63n, 'n')), 'invalid_request');
    assert.deepEqual(await rig.store.list(), []);
    granted(await rig.signer.sign(req.slot((1n << 63n) - 1n)));
    granted(await rig.signer.sign(req.grandpa((1n << 63n) - 1n, (1n << 63n) - 1n, 'prevote')));
  });

  it('refuses a chain id that is not well-formed Unicode as invalid_request', async () => {
    const { rig } = fresh();
    // JSON can carry a lone surrogate ("\ud800"); it cannot become a scope key.
    for (const chainId of ['bad\ud800', '\udc00x', 'a\ud800\ud800']) {
      refused(await rig.signer.sign(req.slot(1n, 'x', { chainId })), 'invalid_request');
      refused(
        await rig.signer.authorize(req.authorizeSlot(1n, 'n', { chainId })),
        'invalid_request',
      );
    }
    assert.deepEqual(await rig.store.list(), []);
    // Well-formed text of any script is fine for a key that serves it.
    const chainId = 'чейн/😀 %2F';
    const uni = keyFromTag(12);
    rig.keys.add({
      id: 'k-uni',
      scopeKeyId: uni.publicKeyHex,
      signer: uni,
      binding: binding('cometbft', [chainId]),
    });
    granted(
      await rig.signer.sign(
        req.comet({ height: 1n, step: 'prevote', chainId }, { keyId: 'k-uni' }),
      ),
    );
    assert.deepEqual(
      (await rig.store.list()).map((s) => s.scope.chainId),
      [chainId],
    );
  });

  it('authorize: replay by the same node, conflict for another node; records the authorization hash', async () => {
    const { rig } = fresh();
    const a = granted(await rig.signer.authorize(req.authorizeSlot(10n, 'node-a')));
    assert.equal(a.outcome, 'granted');
    assert.equal(a.signature, undefined);
    const scope = { chainId: CHAIN, keyId: keyFromTag(9).publicKeyHex, family: 'slot' } as const;
    assert.deepEqual(
      (await rig.store.get(scope))?.payloadHash,
      authorizationHash('node-a', undefined),
    );
    const again = granted(await rig.signer.authorize(req.authorizeSlot(10n, 'node-a')));
    assert.equal(again.outcome, 'replayed');
    refused(await rig.signer.authorize(req.authorizeSlot(10n, 'node-b')), 'conflict');
    refused(await rig.signer.authorize(req.authorizeSlot(9n, 'node-a')), 'regression');
    // What the node said it would sign is part of the request.
    const p = enc('header bytes');
    granted(await rig.signer.authorize(req.authorizeSlot(11n, 'node-a', { payload: p })));
    granted(await rig.signer.authorize(req.authorizeSlot(11n, 'node-a', { payload: p })));
    refused(
      await rig.signer.authorize(req.authorizeSlot(11n, 'node-a', { payload: enc('other') })),
      'conflict',
    );
    // (node "ab", payload "c") and (node "a", payload "bc") concatenate alike but are two requests.
    granted(await rig.signer.authorize(req.authorizeSlot(12n, 'ab', { payload: enc('c') })));
    refused(
      await rig.signer.authorize(req.authorizeSlot(12n, 'a', { payload: enc('bc') })),
      'conflict',
    );

    const ga = {
      family: 'grandpa',
      chainId: CHAIN,
      keyId: 'auth2',
      setId: 2n,
      round: 3n,
      stage: 'precommit',
    } as const;
    granted(await rig.signer.authorize({ ...ga, nodeId: 'node-a' }));
    assert.equal((await rig.signer.authorize({ ...ga, nodeId: 'node-a' })).outcome, 'replayed');
    refused(await rig.signer.authorize({ ...ga, nodeId: 'node-b' }), 'conflict');
    refused(await rig.signer.authorize({ ...ga, round: 2n, nodeId: 'node-a' }), 'regression');
  });

  it('an authorization and a signature for one public key share its watermark across agents', async () => {
    // Agent A seals BABE blocks with s1; agent B only authorizes a node that holds the same key.
    const { rig: a, storePath } = fresh('agent-a');
    const keys = new KeyRing();
    keys.add({
      id: 'babe-node',
      scopeKeyId: a.babeKey.publicKeyHex,
      binding: binding('authorize'),
    });
    const bRig = openSignerRig(storePath, join(dir, 'auth-b-local.db'), 'agent-b');
    rigs.push(bRig);
    const b = new GuardedSigner({ store: bRig.store, keys, local: bRig.local, agentId: 'agent-b' });
    const ask = (slot: bigint, nodeId: string) =>
      req.authorizeSlot(slot, nodeId, { keyId: 'babe-node' });
    granted(await b.authorize(ask(10n, 'node-a')));
    refused(await a.signer.sign(req.slot(10n)), 'conflict');
    granted(await a.signer.sign(req.slot(11n)));
    refused(await b.authorize(ask(11n, 'node-a')), 'conflict');
    refused(await b.authorize(ask(10n, 'node-a')), 'regression');
    assert.equal((await a.store.list()).length, 1);
  });

  it('authorizationHash is domain-separated and length-prefixed', () => {
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    // Not the plain hash of the payload, nor of the concatenation: never a signed message's hash.
    assert.notEqual(hex(authorizationHash('', enc('p'))), hex(sha256('p')));
    assert.notEqual(hex(authorizationHash('n', enc('p'))), hex(sha256('np')));
    assert.equal(authorizationHash('n', enc('p')).length, 32);
    assert.equal(hex(authorizationHash('n', enc('p'))), hex(authorizationHash('n', enc('p'))));
    // Every split of one byte string into (node id, payload) hashes differently.
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0x20, max: 0x7e }), { minLength: 1, maxLength: 40 }),
        fc.nat(),
        fc.nat(),
        (codes, x, y) => {
          const text = String.fromCharCode(...codes);
          const i = x % (text.length + 1);
          const j = y % (text.length + 1);
          fc.pre(i !== j);
          const split = (k: number) => authorizationHash(text.slice(0, k), enc(text.slice(k)));
          assert.notEqual(hex(split(i)), hex(split(j)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("two agents sharing a store: the second gets the first one's signature, never a new one", async () => {
    const { rig: a, storePath } = fresh('agent-a');
    const b = openSignerRig(storePath, join(dir, 'b-local.db'), 'agent-b');
    rigs.push(b);
    const ga = granted(await a.signer.sign(req.slot(8n, 'p')));
    // sr25519 signatures are randomised: equality means B released A's stored seal.
    const gb = granted(await b.signer.sign(req.slot(8n, 'p')));
    assert.equal(gb.outcome, 'replayed');
    assert.deepEqual(gb.signature, ga.signature);
    refused(await b.signer.sign(req.slot(8n, 'q')), 'conflict');
    refused(await b.signer.sign(req.slot(7n, 'p')), 'regression');
    const va = granted(await a.signer.sign(req.grandpa(0n, 4n, 'prevote', 'p')));
    const vb = granted(await b.signer.sign(req.grandpa(0n, 4n, 'prevote', 'p')));
    assert.equal(vb.outcome, 'replayed');
    assert.deepEqual(vb.signature, va.signature);
  });

  it('one key cannot be configured under two ids; two agents naming it differently share one watermark', async () => {
    const { rig, storePath } = fresh();
    for (const protocol of ['grandpa', 'cometbft'] as const) {
      assert.throws(
        () =>
          rig.keys.add({
            id: 'alias',
            scopeKeyId: rig.grandpaKey.publicKeyHex,
            signer: rig.grandpaKey,
            binding: binding(protocol),
          }),
        (err: unknown) => (err as { code?: string }).code === 'KEY_CONFIGURED_TWICE',
      );
    }
    assert.equal(rig.keys.resolve('alias'), undefined);
    // Another agent calls the same GRANDPA key "alias".
    const keys = new KeyRing();
    keys.add({
      id: 'alias',
      scopeKeyId: rig.grandpaKey.publicKeyHex,
      signer: rig.grandpaKey,
      binding: binding('grandpa'),
    });
    const otherRig = openSignerRig(storePath, join(dir, 'alias-local.db'), 'agent-alias');
    rigs.push(otherRig);
    const other = new GuardedSigner({
      store: otherRig.store,
      keys,
      local: otherRig.local,
      agentId: 'agent-alias',
    });
    granted(await rig.signer.sign(req.grandpa(1n, 5n, 'prevote', 'p')));
    refused(await other.sign(req.grandpa(1n, 5n, 'prevote', 'q', { keyId: 'alias' })), 'conflict');
    refused(
      await other.sign(req.grandpa(1n, 4n, 'prevote', 'p', { keyId: 'alias' })),
      'regression',
    );
    assert.equal((await rig.store.list()).length, 1);
  });

  it('releases nothing when the write fails after the signature was computed', async () => {
    const { rig, storePath } = fresh();
    const first = granted(await rig.signer.sign(req.slot(1n, 'p')));
    // Another process makes every later write fail inside the transaction, after the rule
    // granted and the key signed: the signer must answer without a signature.
    const other = new Database(storePath);
    other.exec(
      `CREATE TRIGGER refuse_writes BEFORE UPDATE ON watermarks
       BEGIN SELECT RAISE(ABORT, 'disk says no'); END`,
    );
    other.close();
    const r = refused(await rig.signer.sign(req.slot(2n, 'p')), 'store_unavailable');
    assert.match(r.message, /disk says no/);
    const w = await rig.store.get({
      chainId: CHAIN,
      keyId: rig.babeKey.publicKeyHex,
      family: 'slot',
    });
    assert.deepEqual(w?.position, [1n]);
    assert.deepEqual(w?.signature, first.signature);
    // Nor did the local watermark move: after the trigger is gone, slot 2 is granted.
    const fix = new Database(storePath);
    fix.exec('DROP TRIGGER refuse_writes');
    fix.close();
    granted(await rig.signer.sign(req.slot(2n, 'p')));
  });

  describe('the local watermark', () => {
    const slotReq = (slot: bigint) => req.slot(slot, 'p');

    it('refuses a deleted and recreated store file: another identity, then store_behind_local once adopted', async () => {
      const { rig, storePath, localPath } = fresh();
      granted(await rig.signer.sign(slotReq(5n)));
      await rig.close();
      removeDb(storePath);
      const reborn = openSignerRig(storePath, localPath);
      rigs.push(reborn);
      for (const slot of [6n, 1000n]) {
        const r = refused(await reborn.signer.sign(slotReq(slot)), 'store_identity');
        assert.match(r.message, /built against store .* reaches now is /);
        assert.match(r.message, /vigil state adopt/);
      }
      // Every scope of the agent, not only the one it signed in.
      refused(await reborn.signer.sign(req.grandpa(0n, 1n, 'prevote')), 'store_identity');
      // The operator acknowledges the new store: that vouches for the store, not for its
      // (empty) watermark, which is still behind what this agent signed.
      reborn.local.adoptStore(reborn.store.identity);
      for (const slot of [6n, 5n, 1000n]) {
        const r = refused(await reborn.signer.sign(slotReq(slot)), 'store_behind_local');
        assert.match(r.message, /\(5\)/);
        assert.match(r.message, /reset or restored/);
        assert.match(r.message, /vigil state import/);
      }
      // Nothing was written to the empty store.
      assert.deepEqual(await reborn.store.list(), []);
      // Another scope has no local watermark and is not affected.
      granted(await reborn.signer.sign(req.grandpa(0n, 1n, 'prevote')));
    });

    it('holds authorizations back too', async () => {
      const { rig, storePath, localPath } = fresh();
      granted(await rig.signer.authorize(req.authorizeSlot(5n, 'n')));
      await rig.close();
      removeDb(storePath);
      const reborn = openSignerRig(storePath, localPath);
      rigs.push(reborn);
      refused(await reborn.signer.authorize(req.authorizeSlot(9n, 'n')), 'store_identity');
      reborn.local.adoptStore(reborn.store.identity);
      refused(await reborn.signer.authorize(req.authorizeSlot(9n, 'n')), 'store_behind_local');
      assert.deepEqual(await reborn.store.list(), []);
    });

    it('refuses when the store is restored from an older backup, and resumes once it is caught up', async () => {
      const { rig, storePath, localPath } = fresh();
      granted(await rig.signer.sign(slotReq(3n)));
      await rig.close();
      copyFileSync(storePath, storePath + '.bak');
      const again = openSignerRig(storePath, localPath);
      granted(await again.signer.sign(slotReq(4n)));
      granted(await again.signer.sign(slotReq(9n)));
      await again.close();
      removeDb(storePath);
      copyFileSync(storePath + '.bak', storePath);
      const restored = openSignerRig(storePath, localPath);
      rigs.push(restored);
      // A copy of the true store carries its identity: the local watermark is what catches it.
      assert.equal(restored.store.identity.storeId, rig.store.identity.storeId);
      const r = refused(await restored.signer.sign(slotReq(10n)), 'store_behind_local');
      assert.match(r.message, /\(3\)/);
      assert.match(r.message, /\(9\)/);
      assert.deepEqual(r.watermark?.position, [3n]);
      // The operator imports the watermark the agent knows about; signing resumes above it.
      await restored.store.update(
        { chainId: CHAIN, keyId: restored.babeKey.publicKeyHex, family: 'slot' },
        () => ({ write: { family: 'slot', position: [9n] }, result: null }),
      );
      refused(await restored.signer.sign(slotReq(9n)), 'conflict');
      granted(await restored.signer.sign(slotReq(10n)));
    });

    it('refuses with a fresh store and the same LocalWatermarks object, even once adopted', async () => {
      const { rig } = fresh();
      granted(await rig.signer.sign(slotReq(2n)));
      const { SqliteWatermarkStore } = await import('../../src/store/sqlite.js');
      const emptyStore = SqliteWatermarkStore.open({
        path: join(dir, 'empty-other.db'),
        create: true,
      });
      try {
        const s2 = new GuardedSigner({
          store: emptyStore,
          keys: rig.keys,
          local: rig.local,
          agentId: 'x',
        });
        // Another store: refused by identity, before its (empty) watermark is even read.
        rig.local.bindStore(emptyStore.identity);
        refused(await s2.sign(slotReq(3n)), 'store_identity');
        // Adopting it acknowledges the store, not its watermark: still behind this agent.
        rig.local.adoptStore(emptyStore.identity);
        refused(await s2.sign(slotReq(3n)), 'store_behind_local');
      } finally {
        await emptyStore.close();
      }
    });

    it('is persisted, and a second agent cannot open the same local file', async () => {
      const { rig, localPath } = fresh();
      granted(await rig.signer.sign(slotReq(12n)));
      const { LocalWatermarks } = await import('../../src/signer/local-watermark.js');
      assert.throws(() => new LocalWatermarks(localPath), /another agent|LOCAL_WATERMARK|dataDir/);
      rig.local.close();
      const reopened = new LocalWatermarks(localPath);
      try {
        assert.deepEqual(
          reopened.get({ chainId: CHAIN, keyId: rig.babeKey.publicKeyHex, family: 'slot' }),
          [12n],
        );
      } finally {
        reopened.close();
      }
    });
  });
});
