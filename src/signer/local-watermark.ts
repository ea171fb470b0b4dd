/**
 * Each agent's own record of the highest position it has released, kept apart from the shared
 * store. If the store is ever behind it (reset, restored from a backup, pointed at the wrong
 * cluster), the agent refuses instead of signing again at positions it has already passed.
 *
 * It is a tripwire, not the safety record: it is written after the store commit, with
 * synchronous=NORMAL (survives a process crash, may lose the last writes on power loss), so it
 * can lag the store but never lead it. An exclusive lock keeps a second agent off the file.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { VigilError, errorMessage } from '../errors.js';
import { comparePositions, type Position } from '../guard/position.js';
import { scopeId, type WatermarkScope } from '../store/types.js';

export class LocalWatermarks {
  private readonly db: Database.Database;
  private readonly cache = new Map<string, Position>();
  private readonly upsert: Database.Statement<[string, string]>;

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
  }

  get(scope: WatermarkScope): Position | undefined {
    return this.cache.get(scopeId(scope));
  }

  /** Records that `position` was released; never lowers what is recorded. */
  raise(scope: WatermarkScope, position: Position): void {
    const id = scopeId(scope);
    const known = this.cache.get(id);
    if (known !== undefined && comparePositions(position, known) <= 0) return;
    this.upsert.run(id, JSON.stringify(position.map(String)));
    this.cache.set(id, position);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
