/**
 * The embedded engine: one SQLite file, shared safely by every process on the host.
 * WAL + synchronous=FULL makes each commit fsync the log before it returns; BEGIN IMMEDIATE
 * takes the write lock before the read, so two processes cannot both read the same
 * watermark and both grant on it.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StoreUnavailableError, errorMessage } from '../errors.js';
import type { Watermark } from '../guard/watermark.js';
import { describeIoFailure, ioFailureKind, type IoFailureKind } from './io-error.js';
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
  /** Built once: rebuilding better-sqlite3's transaction wrapper on every update cost a
   * measurable share of a guard decision. */
  private readonly updateTx: Database.Transaction<
    (
      id: string,
      scope: WatermarkScope,
      decide: (current: Watermark | undefined) => StoreUpdate<unknown>,
      options: UpdateOptions | undefined,
    ) => unknown
  >;
  private readonly selectLease: Database.Statement<
    [string],
    { token: bigint; holder: string | null; expires_at_ms: bigint }
  >;

  /** stat(path) once open; another answer later means the file was removed or replaced. */
  private readonly opened: { dev: number; ino: number } | undefined;

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
    this.opened = path === ':memory:' ? undefined : statSync(path);
    this.selectOne = this.db.prepare('SELECT record FROM watermarks WHERE scope = ?');
    this.upsert = this.db.prepare(
      `INSERT INTO watermarks (scope, chain_id, key_id, family, record) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (scope) DO UPDATE SET record = excluded.record`,
    );
    this.selectAll = this.db.prepare('SELECT scope, record FROM watermarks ORDER BY scope');
    this.selectLease = this.db
      .prepare('SELECT token, holder, expires_at_ms FROM leases WHERE role = ?')
      .safeIntegers(true) as never;
    this.updateTx = this.db.transaction((id, scope, decide, options) => {
      if (options?.fence) this.checkFence(options.fence);
      const row = this.selectOne.get(id);
      const plan = decide(row ? decodeRecord(row.record, id) : undefined);
      if (plan.write) {
        this.upsert.run(id, scope.chainId, scope.keyId, scope.family, encodeRecord(plan.write));
      }
      return plan.result;
    });
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

  async update<T>(
    scope: WatermarkScope,
    decide: (current: Watermark | undefined) => StoreUpdate<T>,
    options?: UpdateOptions,
  ): Promise<T> {
    const id = scopeId(scope);
    this.assertOpen(`update ${id}`);
    let result: T;
    try {
      result = this.updateTx.immediate(id, scope, decide, options) as T;
    } catch (err) {
      throw this.wrap(err, `update ${id}`);
    }
    // After the commit, before anything leaves: SQLite commits happily into a file that was
    // removed while open, and such a commit is on no disk anyone will read.
    this.assertSameFile(`update ${id}`);
    return result;
  }

  private assertSameFile(what: string): void {
    if (this.opened === undefined) return;
    let now: { dev: number; ino: number } | undefined;
    try {
      now = statSync(this.path);
    } catch {
      now = undefined;
    }
    if (now?.dev !== this.opened.dev || now?.ino !== this.opened.ino) {
      throw new StoreUnavailableError(
        `SQLite store ${this.path}: ${what} failed: the file was removed or replaced while open, so the write is not in it`,
        IO_HINTS.missing,
      );
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
    this.assertSameFile('ping');
  }

  async close(): Promise<void> {
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
