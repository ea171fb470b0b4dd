/**
 * The embedded engine: one SQLite file, shared safely by every process on the host.
 * WAL + synchronous=FULL makes each commit fsync the log before it returns; BEGIN IMMEDIATE
 * takes the write lock before the read, so two processes cannot both read the same
 * watermark and both grant on it.
 *
 * The file is created only by an explicit operator act (`create`), carries an identity in its
 * `meta` table, and is checked against its path at every decision: an agent that keeps writing
 * to a file someone deleted or replaced would grant on watermarks nobody else will ever see.
 */
import { randomUUID } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  statSync,
} from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StoreIdentityError, StoreUnavailableError, errorMessage } from '../errors.js';
import type { Watermark } from '../guard/watermark.js';
import { describeIoFailure, ioFailureKind, type IoFailureKind } from './io-error.js';
import { decodeRecord, encodeRecord } from './record-codec.js';
import {
  FencedError,
  parseScopeId,
  scopeId,
  type FenceToken,
  type OpenStoreOptions,
  type StoreIdentity,
  type StoreUpdate,
  type UpdateOptions,
  type WatermarkScope,
  type WatermarkStore,
} from './types.js';

/** One decision queued for a group commit, and what came of it. */
interface PendingUpdate<T> {
  readonly id: string;
  readonly scope: WatermarkScope;
  readonly decide: (current: Watermark | undefined) => StoreUpdate<T>;
  readonly options: UpdateOptions | undefined;
  readonly resolve: (value: T) => void;
  readonly reject: (err: unknown) => void;
  result?: { ok: true; value: T } | { ok: false; error: unknown };
}

export interface SqliteStoreOptions extends OpenStoreOptions {
  readonly path: string;
  /** How long a writer waits for another process's transaction before refusing. */
  readonly busyTimeoutMs?: number;
}

/** 2: the `leases` table (exclusive roles on one host, see src/lease/sqlite.ts).
 *  3: the `meta` table holding the store's identity. */
const SCHEMA_VERSION = 3;

const INIT_HINT =
  'an agent never creates its store: initialise it once with `vigil state init --config <agent.yaml>`';

function isLocked(err: unknown): boolean {
  return (
    err instanceof Database.SqliteError &&
    (err.code === 'SQLITE_BUSY' || err.code === 'SQLITE_LOCKED')
  );
}

/** Runs `step` until it does not fail with a lock error, for at most `budgetMs`. */
function retryWhileLocked(budgetMs: number, step: () => void): void {
  const deadline = Date.now() + budgetMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let delayMs = 5; ; delayMs = Math.min(delayMs * 2, 100)) {
    try {
      return step();
    } catch (err) {
      if (!isLocked(err) || Date.now() + delayMs > deadline) throw err;
      // A synchronous sleep: opening happens once, before the store serves anything.
      Atomics.wait(pause, 0, 0, delayMs);
    }
  }
}

/** Which file a path names: a replaced file has another inode, a deleted one none. */
interface FileId {
  readonly dev: bigint;
  readonly ino: bigint;
}

function fileIdOf(path: string): FileId | undefined {
  const st = statSync(path, { bigint: true, throwIfNoEntry: false });
  return st === undefined ? undefined : { dev: st.dev, ino: st.ino };
}

const sameFile = (a: FileId | undefined, b: FileId | undefined) =>
  a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;

/** Creates `path` with mode 0600 whatever the umask; false if it already existed. */
function createFile0600(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  closeSync(fd);
  chmodSync(path, 0o600);
  return true;
}

const IO_HINTS: Record<IoFailureKind, string> = {
  full: 'free space on the filesystem holding the store; the agent retries on every request',
  read_only: 'make the store file and its filesystem writable by this user again',
  io_error: 'check the disk (dmesg); the agent retries on every request',
  missing:
    'the store file or its directory was removed or replaced; stop the agents using it and restore the file (never an older copy), then restart them',
};

