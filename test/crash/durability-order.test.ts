/**
 * "Durable before released", checked at the system-call level: under strace, every signature
 * the guard driver writes to its client (stdout) is preceded, since the previous one, by an
 * fsync/fdatasync of the store's write-ahead log. Skips loudly when strace is not available
 * (or not permitted to trace), unless VIGIL_REQUIRE_STRACE=1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DRIVER_ENTRY } from '../helpers/driver-process.js';
import { sha256, tempDir } from '../helpers/guard-fixtures.js';
import type { WireRequest } from '../helpers/guard-wire.js';

function straceUsable(): boolean {
  const r = spawnSync('strace', ['-f', '-o', '/dev/null', 'true'], { stdio: 'ignore' });
  return r.status === 0;
}

describe('durability order', () => {
  let dir: string;
  let cleanup: () => void;
  before(() => ({ dir, cleanup } = tempDir('vigil-strace-')));
  after(() => cleanup());

  it('every released signature follows an fsync of the store WAL', (t) => {
    if (!straceUsable()) {
      const msg = '!!! SKIPPED: strace is not installed or may not trace here';
      if (process.env.VIGIL_REQUIRE_STRACE === '1') assert.fail(msg);
      console.log(`\n${msg}\n`);
      t.skip(msg);
      return;
    }
    const storePath = join(dir, 'store.db');
    const requests: WireRequest[] = [];
    for (let s = 0; s < 25; s++) {
      requests.push({
        op: 'sign',
        family: 'slot',
        chainId: 'c',
        keyId: 'k1',
        slot: String(s),
        payload: Buffer.from(sha256(`s${s}`)).toString('hex'),
      });
      // A replay releases an already durable signature: no new sync is needed for it.
      if (s % 5 === 0) requests.push(requests.at(-1)!);
    }
    const trace = join(dir, 'trace.txt');
    const run = spawnSync(
      'strace',
      [
        '-f',
        '-y',
        '-qq',
        '-s',
        '200',
        '-e',
        'trace=fsync,fdatasync,write',
        '-o',
        trace,
        process.execPath,
        DRIVER_ENTRY,
        storePath,
        join(dir, 'local.db'),
        'strace-agent',
      ],
      { input: JSON.stringify(requests) + '\n', encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(run.status, 0, run.stderr);
    const results = run.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { i: number; outcome: string });
    assert.equal(results.length, requests.length);

    const walSync = new RegExp(
      `f(data)?sync\\(\\d+<${storePath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-wal>\\)`,
    );
    let syncedSinceLastRelease = false;
    let released = 0;
    for (const line of readFileSync(trace, 'utf8').split('\n')) {
      if (walSync.test(line)) syncedSinceLastRelease = true;
      const m = /write\(1<[^>]*>, "\{\\"i\\":(\d+),\\"outcome\\":\\"(\w+)\\"/.exec(line);
      if (!m) continue;
      const outcome = m[2];
      if (outcome === 'granted') {
        assert.ok(
          syncedSinceLastRelease,
          `result ${m[1]} was written before the store WAL was synced`,
        );
        released++;
      }
      syncedSinceLastRelease = false;
    }
    assert.equal(released, 25, 'every grant was seen in the trace');
  });
});
