#!/usr/bin/env node
// Runs every compiled test file under dist/test with Node's own test runner.
// Node 20's runner takes no globs, so the files are listed here. Optional arguments
// filter the list by substring: `node scripts/run-tests.mjs guard store`.
// VIGIL_BUILD_DIR picks another compiled tree (default: dist).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...collect(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = collect(join(process.env.VIGIL_BUILD_DIR ?? 'dist', 'test')).filter(
  (f) => filters.length === 0 || filters.some((p) => f.includes(p)),
);
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const concurrency = process.env.VIGIL_TEST_CONCURRENCY ?? '2';
const result = spawnSync(
  process.execPath,
  // A hung test must fail the run, not hold CI until its own time limit.
  [
    '--test',
    `--test-concurrency=${concurrency}`,
    '--test-timeout=300000',
    '--test-reporter=spec',
    ...files,
  ],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
