/** The registry on real SQLite files (src/registry/store-sqlite.ts). */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { StoreIdentityError } from '../../src/errors.js';
import { peerIdFromEd25519 } from '../../src/registry/peer-id.js';
import { RegistryStore } from '../../src/registry/store.js';
import {
  REGISTRY_APPLICATION_ID,
  REGISTRY_SCHEMA_VERSION,
  SqliteRegistryCells,
} from '../../src/registry/store-sqlite.js';
import { SqliteWatermarkStore } from '../../src/store/sqlite.js';
import { tempDir } from '../helpers/guard-fixtures.js';
import { NOW, SET, keyOf, submission, submitOnTop } from './fixtures.js';
import { checkSeqs, registryStoreSuite } from './store-suite.js';

const WORKER = new URL('./sqlite-submitter.js', import.meta.url);

describe('registry on SQLite', () => {
  let dir: string;
  let cleanup: () => void;
  before(() => ({ dir, cleanup } = tempDir('vigil-registry-')));
  after(() => cleanup());

  const openAt = (path: string, create = false) =>
    new RegistryStore(new SqliteRegistryCells({ path, create }), {
      validators: SET,
      nowMs: () => NOW,
    });

  describe('store behaviour', () => {
    let path: string;
    before(() => {
      path = join(dir, 'suite', 'registry.db');
      void openAt(path, true).close();
    });
    registryStoreSuite(
      async () => openAt(path),
      async (subject, bytes) => {
        const db = new Database(path);
        try {
          db.prepare(
            'INSERT INTO records (subject, seq, record) VALUES (?, 1, ?) ON CONFLICT (subject) DO UPDATE SET record = excluded.record',
          ).run(subject, Buffer.from(bytes));
        } finally {
          db.close();
        }
      },
    );
  });

  it('creates its own file with its schema version, only when asked, and keeps records across reopen', async () => {
    const path = join(dir, 'schema', 'r.db');
    assert.throws(() => new SqliteRegistryCells({ path }), StoreIdentityError);
    const cells = new SqliteRegistryCells({ path, create: true });
    assert.equal(cells.schemaVersion, REGISTRY_SCHEMA_VERSION);
    const store = new RegistryStore(cells, { validators: SET, nowMs: () => NOW });
    await store.submit(submission(keyOf(30)));
    await store.close();
    const raw = new Database(path, { readonly: true });
    try {
      assert.equal(raw.pragma('application_id', { simple: true }), REGISTRY_APPLICATION_ID);
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      raw.close();
    }
    const again = openAt(path);
    try {
      assert.equal((await again.get(peerIdFromEd25519(keyOf(30).publicKey)))?.seq, 1n);
    } finally {
      await again.close();
    }
  });

  it('refuses a file from a newer Vigil, and a file that is not a registry (the watermark store)', async () => {
    const newer = join(dir, 'newer.db');
    await openAt(newer, true).close();
    const db = new Database(newer);
    db.pragma(`user_version = ${REGISTRY_SCHEMA_VERSION + 1}`);
    db.close();
    assert.throws(() => new SqliteRegistryCells({ path: newer }), /newer than this Vigil/);
    const watermarks = join(dir, 'watermarks.db');
    await SqliteWatermarkStore.open({ path: watermarks, create: true }).close();
    assert.throws(
      () => new SqliteRegistryCells({ path: watermarks, create: true }),
      /not a Vigil registry database/,
    );
  });

  it('concurrent submissions from worker threads, each with its own connection: strictly increasing seqs, no lost update', async () => {
    const path = join(dir, 'workers.db');
    await openAt(path, true).close();
    const workers = 4;
    const count = 15;
    const results = await Promise.all(
      Array.from(
        { length: workers },
        (_, worker) =>
          new Promise<Array<{ seq: bigint; tag: number }>>((resolve, reject) => {
            const w = new Worker(WORKER, { workerData: { path, worker, count, subjectTag: 40 } });
            w.once(
              'message',
              (m: { seqs?: Array<{ seq: string; tag: number }>; error?: string }) =>
                m.error
                  ? reject(new Error(m.error))
                  : resolve(m.seqs!.map((s) => ({ seq: BigInt(s.seq), tag: s.tag }))),
            );
            w.once('error', reject);
          }),
      ),
    );
    checkSeqs(results, workers * count);
    const store = openAt(path);
    try {
      const final = await store.get(peerIdFromEd25519(keyOf(40).publicKey));
      const last = results.flat().find((r) => r.seq === BigInt(workers * count))!;
      assert.equal(final?.seq, BigInt(workers * count));
      assert.equal(final?.content.issuedAtMs, NOW + last.tag);
    } finally {
      await store.close();
    }
  });

  it('seq strictly increases per subject under any interleaving of concurrent commits (property)', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ writer: fc.nat({ max: 3 }), subject: fc.nat({ max: 2 }) }), {
          minLength: 1,
          maxLength: 24,
        }),
        fc.scheduler(),
        async (ops, s) => {
          const path = join(dir, `prop-${run++}.db`);
          const stores = [0, 1, 2, 3].map((i) => openAt(path, i === 0));
          // Every operation's reads and writes are scheduled by fast-check in a random order.
          const scheduled = stores.map(
            (st) =>
              new RegistryStore(
                {
                  engine: 'sqlite',
                  update: (subject, decide) =>
                    s.schedule(Promise.resolve()).then(() => st.cells.update(subject, decide)),
                  get: (subject) => s.schedule(Promise.resolve()).then(() => st.cells.get(subject)),
                  list: () => st.cells.list(),
                  readSets: () => st.cells.readSets(),
                  appendSet: (epoch, bytes, prev) => st.cells.appendSet(epoch, bytes, prev),
                  close: () => st.cells.close(),
                },
                { validators: SET, nowMs: () => NOW },
              ),
          );
          try {
            const done = Promise.all(
              ops.map(async (op, i) => {
                const seq = await submitOnTop(scheduled[op.writer]!, keyOf(50 + op.subject), i + 1);
                return { subject: op.subject, seq };
              }),
            );
            await s.waitFor(done);
            const commits = await done;
            for (const subject of [0, 1, 2]) {
              const mine = commits.filter((c) => c.subject === subject);
              checkSeqs(
                mine.map((c) => [{ seq: c.seq }]),
                mine.length,
              );
              const stored = await stores[0]!.get(peerIdFromEd25519(keyOf(50 + subject).publicKey));
              assert.equal(stored?.seq ?? 0n, BigInt(mine.length));
            }
          } finally {
            await Promise.all(stores.map((st) => st.close()));
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
