/**
 * The signer's answers to individual requests, from a scripted node over real TCP.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import {
  emptyVote,
  extensionSignBytesOfVote,
  signBytesOfVote,
  type PrivvalMessage,
  type Vote,
} from '../../../src/protocols/cometbft/privval.js';
import { loadOrCreateConnectionKey } from '../../../src/chains/cometbft/connection-key.js';
import { verifyEd25519 } from '../../../src/keys/ed25519.js';
import {
  CHAIN_ID,
  makeAgent,
  scriptedNode,
  tempDir,
  validatorKey,
  type Agent,
} from './fixtures.js';

const sha = (n: number) => new Uint8Array(32).fill(n);
const blockId = { hash: sha(1), partSetHeader: { total: 1, hash: sha(2) } };

function vote(over: Partial<Vote>): Vote {
  return {
    ...emptyVote(),
    type: 1,
    height: 5n,
    round: 0n,
    blockId,
    timestamp: { seconds: 1_700_000_000n, nanos: 0 },
    validatorAddress: new Uint8Array(20),
    ...over,
  };
}

for (const protocol of ['v0.38', 'v1'] as const) {
  describe(`signer answers (${protocol})`, () => {
    let dir: ReturnType<typeof tempDir>;
    let agent: Agent;
    let node: Awaited<ReturnType<typeof scriptedNode>>;
    before(async () => {
      dir = tempDir();
      node = await scriptedNode(protocol);
      agent = makeAgent(dir.path, 'a');
      await agent.start([node.address], protocol);
      await node.ready;
    });
    after(async () => {
      await agent.close();
      node.close();
      dir.remove();
    });

    const signVote = async (v: Vote, extra: object = {}) => {
      const r = await node.request({
        kind: 'signVoteRequest',
        vote: v,
        chainId: CHAIN_ID,
        ...extra,
      });
      assert.equal(r.kind, 'signedVoteResponse');
      return r as Extract<PrivvalMessage, { kind: 'signedVoteResponse' }>;
    };

    it('answers ping and pubkey, and refuses a pubkey request for another chain', async () => {
      assert.deepEqual(await node.request({ kind: 'pingRequest' }), { kind: 'pingResponse' });
      const ok = await node.request({ kind: 'pubKeyRequest', chainId: CHAIN_ID });
      assert.ok(ok.kind === 'pubKeyResponse' && ok.pubKey);
      assert.equal(Buffer.from(ok.pubKey.bytes).toString('hex'), validatorKey.publicKeyHex);
      assert.equal(ok.pubKey.type, 'ed25519');
      const bad = await node.request({ kind: 'pubKeyRequest', chainId: 'other' });
      assert.ok(bad.kind === 'pubKeyResponse' && bad.error && !bad.pubKey);
      assert.equal(bad.error.code, 1);
    });

    it('signs a prevote, then gives the stored timestamp and signature to a time-only retry', async () => {
      const first = await signVote(vote({}));
      assert.equal(first.error, undefined);
      assert.ok(
        verifyEd25519(
          validatorKey.publicKey,
          signBytesOfVote(first.vote, CHAIN_ID),
          first.vote.signature,
        ),
      );
      const retry = await signVote(vote({ timestamp: { seconds: 1_700_000_009n, nanos: 5 } }));
      assert.equal(retry.error, undefined);
      assert.deepEqual(retry.vote.timestamp, first.vote.timestamp);
      assert.deepEqual(retry.vote.signature, first.vote.signature);
    });

    it('refuses a conflicting prevote and a regression with code 2, and keeps serving', async () => {
      const conflict = await signVote(vote({ blockId: { ...blockId, hash: sha(9) } }));
      assert.equal(conflict.error?.code, 2);
      assert.match(
        conflict.error!.description,
        /vigil refused to sign prevote at height 5 round 0 \(conflict\)/,
      );
      assert.equal(conflict.vote.signature.length, 0);
      const old = await signVote(vote({ height: 4n }));
      assert.equal(old.error?.code, 2);
      assert.match(old.error!.description, /regression/);
      assert.deepEqual(await node.request({ kind: 'pingRequest' }), { kind: 'pingResponse' });
    });

    it('signs the extension of a precommit for a block, even an empty one', async () => {
      const r = await signVote(
        vote({ type: 2, height: 6n, extension: new TextEncoder().encode('x') }),
      );
      assert.equal(r.error, undefined);
      assert.ok(
        verifyEd25519(
          validatorKey.publicKey,
          extensionSignBytesOfVote(r.vote, CHAIN_ID),
          r.vote.extensionSignature,
        ),
      );
      const empty = await signVote(vote({ type: 2, height: 7n }));
      assert.equal(empty.vote.extensionSignature.length, 64);
    });

    it('does not sign extensions of nil precommits and refuses extensions on prevotes', async () => {
      const nil = await signVote(vote({ type: 2, height: 8n, blockId: emptyVote().blockId }));
      assert.equal(nil.error, undefined);
      assert.equal(nil.vote.extensionSignature.length, 0);
      const bad = await signVote(vote({ height: 9n, extension: new Uint8Array([1]) }));
      assert.equal(bad.error?.code, 1);
    });

    it('refuses malformed requests with code 1', async () => {
      const wrongChain = await node.request({
        kind: 'signVoteRequest',
        vote: vote({ height: 20n }),
        chainId: 'x',
      });
      assert.ok(wrongChain.kind === 'signedVoteResponse' && wrongChain.error?.code === 1);
      const noVote = await node.request({ kind: 'signVoteRequest', chainId: CHAIN_ID });
      assert.ok(noVote.kind === 'signedVoteResponse' && noVote.error?.code === 1);
      const badType = await signVote(vote({ type: 32, height: 20n }));
      assert.equal(badType.error?.code, 1);
      const prop = await node.request({
        kind: 'signProposalRequest',
        chainId: CHAIN_ID,
        proposal: {
          type: 1,
          height: 20n,
          round: 0n,
          polRound: -1n,
          blockId,
          timestamp: { seconds: 1n, nanos: 0 },
          signature: new Uint8Array(),
        },
      });
      assert.ok(prop.kind === 'signedProposalResponse' && prop.error?.code === 1);
    });

    if (protocol === 'v1') {
      it('v1: honours skip_extension_signing and refuses SignBytes and non-replay-protected extensions', async () => {
        const skipped = await signVote(vote({ type: 2, height: 30n }), {
          skipExtensionSigning: true,
        });
        assert.equal(skipped.error, undefined);
        assert.equal(skipped.vote.extensionSignature.length, 0);
        const sb = await node.request({ kind: 'signBytesRequest', value: new Uint8Array([1, 2]) });
        assert.ok(
          sb.kind === 'signBytesResponse' && sb.error?.code === 6 && sb.signature.length === 0,
        );
        const nonRp = await signVote(
          vote({ type: 2, height: 31n, nonRpExtension: new Uint8Array([1]) }),
        );
        assert.equal(nonRp.error?.code, 6);
      });
    }

    it('drops a node that sends a signer-side message', async () => {
      node.sendRaw({ kind: 'pingResponse' });
      await assert.rejects(node.readRaw(), /closed/);
    });
  });
}

describe('store unavailable', () => {
  it('a closed store refuses with code 3 (store unavailable), signs nothing, and keeps the link up', async () => {
    const dir = tempDir();
    const node = await scriptedNode('v0.38');
    const agent = makeAgent(dir.path, 'a');
    try {
      await agent.start([node.address], 'v0.38');
      await node.ready;
      await agent.store.close();
      const r = await node.request({ kind: 'signVoteRequest', vote: vote({}), chainId: CHAIN_ID });
      assert.ok(r.kind === 'signedVoteResponse');
      assert.equal(r.error?.code, 3, r.error?.description);
      assert.equal(r.vote.signature.length, 0);
      assert.deepEqual(await node.request({ kind: 'pingRequest' }), { kind: 'pingResponse' });
    } finally {
      await agent.close();
      node.close();
      dir.remove();
    }
  });
});

describe('connection key file', () => {
  it('is created with mode 0600, reused, and refused when others can read it', () => {
    const dir = tempDir();
    try {
      const path = join(dir.path, 'sub', 'conn.key');
      const a = loadOrCreateConnectionKey(path);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const b = loadOrCreateConnectionKey(path);
      assert.equal(a.publicKeyHex, b.publicKeyHex);
      assert.notEqual(a.publicKeyHex, validatorKey.publicKeyHex);
      const loose = join(dir.path, 'loose.key');
      writeFileSync(loose, randomBytes(32).toString('hex'));
      chmodSync(loose, 0o644);
      assert.throws(() => loadOrCreateConnectionKey(loose), /group or others/);
    } finally {
      dir.remove();
    }
  });
});
