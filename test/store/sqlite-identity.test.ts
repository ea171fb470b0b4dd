/**
 * The SQLite store's identity on real files: created only with `create`, kept forever, and the
 * path checked against the open file at every decision.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreIdentityError, StoreUnavailableError } from '../../src/errors.js';
import { SqliteWatermarkStore } from '../../src/store/sqlite.js';
import type { WatermarkStore } from '../../src/store/types.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const scope = { chainId: 'c', keyId: 'k', family: 'slot' as const };
const raise = (store: WatermarkStore, slot: bigint) =>
  store.update(scope, () => ({ write: { family: 'slot', position: [slot] }, result: slot }));

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'vigil-store-id-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

const isIdentityError = (pattern: RegExp) => (e: unknown) =>
  e instanceof StoreIdentityError && e.code === 'STORE_IDENTITY' && pattern.test(e.message);

describe('SQLite store identity', () => {
  it('refuses a missing file without create, and creates nothing', () => {
    const path = join(dir, 'missing', 'w.db');
    assert.throws(
      () => SqliteWatermarkStore.open({ path }),
      isIdentityError(/no watermark store at .*w\.db.*vigil state init/),
    );
    assert.equal(existsSync(path), false);
    assert.equal(existsSync(join(dir, 'missing')), false);
  });

  it('create makes a fresh identity once; reopening and creating again keep it', async () => {
    const path = join(dir, 'init.db');
    const first = SqliteWatermarkStore.open({ path, create: true });
    const { identity } = first;
    assert.match(identity.storeId, UUID);
    assert.equal(identity.engine, 'sqlite');
    assert.ok(!Number.isNaN(Date.parse(identity.createdAt)));
    await raise(first, 4n);
    await first.close();
    const reopened = SqliteWatermarkStore.open({ path });
    assert.deepEqual(reopened.identity, identity);
    await reopened.close();
    const recreated = SqliteWatermarkStore.open({ path, create: true });
    assert.deepEqual(recreated.identity, identity);
    assert.deepEqual((await recreated.get(scope))?.position, [4n]);
    await recreated.close();
    // Another file is another store, even with the same content.
    const other = SqliteWatermarkStore.open({ path: join(dir, 'init-2.db'), create: true });
    assert.notEqual(other.identity.storeId, identity.storeId);
    await other.close();
  });

  it('processes initialising one fresh file at once agree on a single identity', async () => {
    const module = new URL('../../src/store/sqlite.js', import.meta.url).href;
    const script = `
      const { SqliteWatermarkStore } = await import(${JSON.stringify(module)});
      const s = SqliteWatermarkStore.open({ path: process.argv[1], busyTimeoutMs: 30, create: true });
      process.stdout.write(s.identity.storeId);
      await s.close();
    `;
    for (let round = 0; round < 3; round++) {
      const path = join(dir, `race-${round}.db`);
      const ids = await Promise.all(
        Array.from({ length: 5 }, () => {
          const child = spawn(process.execPath, ['--input-type=module', '-e', script, path], {
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let out = '';
          let err = '';
          child.stdout.on('data', (d: Buffer) => (out += d.toString()));
          child.stderr.on('data', (d: Buffer) => (err += d.toString()));
          return new Promise<string>((resolve) =>
            child.on('exit', (code) => resolve(code === 0 ? out : `failed: ${err}`)),
          );
        }),
      );
      assert.match(ids[0]!, UUID);
      assert.deepEqual(ids, Array(5).fill(ids[0]));
      const store = SqliteWatermarkStore.open({ path });
      assert.equal(store.identity.storeId, ids[0]);
      await store.close();
    }
  });

  it('refuses a file that has no identity: empty, or foreign', () => {
    const empty = join(dir, 'empty.db');
    writeFileSync(empty, '');
    assert.throws(
      () => SqliteWatermarkStore.open({ path: empty }),
      isIdentityError(/not an initialised Vigil watermark store/),
    );
    const foreign = join(dir, 'foreign.db');
    const db = new Database(foreign);
    db.exec('CREATE TABLE t (x)');
    db.close();
    assert.throws(
      () => SqliteWatermarkStore.open({ path: foreign }),
      isIdentityError(/no store identity/),
    );
    const left = new Database(foreign, { readonly: true });
    assert.equal(left.pragma('journal_mode', { simple: true }), 'delete', 'left as it was');
    left.close();
  });

  it('a store from before identities (schema 2) is adopted only with the acknowledgement', async () => {
    const path = join(dir, 'schema2.db');
    const db = new Database(path);
    db.exec(`
      CREATE TABLE watermarks (scope TEXT PRIMARY KEY, chain_id TEXT NOT NULL, key_id TEXT NOT NULL,
        family TEXT NOT NULL, record TEXT NOT NULL) STRICT;
      CREATE TABLE leases (role TEXT PRIMARY KEY, token INTEGER NOT NULL, holder TEXT,
        expires_at_ms INTEGER NOT NULL) STRICT;
      PRAGMA user_version = 2;
    `);
    db.close();
    // The schema-2 file gets a watermark written by this Vigil's own codec.
    const seeded = join(dir, 'seed.db');
    const seed = SqliteWatermarkStore.open({ path: seeded, create: true });
    await raise(seed, 77n);
    await seed.close();
    const row = new Database(seeded).prepare('SELECT * FROM watermarks').get() as Record<
      string,
      string
    >;
    const old = new Database(path);
    old
      .prepare('INSERT INTO watermarks VALUES (?, ?, ?, ?, ?)')
      .run(row.scope, row.chain_id, row.key_id, row.family, row.record);
    old.close();
    const adoptHint = /before store identities \(schema 2\).*--adopt-existing/;
    assert.throws(() => SqliteWatermarkStore.open({ path }), isIdentityError(adoptHint));
    assert.throws(
      () => SqliteWatermarkStore.open({ path, create: true }),
      isIdentityError(adoptHint),
    );
    const untouched = new Database(path, { readonly: true });
    assert.equal(untouched.pragma('user_version', { simple: true }), 2, 'a refused open…');
    assert.equal(untouched.pragma('journal_mode', { simple: true }), 'delete', '…changed nothing');
    untouched.close();
    const adopted = SqliteWatermarkStore.open({ path, create: true, adoptExisting: true });
    assert.match(adopted.identity.storeId, UUID);
    assert.deepEqual((await adopted.get(scope))?.position, [77n]);
    await adopted.close();
    assert.equal(SqliteWatermarkStore.open({ path }).identity.storeId, adopted.identity.storeId);
  });

  it('creates the database and its -wal and -shm with mode 0600 whatever the umask', async () => {
    const previous = process.umask(0o000);
    try {
      const path = join(dir, 'modes', 'w.db');
      const store = SqliteWatermarkStore.open({ path, create: true });
      await raise(store, 1n);
      for (const file of [path, `${path}-wal`, `${path}-shm`]) {
        assert.equal(statSync(file).mode & 0o777, 0o600, file);
      }
      await store.close();
    } finally {
      process.umask(previous);
    }
  });

  it('refuses every call once its file is deleted, and stays refusing after a new file appears', async () => {
    const path = join(dir, 'unlinked.db');
    const store = SqliteWatermarkStore.open({ path, create: true });
    assert.equal(await raise(store, 1n), 1n);
    for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
    await assert.rejects(raise(store, 2n), isIdentityError(/was deleted while/));
    await assert.rejects(store.ping(), isIdentityError(/was deleted while/));
    await assert.rejects(store.get(scope), StoreIdentityError);
    // An operator initialises a new store at the path: still not the store this one opened.
    const reborn = SqliteWatermarkStore.open({ path, create: true });
    await assert.rejects(raise(store, 3n), isIdentityError(/was deleted while/));
    await assert.rejects(store.ping(), StoreIdentityError);
    assert.deepEqual(await reborn.list(), [], 'nothing written through the stale handle');
    await reborn.close();
    await store.close();
  });

  it('refuses once another file is renamed over its path, or an old copy restored there', async () => {
    const path = join(dir, 'renamed.db');
    const store = SqliteWatermarkStore.open({ path, create: true });
    await raise(store, 5n);
    const otherPath = join(dir, 'renamed-other.db');
    const other = SqliteWatermarkStore.open({ path: otherPath, create: true });
    await other.close();
    renameSync(otherPath, path);
    await assert.rejects(raise(store, 6n), isIdentityError(/replaced by another file/));
    await assert.rejects(store.ping(), isIdentityError(/replaced by another file/));
    await store.close();

    // A copy of the same store (a backup restored over it) is the same identity but another
    // file: a running process is refused; a process started on it opens it normally.
    const live = join(dir, 'restored.db');
    const a = SqliteWatermarkStore.open({ path: live, create: true });
    await raise(a, 1n);
    await a.close();
    copyFileSync(live, `${live}.bak`);
    const running = SqliteWatermarkStore.open({ path: live });
    await raise(running, 2n);
    unlinkSync(live);
    copyFileSync(`${live}.bak`, live);
    await assert.rejects(raise(running, 3n), isIdentityError(/replaced by another file/));
    await running.close();
    const restarted = SqliteWatermarkStore.open({ path: live });
    assert.equal(restarted.identity.storeId, a.identity.storeId);
    await restarted.close();
  });

  it('refuses to initialise over the log of a store deleted while open', async () => {
    const path = join(dir, 'orphan.db');
    const store = SqliteWatermarkStore.open({ path, create: true });
    await raise(store, 1n);
    unlinkSync(path);
    assert.ok(existsSync(`${path}-wal`));
    assert.throws(
      () => SqliteWatermarkStore.open({ path, create: true }),
      isIdentityError(/is missing but its .*-wal.* still there/),
    );
    assert.equal(existsSync(path), false, 'no file was created');
    await store.close();
  });

  it('opens :memory: without create (nothing to lose), and a bad place is unavailable', () => {
    const mem = SqliteWatermarkStore.open({ path: ':memory:' });
    assert.match(mem.identity.storeId, UUID);
    void mem.close();
    const blocker = join(dir, 'a-file');
    writeFileSync(blocker, '');
    assert.throws(
      () => SqliteWatermarkStore.open({ path: join(blocker, 'w.db'), create: true }),
      StoreUnavailableError,
    );
  });
});
