/**
 * The local watermark file on a failing disk: a full tmpfs, a tmpfs remounted read-only, the
 * data directory removed. No error may escape (a timer that throws kills the agent); the
 * file reports itself not writable, the guard refuses, and once the disk is back every
 * position raised in memory is on disk before it reports itself writable again.
 */
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { VigilError } from '../../src/errors.js';
import { LocalWatermarks, type LocalWatermarkState } from '../../src/signer/local-watermark.js';
import { CHAIN, openSignerRig, req, tempDir } from '../helpers/guard-fixtures.js';
import { mountTmpfs, tmpfsSkip, type Tmpfs } from '../helpers/tmpfs.js';

const scopeOf = (chainId: string) => ({ chainId, keyId: 'k', family: 'slot' as const });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FAST_RETRY = { first: 5, max: 40 };

/** Waits (bounded) until `local` reports `writable`. */
async function waitWritable(local: LocalWatermarks, writable: boolean, withinMs = 5000) {
  const deadline = Date.now() + withinMs;
  while (local.writable !== writable) {
    if (Date.now() > deadline)
      assert.fail(`still ${JSON.stringify(local.state)} after ${withinMs} ms`);
    await sleep(10);
  }
}

function onDisk(path: string, chainId: string) {
  const l = new LocalWatermarks(path);
  try {
    return l.get(scopeOf(chainId));
  } finally {
    l.close();
  }
}

