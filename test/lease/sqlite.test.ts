/** The single-host lease and the SQLite store's fence check, on real files. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { openElection } from '../../src/lease/index.js';
import { SqliteLeaderElection } from '../../src/lease/sqlite.js';
import { LeaseTimingSchema, now, type Leadership } from '../../src/lease/types.js';
import { SqliteWatermarkStore } from '../../src/store/sqlite.js';
import { FencedError, type FenceToken } from '../../src/store/types.js';
import { sleep } from '../helpers/etcd-cluster.js';

const scope = { chainId: 'c', keyId: 'k', family: 'slot' as const };
// Schema minimum is 2 s; tests build the timing directly to stay quick.
const timing = (ttlMs: number) => ({ ...LeaseTimingSchema.parse({}), ttlMs, marginMs: 20 });

describe('SQLite leadership and fencing', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-lease-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A store file initialised the way `vigil state init` does; elections never create one. */
  const initialised = (name: string) => {
    const path = join(dir, name);
    void SqliteWatermarkStore.open({ path, create: true }).close();
    return path;
  };

  const write = (store: SqliteWatermarkStore, slot: bigint, fence?: FenceToken) =>
    store.update(
      scope,
      () => ({ write: { family: 'slot', position: [slot] }, result: slot }),
      fence ? { fence } : undefined,
    );

  it('one holder at a time; release hands over at once with a higher token', async () => {
    const path = initialised('handover.db');
    const a = new SqliteLeaderElection(path, 'producer', 'A', timing(5000));
    const b = new SqliteLeaderElection(path, 'producer', 'B', timing(5000));
    const store = SqliteWatermarkStore.open({ path });
    try {
      const la = await a.tryAcquire();
      assert.ok(la);
      assert.equal(await b.tryAcquire(), undefined);
      assert.ok(await la.renew());
      assert.equal(await write(store, 1n, la.fence), 1n);
      await la.release();
      assert.equal(la.held(), false);
      const lb = await b.tryAcquire();
      assert.ok(lb);
      assert.ok(lb.fence.token > la.fence.token);
      assert.ok(lb.safeAfter <= now(), 'a released role may be used at once');
      await assert.rejects(write(store, 2n, la.fence), FencedError);
      assert.equal(await write(store, 3n, lb.fence), 3n);
      assert.equal(await la.renew(), false);
      assert.deepEqual((await store.get(scope))?.position, [3n]);
    } finally {
      await Promise.all([a.close(), b.close(), store.close()]);
    }
  });

  it('openElection picks the engine and file of the store, so its tokens fence that store', async () => {
    const store = SqliteWatermarkStore.open({ path: join(dir, 'open.db'), create: true });
    const election = openElection(store, 'producer', 'A', timing(5000));
    try {
      assert.ok(election instanceof SqliteLeaderElection);
      const l = (await election.tryAcquire())!;
      assert.equal(await write(store, 1n, l.fence), 1n);
      await l.release();
      await assert.rejects(write(store, 2n, l.fence), FencedError);
    } finally {
      await election.close();
      await store.close();
    }
  });

  it('a holder whose store file is deleted loses the role; nobody acquires on the dead file', async () => {
    const path = initialised('deleted.db');
    const a = new SqliteLeaderElection(path, 'producer', 'A', timing(5000));
    const b = new SqliteLeaderElection(path, 'producer', 'B', timing(5000));
    try {
      const la = (await a.tryAcquire())!;
      assert.ok(await la.renew());
      for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
      assert.equal(await la.renew(), false, 'a renewal on the deleted file is no renewal');
      assert.equal(la.held(), false);
      assert.equal(await b.tryAcquire(), undefined);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('an expired holder is fenced, cannot renew, and its successor waits a TTL', async () => {
    const path = initialised('expiry.db');
    const ttl = 300;
    const a = new SqliteLeaderElection(path, 'producer', 'A', timing(ttl));
    const b = new SqliteLeaderElection(path, 'producer', 'B', timing(ttl));
    const store = SqliteWatermarkStore.open({ path });
    try {
      const la = (await a.tryAcquire())!;
      assert.ok(la.deadline() <= now() + ttl);
      await sleep(ttl + 50);
      assert.equal(la.held(), false);
      await assert.rejects(write(store, 1n, la.fence), FencedError);
      const lb = (await b.tryAcquire())!;
      assert.ok(lb);
      assert.ok(lb.safeAfter >= now() + ttl - 50, 'took over an expired row: waits a TTL');
      assert.equal(await la.renew(), false);
      await assert.rejects(write(store, 2n, { role: 'producer', token: 99n }), FencedError);
      await assert.rejects(write(store, 2n, { role: 'other', token: 1n }), FencedError);
    } finally {
      await Promise.all([a.close(), b.close(), store.close()]);
    }
  });

  it('property: a fenced write commits iff its token is the live holding', async () => {
    const path = initialised('prop.db');
    const holders = ['A', 'B', 'C'].map(
      (h) => new SqliteLeaderElection(path, 'r', h, timing(60_000)),
    );
    const store = SqliteWatermarkStore.open({ path });
    let slot = 0n;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              who: fc.nat(2),
              op: fc.constantFrom('acquire', 'renew', 'release', 'write'),
            }),
            { maxLength: 30 },
          ),
          async (ops) => {
            const held: Array<Leadership | undefined> = [undefined, undefined, undefined];
            let live: Leadership | undefined;
            // Start each run from a free role.
            for (const h of holders) {
              const l = await h.tryAcquire();
              if (l) await l.release();
            }
            const seen: bigint[] = [];
            for (const { who, op } of ops) {
              const mine = held[who];
              if (op === 'acquire') {
                const l = await holders[who]!.tryAcquire();
                assert.equal(l !== undefined, live === undefined);
                if (l) {
                  assert.ok(
                    seen.every((t) => t < l.fence.token),
                    'tokens only grow',
                  );
                  seen.push(l.fence.token);
                  held[who] = live = l;
                }
              } else if (op === 'renew' && mine) {
                assert.equal(await mine.renew(), mine === live);
              } else if (op === 'release' && mine) {
                await mine.release();
                if (mine === live) live = undefined;
                held[who] = undefined;
              } else if (op === 'write' && mine) {
                slot++;
                if (mine === live) assert.equal(await write(store, slot, mine.fence), slot);
                else await assert.rejects(write(store, slot, mine.fence), FencedError);
              }
            }
            if (live) await live.release();
          },
        ),
        { numRuns: 60 },
      );
    } finally {
      for (const h of holders) await h.close();
      await store.close();
    }
  });
});
