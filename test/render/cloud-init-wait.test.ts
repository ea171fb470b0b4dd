/**
 * install.sh waits for cloud-init's final stage before it touches apt. Booting a rendered host
 * (npm run test:vm) showed the first push failing with "Could not get lock
 * /var/lib/apt/lists/lock": cloud-init 22.4 had reported `status: error` for a failed earlier
 * stage, which ends `cloud-init status --wait`, while its final stage still ran apt. These run
 * the rendered wait with a `cloud-init` that answers as 22.4 did and a run directory of ours.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { planExample, removeDir, tempDir } from './helpers.js';

/** The cloud-init wait block of a rendered install.sh, from its comment to the blank line. */
function renderedWait(dir: string): string {
  planExample('decred-solo', join(dir, 'state'), join(dir, 'plan'));
  const script = readFileSync(
    join(dir, 'plan', 'hosts', 'wallet-eu', 'bundle', 'install.sh'),
    'utf8',
  );
  const start = script.indexOf('# The first push may come while cloud-init');
  assert.ok(start >= 0, 'install.sh waits for cloud-init');
  return script.slice(start, script.indexOf('\n\n', start));
}

function runWait(
  dir: string,
  block: string,
): { exited: Promise<number | null>; done: () => boolean } {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  // What cloud-init 22.4 answered on the booted host: an earlier stage failed, the final runs.
  writeFileSync(join(bin, 'cloud-init'), '#!/bin/sh\necho "status: error"\nexit 1\n', {
    mode: 0o755,
  });
  const child = spawn('sh', ['-c', `set -eu\nfull=true\n${block}\n`], {
    env: {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      VIGIL_CLOUD_INIT_RUN: join(dir, 'run'),
    },
    stdio: 'ignore',
  });
  let finished = false;
  const exited = new Promise<number | null>((res) =>
    child.on('close', (code) => {
      finished = true;
      res(code);
    }),
  );
  return { exited, done: () => finished };
}

test('install.sh waits for cloud-init result.json even when cloud-init already reports an error', async () => {
  const dir = tempDir('ci-wait');
  try {
    const block = renderedWait(dir);
    mkdirSync(join(dir, 'run'));
    writeFileSync(join(dir, 'run', 'enabled'), '');
    const w = runWait(dir, block);
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(w.done(), false, 'the wait ended while the final stage was still running');
    writeFileSync(join(dir, 'run', 'result.json'), '{"v1": {"errors": []}}\n');
    const code = await Promise.race([
      w.exited,
      new Promise<string>((r) => setTimeout(() => r('still waiting'), 10_000)),
    ]);
    assert.equal(code, 0);
  } finally {
    removeDir(dir);
  }
});

test('install.sh does not wait when cloud-init does not run on this boot', async () => {
  const dir = tempDir('ci-wait');
  try {
    const block = renderedWait(dir);
    mkdirSync(join(dir, 'run'));
    const w = runWait(dir, block);
    const code = await Promise.race([
      w.exited,
      new Promise<string>((r) => setTimeout(() => r('still waiting'), 10_000)),
    ]);
    assert.equal(code, 0);
  } finally {
    removeDir(dir);
  }
});
