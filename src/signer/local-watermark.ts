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
 * It also remembers which store (by identity) its positions were built against. A store with
 * another identity — a deleted SQLite file re-initialised, another or a rebuilt etcd cluster —
 * is refused until an operator acknowledges it (`vigil state adopt`), so a fresh store can never
 * silently replace the one this agent's signatures were recorded in.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StoreIdentityError, VigilError, errorMessage } from '../errors.js';
import { comparePositions, type Position } from '../guard/position.js';
import { scopeId, type StoreIdentity, type WatermarkScope } from '../store/types.js';

/** How long a raised position may wait before it is on disk. */
const FLUSH_MS = 25;

export class LocalWatermarks {
  private readonly db: Database.Database;
  private readonly cache = new Map<string, Position>();
  private readonly dirty = new Set<string>();
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly upsert: Database.Statement<[string, string]>;
  private readonly writeDirty: () => void;
  /** The storeId these positions were built against; undefined until the first bindStore. */
  private boundStoreId: string | undefined;

  constructor(readonly path: string) {
    try {
      mkdirSync(dirname(path), { recursive: true });
      this.db = new Database(path, { timeout: 0 });
      this.db.pragma('locking_mode = EXCLUSIVE');
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.exec(
        'CREATE TABLE IF NOT EXISTS local_watermarks (scope TEXT PRIMARY KEY, position TEXT NOT NULL) STRICT',
      );
      this.db.exec(
        'CREATE TABLE IF NOT EXISTS local_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT',
      );
      // Taking the exclusive lock now, not at the first write, so a second agent fails at start.
      this.db.exec('BEGIN IMMEDIATE; COMMIT;');
      for (const row of this.db
        .prepare('SELECT scope, position FROM local_watermarks')
        .all() as Array<{ scope: string; position: string }>) {
        this.cache.set(
          row.scope,
          (JSON.parse(row.position) as string[]).map((p) => BigInt(p)),
        );
      }
      this.boundStoreId = (
        this.db.prepare("SELECT value FROM local_meta WHERE key = 'store_id'").get() as
          { value: string } | undefined
      )?.value;
    } catch (err) {
      throw new VigilError(
        'LOCAL_WATERMARK_UNAVAILABLE',
        `cannot open the agent's local watermark file ${path}: ${errorMessage(err)}`,
        'each agent needs its own agent.dataDir; is another agent already running with this one?',
        { cause: err },
      );
    }
    this.upsert = this.db.prepare(
      'INSERT INTO local_watermarks (scope, position) VALUES (?, ?) ON CONFLICT (scope) DO UPDATE SET position = excluded.position',
    );
    this.writeDirty = this.db.transaction(() => {
      for (const id of this.dirty)
        this.upsert.run(id, JSON.stringify(this.cache.get(id)!.map(String)));
      this.dirty.clear();
    });
  }

  /** The storeId this agent's positions were built against, if it has been bound. */
  get boundStore(): string | undefined {
    return this.boundStoreId;
  }

  /**
   * Called once by the agent after opening its store. The first store ever bound is recorded
   * (durably, before anything is signed); later, a store with another identity is not
   * rebound here: `checkStore` refuses it until an operator acknowledges it with `adoptStore`.
   */
  bindStore(identity: StoreIdentity): void {
    if (this.boundStoreId === undefined) this.writeBinding(identity);
  }

  /**
   * Before every decision: throws StoreIdentityError unless `identity` is the store this
   * agent's positions were built against. A string compare, no I/O.
   */
  checkStore(identity: StoreIdentity): void {
    if (identity.storeId === this.boundStoreId) return;
    if (this.boundStoreId === undefined) {
      throw new StoreIdentityError(
        `the local watermark ${this.path} is not bound to a store yet`,
        'the agent binds it when it opens the store; this is a bug in how the signer was set up',
      );
    }
    throw new StoreIdentityError(
      `this agent's watermarks were built against store ${this.boundStoreId}; the ${identity.engine} store it reaches now is ${identity.storeId} (initialised ${identity.createdAt})`,
      `if ${identity.storeId} is the true store now, import the newer state into it (vigil state import), then stop this agent and acknowledge it with \`vigil state adopt --config <agent.yaml> --store-id ${identity.storeId}\``,
    );
  }

  /**
   * The operator's acknowledgement that `identity` is now the true store (the agent is
   * stopped: a running agent holds this file's exclusive lock). The recorded positions stay:
   * a store behind them is still refused as store_behind_local.
   */
  adoptStore(identity: StoreIdentity): void {
    this.writeBinding(identity);
  }

  private writeBinding(identity: StoreIdentity): void {
    const put = this.db.prepare(
      'INSERT INTO local_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    );
    this.db.transaction(() => {
      put.run('store_id', identity.storeId);
      put.run('store_engine', identity.engine);
      put.run('bound_at', new Date().toISOString());
    })();
    // synchronous=NORMAL may lose the last commit on power loss, and a lost binding would let
    // the next start bind to whatever store it finds: a checkpoint makes it durable now.
    this.db.pragma('wal_checkpoint(FULL)');
    this.boundStoreId = identity.storeId;
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
    if (this.flushTimer === undefined) {
      this.flushTimer = setTimeout(() => this.flush(), FLUSH_MS);
      // Pending positions are written by close(); the timer alone keeps no process alive.
      this.flushTimer.unref();
    }
  }

  /** Writes every raised position not yet on disk. */
  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.dirty.size > 0 && this.db.open) this.writeDirty();
  }

  close(): void {
    if (!this.db.open) return;
    this.flush();
    this.db.close();
  }
}
