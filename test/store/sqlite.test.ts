/** The embedded SQLite engine on real files in temp dirs. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreUnavailableError } from '../../src/errors.js';
import type { Watermark } from '../../src/guard/index.js';
import { CorruptRecordError } from '../../src/store/record-codec.js';
import { SqliteWatermarkStore } from '../../src/store/sqlite.js';
import type { WatermarkScope } from '../../src/store/types.js';
import { openSignerRig, req, tempDir } from '../helpers/guard-fixtures.js';

const scope: WatermarkScope = {
  chainId: 'chain/with spaces%',
  keyId: 'ab'.repeat(32),
  family: 'cometbft',
};

const full: Watermark = {
  family: 'cometbft',
  position: [9223372036854775807n, 0n, 3n],
  payloadHash: new Uint8Array(32).fill(1),
  signature: new Uint8Array(64).fill(2),
  signBytes: new Uint8Array([5, 4, 3, 2, 1, 0]),
  writer: 'agent-a',
  updatedAtMs: 1_700_000_000_123,
};

function rawDb(store: SqliteWatermarkStore): Database.Database {
  return (store as unknown as { db: Database.Database }).db;
}

describe('SqliteWatermarkStore', () => {
  let dir: string;
  let cleanup: () => void;
  before(() => ({ dir, cleanup } = tempDir('vigil-store-')));
  after(() => cleanup());

  it('runs in WAL mode with synchronous=FULL', async () => {
    const store = SqliteWatermarkStore.open({ path: join(dir, 'pragmas', 'w.db'), create: true });
    try {
      assert.equal(rawDb(store).pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(rawDb(store).pragma('synchronous', { simple: true }), 2);
    } finally {
      await store.close();
    }
    // WAL is a property of the file: another connection sees it too.
    const other = new Database(join(dir, 'pragmas', 'w.db'));
    try {
      assert.equal(other.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      other.close();
    }
  });

  it('round-trips every field of a record, and lists it under its scope', async () => {
    const store = SqliteWatermarkStore.open({ path: join(dir, 'rt.db'), create: true });
    try {
      assert.equal(await store.get(scope), undefined);
      const result = await store.update(scope, (current) => {
        assert.equal(current, undefined);
        return { write: full, result: 'written' };
      });
      assert.equal(result, 'written');
      assert.deepEqual(await store.get(scope), full);
      assert.deepEqual(await store.list(), [{ scope, watermark: full }]);
      const minimal: Watermark = { family: 'slot', position: [0n] };
      const s2: WatermarkScope = { ...scope, family: 'slot' };
      await store.update(s2, () => ({ write: minimal, result: null }));
      assert.deepEqual(await store.get(s2), minimal);
      await store.ping();
    } finally {
      await store.close();
    }
  });

  it('keeps its data across close and reopen', async () => {
    const path = join(dir, 'reopen.db');
    const a = SqliteWatermarkStore.open({ path, create: true });
    await a.update(scope, () => ({ write: full, result: null }));
    await a.close();
    const b = SqliteWatermarkStore.open({ path });
    try {
      assert.deepEqual(await b.get(scope), full);
      // And the next update sees it as the current watermark.
      await b.update(scope, (current) => {
        assert.deepEqual(current, full);
        return { result: null };
      });
    } finally {
      await b.close();
    }
  });

  it('update is atomic: a decide that throws leaves nothing written', async () => {
    const store = SqliteWatermarkStore.open({ path: join(dir, 'atomic.db'), create: true });
    try {
      await store.update(scope, () => ({ write: full, result: null }));
      const boom = new Error('rule bug');
      await assert.rejects(
        store.update(scope, () => {
          throw boom;
        }),
        (e) => e === boom,
      );
      assert.deepEqual(await store.get(scope), full);
      // No write requested → nothing changes.
      await store.update(scope, () => ({ result: null }));
      assert.deepEqual(await store.get(scope), full);
    } finally {
      await store.close();
    }
  });

  it('a second connection on the same file sees committed watermarks in its update', async () => {
    const path = join(dir, 'shared.db');
    const a = SqliteWatermarkStore.open({ path, create: true });
    const b = SqliteWatermarkStore.open({ path });
    try {
      await b.get(scope); // b has read before a writes: no stale snapshot may survive.
      await a.update(scope, () => ({ write: full, result: null }));
      const seen = await b.update(scope, (current) => ({ result: current }));
      assert.deepEqual(seen, full);
    } finally {
      await a.close();
      await b.close();
    }
  });

  describe('a corrupt record is a refusal, never "no watermark"', () => {
    const corruptions: Array<[string, string]> = [
      ['not JSON', '{oops'],
      ['JSON null', 'null'],
      ['unknown version', JSON.stringify({ v: 99, family: 'slot', position: ['1'] })],
      ['unknown family', JSON.stringify({ v: 1, family: 'pow', position: ['1'] })],
      ['empty position', JSON.stringify({ v: 1, family: 'slot', position: [] })],
      ['negative position', JSON.stringify({ v: 1, family: 'slot', position: ['-1'] })],
      [
        '2^63 position',
        JSON.stringify({ v: 1, family: 'slot', position: ['9223372036854775808'] }),
      ],
      ['numeric position', JSON.stringify({ v: 1, family: 'slot', position: [5] })],
      ['bad hex', JSON.stringify({ v: 1, family: 'slot', position: ['1'], signature: 'zz' })],
    ];
    for (const [name, text] of corruptions) {
      it(name, async () => {
        const path = join(dir, `corrupt-${name.replace(/\W+/g, '-')}.db`);
        const store = SqliteWatermarkStore.open({ path, create: true });
        try {
          await store.update(scope, () => ({ write: full, result: null }));
          rawDb(store).prepare('UPDATE watermarks SET record = ?').run(text);
          let decideCalled = false;
          await assert.rejects(
            store.update(scope, () => {
              decideCalled = true;
              return { write: { family: 'cometbft', position: [1n, 0n, 1n] }, result: null };
            }),
            (e) => e instanceof CorruptRecordError && e.code === 'STORE_RECORD_CORRUPT',
          );
          assert.equal(decideCalled, false, 'decide must not run on a corrupt record');
          await assert.rejects(store.get(scope), CorruptRecordError);
          await assert.rejects(store.list(), CorruptRecordError);
          // Nothing was overwritten.
          const row = rawDb(store).prepare('SELECT record FROM watermarks').get() as {
            record: string;
          };
          assert.equal(row.record, text);
        } finally {
          await store.close();
        }
      });
    }

    it('the signer releases nothing for a corrupt scope', async () => {
      const rig = openSignerRig(join(dir, 'corrupt-signer.db'), join(dir, 'corrupt-local.db'));
      try {
        const first = await rig.signer.sign(req.slot(1n, 1));
        assert.equal(first.outcome, 'granted');
        rawDb(rig.store).prepare('UPDATE watermarks SET record = ?').run('{broken');
        const result = await rig.signer.sign(req.slot(2n, 2));
        assert.equal(result.outcome, 'refused');
        if (result.outcome === 'refused') {
          assert.equal(result.reason, 'store_unavailable');
          assert.match(result.message, /unreadable.*vigil state show/);
        }
        assert.equal((result as { signature?: unknown }).signature, undefined);
      } finally {
        await rig.close();
      }
    });
  });

  it('a writer blocked past the busy timeout gets StoreUnavailableError', async () => {
    const path = join(dir, 'busy.db');
    const store = SqliteWatermarkStore.open({ path, busyTimeoutMs: 50, create: true });
    const blocker = new Database(path);
    try {
      blocker.exec('BEGIN IMMEDIATE');
      let decideCalled = false;
      await assert.rejects(
        store.update(scope, () => {
          decideCalled = true;
          return { write: full, result: null };
        }),
        (e) =>
          e instanceof StoreUnavailableError &&
          e.code === 'STORE_UNAVAILABLE' &&
          /lock|busy/i.test(e.message),
      );
      assert.equal(decideCalled, false);
      blocker.exec('ROLLBACK');
      await store.update(scope, () => ({ write: full, result: null }));
      assert.deepEqual(await store.get(scope), full);
    } finally {
      if (blocker.inTransaction) blocker.exec('ROLLBACK');
      blocker.close();
      await store.close();
    }
  });

  it('several processes opening one fresh file at once all succeed', async () => {
    const { spawn } = await import('node:child_process');
    const module = new URL('../../src/store/sqlite.js', import.meta.url).href;
    const script = `
      const { SqliteWatermarkStore } = await import(${JSON.stringify(module)});
      const s = SqliteWatermarkStore.open({ path: process.argv[1], busyTimeoutMs: 30, create: true });
      await s.update({ chainId: 'c', keyId: 'k', family: 'slot' }, () => ({ result: 0 }));
      await s.close();
    `;
    for (let round = 0; round < 5; round++) {
      const path = join(dir, `fresh-${round}.db`);
      const codes = await Promise.all(
        Array.from({ length: 6 }, () => {
          const child = spawn(process.execPath, ['--input-type=module', '-e', script, path], {
            stdio: ['ignore', 'ignore', 'pipe'],
          });
          let err = '';
          child.stderr.on('data', (d: Buffer) => (err += d.toString()));
          return new Promise<string>((resolve) =>
            child.on('exit', (code) => resolve(code === 0 ? 'ok' : err)),
          );
        }),
      );
      assert.deepEqual(codes, Array(6).fill('ok'));
    }
  });

  it('a closed store answers every call with StoreUnavailableError, never a plain error', async () => {
    const store = SqliteWatermarkStore.open({ path: join(dir, 'closed.db'), create: true });
    await store.close();
    const scope = { chainId: 'c', keyId: 'k', family: 'slot' as const };
    for (const call of [
      () => store.update(scope, () => ({ result: 1 })),
      () => store.get(scope),
      () => store.list(),
      () => store.ping(),
    ]) {
      await assert.rejects(
        call(),
        (e: unknown) => e instanceof StoreUnavailableError && /closed/.test(e.message),
      );
    }
  });

  it('the signer answers store_unavailable while another process holds the lock', async () => {
    const rig = openSignerRig(join(dir, 'busy-signer.db'), join(dir, 'busy-local.db'), 'a', 30);
    const blocker = new Database(join(dir, 'busy-signer.db'));
    try {
      blocker.exec('BEGIN IMMEDIATE');
      const r = await rig.signer.sign(req.slot(1n, 1));
      assert.equal(r.outcome, 'refused');
      if (r.outcome === 'refused') assert.equal(r.reason, 'store_unavailable');
      assert.equal((r as { signature?: unknown }).signature, undefined);
      blocker.exec('ROLLBACK');
      assert.equal(
        await rig.store.get({ chainId: 'c', keyId: rig.key.publicKeyHex, family: 'slot' }),
        undefined,
      );
    } finally {
      if (blocker.inTransaction) blocker.exec('ROLLBACK');
      blocker.close();
      await rig.close();
    }
  });

  it('refuses to open a store written by a newer schema, or in an unusable place', async () => {
    const path = join(dir, 'newer.db');
    const db = new Database(path);
    db.pragma('user_version = 999');
    db.close();
    assert.throws(() => SqliteWatermarkStore.open({ path }), StoreUnavailableError);
    assert.throws(
      () => SqliteWatermarkStore.open({ path: join(dir, 'newer.db', 'sub', 'w.db'), create: true }),
      StoreUnavailableError,
    );
  });
});
