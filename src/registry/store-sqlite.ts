/**
 * The registry on SQLite, for a single-host development setup: its own file (not the watermark
 * store's, whose schema stays the signer's alone), with its own schema version and migrations.
 * Same discipline as src/store/sqlite.ts: WAL, synchronous=FULL, and BEGIN IMMEDIATE so the
 * read and the write of one subject are one transaction even across processes.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StoreIdentityError, StoreUnavailableError, errorMessage } from '../errors.js';
import { RegistryError } from './record.js';
import type { RegistryCells } from './store.js';

/** 'VgRg': marks the file as a Vigil registry, so a watermark store is never mistaken for one. */
export const REGISTRY_APPLICATION_ID = 0x56675267;

/** Migrations, in order: entry i takes the schema from version i to i + 1. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE records (
     subject TEXT PRIMARY KEY,
     seq     INTEGER NOT NULL CHECK (seq > 0),
     record  BLOB NOT NULL
   ) STRICT;`,
  // v2: the validator-set records (src/registry/validator-set.ts), one row per epoch from 1.
  `CREATE TABLE validator_sets (
     epoch  INTEGER PRIMARY KEY CHECK (epoch > 0),
     record BLOB NOT NULL
   ) STRICT;`,
];
export const REGISTRY_SCHEMA_VERSION = MIGRATIONS.length;

export interface SqliteRegistryOptions {
  readonly path: string;
  /** Create the file (and migrate it) if missing: an operator act, like `vigil state init`. */
  readonly create?: boolean;
  readonly busyTimeoutMs?: number;
}

export class SqliteRegistryCells implements RegistryCells {
  readonly engine = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly selectOne: Database.Statement<[string], { record: Buffer }>;
  private readonly upsert: Database.Statement<[string, bigint, Buffer]>;
  private readonly selectAll: Database.Statement<[], { subject: string; record: Buffer }>;

