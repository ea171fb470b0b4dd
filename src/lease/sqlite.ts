/**
 * Leadership on one host: a row per role in the SQLite store's `leases` table, taken and
 * renewed inside BEGIN IMMEDIATE. The token counts acquisitions, so it only grows; the store
 * checks it in the same transaction as every fenced watermark write.
 *
 * Expiry is judged on the wall clock (the only clock two processes share). A wall clock can
 * jump forward, so a successor that takes over an expired row (rather than a released one)
 * waits a full TTL on its own monotonic clock before acting: by then the previous holder, who
 * can no longer renew, is past its own monotonic deadline. A released row (holder NULL) is the
 * record of a confirmed stop (the supervisor releases only then), so it is used at once.
 */
import type Database from 'better-sqlite3';
import { StoreIdentityError } from '../errors.js';
import { SqliteWatermarkStore } from '../store/sqlite.js';
import { now, type LeaderElection, type Leadership, type LeaseTiming } from './types.js';

interface Row {
  token: bigint;
  holder: string | null;
  expires_at_ms: bigint;
}

class SqliteLeadership implements Leadership {
  private deadlineAt: number;
  private lost = false;

  constructor(
    private readonly election: SqliteLeaderElection,
    readonly fence: { role: string; token: bigint },
    sentAt: number,
    readonly safeAfter: number,
  ) {
    this.deadlineAt = sentAt + election.timing.ttlMs - election.timing.marginMs;
  }

  deadline(): number {
    return this.deadlineAt;
  }

  held(): boolean {
    return !this.lost && now() < this.deadlineAt;
  }

  async renew(): Promise<boolean> {
    if (!this.held()) return false;
    const sentAt = now();
    const outcome = this.election.renewRow(this.fence.token);
    if (outcome === 'lost') this.lost = true;
    if (outcome !== 'renewed') return false;
    this.deadlineAt = Math.max(
      this.deadlineAt,
      sentAt + this.election.timing.ttlMs - this.election.timing.marginMs,
    );
    return this.held();
  }

  async release(): Promise<void> {
    this.lost = true;
    this.election.releaseRow(this.fence.token);
  }
}

export class SqliteLeaderElection implements LeaderElection {
  private readonly store: SqliteWatermarkStore;
  private readonly db: Database.Database;

  constructor(
    path: string,
    readonly role: string,
    readonly holderId: string,
    readonly timing: LeaseTiming,
  ) {
    // Opening through the store runs its migrations, so the leases table exists.
    this.store = SqliteWatermarkStore.open({ path, busyTimeoutMs: timing.callTimeoutMs });
    this.db = this.store.database;
  }

  private row(): Row | undefined {
    return this.db
      .prepare('SELECT token, holder, expires_at_ms FROM leases WHERE role = ?')
      .safeIntegers(true)
      .get(this.role) as Row | undefined;
  }

  async tryAcquire(): Promise<Leadership | undefined> {
    const sentAt = now();
    try {
      const taken = this.db
        .transaction(() => {
          // A lease row in a deleted or replaced file is nobody's lease.
          this.store.assertSameFile();
          const row = this.row();
          const wall = BigInt(Date.now());
          if (row && row.holder !== null && row.expires_at_ms > wall) return undefined;
          const token = (row?.token ?? 0n) + 1n;
          this.db
            .prepare(
              `INSERT INTO leases (role, token, holder, expires_at_ms) VALUES (?, ?, ?, ?)
               ON CONFLICT (role) DO UPDATE SET token = excluded.token, holder = excluded.holder,
               expires_at_ms = excluded.expires_at_ms`,
            )
            .run(this.role, token, this.holderId, wall + BigInt(this.timing.ttlMs));
          return { token, tookOverExpired: row !== undefined && row.holder !== null };
        })
        .immediate();
      if (!taken) return undefined;
      return new SqliteLeadership(
        this,
        { role: this.role, token: taken.token },
        sentAt,
        taken.tookOverExpired ? now() + this.timing.ttlMs : now(),
      );
    } catch {
      return undefined;
    }
  }

  /** The holder of an unexpired, unreleased row (wall clock, as the rows are written). */
  async current(): Promise<{ holderId: string; token: bigint } | undefined> {
    const row = this.row();
    if (!row || row.holder === null || row.expires_at_ms <= BigInt(Date.now())) return undefined;
    return { holderId: row.holder, token: row.token };
  }

  /** @internal */
  renewRow(token: bigint): 'renewed' | 'lost' | 'unconfirmed' {
    try {
      return this.db
        .transaction(() => {
          this.store.assertSameFile();
          const row = this.row();
          const wall = BigInt(Date.now());
          if (!row || row.token !== token || row.holder !== this.holderId) return 'lost';
          // Past its expiry the row is up for grabs; renewing it now would race a successor.
          if (row.expires_at_ms <= wall) return 'lost';
          this.db
            .prepare('UPDATE leases SET expires_at_ms = ? WHERE role = ? AND token = ?')
            .run(wall + BigInt(this.timing.ttlMs), this.role, token);
          return 'renewed' as const;
        })
        .immediate();
    } catch (err) {
      return err instanceof StoreIdentityError ? 'lost' : 'unconfirmed';
    }
  }

  /** @internal */
  releaseRow(token: bigint): void {
    try {
      this.db
        .prepare('UPDATE leases SET holder = NULL, expires_at_ms = 0 WHERE role = ? AND token = ?')
        .run(this.role, token);
    } catch {
      /* expiry releases it anyway */
    }
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
