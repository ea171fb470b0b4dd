/**
 * Each agent's own record of the highest position it has released, kept apart from the shared
 * store. If the store is ever behind it (reset, restored from a backup, pointed at the wrong
 * cluster), the agent refuses instead of signing again at positions it has already passed.
 *
 * It is a tripwire, not the safety record: it is raised after the store commit and written to
 * disk in batches (every FLUSH_MS, and on close) with synchronous=NORMAL, so it can lag the
 * store by a few milliseconds of positions but never lead it. Writing it on every signature
 * cost a tenth of a guard decision for no safety gain. An exclusive lock keeps a second agent
 * off the file.
 *
 * When the file cannot be written (a full or read-only disk, an I/O error, the data directory
 * removed), the positions stay enforced from memory, `writable` turns false so the guard
 * refuses new signatures, and a retry with backoff writes them again; only once every position
 * raised in memory is on disk does `writable` turn true. No I/O failure escapes as an
 * exception from a timer.
 *
 * It also remembers which store (by identity) its positions were built against. A store with
 * another identity — a deleted SQLite file re-initialised, another or a rebuilt etcd cluster —
 * is refused until an operator acknowledges it (`vigil state adopt`), so a fresh store can never
 * silently replace the one this agent's signatures were recorded in.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StoreIdentityError, VigilError, errorMessage } from '../errors.js';
import { comparePositions, type Position } from '../guard/position.js';
import { describeIoFailure, ioFailureKind } from '../store/io-error.js';
import { createPrivateFile } from '../store/private-file.js';
import { scopeId, type StoreIdentity, type WatermarkScope } from '../store/types.js';

/** How long a raised position may wait before it is on disk. */
const FLUSH_MS = 25;

export type LocalWatermarkState =
  | { readonly writable: true }
  | { readonly writable: false; readonly reason: string; readonly sinceMs: number };

export interface LocalWatermarkOptions {
  /** Told when the file stops or starts being writable; not on each failed retry. */
  readonly onStateChange?: (state: LocalWatermarkState) => void;
  /** First and longest pause between attempts to write again after a failure. */
  readonly retryMs?: { readonly first: number; readonly max: number };
}

interface OpenFile {
  readonly db: Database.Database;
  readonly writeScopes: (ids: readonly string[]) => void;
  readonly writeBinding: (identity: StoreIdentity) => void;
  readonly writeCluster: (clusterId: string) => void;
  /** stat(path) at open: another answer later means the file was removed or replaced. */
  readonly dev: number;
  readonly ino: number;
}

export class LocalWatermarks {
  private file: OpenFile | undefined;
  private readonly cache = new Map<string, Position>();
  private readonly dirty = new Set<string>();
  private flushTimer: NodeJS.Timeout | undefined;
  private failure: { reason: string; sinceMs: number; reopen: boolean } | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = 0;
  private closed = false;
  private readonly retryMs: { readonly first: number; readonly max: number };
  /** The store these positions were built against; undefined until the first bindStore. */
  private bound: StoreIdentity | { readonly storeId: string } | undefined;
  /** The binding is known in memory but not yet on disk (written before any position). */
  private bindingDirty = false;
  /** etcd only: the cluster id (hex) the first answer came from; a restored or rebuilt cluster
   * keeps the store id but not the cluster id. */
  private cluster: string | undefined;
  private clusterDirty = false;

  constructor(
    readonly path: string,
    private readonly options: LocalWatermarkOptions = {},
  ) {
    this.retryMs = options.retryMs ?? { first: 50, max: 2000 };
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (err) {
      throw new VigilError(
        'LOCAL_WATERMARK_UNAVAILABLE',
        `cannot create the agent's data directory ${dirname(path)}: ${describeIoFailure(err)}`,
        'set agent.dataDir to a directory this user can create and write',
        { cause: err },
      );
    }
    try {
      this.file = this.openFile();
    } catch (err) {
      // A full or read-only disk may clear by itself: start, refuse, and retry. A lock held by
      // another agent or a corrupt file needs an operator: do not start.
      if (ioFailureKind(err) === undefined) {
        throw new VigilError(
          'LOCAL_WATERMARK_UNAVAILABLE',
          `cannot open the agent's local watermark file ${path}: ${errorMessage(err)}`,
          'each agent needs its own agent.dataDir; is another agent already running with this one?',
          { cause: err },
        );
      }
      this.markFailing(err);
    }
  }

