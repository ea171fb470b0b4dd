/**
 * Every registry node's local view of the registry (issue 15, item 4): the newest accepted
 * record per subject, in its own SQLite file, with a schema version (PRAGMA user_version) and
 * migrations.
 *
 * Migrations are additive (new tables, columns with defaults, indexes) and each runs in its own
 * short transaction under WAL, so readers on other connections keep reading during an upgrade
 * and a node restarts on the new version without re-syncing: no downtime. A file newer than
 * this code is refused rather than guessed at.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StoreIdentityError, StoreUnavailableError, errorMessage } from '../errors.js';
import { createPrivateFile } from '../store/private-file.js';
import { decodeRecord, type SignedRecord } from './record.js';

/** 'VgRv': marks the file as a registry view. */
export const VIEW_APPLICATION_ID = 0x56675276;

/** Entry i takes the schema from version i to i + 1. */
export const VIEW_MIGRATIONS: readonly string[] = [
  `CREATE TABLE records (
     subject TEXT PRIMARY KEY,
     seq     INTEGER NOT NULL CHECK (seq > 0),
     record  BLOB NOT NULL
   ) STRICT;`,
  // v2: when this node accepted each version, for the propagation figures and `registry list`.
  `ALTER TABLE records ADD COLUMN accepted_at_ms INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX records_accepted_at ON records (accepted_at_ms);`,
  // v3: the validator-set epoch each record is attested at (a re-attested version replaces
  // the same seq attested at an older epoch), and the validator-set records this node holds.
  `ALTER TABLE records ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE validator_sets (
     epoch  INTEGER PRIMARY KEY CHECK (epoch > 0),
     record BLOB NOT NULL
   ) STRICT;`,
  // v4: each record's expiry beside it, and a covering index of (subject, seq, epoch, expiry):
  // the sync summary (`summary()`) reads the index alone, without a record body to decode.
  // Rows from before are filled in by VIEW_BACKFILLS[4] in the same transaction.
  `ALTER TABLE records ADD COLUMN expires_at_ms INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX records_versions ON records (subject, seq, epoch, expires_at_ms);`,
];
/**
 * Data steps that SQL alone cannot do, by the version they complete: run right after that
 * version's VIEW_MIGRATIONS entry, in its transaction.
 */
const VIEW_BACKFILLS: Readonly<Record<number, (db: Database.Database) => void>> = {
  // Each held record's expiry, decoded once. A row that does not decode keeps 0: expired, so
  // it is never offered (it could not have been sent anyway).
  4: (db) => {
    const rows = db.prepare('SELECT subject, record FROM records').all() as Array<{
      subject: string;
      record: Buffer;
    }>;
    const set = db.prepare('UPDATE records SET expires_at_ms = ? WHERE subject = ?');
    for (const row of rows) {
      let expiresAtMs: number;
      try {
        expiresAtMs = decodeRecord(new Uint8Array(row.record)).content.expiresAtMs;
      } catch {
        continue;
      }
      set.run(expiresAtMs, row.subject);
    }
  },
};
export const VIEW_SCHEMA_VERSION = VIEW_MIGRATIONS.length;

/** A held version, as the sync summary needs it: no record body. */
export interface ViewVersion {
  readonly subject: string;
  readonly seq: bigint;
  readonly epoch: bigint;
}

export interface ViewEntry {
  readonly record: SignedRecord;
  readonly bytes: Uint8Array;
  readonly acceptedAtMs: number;
}

export class RegistryView {
  private readonly db: Database.Database;
  private readonly selectSeq: Database.Statement<[string], { seq: bigint; epoch: bigint }>;
  private readonly selectOne: Database.Statement<
    [string],
    { record: Buffer; accepted_at_ms: bigint }
  >;
  private readonly selectAll: Database.Statement<[], { record: Buffer; accepted_at_ms: bigint }>;
  private readonly selectVersions: Database.Statement<[number], ViewVersion>;
  private readonly selectBytes: Database.Statement<[string], { record: Buffer }>;
  private readonly upsertNewer: Database.Statement<
    [string, bigint, Buffer, number, bigint, number]
  >;

