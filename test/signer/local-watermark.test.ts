import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalWatermarks } from '../../src/signer/local-watermark.js';

const MODULE = new URL('../../src/signer/local-watermark.js', import.meta.url).href;
const scope = { chainId: 'c', keyId: 'k', family: 'slot' as const };

test('close() writes every raised position; positions never go down', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-local-'));
  try {
    const a = new LocalWatermarks(join(dir, 'l.db'));
    a.raise(scope, [5n]);
    a.raise(scope, [3n]);
    assert.deepEqual(a.get(scope), [5n]);
    a.close();
    const b = new LocalWatermarks(join(dir, 'l.db'));
    assert.deepEqual(b.get(scope), [5n]);
    b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a second agent cannot open the same local watermark file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-local-'));
  const a = new LocalWatermarks(join(dir, 'l.db'));
  try {
    assert.throws(() => new LocalWatermarks(join(dir, 'l.db')), /another agent/);
  } finally {
    a.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('after SIGKILL, positions raised more than a flush interval earlier are on disk', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-local-'));
  try {
    const script = `
      const { LocalWatermarks } = await import(${JSON.stringify(MODULE)});
      const l = new LocalWatermarks(${JSON.stringify(join(dir, 'l.db'))});
      for (let i = 1n; i <= 200n; i++) l.raise({ chainId: 'c', keyId: 'k', family: 'slot' }, [i]);
      setTimeout(() => process.stdout.write('raised\\n'), 200);
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const l = new LocalWatermarks(join(dir, 'l.db'));
    assert.deepEqual(l.get(scope), [200n]);
    l.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