  /** False while raised positions cannot be written: the guard must not grant. */
  get writable(): boolean {
    return this.failure === undefined && !this.closed;
  }

  get state(): LocalWatermarkState {
    if (this.failure !== undefined)
      return { writable: false, reason: this.failure.reason, sinceMs: this.failure.sinceMs };
    if (this.closed) return { writable: false, reason: 'closed', sinceMs: 0 };
    return { writable: true };
  }

  /**
   * For readiness checks: also notices a file removed while idle, which a write into the
   * still-open (unlinked) file would not.
   */
  probe(): LocalWatermarkState {
    if (this.failure === undefined && this.file !== undefined && !this.closed) {
      try {
        this.checkSameFile(this.file);
      } catch (err) {
        this.markFailing(err);
      }
    }
    return this.state;
  }

  /** The storeId this agent's positions were built against, if it has been bound. */
  get boundStore(): string | undefined {
    return this.bound?.storeId;
  }

  /**
   * Called once by the agent after opening its store. The first store ever bound is recorded
   * (durably, before anything is signed: while the file cannot be written the guard refuses
   * anyway, and the retry writes the binding first); later, a store with another identity is
   * not rebound here: `checkStore` refuses it until an operator acknowledges it (`adoptStore`).
   */
  bindStore(identity: StoreIdentity): void {
    if (this.bound === undefined) this.setBinding(identity);
  }

  /**
   * Before every decision: throws StoreIdentityError unless `identity` is the store this
   * agent's positions were built against. A string compare, no I/O.
   */
  checkStore(identity: StoreIdentity): void {
    if (identity.storeId === this.bound?.storeId) return;
    if (this.bound === undefined) {
      throw new StoreIdentityError(
        `the local watermark ${this.path} is not bound to a store yet`,
        'the agent binds it when it opens the store; this is a bug in how the signer was set up',
      );
    }
    throw new StoreIdentityError(
      `this agent's watermarks were built against store ${this.bound.storeId}; the ${identity.engine} store it reaches now is ${identity.storeId} (initialised ${identity.createdAt})`,
      `if ${identity.storeId} is the true store now, import the newer state into it (vigil state import), then stop this agent and acknowledge it with \`vigil state adopt --config <agent.yaml> --store-id ${identity.storeId}\``,
    );
  }

  /**
   * The operator's acknowledgement that `identity` is now the true store (the agent is
   * stopped: a running agent holds this file's exclusive lock). The recorded positions stay:
   * a store behind them is still refused as store_behind_local. Throws if it cannot be written.
   */
  adoptStore(identity: StoreIdentity, clusterId?: string): void {
    if (this.file === undefined || this.failure !== undefined)
      throw new VigilError(
        'LOCAL_WATERMARK_UNAVAILABLE',
        `cannot write the agent's local watermark file ${this.path}: ${this.failure?.reason ?? 'it is not open'}`,
        'free space or fix the permissions of agent.dataDir, then adopt again',
      );
    this.file.writeBinding(identity);
    this.bound = identity;
    if (clusterId !== undefined) {
      this.file.writeCluster(clusterId);
      this.cluster = clusterId;
    }
  }

  /** etcd: the cluster id (hex) these positions were built against, if one has answered. */
  get boundCluster(): string | undefined {
    return this.cluster;
  }

  /**
   * etcd: called with the id of the first cluster that answers. The first ever is recorded;
   * another one throws StoreIdentityError: a cluster restored from a snapshot or rebuilt keeps
   * the store's identity key but not its cluster id, and positions signed since the snapshot
   * are missing from it. An operator acknowledges it with `vigil state adopt`.
   */
  checkCluster(clusterId: string): void {
    if (this.cluster === clusterId) return;
    if (this.cluster !== undefined) {
      throw new StoreIdentityError(
        `this agent's watermarks were built against etcd cluster ${this.cluster}; the cluster answering now is ${clusterId} (same store id ${this.bound?.storeId ?? '?'}): it was rebuilt or restored from a snapshot`,
        `bring the watermarks up to everything signed since the snapshot (vigil state import), then stop this agent and run \`vigil state adopt --config <agent.yaml> --store-id ${this.bound?.storeId ?? '<id>'}\` (README: restoring the etcd guard cluster)`,
      );
    }
    this.cluster = clusterId;
    this.clusterDirty = true;
    if (this.failure !== undefined || this.file === undefined) return; // the retry writes it
    try {
      this.writePending(this.file);
    } catch (err) {
      this.markFailing(err);
    }
  }

