/**
 * The embedded engine: one SQLite file, shared safely by every process on the host.
 * WAL + synchronous=FULL makes each commit fsync the log before it returns; BEGIN IMMEDIATE
 * takes the write lock before the read, so two processes cannot both read the same
 * watermark and both grant on it.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StoreUnavailableError, errorMessage } from '../errors.js';
import type { Watermark } from '../guard/watermark.js';
import { decodeRecord, encodeRecord } from './record-codec.js';
import {
  FencedError,
  parseScopeId,
  scopeId,
  type FenceToken,
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

export interface SqliteStoreOptions {
  readonly path: string;
  /** How long a writer waits for another process's transaction before refusing. */
  readonly busyTimeoutMs?: number;
}

/** 2: the `leases` table (exclusive roles on one host, see src/lease/sqlite.ts). */
const SCHEMA_VERSION = 2;

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

  private constructor(
    readonly path: string,
    busyTimeoutMs: number,
  ) {
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
      this.db = new Database(path, { timeout: busyTimeoutMs });
      // Several agents opening a fresh file at once race to switch it to WAL and create the
      // schema; SQLite answers the loser "database is locked" without waiting for the busy
      // handler. Those steps are idempotent, so the loser retries them for a while.
      retryWhileLocked(Math.max(busyTimeoutMs, 2000), () => {
        const mode = this.db.pragma('journal_mode = WAL', { simple: true });
        if (path !== ':memory:' && mode !== 'wal') {
          throw new Error(`the filesystem refused WAL mode (journal_mode=${String(mode)})`);
        }
        this.db.pragma('synchronous = FULL');
        this.migrate();
      });
    } catch (err) {
      throw new StoreUnavailableError(
        `cannot open the SQLite watermark store at ${path}: ${errorMessage(err)}`,
        'check that the directory exists, is writable by this user and sits on a local filesystem',
        { cause: err },
      );
    }
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

  static open(options: SqliteStoreOptions): SqliteWatermarkStore {
    return new SqliteWatermarkStore(options.path, options.busyTimeoutMs ?? 5000);
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `store schema version ${version} is newer than this Vigil understands (${SCHEMA_VERSION})`,
      );
    }
    if (version === SCHEMA_VERSION) return;
    // Each table is created if missing, so a version-1 file gains the leases table in place.
    this.db.exec(`
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
      const row = this.selectOne.get(id);
      return row ? decodeRecord(row.record, id) : undefined;
    } catch (err) {
      throw this.wrap(err, `read ${id}`);
    }
  }

  async list(): Promise<Array<{ scope: WatermarkScope; watermark: Watermark }>> {
    this.assertOpen('list');
    try {
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
      this.db.prepare('SELECT count(*) FROM watermarks').get();
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
    const busy = isLocked(err);
    return new StoreUnavailableError(
      `SQLite store ${this.path}: ${what} failed: ${err.message}`,
      busy
        ? 'another process held the write lock past the busy timeout'
        : 'check the disk and the file permissions',
      { cause: err },
    );
  }
}
