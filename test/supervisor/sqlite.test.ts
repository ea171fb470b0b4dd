/** The supervisor's rules on the single-host engine, with real files, processes and signals. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteLeaderElection } from '../../src/lease/sqlite.js';
import { SqliteWatermarkStore } from '../../src/store/sqlite.js';

/** Initialises the store file the election lives in (an operator act) and returns its path. */
function initDb(path: string): string {
  void SqliteWatermarkStore.open({ path, create: true }).close();
  return path;
}
import { LeaseTimingSchema, now } from '../../src/lease/types.js';
import {
  SupervisorConfigSchema,
  startSupervisor,
  type SupervisorEvent,
} from '../../src/supervisor/supervisor.js';
import { sleep } from '../helpers/etcd-cluster.js';

async function until(what: string, probe: () => boolean, ms = 10_000): Promise<void> {
  for (let waited = 0; waited < ms; waited += 25) {
    if (probe()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('exclusive-role supervisor (SQLite lease)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-sup-sqlite-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('rejects timings where deactivation could not finish before the deadline', () => {
    const r = SupervisorConfigSchema.safeParse({
      role: 'p',
      lease: { ttlMs: 2000 },
      renewEveryMs: 800,
      deactivateBudgetMs: 500,
      activate: [{ run: ['true'] }],
      deactivate: [{ run: ['true'] }],
    });
    assert.equal(r.success, false);
  });

  it('moves key files in, signals the node, and deactivates before the deadline when renewals stall', async () => {
    const db = join(dir, 'stall.db');
    const standby = join(dir, 'standby');
    const live = join(dir, 'live');
    mkdirSync(standby);
    mkdirSync(live);
    writeFileSync(join(standby, 'kes.skey'), 'secret');
    // A stand-in node that records SIGHUPs.
    const hups = join(dir, 'hups');
    const node = spawn(
      'sh',
      ['-c', `trap 'echo hup >> ${hups}' HUP; while true; do sleep 0.05; done`],
      {
        stdio: 'ignore',
      },
    );
    const pidFile = join(dir, 'node.pid');
    writeFileSync(pidFile, String(node.pid));
    const events: Array<SupervisorEvent & { at: number }> = [];
    const timing = LeaseTimingSchema.parse({ ttlMs: 2000, marginMs: 100, callTimeoutMs: 100 });
    const sup = startSupervisor(
      {
        role: 'cardano-producer',
        lease: timing,
        renewEveryMs: 200,
        deactivateBudgetMs: 600,
        activate: [
          { moveFile: { from: join(standby, 'kes.skey'), to: join(live, 'kes.skey') } },
          { signal: 'SIGHUP', pidFile },
        ],
        deactivate: [
          { moveFile: { from: join(live, 'kes.skey'), to: join(standby, 'kes.skey') } },
          { signal: 'SIGHUP', pidFile },
        ],
      },
      new SqliteLeaderElection(initDb(db), 'cardano-producer', 'A', timing),
      (e) => events.push({ ...e, at: Date.now() }),
    );
    let blocker: Database.Database | undefined;
    try {
      await until('active', () => sup.state() === 'active');
      assert.ok(existsSync(join(live, 'kes.skey')) && !existsSync(join(standby, 'kes.skey')));
      assert.ok(sup.fence());
      await until('SIGHUP delivered', () => existsSync(hups));
      await until('a renewal', () => events.some((e) => e.type === 'renewed'));
      // Another process takes the write lock and keeps it: renewals can no longer be confirmed.
      blocker = new Database(db);
      blocker.exec('BEGIN IMMEDIATE');
      await until('deactivated', () => events.some((e) => e.type === 'deactivated'));
      const lastDeadline = Math.max(
        ...events
          .filter((e) => e.type === 'renewed' || e.type === 'activated')
          .map((e) => (e as { deadlineWallMs: number }).deadlineWallMs),
      );
      const done = events.find((e) => e.type === 'deactivated')!;
      assert.ok(done.at < lastDeadline, `deactivated at ${done.at}, deadline ${lastDeadline}`);
      assert.equal((done as { ok: boolean }).ok, true);
      // No confirm check: a SIGHUP sent proves nothing, so the lease is left to run out.
      assert.equal((done as { confirmed: boolean }).confirmed, false);
      assert.ok(existsSync(join(standby, 'kes.skey')) && !existsSync(join(live, 'kes.skey')));
      // The shell runs its trap once its current `sleep` ends.
      await until('the second SIGHUP handled', () => {
        return readFileSync(hups, 'utf8').trim().split('\n').length === 2;
      });
      assert.equal(sup.fence(), undefined);
      blocker.exec('ROLLBACK');
    } finally {
      if (blocker?.inTransaction) blocker.exec('ROLLBACK');
      blocker?.close();
      await sup.stop();
      node.kill('SIGKILL');
    }
  });

  it('hands the role back only once the confirm check passes, not when the stop was sent', async () => {
    const db = join(dir, 'confirm.db');
    const forging = join(dir, 'forging');
    const events: SupervisorEvent[] = [];
    const timing = LeaseTimingSchema.parse({ ttlMs: 2000, marginMs: 100, callTimeoutMs: 200 });
    const sup = startSupervisor(
      {
        role: 'slow-stop',
        lease: timing,
        renewEveryMs: 200,
        deactivateBudgetMs: 800,
        activate: [{ run: ['touch', forging] }],
        // The node acknowledges at once but stops 300 ms later, as cardano-node after SIGHUP.
        deactivate: [{ run: ['sh', '-c', `(sleep 0.3; rm -f '${forging}') >/dev/null 2>&1 &`] }],
        confirm: { run: ['sh', '-c', `! test -e '${forging}'`], pollMs: 20 },
      },
      new SqliteLeaderElection(initDb(db), 'slow-stop', 'A', timing),
      (e) => events.push(e),
    );
    const b = new SqliteLeaderElection(db, 'slow-stop', 'B', timing);
    try {
      await until('active', () => sup.state() === 'active');
      const stopping = sup.stop();
      let lb;
      for (let i = 0; i < 400 && !lb; i++) {
        lb = await b.tryAcquire();
        if (!lb) await sleep(5);
      }
      assert.ok(lb, 'released before the lease ran out');
      assert.ok(!existsSync(forging), 'the role was free only after the node had stopped');
      assert.ok(lb.safeAfter <= now(), 'a confirmed stop lets the successor start at once');
      await stopping;
      const done = events.find((e) => e.type === 'deactivated') as { confirmed: boolean };
      assert.equal(done.confirmed, true);
      await lb.release();
    } finally {
      await sup.stop();
      await b.close();
    }
  });

  it('a failed activation deactivates and gives the role back', async () => {
    const events: SupervisorEvent[] = [];
    const timing = LeaseTimingSchema.parse({ ttlMs: 2000, marginMs: 100 });
    const marker = join(dir, 'deactivated');
    const sup = startSupervisor(
      {
        role: 'polkadot-validator',
        lease: timing,
        activate: [{ run: ['sh', '-c', 'exit 3'] }],
        deactivate: [{ run: ['touch', marker] }],
      },
      new SqliteLeaderElection(initDb(join(dir, 'fail.db')), 'polkadot-validator', 'A', timing),
      (e) => events.push(e),
    );
    try {
      await until('deactivated', () => events.some((e) => e.type === 'deactivated'));
      assert.ok(events.some((e) => e.type === 'action-failed' && e.phase === 'activate'));
      assert.ok(existsSync(marker));
      assert.ok(!events.some((e) => e.type === 'activated'));
    } finally {
      await sup.stop();
    }
  });
});
