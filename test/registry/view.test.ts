/** The local registry view: schema version and a migration on a populated database. */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  RegistryView,
  VIEW_APPLICATION_ID,
  VIEW_MIGRATIONS,
  VIEW_SCHEMA_VERSION,
} from '../../src/registry/view.js';
import { tempDir } from '../helpers/guard-fixtures.js';
import { VALIDATORS, keyOf, signedRecord } from './fixtures.js';

let root: string;
let cleanup: () => void;
before(() => ({ dir: root, cleanup } = tempDir('vigil-registry-view-')));
after(() => cleanup());

it('a v1 view full of records is migrated in place: rows kept, the new column usable', () => {
  const path = join(root, 'v1.db');
  const db = new Database(path);
  db.exec(VIEW_MIGRATIONS[0]!);
  db.pragma(`application_id = ${VIEW_APPLICATION_ID}`);
  db.pragma('user_version = 1');
  const rows = Array.from({ length: 200 }, (_, i) => signedRecord(keyOf(i + 1), VALIDATORS));
  const ins = db.prepare('INSERT INTO records (subject, seq, record) VALUES (?, ?, ?)');
  db.transaction(() => {
    for (const r of rows) ins.run(r.record.peerId, r.record.seq, Buffer.from(r.bytes));
  })();
  // A reader holding the file open during the upgrade keeps reading (WAL).
  db.pragma('journal_mode = WAL');
  const view = new RegistryView(path);
  assert.equal(Number(db.pragma('user_version', { simple: true })), VIEW_SCHEMA_VERSION);
  assert.equal(
    (db.prepare('SELECT count(*) AS n FROM records').get() as { n: number }).n,
    rows.length,
  );
  db.close();
  assert.equal(view.count(), 200);
  const one = view.get(rows[7]!.record.peerId)!;
  assert.deepEqual(Buffer.from(one.bytes), Buffer.from(rows[7]!.bytes));
  assert.equal(one.acceptedAtMs, 0);
  // A newer version lands with its acceptance time; an older one does not replace it.
  const next = signedRecord(keyOf(8), VALIDATORS, { prevSeq: 1n, role: 'relay' });
  assert.equal(view.put(next.record, next.bytes, 1234), true);
  assert.equal(view.put(rows[7]!.record, rows[7]!.bytes, 9999), false);
  assert.equal(view.get(next.record.peerId)!.acceptedAtMs, 1234);
  assert.equal(view.seq(next.record.peerId), 2n);
  view.close();
  // Opening again is a no-op at the current version.
  new RegistryView(path).close();
});

it('a new view is created 0600; a view from a newer Vigil is refused', () => {
  const path = join(root, 'new.db');
  new RegistryView(path).close();
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const db = new Database(path);
  db.pragma(`user_version = ${VIEW_SCHEMA_VERSION + 1}`);
  db.close();
  assert.throws(() => new RegistryView(path), /newer than this Vigil/);
});
