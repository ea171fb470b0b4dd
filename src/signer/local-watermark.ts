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
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { VigilError, errorMessage } from '../errors.js';
import { comparePositions, type Position } from '../guard/position.js';
import { scopeId, type WatermarkScope } from '../store/types.js';

/** How long a raised position may wait before it is on disk. */
const FLUSH_MS = 25;

export class LocalWatermarks {
  private readonly db: Database.Database;
  private readonly cache = new Map<string, Position>();
  private readonly dirty = new Set<string>();
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly upsert: Database.Statement<[string, string]>;
  private readonly writeDirty: () => void;

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
