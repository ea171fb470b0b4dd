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
import { NOW, VALIDATORS, keyOf, signedRecord } from './fixtures.js';

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
  // v1 rows reach v4 with their expiry: the summary lists all 200 at their seq.
  assert.equal(view.summary(NOW).length, 200);
  assert.equal(view.summary(NOW).find((v) => v.subject === next.record.peerId)?.seq, 2n);
  view.close();
  // Opening again is a no-op at the current version.
  new RegistryView(path).close();
});

it('a v3 view full of records is migrated to v4: every expiry backfilled, the summary read from the version index', () => {
  const path = join(root, 'v3.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  for (const step of VIEW_MIGRATIONS.slice(0, 3)) db.exec(step);
  db.pragma(`application_id = ${VIEW_APPLICATION_ID}`);
  db.pragma('user_version = 3');
  // Lifetimes differ per record, so a backfill that copied one value would show.
  const rows = Array.from({ length: 300 }, (_, i) =>
    signedRecord(keyOf((i % 250) + 1), VALIDATORS, {
      prevSeq: BigInt(Math.floor(i / 250)),
      expiresAtMs: NOW + 60_000 * (i + 1),
    }),
  ).slice(50); // tags 1..50 appear twice: keep their second version only
  const ins = db.prepare(
    'INSERT INTO records (subject, seq, record, accepted_at_ms, epoch) VALUES (?, ?, ?, ?, ?)',
  );
  db.transaction(() => {
    for (const [i, r] of rows.entries())
      ins.run(r.record.peerId, r.record.seq, Buffer.from(r.bytes), 1000 + i, i % 3);
    // A row whose body does not decode: it keeps expiry 0 and is never offered.
    ins.run('12D3KooWbroken', 1, Buffer.from([1, 2, 3]), 0, 0);
  })();
  const view = new RegistryView(path);
  assert.equal(Number(db.pragma('user_version', { simple: true })), VIEW_SCHEMA_VERSION);
  assert.equal(VIEW_SCHEMA_VERSION, 4);
  const expiries = db.prepare('SELECT subject, expires_at_ms AS e FROM records').all() as Array<{
    subject: string;
    e: number;
  }>;
  const want = new Map(rows.map((r) => [r.record.peerId, r.record.content.expiresAtMs]));
  want.set('12D3KooWbroken', 0);
  assert.deepEqual(new Map(expiries.map((r) => [r.subject, r.e])), want);
  const plan = db
    .prepare(
      'EXPLAIN QUERY PLAN SELECT subject, seq, epoch FROM records WHERE expires_at_ms > ? ORDER BY subject',
    )
    .all(NOW) as Array<{ detail: string }>;
  assert.match(plan.map((p) => p.detail).join(' '), /COVERING INDEX records_versions/);
  db.close();

  // The summary: every unexpired record's (subject, seq, epoch), in subject order.
  const expected = (now: number) =>
    rows
      .map((r, i) => ({ r, epoch: BigInt(i % 3) }))
      .filter(({ r }) => r.record.content.expiresAtMs > now)
      .map(({ r, epoch }) => ({ subject: r.record.peerId, seq: r.record.seq, epoch }))
      .sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0));
  assert.deepEqual(view.summary(NOW), expected(NOW));
  assert.equal(view.summary(NOW).length, 250);
  const later = NOW + 60_000 * 200;
  assert.deepEqual(view.summary(later), expected(later));
  assert.equal(view.summary(later).length, 100);
  // A put keeps the expiry column current; bytesOf answers in the order asked, skipping unknowns.
  const renewed = signedRecord(keyOf(251), VALIDATORS, { expiresAtMs: later + 1 });
  assert.equal(view.put(renewed.record, renewed.bytes, 5, 0n), true);
  assert.deepEqual(
    view.summary(later).find((v) => v.subject === renewed.record.peerId),
    { subject: renewed.record.peerId, seq: 1n, epoch: 0n },
  );
  const pick = [rows[9]!, renewed, rows[0]!];
  assert.deepEqual(
    view
      .bytesOf([pick[0]!.record.peerId, 'nobody', pick[1]!.record.peerId, pick[2]!.record.peerId])
      .map((b) => Buffer.from(b)),
    pick.map((r) => Buffer.from(r.bytes)),
  );
  view.close();
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
