import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  Readiness,
  STORE_CONDITION,
  defineStoreCondition,
  type ConditionStatus,
} from '../../src/agent/readiness.js';
import { SqliteWatermarkStore } from '../../src/store/sqlite.js';
import { tempDir } from '../helpers/guard-fixtures.js';

test('listeners hear changes between ready and not ready only, not each report', () => {
  const heard: ConditionStatus[] = [];
  const r = new Readiness((c) => heard.push(c));
  r.define('disk');
  r.define('other');
  assert.equal(r.snapshot().ready, true);
  r.report('disk', 'the disk is full');
  r.report('disk', 'the disk is full');
  r.report('disk', 'the disk reported an I/O error');
  assert.deepEqual(
    heard.map((c) => [c.name, c.ready, c.reason]),
    [['disk', false, 'the disk is full']],
  );
  const report = r.snapshot();
  assert.equal(report.ready, false);
  assert.equal(Readiness.describe(report), 'disk: the disk reported an I/O error');
  r.report('disk', undefined);
  assert.deepEqual(
    heard.map((c) => [c.name, c.ready]),
    [
      ['disk', false],
      ['disk', true],
    ],
  );
  assert.equal(r.snapshot().ready, true);
});

test('probes: a failure, a throw and a hang each make their condition not ready', async () => {
  const r = new Readiness();
  let failure: string | undefined = 'gone';
  r.define('answers', () => failure);
  r.define('throws', () => {
    throw new Error('EIO');
  });
  r.define('hangs', () => new Promise<undefined>(() => {}));
  const report = await r.check(50);
  assert.deepEqual(
    report.conditions.map((c) => [c.name, c.ready, c.reason]),
    [
      ['answers', false, 'gone'],
      ['throws', false, 'EIO'],
      ['hangs', false, 'no answer within 50 ms'],
    ],
  );
  failure = undefined;
  assert.equal((await r.check(50)).conditions[0]!.ready, true);
});

test('SQLite store condition: a refused write stays not ready until a write commits', async () => {
  const { dir, cleanup } = tempDir('vigil-readiness-');
  const store = SqliteWatermarkStore.open({ path: join(dir, 'store.db'), create: true });
  try {
    const r = new Readiness();
    const onDecision = defineStoreCondition(r, store);
    assert.equal((await r.check(1000)).ready, true);
    onDecision({ outcome: 'refused', reason: 'store_unavailable', message: 'disk is full' });
    // The ping is a read; it answers, but says nothing about writes.
    const after = await r.check(1000);
    assert.equal(after.ready, false);
    assert.equal(after.conditions.find((c) => c.name === STORE_CONDITION)?.reason, 'disk is full');
    onDecision({ outcome: 'refused', reason: 'regression' });
    assert.equal((await r.check(1000)).ready, false);
    onDecision({ outcome: 'granted' });
    assert.equal((await r.check(1000)).ready, true);
    await store.close();
    const closed = await r.check(1000);
    assert.match(closed.conditions[0]!.reason ?? '', /closed/);
  } finally {
    await store.close();
    cleanup();
  }
});
