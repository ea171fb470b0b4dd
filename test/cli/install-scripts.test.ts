/**
 * Issue 11, item 1: npm warned that better-sqlite3's install script (the native build) was
 * "not yet covered by allowScripts"; an npm that enforces allowScripts would skip it and leave
 * Vigil without its store. package.json's allowScripts reviews every dependency that has one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/package-root.js';

test('every dependency with an install script is reviewed in allowScripts', (t) => {
  const manifest = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as {
    allowScripts?: Record<string, boolean>;
  };
  assert.equal(manifest.allowScripts?.['better-sqlite3'], true, 'the native build must run');
  const r = spawnSync('npm', ['install-scripts', 'ls'], {
    cwd: packageRoot(),
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0 && /Unknown command|not a valid npm command/i.test(r.stdout + r.stderr)) {
    t.skip(
      `this npm (${spawnSync('npm', ['--version'], { encoding: 'utf8' }).stdout.trim()}) has no install-scripts command`,
    );
    return;
  }
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /No packages with unreviewed install scripts/, r.stdout);
});
