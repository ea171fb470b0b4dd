/**
 * "Durable before released", checked at the system-call level: under strace, every signature
 * the guard driver writes to its client (stdout) is preceded, since the previous one, by an
 * fsync/fdatasync of the store's write-ahead log. Skips loudly when strace is not available
 * (or not permitted to trace), unless VIGIL_REQUIRE_STRACE=1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { AgentClient } from '../../src/agent/client.js';
import { initAgentStore, writeAgentConfig, writeRigKeyFiles } from '../helpers/agent-process.js';
import { DRIVER_ENTRY } from '../helpers/driver-process.js';
import { babeHeader, CHAIN, tempDir } from '../helpers/guard-fixtures.js';
import { CLI_ENTRY } from '../helpers/paths.js';
import type { WireRequest } from '../helpers/guard-wire.js';

function straceUsable(): boolean {
  const r = spawnSync('strace', ['-f', '-o', '/dev/null', 'true'], { stdio: 'ignore' });
  return r.status === 0;
}

function skipWithoutStrace(t: { skip(msg: string): void }): boolean {
  if (straceUsable()) return false;
  const msg = '!!! SKIPPED: strace is not installed or may not trace here';
  if (process.env.VIGIL_REQUIRE_STRACE === '1') assert.fail(msg);
  console.log(`\n${msg}\n`);
  t.skip(msg);
  return true;
}

/** The agent strace runs: strace's only child, or else the first pid in the trace file. */
function tracedPid(stracePid: number, trace: string): number | undefined {
  const candidates = [
    () =>
      readFileSync(`/proc/${stracePid}/task/${stracePid}/children`, 'utf8').trim().split(' ')[0],
    () => /^(\d+) /.exec(readFileSync(trace, 'utf8'))?.[1],
  ];
  for (const read of candidates) {
    try {
      const pid = Number(read());
      if (Number.isInteger(pid) && pid > 0) return pid;
    } catch {
      // try the next source
    }
  }
  return undefined;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('durability order', () => {
  let dir: string;
  let cleanup: () => void;
  before(() => ({ dir, cleanup } = tempDir('vigil-strace-')));
  after(() => cleanup());

  it('every released signature follows an fsync of the store WAL', (t) => {
    if (skipWithoutStrace(t)) return;
    const storePath = join(dir, 'store.db');
    const requests: WireRequest[] = [];
    for (let s = 0; s < 25; s++) {
      requests.push({
        op: 'sign',
        family: 'slot',
        chainId: CHAIN,
        keyId: 's1',
        slot: String(s),
        payload: `s${s}`,
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

  it('the agent answers 200 to POST /v1/sign only after an fsync of the store WAL', async (t) => {
    if (skipWithoutStrace(t)) return;
    const storePath = join(dir, 'agent.db');
    const dataDir = join(dir, 'agent-data');
    mkdirSync(dataDir, { recursive: true });
    const keys = writeRigKeyFiles(dir);
    const config = writeAgentConfig(
      { dir, storePath, dataDir, keyFile: keys[0]!.file!, keys },
      'strace-agent',
    );
    initAgentStore(config);
    const trace = join(dir, 'agent-trace.txt');
    const strace = spawn(
      'strace',
      [
        '-f',
        '-y',
        '-qq',
        '-s',
        '64',
        '-e',
        'trace=fsync,fdatasync,write,writev,sendto,sendmsg',
        '-o',
        trace,
        process.execPath,
        CLI_ENTRY,
        'agent',
        '--config',
        config,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise((res) => strace.on('exit', res));
    let agentPid: number | undefined;
    let client: AgentClient | undefined;
    try {
      const socketPath = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('agent not ready in 30 s')), 30_000);
        createInterface({ input: strace.stdout! }).on('line', (line) => {
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
        void exited.then(() => reject(new Error('strace or the agent exited early')));
      });
      agentPid = tracedPid(strace.pid!, trace);
      const api = new AgentClient({ socketPath });
      client = api;
      let granted = 0;
      for (let s = 0; s < 15; s++) {
        for (const _again of s % 5 === 0 ? [1, 2] : [1]) {
          const res = await api.post<{ decision: string }>('/v1/sign', {
            family: 'slot',
            chainId: CHAIN,
            keyId: 's1',
            position: { slot: String(s) },
            payload: Buffer.from(babeHeader(BigInt(s), `s${s}`)).toString('hex'),
          });
          const body = res.body;
          assert.equal(res.status, 200);
          if (body.decision === 'granted') granted++;
        }
      }
      assert.equal(granted, 15);
    } finally {
      client?.close();
      if (agentPid !== undefined) process.kill(agentPid, 'SIGTERM');
      else strace.kill('SIGKILL');
      await exited;
    }

    const walSync = new RegExp(`f(data)?sync\\(\\d+<${escapeRe(storePath)}-wal>\\)`);
    // Requests were sequential: a grant for every slot, then a replay after slots 0, 5, 10.
    const kinds = Array.from({ length: 15 }, (_, s) =>
      s % 5 === 0 ? ['grant', 'replay'] : ['grant'],
    ).flat();
    let syncedSinceLastAnswer = false;
    let answers = 0;
    for (const line of readFileSync(trace, 'utf8').split('\n')) {
      if (walSync.test(line)) syncedSinceLastAnswer = true;
      if (!/(write|writev|sendto|sendmsg)\(\d+<(socket|TCP)[^>]*>.*HTTP\/1\.1 200/.test(line))
        continue;
      // A replay answers from an already durable record and needs no new sync.
      if (kinds[answers] === 'grant') {
        assert.ok(
          syncedSinceLastAnswer,
          `answer ${answers} (a grant) was sent before the WAL was synced`,
        );
      }
      answers++;
      syncedSinceLastAnswer = false;
    }
    assert.equal(answers, kinds.length, 'every 200 answer was seen in the trace');
  });
});
