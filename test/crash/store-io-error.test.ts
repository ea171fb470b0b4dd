/**
 * Issue 10: an I/O error inside a SQLite store transaction (EIO on the store's WAL, injected by
 * strace into a real agent's system calls) is a refusal with store_unavailable (503), never a
 * crash or a 500; /readyz names the store; /healthz still answers. Skips loudly without strace
 * unless VIGIL_REQUIRE_STRACE=1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { babeSignBody, writeSlotAgent } from '../helpers/agent-process.js';
import { tempDir } from '../helpers/guard-fixtures.js';
import { CLI_ENTRY } from '../helpers/paths.js';

function straceSkip(): string | false {
  if (spawnSync('strace', ['-f', '-o', '/dev/null', 'true'], { stdio: 'ignore' }).status === 0)
    return false;
  const msg = 'strace is not installed or may not trace here: SKIPPING the store EIO test';
  if (process.env.VIGIL_REQUIRE_STRACE === '1')
    throw new Error(`VIGIL_REQUIRE_STRACE=1 but ${msg}`);
  console.error(`\n!!! ${msg} !!!\n`);
  return msg;
}

describe('store I/O error under a running agent', { skip: straceSkip() }, () => {
  let dir: string;
  let cleanup: () => void;
  before(() => ({ dir, cleanup } = tempDir('vigil-store-eio-')));
  after(() => cleanup());

  it('EIO on the store WAL: 503 store_unavailable, not a crash or a 500; /readyz says store', async () => {
    mkdirSync(join(dir, 'agent'));
    const storePath = join(dir, 'store.db');
    const config = writeSlotAgent(
      { dir, dataDir: join(dir, 'agent', 'data'), storePath },
      'store-eio',
    );
    // From the 40th write to the store's WAL on, every one fails: enough room for the schema
    // and a few grants first, wherever exactly the agent is when the disk starts failing.
    const strace = spawn(
      'strace',
      [
        '-f',
        '-qq',
        '-o',
        '/dev/null',
        '-P',
        `${storePath}-wal`,
        '-e',
        'trace=pwrite64,write',
        '-e',
        'inject=pwrite64,write:error=EIO:when=40+',
        process.execPath,
        CLI_ENTRY,
        'agent',
        '--config',
        config,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    strace.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | string>((res) =>
      strace.on('exit', (code, signal) => res(code ?? signal ?? 'unknown')),
    );
    let agentPid: number | undefined;
    let agentExited = false;
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`agent not ready in 30 s:\n${output}`)),
          30_000,
        );
        createInterface({ input: strace.stdout! }).on('line', (line) => {
          output += line + '\n';
          try {
            const e = JSON.parse(line) as { msg?: string; url?: string };
            if (e.msg === 'agent ready' && e.url) {
              clearTimeout(timer);
              resolve(e.url);
            }
          } catch {
            // not a log line
          }
        });
        void exited.then((code) => {
          agentExited = true;
          reject(new Error(`the agent exited (${code}):\n${output}`));
        });
      });
      agentPid = Number(
        readFileSync(`/proc/${strace.pid}/task/${strace.pid}/children`, 'utf8')
          .trim()
          .split(' ')[0],
      );
      const sign = async (slot: number) => {
        const res = await fetch(`${url}/v1/sign`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: babeSignBody(slot),
        });
        return { status: res.status, body: (await res.json()) as Record<string, string> };
      };
      let slot = 1;
      let r = await sign(slot);
      for (; slot < 60 && r.status === 200;) r = await sign(++slot);
      assert.notEqual(r.status, 200, 'the injected EIO never reached a commit');
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.equal(r.body.reason, 'store_unavailable');
      assert.match(r.body.message ?? '', /I\/O error/);
      const next = await sign(slot + 1);
      assert.equal(next.body.reason, 'store_unavailable');
      assert.equal(agentExited, false, output);
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
      const ready = await fetch(`${url}/readyz`);
      assert.equal(ready.status, 503);
      const body = (await ready.json()) as { conditions: Array<{ name: string; ready: boolean }> };
      assert.deepEqual(
        body.conditions.filter((c) => !c.ready).map((c) => c.name),
        ['store'],
      );
      assert.doesNotMatch(output, /unhandled error in request/);
    } finally {
      if (agentPid !== undefined && Number.isInteger(agentPid) && agentPid > 0)
        process.kill(agentPid, 'SIGKILL');
      else strace.kill('SIGKILL');
      await exited;
    }
  });
});