  private setBinding(identity: StoreIdentity): void {
    this.bound = identity;
    this.bindingDirty = true;
    if (this.failure !== undefined || this.file === undefined) return; // the retry writes it
    try {
      this.writePending(this.file);
    } catch (err) {
      this.markFailing(err);
    }
  }

  get(scope: WatermarkScope): Position | undefined {
    return this.cache.get(scopeId(scope));
  }

  /** Records that `position` was released; never lowers what is recorded. */
  raise(scope: WatermarkScope, position: Position): void {
    const id = scopeId(scope);
    const known = this.cache.get(id);
    if (known !== undefined && comparePositions(position, known) <= 0) return;
    this.cache.set(id, position);
    this.dirty.add(id);
    if (this.flushTimer === undefined && this.failure === undefined) {
      this.flushTimer = setTimeout(() => this.flush(), FLUSH_MS);
      // Pending positions are written by close(); the timer alone keeps no process alive.
      this.flushTimer.unref();
    }
  }

  /** Writes every raised position not yet on disk; a failure turns `writable` false. */
  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    // While failing, the retry loop owns the pending positions.
    if (this.closed || this.failure !== undefined || this.dirty.size === 0) return;
    try {
      this.writePending(this.file!);
    } catch (err) {
      this.markFailing(err);
    }
  }

  /** Writes what is pending, a last time, and releases the file. Never throws on I/O. */
  close(): void {
    if (this.closed) return;
    if (this.failure !== undefined) this.recover();
    else this.flush();
    this.closed = true;
    clearTimeout(this.flushTimer);
    clearTimeout(this.retryTimer);
    this.releaseFile();
  }

  private openFile(): OpenFile {
    mkdirSync(dirname(this.path), { recursive: true });
    // Owner-only, and so its -wal (this connection's exclusive mode makes no -shm).
    createPrivateFile(this.path);
    const db = new Database(this.path, { timeout: 0 });
    try {
      // Before WAL: in exclusive mode SQLite keeps the WAL index in memory, no -shm file.
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec(
        'CREATE TABLE IF NOT EXISTS local_watermarks (scope TEXT PRIMARY KEY, position TEXT NOT NULL) STRICT',
      );
      db.exec(
        'CREATE TABLE IF NOT EXISTS local_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT',
      );
      // Taking the exclusive lock now, not at the first write, so a second agent fails at start.
      db.exec('BEGIN IMMEDIATE; COMMIT;');
      const storedId = (
        db.prepare("SELECT value FROM local_meta WHERE key = 'store_id'").get() as
          { value: string } | undefined
      )?.value;
      // Memory wins over a file reopened after a failure, as for positions: a binding made
      // while the disk was failing is written now.
      const storedCluster = (
        db.prepare("SELECT value FROM local_meta WHERE key = 'etcd_cluster_id'").get() as
          { value: string } | undefined
      )?.value;
      if (this.cluster === undefined) this.cluster = storedCluster;
      else if (storedCluster !== this.cluster) this.clusterDirty = true;
      if (this.bound === undefined && storedId !== undefined) this.bound = { storeId: storedId };
      else if (this.bound !== undefined && storedId !== this.bound.storeId)
        this.bindingDirty = true;
      const onDisk = new Map<string, Position>();
      for (const row of db.prepare('SELECT scope, position FROM local_watermarks').all() as Array<{
        scope: string;
        position: string;
      }>) {
        onDisk.set(
          row.scope,
          (JSON.parse(row.position) as string[]).map((p) => BigInt(p)),
        );
      }
      // Reopening after a failure: memory may be ahead of the file (or the file brand new);
      // whichever is higher wins, and what the file lacks is written again.
      for (const [id, position] of onDisk) {
        const known = this.cache.get(id);
        if (known === undefined || comparePositions(position, known) > 0)
          this.cache.set(id, position);
      }
      for (const [id, position] of this.cache) {
        const stored = onDisk.get(id);
        if (stored === undefined || comparePositions(position, stored) > 0) this.dirty.add(id);
      }
      const upsert = db.prepare<[string, string]>(
        'INSERT INTO local_watermarks (scope, position) VALUES (?, ?) ON CONFLICT (scope) DO UPDATE SET position = excluded.position',
      );
      const writeScopes = db.transaction((ids: readonly string[]) => {
        for (const id of ids) upsert.run(id, JSON.stringify(this.cache.get(id)!.map(String)));
      });
      const put = db.prepare<[string, string]>(
        'INSERT INTO local_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      );
      const writeBinding = (identity: StoreIdentity) => {
        db.transaction(() => {
          put.run('store_id', identity.storeId);
          if ('engine' in identity) put.run('store_engine', identity.engine);
          put.run('bound_at', new Date().toISOString());
        })();
        // synchronous=NORMAL may lose the last commit on power loss, and a lost binding would
        // let the next start bind to whatever store it finds: a checkpoint makes it durable.
        db.pragma('wal_checkpoint(FULL)');
      };
      const writeCluster = (clusterId: string) => {
        put.run('etcd_cluster_id', clusterId);
        db.pragma('wal_checkpoint(FULL)');
      };
      const { dev, ino } = statSync(this.path);
      return { db, writeScopes, writeBinding, writeCluster, dev, ino };
    } catch (err) {
      try {
        db.close();
      } catch {
        // the open already failed; this error says nothing more
      }
      throw err;
    }
  }

  /** Writes the pending binding and positions; they stay pending unless the commit returned. */
  private writePending(file: OpenFile): void {
    if (this.bindingDirty && this.bound !== undefined) {
      file.writeBinding(this.bound as StoreIdentity);
      this.checkSameFile(file);
      this.bindingDirty = false;
    }
    if (this.clusterDirty && this.cluster !== undefined) {
      file.writeCluster(this.cluster);
      this.checkSameFile(file);
      this.clusterDirty = false;
    }
    const ids = [...this.dirty];
    if (ids.length > 0) file.writeScopes(ids);
    for (const id of ids) this.dirty.delete(id);
    // SQLite writes happily into a file whose directory was removed; what it wrote is lost.
    this.checkSameFile(file);
  }

  private checkSameFile(file: OpenFile): void {
    const now = statSync(this.path);
    if (now.dev !== file.dev || now.ino !== file.ino) {
      throw new Error(`${this.path} was replaced by another file while open`);
    }
  }

  private markFailing(err: unknown): void {
    const reason = describeIoFailure(err);
    const kind = ioFailureKind(err);
    const first = this.failure === undefined;
    this.failure = {
      reason,
      sinceMs: this.failure?.sinceMs ?? Date.now(),
      // Space coming back is enough for a full disk; anything else gets a fresh connection (a
      // file opened read-only, a removed file, an I/O error SQLite may remember).
      reopen: kind !== 'full',
    };
    if (first) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
      this.retryDelayMs = this.retryMs.first;
      this.options.onStateChange?.(this.state);
    }
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer !== undefined) return;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(delay * 2, this.retryMs.max);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.recover();
    }, delay);
    this.retryTimer.unref();
  }

  /** One attempt to get every raised position onto disk; on success `writable` turns true. */
  private recover(): void {
    if (this.failure === undefined || this.closed) return;
    try {
      if (this.file === undefined || this.failure.reopen) {
        this.releaseFile();
        this.file = this.openFile();
      }
      this.writePending(this.file);
    } catch (err) {
      this.markFailing(err);
      return;
    }
    this.failure = undefined;
    this.options.onStateChange?.(this.state);
  }

  private releaseFile(): void {
    const file = this.file;
    this.file = undefined;
    try {
      if (file?.db.open) file.db.close();
    } catch {
      // Closing checkpoints the WAL; on a failing disk that may fail, and the WAL stays for
      // the next open to replay. Nothing else to do with the error.
    }
  }
}