  constructor(private readonly options: SqliteRegistryOptions) {
    const { path } = options;
    if (path !== ':memory:' && !existsSync(path)) {
      if (options.create !== true)
        throw new StoreIdentityError(
          `no registry database at ${path}`,
          'create it once with the registry store option `create`',
        );
      mkdirSync(dirname(path), { recursive: true });
    }
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { timeout: options.busyTimeoutMs ?? 5000 });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      migrate(db, path);
    } catch (err) {
      db?.close();
      if (err instanceof StoreIdentityError) throw err;
      throw new StoreUnavailableError(
        `cannot open the registry database ${path}: ${errorMessage(err)}`,
        'check that the directory exists and is writable by this user',
        { cause: err },
      );
    }
    this.db = db;
    this.selectOne = db.prepare('SELECT record FROM records WHERE subject = ?');
    this.upsert = db.prepare(
      `INSERT INTO records (subject, seq, record) VALUES (?, ?, ?)
       ON CONFLICT (subject) DO UPDATE SET seq = excluded.seq, record = excluded.record`,
    );
    this.selectAll = db.prepare('SELECT subject, record FROM records ORDER BY subject');
  }

  /** The database file (a countersigner opens its own read-only connection to follow it). */
  get path(): string {
    return this.options.path;
  }

  /** The schema version of the open file. */
  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  async update<T>(
    subject: string,
    decide: (current: Uint8Array | undefined) => { write?: Uint8Array; result: T },
  ): Promise<T> {
    const tx = this.db.transaction(() => {
      const row = this.selectOne.get(subject);
      const plan = decide(row ? new Uint8Array(row.record) : undefined);
      if (plan.write) {
        const seq = seqOf(plan.write);
        this.upsert.run(subject, seq, Buffer.from(plan.write));
      }
      return plan.result;
    });
    return this.run(`update ${subject}`, () => tx.immediate());
  }

  async get(subject: string): Promise<Uint8Array | undefined> {
    return this.run(`read ${subject}`, () => {
      const row = this.selectOne.get(subject);
      return row ? new Uint8Array(row.record) : undefined;
    });
  }

  async list(): Promise<Array<{ subject: string; bytes: Uint8Array }>> {
    return this.run('list', () =>
      this.selectAll.all().map((r) => ({ subject: r.subject, bytes: new Uint8Array(r.record) })),
    );
  }

  async readSets(): Promise<Uint8Array[]> {
    return this.run('read the validator sets', () =>
      (
        this.db.prepare('SELECT record FROM validator_sets ORDER BY epoch').all() as Array<{
          record: Buffer;
        }>
      ).map((r) => new Uint8Array(r.record)),
    );
  }

  async appendSet(
    epoch: bigint,
    bytes: Uint8Array,
    prev: Uint8Array | undefined,
  ): Promise<'committed' | 'duplicate'> {
    const tx = this.db.transaction((): 'committed' | 'duplicate' => {
      const at = this.db.prepare('SELECT record FROM validator_sets WHERE epoch = ?').get(epoch) as
        { record: Buffer } | undefined;
      if (at) {
        if (at.record.equals(bytes)) return 'duplicate';
        throw new RegistryError(
          'REGISTRY_EPOCH_CONFLICT',
          `another validator-set change was committed for epoch ${epoch} first`,
          'read the current set (`vigil registry set-show`) and propose again on top of it',
        );
      }
      const last = this.db
        .prepare('SELECT epoch, record FROM validator_sets ORDER BY epoch DESC LIMIT 1')
        .safeIntegers(true)
        .get() as { epoch: bigint; record: Buffer } | undefined;
      const lastEpoch = last?.epoch ?? 0n;
      if (
        lastEpoch !== epoch - 1n ||
        (prev !== undefined) !== (last !== undefined) ||
        (prev !== undefined && !last!.record.equals(prev))
      )
        throw new RegistryError(
          'REGISTRY_EPOCH_STALE',
          `validator-set epoch ${epoch} does not follow the committed epoch ${lastEpoch}`,
        );
      this.db
        .prepare('INSERT INTO validator_sets (epoch, record) VALUES (?, ?)')
        .run(epoch, Buffer.from(bytes));
      return 'committed';
    });
    return this.run(`append validator-set epoch ${epoch}`, () => tx.immediate());
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  private run<T>(what: string, step: () => T): T {
    if (!this.db.open)
      throw new StoreUnavailableError(`registry database ${this.options.path}: ${what}: closed`);
    try {
      return step();
    } catch (err) {
      if (!(err instanceof Database.SqliteError)) throw err;
      throw new StoreUnavailableError(
        `registry database ${this.options.path}: ${what} failed: ${err.message}`,
        err.code === 'SQLITE_BUSY'
          ? 'another process held the write lock past the busy timeout'
          : 'check the disk and the file permissions',
        { cause: err },
      );
    }
  }
}

/** The seq of an encoded record: the u64 right after its content and subject signature. */
function seqOf(record: Uint8Array): bigint {
  const b = Buffer.from(record.buffer, record.byteOffset, record.byteLength);
  return b.readBigUInt64BE(3 + b.readUInt16BE(1) + 64);
}

/**
 * Brings the file to REGISTRY_SCHEMA_VERSION, one migration per version, in one transaction
 * taken with the write lock (readers on WAL go on meanwhile: no downtime for them). A file
 * from a newer Vigil, or one that is not a registry, is refused untouched.
 */
function migrate(db: Database.Database, path: string): void {
  db.exec('BEGIN IMMEDIATE');
  try {
    const appId = db.pragma('application_id', { simple: true }) as number;
    const version = db.pragma('user_version', { simple: true }) as number;
    const tables = db
      .prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'")
      .get() as {
      n: number;
    };
    const fresh = appId === 0 && version === 0 && tables.n === 0;
    if (!fresh && appId !== REGISTRY_APPLICATION_ID)
      throw new StoreIdentityError(
        `${path} is not a Vigil registry database`,
        'point the registry at its own file, not at the watermark store or another database',
      );
    if (version > REGISTRY_SCHEMA_VERSION)
      throw new StoreIdentityError(
        `registry database ${path} has schema ${version}, newer than this Vigil's ${REGISTRY_SCHEMA_VERSION}`,
        'run the Vigil version that wrote it, or a newer one',
      );
    for (let v = version; v < REGISTRY_SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
    if (fresh) db.pragma(`application_id = ${REGISTRY_APPLICATION_ID}`);
    db.pragma(`user_version = ${REGISTRY_SCHEMA_VERSION}`);
    db.exec('COMMIT');
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}