export class SqliteWatermarkStore implements WatermarkStore {
  readonly engine = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly selectOne: Database.Statement<[string], { record: string }>;
  private readonly upsert: Database.Statement<[string, string, string, string, string]>;
  private readonly selectAll: Database.Statement<[], { scope: string; record: string }>;
  /** Decisions waiting for the next group commit, in arrival order. */
  private pending: Array<PendingUpdate<unknown>> = [];
  private flushScheduled = false;
  /** Group commits written and the decisions they carried, for metrics and tests. */
  readonly commits = { transactions: 0, decisions: 0 };
  /** Built once: rebuilding better-sqlite3's transaction wrapper on every flush cost a
   * measurable share of a guard decision. */
  private readonly groupTx: Database.Transaction<(batch: Array<PendingUpdate<unknown>>) => void>;
  private readonly selectLease: Database.Statement<
    [string],
    { token: bigint; holder: string | null; expires_at_ms: bigint }
  >;
  private readonly selectStoreId: Database.Statement<[], { value: string }>;
  readonly identity: StoreIdentity;
  /** The file opened (undefined for `:memory:`); the path must keep naming it. */
  private readonly fileId: FileId | undefined;
  /** Once the file is found replaced or deleted, every call refuses until the store is reopened:
   * a later file at the path is no more this store than the first replacement was. */
  private identityLost: StoreIdentityError | undefined;

  private constructor(
    readonly path: string,
    busyTimeoutMs: number,
    options: OpenStoreOptions,
  ) {
    const memory = path === ':memory:';
    // An in-memory store (benchmarks) lives and dies with its process: there is no file to
    // lose or replace, so opening one is creating it.
    if (memory) options = { ...options, create: true };
    const create = options.create === true;
    let db: Database.Database | undefined;
    try {
      if (!memory && !create && !existsSync(path)) {
        throw new StoreIdentityError(
          `no watermark store at ${path}`,
          `${INIT_HINT}; if a store existed here it was deleted or moved: restore it rather than start a new one`,
        );
      }
      let created = false;
      if (!memory && create) {
        mkdirSync(dirname(path), { recursive: true });
        // A log without its database is a store deleted while a process had it open: a new
        // file here would be handed that process's log and shared memory.
        const orphans = ['-wal', '-shm'].filter((s) => existsSync(path + s));
        if (!existsSync(path) && orphans.length > 0) {
          throw new StoreIdentityError(
            `${path} is missing but its ${orphans.map((s) => path + s).join(' and ')} are still there: the store was deleted while a process had it open`,
            'stop every agent that uses it, then restore the store file, or remove the leftover files to start a new store',
          );
        }
        created = createFile0600(path);
      }
      const before = memory ? undefined : fileIdOf(path);
      db = new Database(path, { timeout: busyTimeoutMs, fileMustExist: !memory });
      const opened = db;
      // Several agents opening a fresh file at once race to switch it to WAL and create the
      // schema; SQLite answers the loser "database is locked" without waiting for the busy
      // handler. Those steps are idempotent, so the loser retries them for a while.
      retryWhileLocked(Math.max(busyTimeoutMs, 2000), () => {
        // Refused before anything is written: a foreign or old file stays exactly as it was.
        this.checkSchema(opened, options);
        const mode = opened.pragma('journal_mode = WAL', { simple: true });
        if (!memory && mode !== 'wal') {
          throw new Error(`the filesystem refused WAL mode (journal_mode=${String(mode)})`);
        }
        opened.pragma('synchronous = FULL');
        this.migrate(opened, options);
      });
      this.identity = readIdentity(opened, path);
      if (created) {
        // SQLite gives -wal and -shm the main file's mode; set them anyway, whatever the umask.
        for (const suffix of ['-wal', '-shm'])
          if (existsSync(path + suffix)) chmodSync(path + suffix, 0o600);
      }
      // The identity was read through SQLite's descriptor; the path named the same file before
      // and after, so that descriptor is this file (short of a swap and a swap back meanwhile).
      this.fileId = memory ? undefined : fileIdOf(path);
      if (!memory && !sameFile(before, this.fileId)) {
        throw new StoreIdentityError(
          `the SQLite store file ${path} was replaced while it was being opened`,
          'find out what is rewriting it, then start again',
        );
      }
      this.db = opened;
    } catch (err) {
      db?.close();
      if (err instanceof StoreIdentityError) throw err;
      throw new StoreUnavailableError(
        `cannot open the SQLite watermark store at ${path}: ${errorMessage(err)}`,
        'check that the directory exists, is writable by this user and sits on a local filesystem',
        { cause: err },
      );
    }
    this.selectStoreId = this.db.prepare("SELECT value FROM meta WHERE key = 'store_id'");
    this.selectOne = this.db.prepare('SELECT record FROM watermarks WHERE scope = ?');
    this.upsert = this.db.prepare(
      `INSERT INTO watermarks (scope, chain_id, key_id, family, record) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (scope) DO UPDATE SET record = excluded.record`,
    );
    this.selectAll = this.db.prepare('SELECT scope, record FROM watermarks ORDER BY scope');
    this.selectLease = this.db
      .prepare('SELECT token, holder, expires_at_ms FROM leases WHERE role = ?')
      .safeIntegers(true) as never;
    // One transaction, one fsync, for every decision that arrived since the last one. Each
    // decision runs under its own savepoint, so one that throws (a fenced write, a corrupt
    // record) is undone alone; the others commit together, and none resolves before COMMIT.
    const savepoint = this.db.prepare('SAVEPOINT decision');
    const release = this.db.prepare('RELEASE decision');
    const rollbackTo = this.db.prepare('ROLLBACK TO decision');
    this.groupTx = this.db.transaction((batch) => {
      // Inside the write lock, so every decision below is made on the file the path names
      // now: one stat per batch, not per decision.
      this.checkFile();
      for (const item of batch) {
        savepoint.run();
        try {
          item.result = { ok: true, value: this.decideOne(item) };
          release.run();
        } catch (err) {
          rollbackTo.run();
          release.run();
          item.result = { ok: false, error: err };
        }
      }
    });
  }

