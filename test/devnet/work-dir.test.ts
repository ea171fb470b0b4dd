/**
 * Issue 11, item 3: `vigil up examples/devnet/devnet-etcd.yaml` after a plain `vigil up` shared
 * `.vigil/devnet`, and the SQLite run's local watermarks refused every etcd duty in silence.
 * Each devnet now has a work dir of its own by default, and a work dir claimed by another
 * devnet (or another store) is refused up front with the reason.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WORK_DIR_MARKER, claimWorkDir, defaultWorkDir } from '../../src/devnet/work-dir.js';

describe('devnet work dirs', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-workdir-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('default to one folder per devnet name and command', () => {
    assert.notEqual(defaultWorkDir('up', 'local'), defaultWorkDir('up', 'local-etcd'));
    assert.notEqual(defaultWorkDir('up', 'local'), defaultWorkDir('chaos', 'local'));
  });

  it('belong to the first devnet and store that used them', () => {
    const owner = { name: 'local', store: 'sqlite' };
    claimWorkDir(dir, owner);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, WORK_DIR_MARKER), 'utf8')), owner);
    claimWorkDir(dir, owner); // the same devnet again: fine
    assert.throws(
      () => claimWorkDir(dir, { name: 'local', store: 'etcd' }),
      (e: Error & { code?: string }) =>
        e.code === 'DEVNET_WORK_DIR_IN_USE' && /store_behind_local/.test(e.message),
    );
    assert.throws(
      () => claimWorkDir(dir, { name: 'local-etcd', store: 'etcd' }),
      /holds devnet "local" on the sqlite store/,
    );
  });

  it('an unreadable marker proves nothing and is refused', () => {
    const other = mkdtempSync(join(dir, 'bad-'));
    writeFileSync(join(other, WORK_DIR_MARKER), '{not json');
    assert.throws(() => claimWorkDir(other, { name: 'local', store: 'sqlite' }), /holds devnet/);
  });
});