  /** Opens (creating 0600 and migrating as needed) the view at `path`, or ':memory:'. */
  constructor(readonly path: string) {
    try {
      if (path !== ':memory:' && !existsSync(path)) {
        mkdirSync(dirname(path), { recursive: true });
        createPrivateFile(path);
      }
      this.db = new Database(path, { timeout: 5000 });
      this.db.pragma('journal_mode = WAL');
    } catch (err) {
      throw new StoreUnavailableError(
        `cannot open the registry view ${path}: ${errorMessage(err)}`,
      );
    }
    try {
      migrateView(this.db, path);
    } catch (err) {
      this.db.close();
      throw err;
    }
    this.db.defaultSafeIntegers(true);
    this.selectSeq = this.db.prepare('SELECT seq, epoch FROM records WHERE subject = ?');
    this.selectOne = this.db.prepare(
      'SELECT record, accepted_at_ms FROM records WHERE subject = ?',
    );
    this.selectAll = this.db.prepare('SELECT record, accepted_at_ms FROM records ORDER BY subject');
    // Answered from the records_versions index alone (a covering index scan, in subject order).
    this.selectVersions = this.db.prepare(
      'SELECT subject, seq, epoch FROM records WHERE expires_at_ms > ? ORDER BY subject',
    );
    this.selectBytes = this.db.prepare('SELECT record FROM records WHERE subject = ?');
    // Only a higher seq, or the same seq attested at a later epoch, replaces what is there: a
    // stale or replayed record changes nothing.
    this.upsertNewer = this.db.prepare(
      `INSERT INTO records (subject, seq, record, accepted_at_ms, epoch, expires_at_ms)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (subject) DO UPDATE SET seq = excluded.seq, record = excluded.record,
         accepted_at_ms = excluded.accepted_at_ms, epoch = excluded.epoch,
         expires_at_ms = excluded.expires_at_ms
       WHERE excluded.seq > records.seq
          OR (excluded.seq = records.seq AND excluded.epoch > records.epoch)`,
    );
  }

  seq(subject: string): bigint | undefined {
    return this.selectSeq.get(subject)?.seq;
  }

  /** The held version of a subject: its seq and the epoch it is attested at. */
  held(subject: string): { seq: bigint; epoch: bigint } | undefined {
    const row = this.selectSeq.get(subject);
    return row && { seq: row.seq, epoch: row.epoch };
  }

  /**
   * Stores a record already verified by the caller (attested at `epoch`, default 0); answers
   * whether it was newer.
   */
  put(rec: SignedRecord, bytes: Uint8Array, acceptedAtMs: number, epoch: bigint = 0n): boolean {
    return (
      this.upsertNewer.run(
        rec.peerId,
        rec.seq,
        Buffer.from(bytes),
        acceptedAtMs,
        epoch,
        rec.content.expiresAtMs,
      ).changes > 0
    );
  }

  /** Keeps a validator-set record the caller verified (ValidatorSetChain.offer). */
  putSet(epoch: bigint, bytes: Uint8Array): void {
    this.db
      .prepare('INSERT OR IGNORE INTO validator_sets (epoch, record) VALUES (?, ?)')
      .run(epoch, Buffer.from(bytes));
  }

  /** The validator-set records held, in epoch order (replayed into the chain at start). */
  sets(): Uint8Array[] {
    return (
      this.db.prepare('SELECT record FROM validator_sets ORDER BY epoch').all() as Array<{
        record: Buffer;
      }>
    ).map((r) => new Uint8Array(r.record));
  }

  get(subject: string): ViewEntry | undefined {
    const row = this.selectOne.get(subject);
    return row && entry(row);
  }

  list(): ViewEntry[] {
    return this.selectAll.all().map(entry);
  }

  /**
   * The version (seq, attested epoch) of every record unexpired at `nowMs`, in subject order:
   * what a sync summary lists. Reads the version index only, not a record body.
   */
  summary(nowMs: number): ViewVersion[] {
    return this.selectVersions.all(nowMs);
  }

  /** The held bytes of `subjects`, in that order; a subject not held is left out. */
  bytesOf(subjects: readonly string[]): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const s of subjects) {
      const row = this.selectBytes.get(s);
      if (row) out.push(new Uint8Array(row.record));
    }
    return out;
  }

  count(): number {
    return Number(this.db.prepare('SELECT count(*) AS n FROM records').pluck().get());
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function entry(row: { record: Buffer; accepted_at_ms: bigint }): ViewEntry {
  const bytes = new Uint8Array(row.record);
  return { record: decodeRecord(bytes), bytes, acceptedAtMs: Number(row.accepted_at_ms) };
}

/** Brings the file to VIEW_SCHEMA_VERSION, one transaction per step. */
export function migrateView(db: Database.Database, path: string): number {
  const appId = Number(db.pragma('application_id', { simple: true }));
  let version = Number(db.pragma('user_version', { simple: true }));
  if (appId !== 0 && appId !== VIEW_APPLICATION_ID)
    throw new StoreIdentityError(`${path} is not a registry view (application id ${appId})`);
  if (appId === 0 && version !== 0)
    throw new StoreIdentityError(`${path} is a SQLite file of something else`);
  if (version > VIEW_SCHEMA_VERSION)
    throw new StoreIdentityError(
      `the registry view ${path} is at schema version ${version}, newer than this Vigil (${VIEW_SCHEMA_VERSION})`,
      'upgrade Vigil, or remove the view: it is rebuilt from the network',
    );
  while (version < VIEW_SCHEMA_VERSION) {
    const step = VIEW_MIGRATIONS[version]!;
    const next = version + 1;
    db.transaction(() => {
      db.exec(step);
      VIEW_BACKFILLS[next]?.(db);
      db.pragma(`application_id = ${VIEW_APPLICATION_ID}`);
      db.pragma(`user_version = ${next}`);
    }).immediate();
    version = next;
  }
  return version;
}
