import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StoreIdentityError } from '../../src/errors.js';
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

test('binds to the first store it is given, durably, and refuses any other until adopted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-local-'));
  const storeA = {
    storeId: '11111111-1111-4111-8111-111111111111',
    engine: 'sqlite' as const,
    createdAt: 'a',
  };
  const storeB = {
    storeId: '22222222-2222-4222-8222-222222222222',
    engine: 'sqlite' as const,
    createdAt: 'b',
  };
  try {
    const l = new LocalWatermarks(join(dir, 'l.db'));
    assert.throws(() => l.checkStore(storeA), StoreIdentityError, 'unbound refuses');
    l.bindStore(storeA);
    l.checkStore(storeA);
    l.raise(scope, [7n]);
    l.bindStore(storeB); // a later bind never rebinds
    assert.throws(
      () => l.checkStore(storeB),
      (e: unknown) =>
        e instanceof StoreIdentityError &&
        e.message.includes(`built against store ${storeA.storeId}`) &&
        e.message.includes(`reaches now is ${storeB.storeId}`) &&
        /vigil state import/.test(e.message) &&
        /vigil state adopt/.test(e.message),
    );
    l.close();

    // The binding survives a SIGKILL right after it was made (it is written before anything
    // is signed, not batched with the positions).
    const script = `
      const { LocalWatermarks } = await import(${JSON.stringify(MODULE)});
      const l = new LocalWatermarks(${JSON.stringify(join(dir, 'k.db'))});
      l.bindStore(${JSON.stringify(storeB)});
      process.stdout.write('bound\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const killed = new LocalWatermarks(join(dir, 'k.db'));
    assert.equal(killed.boundStore, storeB.storeId);
    killed.close();

    const reopened = new LocalWatermarks(join(dir, 'l.db'));
    assert.equal(reopened.boundStore, storeA.storeId);
    assert.throws(() => reopened.checkStore(storeB), StoreIdentityError);
    reopened.adoptStore(storeB);
    reopened.checkStore(storeB);
    assert.throws(() => reopened.checkStore(storeA), StoreIdentityError);
    // Adopting a store keeps what this agent signed: the tripwire still holds.
    assert.deepEqual(reopened.get(scope), [7n]);
    reopened.close();
    const after = new LocalWatermarks(join(dir, 'l.db'));
    assert.equal(after.boundStore, storeB.storeId);
    after.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