  /** Inside the group transaction: one scope's read, decision and write. */
  private decideOne<T>(item: PendingUpdate<T>): T {
    if (item.options?.fence) this.checkFence(item.options.fence);
    const row = this.selectOne.get(item.id);
    const plan = item.decide(row ? decodeRecord(row.record, item.id) : undefined);
    if (plan.write) {
      const { scope } = item;
      this.upsert.run(item.id, scope.chainId, scope.keyId, scope.family, encodeRecord(plan.write));
    }
    return plan.result;
  }

  /**
   * Opens an initialised store. Without `create`, a missing file, a file without an identity
   * and a file from before identities are StoreIdentityError: an agent must not start a fresh
   * watermark history because the old one vanished.
   */
  static open(options: SqliteStoreOptions): SqliteWatermarkStore {
    return new SqliteWatermarkStore(options.path, options.busyTimeoutMs ?? 5000, options);
  }

  /** Throws unless the file is an initialised store, or `options` allow initialising it. */
  private checkSchema(db: Database.Database, options: OpenStoreOptions): void {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `store schema version ${version} is newer than this Vigil understands (${SCHEMA_VERSION})`,
      );
    }
    if (version === SCHEMA_VERSION) return;
    if (version === 0 && options.create !== true) {
      throw new StoreIdentityError(
        `${this.path} is not an initialised Vigil watermark store (it has no store identity)`,
        INIT_HINT,
      );
    }
    if (version > 0 && !(options.create === true && options.adoptExisting === true)) {
      throw new StoreIdentityError(
        `the watermark store ${this.path} was written by a Vigil from before store identities (schema ${version}) and has none`,
        'if it is the true store (the one the agents last signed with, not an old copy), give it an identity once with `vigil state init --config <agent.yaml> --adopt-existing`',
      );
    }
  }

  private migrate(db: Database.Database, options: OpenStoreOptions): void {
    this.checkSchema(db, options);
    if ((db.pragma('user_version', { simple: true }) as number) === SCHEMA_VERSION) return;
    // Each table is created if missing, so an older file gains the new tables in place; the
    // identity is inserted only if absent, so two initialisations racing keep the first one's.
    const identity = { id: randomUUID(), at: new Date().toISOString() };
    db.exec(`
      BEGIN IMMEDIATE;
      CREATE TABLE IF NOT EXISTS watermarks (
        scope    TEXT PRIMARY KEY,
        chain_id TEXT NOT NULL,
        key_id   TEXT NOT NULL,
        family   TEXT NOT NULL,
        record   TEXT NOT NULL
      ) STRICT;
      CREATE TABLE IF NOT EXISTS leases (
        role          TEXT PRIMARY KEY,
        token         INTEGER NOT NULL,
        holder        TEXT,
        expires_at_ms INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE IF NOT EXISTS meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT;
      INSERT OR IGNORE INTO meta (key, value) VALUES
        ('store_id', '${identity.id}'),
        ('created_at', '${identity.at}');
      PRAGMA user_version = ${SCHEMA_VERSION};
      COMMIT;
    `);
  }

  /**
   * The raw connection, for the lease module that shares this file (its rows are checked in
   * this store's transactions, so both must live in one database).
   */
  get database(): Database.Database {
    return this.db;
  }

  /** For the lease module's own transactions on this file (src/lease/sqlite.ts). */
  assertSameFile(): void {
    this.checkFile();
  }

  /**
   * Throws StoreIdentityError (and keeps throwing it) once the path no longer names the file
   * this store opened: deleted, renamed over, restored from a copy. One stat, a couple of
   * microseconds (bench/guard.ts measures it).
   */
  private checkFile(): void {
    if (this.identityLost) throw this.identityLost;
    if (this.fileId === undefined) return;
    let now: FileId | undefined;
    try {
      now = fileIdOf(this.path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A directory in the path replaced by a file: the store is gone as surely as unlinked.
      if (code !== 'ENOTDIR')
        throw new StoreUnavailableError(
          `SQLite store ${this.path}: cannot check the file: ${errorMessage(err)}`,
          'check the permissions of the directory holding the store',
          { cause: err },
        );
    }
    if (sameFile(now, this.fileId)) return;
    this.identityLost = new StoreIdentityError(
      now === undefined
        ? `the SQLite store file ${this.path} (store ${this.identity.storeId}) was deleted while this agent had it open; nothing written to it since counts`
        : `the SQLite store file ${this.path} (store ${this.identity.storeId}) was replaced by another file while this agent had it open`,
      'nothing is signed until an operator settles which store is the true one: put the true store back at that path (or `vigil state init` a new one and `vigil state import` the newer watermark), then restart this agent',
    );
    throw this.identityLost;
  }

  /** Inside a transaction: throws FencedError unless `fence` is the role's live holding. */
  private checkFence(fence: FenceToken): void {
    const row = this.selectLease.get(fence.role);
    if (row === undefined) throw new FencedError(fence, 'the role has never been held');
    if (row.token !== fence.token)
      throw new FencedError(fence, `the current token is ${row.token}`);
    // Wall-clock expiry is the successor's view too (same host, same clock), so a holder
    // past it is treated as gone even before anyone takes over.
    if (row.holder === null || row.expires_at_ms <= BigInt(Date.now()))
      throw new FencedError(fence, 'the lease has expired or was released');
  }

  /**
   * Queues the decision for the next group commit. Decisions for different scopes that arrive
   * while a commit is being written share the next one: one fsync for all of them, so one
   * agent can guard many chains. A decision for a scope already queued runs after it, in the
   * same transaction, and sees its write.
   */
  update<T>(
    scope: WatermarkScope,
    decide: (current: Watermark | undefined) => StoreUpdate<T>,
    options?: UpdateOptions,
  ): Promise<T> {
    const id = scopeId(scope);
    try {
      this.assertOpen(`update ${id}`);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ id, scope, decide, options, resolve, reject } as PendingUpdate<unknown>);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // After the current I/O callbacks: requests that arrived together commit together.
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    try {
      this.assertOpen(`update of ${batch.length} scopes`);
      this.groupTx.immediate(batch);
      this.commits.transactions++;
      this.commits.decisions += batch.length;
    } catch (err) {
      // Nothing of this batch is durable: every decision in it is refused.
      const failure = this.wrap(err, `update of ${batch.length} scope(s)`);
      for (const item of batch) item.reject(failure);
      return;
    }
    // After the commit, before anything leaves: SQLite commits happily into a file that was
    // unlinked or renamed over between the check inside the transaction and the fsync, and
    // such a commit is on no disk anyone will read.
    try {
      this.checkFile();
    } catch (err) {
      for (const item of batch) item.reject(err);
      return;
    }
    for (const item of batch) {
      const r = item.result!;
      if (r.ok) item.resolve(r.value);
      else item.reject(this.wrap(r.error, `update ${item.id}`));
    }
  }

  /** A closed store is an unavailable store: refuse, with the same error as any other doubt. */
  private assertOpen(what: string): void {
    if (!this.db.open) {
      throw new StoreUnavailableError(
        `SQLite store ${this.path}: ${what} failed: the store is closed`,
        'the agent is shutting down',
      );
    }
  }

  async get(scope: WatermarkScope): Promise<Watermark | undefined> {
    const id = scopeId(scope);
    this.assertOpen(`read ${id}`);
    try {
      this.checkFile();
      const row = this.selectOne.get(id);
      return row ? decodeRecord(row.record, id) : undefined;
    } catch (err) {
      throw this.wrap(err, `read ${id}`);
    }
  }

  async list(): Promise<Array<{ scope: WatermarkScope; watermark: Watermark }>> {
    this.assertOpen('list');
    try {
      this.checkFile();
      return this.selectAll.all().map((row) => ({
        scope: parseScopeId(row.scope),
        watermark: decodeRecord(row.record, row.scope),
      }));
    } catch (err) {
      throw this.wrap(err, 'list');
    }
  }

  async ping(): Promise<void> {
    this.assertOpen('ping');
    try {
      this.checkFile();
      const row = this.selectStoreId.get();
      if (row?.value !== this.identity.storeId) {
        this.identityLost = new StoreIdentityError(
          `the SQLite store ${this.path} now carries identity ${row?.value ?? '(none)'}, not ${this.identity.storeId} as when it was opened`,
          'someone rewrote the store identity; restart the agent once the true store is in place',
        );
        throw this.identityLost;
      }
    } catch (err) {
      throw this.wrap(err, 'ping');
    }
  }

  async close(): Promise<void> {
    // Decisions still queued commit first: a caller may already be waiting on them.
    if (this.pending.length > 0) this.flush();
    if (this.db.open) this.db.close();
  }

  private wrap(err: unknown, what: string): Error {
    // Errors of our own (a corrupt record, a rule's bug) pass through unchanged.
    if (!(err instanceof Database.SqliteError)) return err as Error;
    // Every SQLite error, a full or read-only disk included, is a store that cannot vouch for
    // the write: a refusal (store_unavailable), never a crash or a 500.
    const kind = ioFailureKind(err);
    return new StoreUnavailableError(
      `SQLite store ${this.path}: ${what} failed: ${describeIoFailure(err)}`,
      isLocked(err)
        ? 'another process held the write lock past the busy timeout'
        : kind !== undefined
          ? IO_HINTS[kind]
          : 'check the disk and the file permissions',
      { cause: err },
    );
  }
}

function readIdentity(db: Database.Database, path: string): StoreIdentity {
  const rows = db.prepare('SELECT key, value FROM meta').all() as Array<{
    key: string;
    value: string;
  }>;
  const meta = new Map(rows.map((r) => [r.key, r.value]));
  const storeId = meta.get('store_id');
  if (storeId === undefined) {
    throw new StoreIdentityError(
      `the watermark store ${path} has lost its identity (no store_id in its meta table)`,
      'someone edited the file; restore it from a backup, or initialise a new store and import the newer watermark',
    );
  }
  return { storeId, engine: 'sqlite', createdAt: meta.get('created_at') ?? 'unknown' };
}
