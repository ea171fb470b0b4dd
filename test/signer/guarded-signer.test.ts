/** GuardedSigner on a real SQLite store: signatures, replays, the local tripwire, keys. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parseSignBytes, voteExtensionSignBytes } from '../../src/protocols/cometbft/sign-bytes.js';
import { verifyEd25519 } from '../../src/keys/ed25519.js';
import type { GuardResult } from '../../src/signer/guarded-signer.js';
import {
  cometSignBytes,
  openSignerRig,
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

  it('grants slot and GRANDPA requests with signatures that verify; replays the same bytes', async () => {
    const { rig } = fresh('agent-x');
    const payload = enc('block 5');
    const g = granted(
      await rig.signer.sign({ family: 'slot', chainId: 'c', keyId: 'k1', slot: 5n, payload }),
    );
    assert.equal(g.outcome, 'granted');
    assert.ok(g.signature && verifyEd25519(rig.key.publicKey, payload, g.signature));
    const stored = await rig.store.get({
      chainId: 'c',
      keyId: rig.key.publicKeyHex,
      family: 'slot',
    });
    assert.deepEqual(stored?.signature, g.signature);
    assert.deepEqual(stored?.position, [5n]);
    assert.equal(stored?.writer, 'agent-x');

    const again = granted(
      await rig.signer.sign({ family: 'slot', chainId: 'c', keyId: 'k1', slot: 5n, payload }),
    );
    assert.equal(again.outcome, 'replayed');
    assert.deepEqual(again.signature, g.signature);
    // The key can also be named by its public key.
    const byPub = granted(
      await rig.signer.sign({
        family: 'slot',
        chainId: 'c',
        keyId: rig.key.publicKeyHex,
        slot: 5n,
        payload,
      }),
    );
    assert.deepEqual(byPub.signature, g.signature);

    refused(
      await rig.signer.sign({
        family: 'slot',
        chainId: 'c',
        keyId: 'k1',
        slot: 5n,
        payload: enc('other'),
      }),
      'conflict',
    );
    const r = refused(
      await rig.signer.sign({ family: 'slot', chainId: 'c', keyId: 'k1', slot: 4n, payload }),
      'regression',
    );
    assert.deepEqual(r.watermark?.position, [5n]);

    const vote = enc('grandpa prevote');
    const gv = granted(
      await rig.signer.sign({
        family: 'grandpa',
        chainId: 'c',
        keyId: 'k1',
        setId: 1n,
        round: 7n,
        stage: 'prevote',
        payload: vote,
      }),
    );
    assert.ok(gv.signature && verifyEd25519(rig.key.publicKey, vote, gv.signature));
    // Another chain is another scope.
    granted(
      await rig.signer.sign({ family: 'slot', chainId: 'd', keyId: 'k1', slot: 1n, payload }),
    );
  });

  it('CometBFT: signs the sign bytes; a timestamp-only retry gets the stored signature and time', async () => {
    const { rig } = fresh();
    const t0 = { seconds: 1_700_000_000n, nanos: 5 };
    const signBytes = cometSignBytes({
      height: 10n,
      round: 0n,
      step: 'prevote',
      block: 1,
      timestamp: t0,
    });
    const g = granted(
      await rig.signer.sign({
        family: 'cometbft',
        chainId: 'test-chain-1',
        keyId: 'k1',
        height: 10n,
        round: 0n,
        step: 'prevote',
        signBytes,
      }),
    );
    assert.equal(g.outcome, 'granted');
    assert.ok(g.signature && verifyEd25519(rig.key.publicKey, signBytes, g.signature));
    assert.equal(g.timestamp, undefined);

    const later = cometSignBytes({
      height: 10n,
      round: 0n,
      step: 'prevote',
      block: 1,
      timestamp: { seconds: 1_700_000_003n, nanos: 123_456_789 },
    });
    const r = granted(
      await rig.signer.sign({
        family: 'cometbft',
        chainId: 'test-chain-1',
        keyId: 'k1',
        height: 10n,
        round: 0n,
        step: 'prevote',
        signBytes: later,
      }),
    );
    assert.equal(r.outcome, 'replayed');
    assert.deepEqual(r.signature, g.signature);
    assert.deepEqual(r.timestamp, t0);
    // The node rebuilds the vote with the stored time; the signature is valid for exactly that.
    assert.ok(verifyEd25519(rig.key.publicKey, signBytes, r.signature!));
    assert.ok(!verifyEd25519(rig.key.publicKey, later, r.signature!));

    refused(
      await rig.signer.sign({
        family: 'cometbft',
        chainId: 'test-chain-1',
        keyId: 'k1',
        height: 10n,
        round: 0n,
        step: 'prevote',
        signBytes: cometSignBytes({
          height: 10n,
          round: 0n,
          step: 'prevote',
          block: 2,
          timestamp: t0,
        }),
      }),
      'conflict',
    );
    refused(
      await rig.signer.sign({
        family: 'cometbft',
        chainId: 'test-chain-1',
        keyId: 'k1',
        height: 11n,
        round: 0n,
        step: 'prevote',
        signBytes,
      }),
      'invalid_request',
    );
    refused(
      await rig.signer.sign({
        family: 'cometbft',
        chainId: 'test-chain-1',
        keyId: 'k1',
        height: 11n,
        round: 0n,
        step: 'prevote',
        signBytes: new Uint8Array([3, 1, 2, 3]),
      }),
      'invalid_request',
    );
  });

  it('CometBFT: a vote extension is signed with a non-nil precommit only', async () => {
    const { rig } = fresh();
    const signBytes = cometSignBytes({ height: 3n, round: 1n, step: 'precommit', block: 9 });
    const extension = enc('ext');
    const g = granted(
      await rig.signer.sign({
        family: 'cometbft',
        chainId: 'test-chain-1',
        keyId: 'k1',
        height: 3n,
        round: 1n,
        step: 'precommit',
        signBytes,
        extension,
      }),
    );
    assert.ok(g.extensionSignature);
    const extBytes = voteExtensionSignBytes({
      extension,
      height: 3n,
      round: 1n,
      chainId: 'test-chain-1',
    });
    assert.ok(verifyEd25519(rig.key.publicKey, extBytes, g.extensionSignature));
    const nil = cometSignBytes({ height: 4n, round: 0n, step: 'precommit', nil: true });
    refused(
      await rig.signer.sign({
        family: 'cometbft',
        chainId: 'test-chain-1',
        keyId: 'k1',
        height: 4n,
        round: 0n,
        step: 'precommit',
        signBytes: nil,
        extension,
      }),
      'invalid_request',
    );
    const prevote = cometSignBytes({ height: 4n, round: 0n, step: 'prevote', block: 1 });
    refused(
      await rig.signer.sign({
        family: 'cometbft',
        chainId: 'test-chain-1',
        keyId: 'k1',
        height: 4n,
        round: 0n,
        step: 'prevote',
        signBytes: prevote,
        extension,
      }),
      'invalid_request',
    );
    // Nothing was recorded by the refused requests.
    const w = await rig.store.get({
      chainId: 'test-chain-1',
      keyId: rig.key.publicKeyHex,
      family: 'cometbft',
    });
    assert.deepEqual(w?.position, [3n, 1n, 3n]);
    assert.equal(parseSignBytes(w!.signBytes!).height, 3n);
  });

  it('refuses unknown keys and signing with an authorization-only key', async () => {
    const { rig } = fresh();
    const payload = enc('x');
    refused(
      await rig.signer.sign({ family: 'slot', chainId: 'c', keyId: 'nope', slot: 1n, payload }),
      'unknown_key',
    );
    refused(
      await rig.signer.authorize({
        family: 'slot',
        chainId: 'c',
        keyId: 'nope',
        slot: 1n,
        nodeId: 'n',
      }),
      'unknown_key',
    );
    const r = refused(
      await rig.signer.sign({ family: 'slot', chainId: 'c', keyId: 'auth1', slot: 1n, payload }),
      'unknown_key',
    );
    assert.match(r.message, /authorization only/);
    assert.deepEqual(await rig.store.list(), []);
    // The authorization-only key may authorize.
    const a = granted(
      await rig.signer.authorize({
        family: 'slot',
        chainId: 'c',
        keyId: 'auth1',
        slot: 1n,
        nodeId: 'n',
      }),
    );
    assert.equal(a.signature, undefined);
  });

  it('refuses negative and oversized positions without recording anything', async () => {
    const { rig } = fresh();
    const payload = enc('x');
    refused(
      await rig.signer.sign({ family: 'slot', chainId: 'c', keyId: 'k1', slot: -1n, payload }),
      'invalid_request',
    );
    refused(
      await rig.signer.sign({
        family: 'slot',
        chainId: 'c',
        keyId: 'k1',
        slot: 1n << 63n,
        payload,
      }),
      'invalid_request',
    );
    refused(
      await rig.signer.sign({
        family: 'grandpa',
        chainId: 'c',
        keyId: 'k1',
        setId: 0n,
        round: 1n << 63n,
        stage: 'prevote',
        payload,
      }),
      'invalid_request',
    );
    assert.deepEqual(await rig.store.list(), []);
    granted(
      await rig.signer.sign({
        family: 'slot',
        chainId: 'c',
        keyId: 'k1',
        slot: (1n << 63n) - 1n,
        payload,
      }),
    );
  });

  it('refuses a chain id that is not well-formed Unicode as invalid_request', async () => {
    const { rig } = fresh();
    // JSON can carry a lone surrogate ("\ud800"); it cannot become a scope key.
    for (const chainId of ['bad\ud800', '\udc00x', 'a\ud800\ud800']) {
      refused(
        await rig.signer.sign({
          family: 'slot',
          chainId,
          keyId: 'k1',
          slot: 1n,
          payload: enc('x'),
        }),
        'invalid_request',
      );
      refused(
        await rig.signer.authorize({ family: 'slot', chainId, keyId: 'k1', slot: 1n, nodeId: 'n' }),
        'invalid_request',
      );
    }
    assert.deepEqual(await rig.store.list(), []);
    // Well-formed text of any script is fine.
    granted(
      await rig.signer.sign({
        family: 'slot',
        chainId: 'чейн/😀 %2F',
        keyId: 'k1',
        slot: 1n,
        payload: enc('x'),
      }),
    );
  });

  it('authorize: replay by the same node, conflict for another node or a signature', async () => {
    const { rig } = fresh();
    const a = granted(
      await rig.signer.authorize({
        family: 'slot',
        chainId: 'c',
        keyId: 'k1',
        slot: 10n,
        nodeId: 'node-a',
      }),
    );
    assert.equal(a.outcome, 'granted');
    assert.equal(a.signature, undefined);
    const again = granted(
      await rig.signer.authorize({
        family: 'slot',
        chainId: 'c',
        keyId: 'k1',
        slot: 10n,
        nodeId: 'node-a',
      }),
    );
    assert.equal(again.outcome, 'replayed');
    refused(
      await rig.signer.authorize({
        family: 'slot',
        chainId: 'c',
        keyId: 'k1',
        slot: 10n,
        nodeId: 'node-b',
      }),
      'conflict',
    );
    refused(
      await rig.signer.sign({
        family: 'slot',
        chainId: 'c',
        keyId: 'k1',
        slot: 10n,
        payload: enc('node-a'),
      }),
      'conflict',
    );
    granted(
      await rig.signer.sign({
        family: 'slot',
        chainId: 'c',
        keyId: 'k1',
        slot: 11n,
        payload: enc('b'),
      }),
    );
    refused(
      await rig.signer.authorize({
        family: 'slot',
        chainId: 'c',
        keyId: 'k1',
        slot: 11n,
        nodeId: 'node-a',
      }),
      'conflict',
    );
    const ga = {
      family: 'grandpa',
      chainId: 'c',
      keyId: 'k1',
      setId: 2n,
      round: 3n,
      stage: 'precommit',
    } as const;
    granted(await rig.signer.authorize({ ...ga, nodeId: 'node-a' }));
    granted(await rig.signer.authorize({ ...ga, nodeId: 'node-a' }));
    refused(await rig.signer.authorize({ ...ga, nodeId: 'node-b' }), 'conflict');
    refused(await rig.signer.authorize({ ...ga, round: 2n, nodeId: 'node-a' }), 'regression');
  });

  it("two agents sharing a store: the second gets the first one's signature, never a new one", async () => {
    const { rig: a, storePath } = fresh('agent-a');
    const b = openSignerRig(storePath, join(dir, 'b-local.db'), 'agent-b');
    rigs.push(b);
    const payload = enc('p');
    const ga = granted(
      await a.signer.sign({ family: 'slot', chainId: 'c', keyId: 'k1', slot: 8n, payload }),
    );
    const gb = granted(
      await b.signer.sign({ family: 'slot', chainId: 'c', keyId: 'k1', slot: 8n, payload }),
    );
    assert.equal(gb.outcome, 'replayed');
    assert.deepEqual(gb.signature, ga.signature);
    refused(
      await b.signer.sign({
        family: 'slot',
        chainId: 'c',
        keyId: 'k1',
        slot: 8n,
        payload: enc('q'),
      }),
      'conflict',
    );
    refused(
      await b.signer.sign({ family: 'slot', chainId: 'c', keyId: 'k1', slot: 7n, payload }),
      'regression',
    );
  });

  it('one key under two configured ids shares one watermark', async () => {
    const { rig } = fresh();
    rig.keys.add({ id: 'alias', scopeKeyId: rig.key.publicKeyHex, signer: rig.key });
    const payload = enc('p');
    granted(
      await rig.signer.sign({ family: 'slot', chainId: 'c', keyId: 'k1', slot: 5n, payload }),
    );
    refused(
      await rig.signer.sign({
        family: 'slot',
        chainId: 'c',
        keyId: 'alias',
        slot: 5n,
        payload: enc('q'),
      }),
      'conflict',
    );
    refused(
      await rig.signer.sign({ family: 'slot', chainId: 'c', keyId: 'alias', slot: 4n, payload }),
      'regression',
    );
    assert.equal((await rig.store.list()).length, 1);
  });

  it('releases nothing when the write fails after the signature was computed', async () => {
    const { rig, storePath } = fresh();
    const payload = enc('p');
    const first = granted(
      await rig.signer.sign({ family: 'slot', chainId: 'c', keyId: 'k1', slot: 1n, payload }),
    );
    // Another process makes every later write fail inside the transaction, after the rule
    // granted and the key signed: the signer must answer without a signature.
    const other = new Database(storePath);
    other.exec(
      `CREATE TRIGGER refuse_writes BEFORE UPDATE ON watermarks
       BEGIN SELECT RAISE(ABORT, 'disk says no'); END`,
    );
    other.close();
    const r = refused(
      await rig.signer.sign({ family: 'slot', chainId: 'c', keyId: 'k1', slot: 2n, payload }),
      'store_unavailable',
    );
    assert.match(r.message, /disk says no/);
    const w = await rig.store.get({ chainId: 'c', keyId: rig.key.publicKeyHex, family: 'slot' });
    assert.deepEqual(w?.position, [1n]);
    assert.deepEqual(w?.signature, first.signature);
    // Nor did the local watermark move: after the trigger is gone, slot 2 is granted.
    const fix = new Database(storePath);
    fix.exec('DROP TRIGGER refuse_writes');
    fix.close();
    granted(
      await rig.signer.sign({ family: 'slot', chainId: 'c', keyId: 'k1', slot: 2n, payload }),
    );
  });

  describe('the local watermark', () => {
    const payload = enc('p');
    const slotReq = (slot: bigint) =>
      ({ family: 'slot', chainId: 'c', keyId: 'k1', slot, payload }) as const;

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
      refused(await reborn.signer.sign({ ...slotReq(1n), chainId: 'other' }), 'store_identity');
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
      // Authorizations are held back too.
      refused(
        await reborn.signer.authorize({
          family: 'slot',
          chainId: 'c',
          keyId: 'k1',
          slot: 9n,
          nodeId: 'n',
        }),
        'store_behind_local',
      );
      // Another scope has no local watermark and is not affected.
      granted(await reborn.signer.sign({ ...slotReq(1n), chainId: 'other' }));
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
        { chainId: 'c', keyId: restored.key.publicKeyHex, family: 'slot' },
        () => ({ write: { family: 'slot', position: [9n] }, result: null }),
      );
      refused(await restored.signer.sign(slotReq(9n)), 'conflict');
      granted(await restored.signer.sign(slotReq(10n)));
    });

    it('refuses with a fresh store and the same LocalWatermarks object, even once adopted', async () => {
      const { rig } = fresh();
      granted(await rig.signer.sign(slotReq(2n)));
      const { GuardedSigner } = await import('../../src/signer/guarded-signer.js');
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
          reopened.get({ chainId: 'c', keyId: rig.key.publicKeyHex, family: 'slot' }),
          [12n],
        );
      } finally {
        reopened.close();
      }
    });
  });
});