describe('local watermark on a failing disk', { skip: tmpfsSkip() }, () => {
  let fs: Tmpfs;
  before(() => {
    fs = mountTmpfs(512 * 1024);
  });
  after(() => fs.unmount());

  it('full disk: not writable, no exception, recovers with every position on disk', async () => {
    const path = join(fs.dir, 'full', 'l.db');
    const changes: LocalWatermarkState[] = [];
    const local = new LocalWatermarks(path, {
      retryMs: FAST_RETRY,
      onStateChange: (s) => changes.push(s),
    });
    try {
      local.raise(scopeOf('a'), [1n]);
      local.flush();
      assert.equal(local.writable, true);
      fs.fill();
      // Enough rows that the WAL must grow, whatever room its last page had.
      for (let i = 0; i < 200; i++) local.raise(scopeOf(`c${i}`), [BigInt(i + 10)]);
      local.flush();
      assert.equal(local.writable, false);
      const state = local.state;
      assert.ok(!state.writable && /disk is full/.test(state.reason), JSON.stringify(state));
      // Raised while failing: enforced from memory, written on recovery.
      local.raise(scopeOf('a'), [7n]);
      assert.deepEqual(local.get(scopeOf('a')), [7n]);
      await sleep(100); // several failed retries
      assert.equal(local.writable, false);
      assert.equal(changes.length, 1, 'one change reported, not one per retry');
      fs.free();
      await waitWritable(local, true);
      assert.deepEqual(
        changes.map((c) => c.writable),
        [false, true],
      );
    } finally {
      fs.free();
    }
    // Not close(): a SIGKILL right after recovery must find the positions on disk already.
    const copy = join(fs.dir, 'full', 'copy.db');
    spawnSync('cp', [path, copy]);
    if (existsSync(`${path}-wal`)) spawnSync('cp', [`${path}-wal`, `${copy}-wal`]);
    assert.deepEqual(onDisk(copy, 'a'), [7n]);
    assert.deepEqual(onDisk(copy, 'c199'), [209n]);
    local.close();
  });

  it('read-only filesystem at start: not writable, writable after remounting read-write', async () => {
    const path = join(fs.dir, 'ro', 'l.db');
    const first = new LocalWatermarks(path);
    first.raise(scopeOf('r'), [1n]);
    first.close();
    // Linux refuses a read-only remount while a file is open for writing, hence at start.
    assert.equal(spawnSync('mount', ['-o', 'remount,ro', fs.dir]).status, 0);
    let local: LocalWatermarks;
    try {
      local = new LocalWatermarks(path, { retryMs: FAST_RETRY });
      const state = local.state;
      assert.ok(!state.writable && /read-only/.test(state.reason), JSON.stringify(state));
      local.raise(scopeOf('r'), [2n]);
      await sleep(50);
      assert.equal(local.writable, false);
    } finally {
      assert.equal(spawnSync('mount', ['-o', 'remount,rw', fs.dir]).status, 0);
    }
    await waitWritable(local, true);
    local.close();
    assert.deepEqual(onDisk(path, 'r'), [2n]);
  });

  it('starts on a full disk without a file: not writable, opens once there is room', async () => {
    const path = join(fs.dir, 'fresh', 'l.db');
    mkdirSync(join(fs.dir, 'fresh'));
    try {
      fs.fill();
      const local = new LocalWatermarks(path, { retryMs: FAST_RETRY });
      assert.equal(local.writable, false);
      fs.free();
      await waitWritable(local, true);
      local.raise(scopeOf('f'), [3n]);
      local.close();
    } finally {
      fs.free();
    }
    assert.deepEqual(onDisk(path, 'f'), [3n]);
  });

  it('a guard over a full local disk refuses with local_unavailable and writes nothing', async () => {
    const { dir, cleanup } = tempDir('vigil-local-guard-');
    const rig = openSignerRig(join(dir, 'store.db'), join(fs.dir, 'guard', 'l.db'));
    try {
      const slot = (n: bigint) => rig.signer.sign(req.slot(n, Number(n)));
      assert.equal((await slot(1n)).outcome, 'granted');
      rig.local.flush();
      fs.fill();
      // Room left in the WAL absorbs some writes: pad until a flush fails (bounded).
      for (let round = 0; round < 50 && rig.local.writable; round++) {
        for (let i = 0; i < 200; i++) rig.local.raise(scopeOf(`pad${round}-${i}`), [1n]);
        rig.local.flush();
      }
      assert.equal(rig.local.writable, false, 'a full disk never failed a flush');
      const refused = await slot(2n);
      assert.equal(refused.outcome, 'refused');
      assert.equal(refused.outcome === 'refused' && refused.reason, 'local_unavailable');
      const stored = await rig.store.get({
        chainId: CHAIN,
        keyId: rig.babeKey.publicKeyHex,
        family: 'slot',
      });
      assert.deepEqual(stored?.position, [1n], 'the refusal wrote nothing to the store');
    } finally {
      fs.free();
      await rig.close();
      cleanup();
    }
  });

  it('property: whatever the order of raises, failures and recoveries, the file ends at the maxima', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant('raise' as const),
              chain: fc.integer({ min: 0, max: 3 }),
              at: fc.bigInt({ min: 0n, max: 50n }),
            }),
            fc.record({ op: fc.constantFrom('fill' as const, 'free' as const, 'flush' as const) }),
          ),
          { maxLength: 30 },
        ),
        async (ops) => {
          const path = join(fs.dir, 'prop', `l${run++}.db`);
          const local = new LocalWatermarks(path, { retryMs: { first: 1, max: 5 } });
          const highest = new Map<number, bigint>();
          try {
            for (const o of ops) {
              if (o.op === 'raise') {
                local.raise(scopeOf(`p${o.chain}`), [o.at]);
                if (o.at > (highest.get(o.chain) ?? -1n)) highest.set(o.chain, o.at);
              } else if (o.op === 'fill') fs.fill();
              else if (o.op === 'free') fs.free();
              else local.flush();
              await sleep(2);
            }
            fs.free();
            await waitWritable(local, true);
            local.close();
            for (const [chain, at] of highest) assert.deepEqual(onDisk(path, `p${chain}`), [at]);
          } finally {
            fs.free();
            local.close();
            rmSync(join(fs.dir, 'prop'), { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});

test('data directory removed while open: written again into a new file, all positions', async () => {
  const { dir, cleanup } = tempDir('vigil-local-gone-');
  const dataDir = join(dir, 'data');
  const path = join(dataDir, 'l.db');
  const changes: LocalWatermarkState[] = [];
  const local = new LocalWatermarks(path, {
    retryMs: FAST_RETRY,
    onStateChange: (s) => changes.push(s),
  });
  try {
    local.raise(scopeOf('before'), [4n]);
    local.flush();
    rmSync(dataDir, { recursive: true });
    // Idle: only a probe can notice.
    assert.equal(local.probe().writable, false);
    local.raise(scopeOf('after'), [9n]);
    await waitWritable(local, true);
    assert.deepEqual(
      changes.map((c) => c.writable),
      [false, true],
    );
    local.flush();
    // Raised after the directory vanished but flushed into the unlinked file? Must be caught:
    rmSync(dataDir, { recursive: true });
    local.raise(scopeOf('after'), [10n]);
    local.flush();
    assert.equal(local.writable, false, 'a write into a removed file is not a write');
    await waitWritable(local, true);
  } finally {
    local.close();
  }
  try {
    assert.deepEqual(onDisk(path, 'before'), [4n]);
    assert.deepEqual(onDisk(path, 'after'), [10n]);
  } finally {
    cleanup();
  }
});

test('file and WAL are mode 0600 whatever the umask; no -shm file', () => {
  const { dir, cleanup } = tempDir('vigil-local-mode-');
  const previous = process.umask(0o000);
  try {
    const path = join(dir, 'data', 'l.db');
    const local = new LocalWatermarks(path);
    local.raise(scopeOf('m'), [1n]);
    local.flush();
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.ok(existsSync(`${path}-wal`), 'WAL present while open');
    assert.equal(statSync(`${path}-wal`).mode & 0o777, 0o600);
    assert.equal(existsSync(`${path}-shm`), false);
    local.close();
    // An existing file readable by others is narrowed.
    const loose = join(dir, 'loose.db');
    writeFileSync(loose, '', { mode: 0o644 });
    new LocalWatermarks(loose).close();
    assert.equal(statSync(loose).mode & 0o777, 0o600);
  } finally {
    process.umask(previous);
    cleanup();
  }
});

test('a data directory that cannot be created is a startup error with a hint', () => {
  const { dir, cleanup } = tempDir('vigil-local-nodir-');
  try {
    writeFileSync(join(dir, 'plain-file'), '');
    assert.throws(
      () => new LocalWatermarks(join(dir, 'plain-file', 'data', 'l.db')),
      (err: unknown) =>
        err instanceof VigilError &&
        err.code === 'LOCAL_WATERMARK_UNAVAILABLE' &&
        /data directory/.test(err.message) &&
        /agent\.dataDir/.test(err.hint ?? ''),
    );
  } finally {
    cleanup();
  }
});

for (const [errno, expected] of [
  ['EIO', /I\/O error/],
  // ext4 with errors=remount-ro turns a running agent's filesystem read-only under it.
  ['EROFS', /I\/O error|read-only/],
  ['ENOSPC', /disk is full/],
] as const) {
  test(`${errno} on the WAL (injected by strace): not writable, no crash, recovers with all positions`, async (t) => {
    if (spawnSync('strace', ['-f', '-o', '/dev/null', 'true'], { stdio: 'ignore' }).status !== 0) {
      const msg = '!!! SKIPPED: strace is not installed or may not trace here';
      if (process.env.VIGIL_REQUIRE_STRACE === '1') assert.fail(msg);
      console.log(`\n${msg}\n`);
      return t.skip(msg);
    }
    const { dir, cleanup } = tempDir('vigil-local-eio-');
    try {
      const path = join(dir, 'l.db');
      // -P needs the path to exist to match it; SQLite takes an empty WAL as no WAL.
      writeFileSync(`${path}-wal`, '');
      const module = new URL('../../src/signer/local-watermark.js', import.meta.url).href;
      const script = `
      const { LocalWatermarks } = await import(${JSON.stringify(module)});
      const l = new LocalWatermarks(${JSON.stringify(path)}, {
        retryMs: { first: 20, max: 50 },
        onStateChange: (s) => console.log(JSON.stringify(s)),
      });
      for (let i = 1n; i <= 10n; i++) { l.raise(${JSON.stringify(scopeOf('e'))}, [i]); l.flush(); }
      setTimeout(() => { console.log(JSON.stringify({ final: l.writable })); l.close(); }, 1000);
    `;
      // The 3rd to 6th writes to the WAL fail, as a failing disk would answer.
      const r = spawnSync(
        'strace',
        [
          '-f',
          '-qq',
          '-o',
          '/dev/null',
          '-P',
          `${path}-wal`,
          '-e',
          'trace=pwrite64,write',
          '-e',
          `inject=pwrite64,write:error=${errno}:when=3..6`,
          process.execPath,
          '--input-type=module',
          '-e',
          script,
        ],
        { encoding: 'utf8', timeout: 30_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      const lines = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { writable?: boolean; reason?: string; final?: boolean });
      assert.equal(lines[0]?.writable, false, r.stdout);
      assert.match(lines[0]?.reason ?? '', expected);
      assert.equal(lines[1]?.writable, true, r.stdout);
      assert.deepEqual(lines.at(-1), { final: true });
      assert.deepEqual(onDisk(path, 'e'), [10n]);
    } finally {
      cleanup();
    }
  });
}
