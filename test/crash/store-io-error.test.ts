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
import { AgentClient } from '../../src/agent/client.js';
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

/** The process strace started (its only child), if it is still there. */
function tracedChild(stracePid: number): number | undefined {
  try {
    const pid = Number(
      readFileSync(`/proc/${stracePid}/task/${stracePid}/children`, 'utf8').trim().split(' ')[0],
    );
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
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
    let client: AgentClient | undefined;
    let agentExited = false;
    try {
      const socketPath = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`agent not ready in 30 s:\n${output}`)),
          30_000,
        );
        createInterface({ input: strace.stdout! }).on('line', (line) => {
          output += line + '\n';
          try {
            const e = JSON.parse(line) as { msg?: string; socketPath?: string };
            if (e.msg === 'agent ready' && e.socketPath) {
              clearTimeout(timer);
              resolve(e.socketPath);
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
      agentPid = tracedChild(strace.pid!);
      client = new AgentClient({ socketPath });
      const api = client;
      const sign = async (slot: number) => {
        const res = await api.request<Record<string, string>>(
          'POST',
          '/v1/sign',
          babeSignBody(slot),
        );
        return { status: res.status, body: res.body };
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
      assert.equal((await api.get('/healthz')).status, 200);
      const ready = await api.get<{ conditions: Array<{ name: string; ready: boolean }> }>(
        '/readyz',
      );
      assert.equal(ready.status, 503);
      const body = ready.body;
      assert.deepEqual(
        body.conditions.filter((c) => !c.ready).map((c) => c.name),
        ['store'],
      );
      assert.doesNotMatch(output, /unhandled error in request/);
    } finally {
      client?.close();
      // The agent, not only strace: killed alone, strace detaches and leaves the agent running
      // with this test's pipes open, and the test file never ends.
      agentPid ??= tracedChild(strace.pid!);
      if (agentPid !== undefined) process.kill(agentPid, 'SIGKILL');
      strace.kill('SIGKILL');
      await exited;
    }
  });
});
