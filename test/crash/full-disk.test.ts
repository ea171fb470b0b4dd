/**
 * Issue 10: a full disk under a real `vigil agent` process. The agent must not crash: it
 * refuses, reports not ready with the reason, keeps serving /healthz, logs the change once,
 * and recovers by itself when space comes back, with every position it released on disk
 * before it grants again. Each case mounts its own small tmpfs (root needed; see tmpfs.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LocalWatermarks } from '../../src/signer/local-watermark.js';
import {
  babeSignBody,
  startAgentProcess,
  writeSlotAgent,
  type AgentProcess,
} from '../helpers/agent-process.js';
import { CHAIN, srKeyFromTag, tempDir } from '../helpers/guard-fixtures.js';
import { mountTmpfs, tmpfsSkip, type Tmpfs } from '../helpers/tmpfs.js';

/** writeSlotAgent's BABE key `s1`. */
const KEY = srKeyFromTag(10);
const scope = { chainId: CHAIN, keyId: KEY.publicKeyHex, family: 'slot' as const };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sign(agent: AgentProcess, slot: bigint) {
  const res = await agent.client.request('POST', '/v1/sign', babeSignBody(slot));
  return {
    status: res.status,
    body: res.body as { decision: string; reason?: string; message?: string },
  };
}

interface Readyz {
  status: string;
  conditions?: Array<{ name: string; ready: boolean; reason?: string }>;
}

async function readyz(agent: AgentProcess): Promise<{ status: number; body: Readyz }> {
  const res = await agent.client.get('/readyz');
  return { status: res.status, body: res.body as Readyz };
}

/** Polls /readyz until it answers `status` (bounded). */
async function waitReadyz(agent: AgentProcess, status: number, withinMs = 15_000) {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const r = await readyz(agent);
    if (r.status === status) return r;
    if (Date.now() > deadline)
      assert.fail(`/readyz stayed ${r.status} (${JSON.stringify(r.body)}):\n${agent.output()}`);
    await sleep(100);
  }
}

function assertAlive(agent: AgentProcess) {
  assert.equal(
    agent.child.exitCode ?? agent.child.signalCode,
    null,
    `the agent died:\n${agent.output()}`,
  );
}

function logLines(agent: AgentProcess): Array<{ msg?: string; level?: number }> {
  return agent
    .output()
    .split('\n')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as { msg?: string; level?: number }];
      } catch {
        return [];
      }
    });
}

describe('a full disk under a running agent', { skip: tmpfsSkip() }, () => {
  let dir: string;
  let cleanup: () => void;
  const mounts: Tmpfs[] = [];
  const agents: AgentProcess[] = [];
  before(() => ({ dir, cleanup } = tempDir('vigil-disk-')));
  after(async () => {
    for (const a of agents) await a.kill('SIGKILL');
    for (const m of mounts) m.unmount();
    cleanup();
  });

  function files(name: string, on: { dataDir?: string; storePath?: string }) {
    const base = join(dir, name);
    mkdirSync(base, { recursive: true });
    return {
      dir: base,
      dataDir: on.dataDir ?? join(base, 'data'),
      storePath: on.storePath ?? join(base, 'store.db'),
    };
  }

  it('data dir full: refuses with local_unavailable, stays up, recovers with positions on disk', async () => {
    const fs = mountTmpfs(1024 * 1024);
    mounts.push(fs);
    const f = files('local', { dataDir: join(fs.dir, 'data') });
    const config = writeSlotAgent(f, 'disk-local');
    const agent = await startAgentProcess(config);
    agents.push(agent);
    for (let s = 1n; s <= 5n; s++) assert.equal((await sign(agent, s)).status, 200);
    await sleep(100); // flushed

    fs.fill();
    // The store still grants; the position raised after it can only be held in memory, and
    // the next flush (within 25 ms) fails. Where exactly depends on the WAL's free room.
    let lastGranted = 5n;
    let slot = 6n;
    for (; slot < 40n; slot++) {
      const r = await sign(agent, slot);
      if (r.status !== 200) {
        assert.equal(r.status, 503, JSON.stringify(r.body));
        assert.equal(r.body.reason, 'local_unavailable');
        break;
      }
      lastGranted = slot;
      await sleep(60);
    }
    assert.ok(slot < 40n, 'a full data dir never stopped the grants');
    assert.ok(lastGranted >= 6n, 'the store kept granting after the fill');
    await sleep(300);
    assertAlive(agent);
    for (let s = slot + 1n; s <= slot + 3n; s++) {
      const r = await sign(agent, s);
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.equal(r.body.reason, 'local_unavailable');
    }
    assert.equal((await agent.client.get('/healthz')).status, 200);
    const notReady = await readyz(agent);
    assert.equal(notReady.status, 503);
    const failing = notReady.body.conditions?.find((c) => !c.ready);
    assert.equal(failing?.name, 'local_watermark');
    assert.match(failing?.reason ?? '', /full|ENOSPC|space/i);

    fs.free();
    await waitReadyz(agent, 200);
    // SIGKILL: no flush on close. The last grant was raised while the disk was full; recovery
    // must have written it before the agent reported itself ready.
    await agent.kill('SIGKILL');
    const local = new LocalWatermarks(join(f.dataDir, 'local-watermarks.db'));
    try {
      assert.deepEqual(local.get(scope), [lastGranted]);
    } finally {
      local.close();
    }
    const warned = logLines(agent).filter((l) => l.msg?.startsWith('not ready: local_watermark'));
    assert.equal(warned.length, 1, 'one warning per state change, not one per request');
    assert.equal(logLines(agent).filter((l) => l.msg === 'ready again: local_watermark').length, 1);

    const again = await startAgentProcess(config);
    agents.push(again);
    assert.equal((await sign(again, lastGranted - 1n)).body.reason, 'regression');
    assert.equal((await sign(again, slot + 10n)).status, 200);
    await again.kill('SIGTERM');
  });

  it('store full: refuses with store_unavailable (503, no crash, no 500), recovers', async () => {
    const fs = mountTmpfs(1024 * 1024);
    mounts.push(fs);
    const f = files('store', { storePath: join(fs.dir, 'store.db') });
    const config = writeSlotAgent(f, 'disk-store');
    const agent = await startAgentProcess(config);
    agents.push(agent);
    for (let s = 1n; s <= 5n; s++) assert.equal((await sign(agent, s)).status, 200);

    fs.fill();
    // The first commits may still fit in the WAL's free room; then every one is refused.
    let slot = 6n;
    for (; slot < 40n && (await sign(agent, slot)).status === 200; slot++);
    assert.ok(slot < 40n, 'a full store disk never stopped the grants');
    for (let s = slot; s <= slot + 2n; s++) {
      const r = await sign(agent, s);
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.equal(r.body.reason, 'store_unavailable');
      assert.match(r.body.message ?? '', /disk is full/);
    }
    assertAlive(agent);
    assert.equal((await agent.client.get('/healthz')).status, 200);
    const notReady = await readyz(agent);
    assert.equal(notReady.status, 503);
    assert.equal(notReady.body.conditions?.find((c) => !c.ready)?.name, 'store');

    // Every start on the full disk too: killed, it comes back and refuses, it does not exit.
    await agent.kill('SIGKILL');
    const again = await startAgentProcess(config, 30_000, {
      acceptNotReady: true,
    });
    agents.push(again);
    const r = await sign(again, slot + 3n);
    assert.equal(r.body.reason, 'store_unavailable', JSON.stringify(r.body));
    assert.equal((await readyz(again)).status, 503);
    assertAlive(again);

    fs.free();
    assert.equal((await sign(again, slot + 4n)).status, 200);
    await waitReadyz(again, 200);
    await again.kill('SIGTERM');
  });

  it('starts on a full data dir: not ready with the reason, serves health, becomes ready', async () => {
    const fs = mountTmpfs(512 * 1024);
    mounts.push(fs);
    const f = files('start-full', { dataDir: join(fs.dir, 'data') });
    mkdirSync(f.dataDir);
    const config = writeSlotAgent(f, 'disk-start');
    fs.fill();
    const agent = await startAgentProcess(config, 30_000, {
      acceptNotReady: true,
    });
    agents.push(agent);
    assert.equal(agent.startedReady, false);
    const started = logLines(agent).find((l) => l.msg?.startsWith('agent started, not ready'));
    assert.match(started?.msg ?? '', /local_watermark/);
    assert.equal(started?.level, 40, 'a warning');
    assert.equal((await agent.client.get('/healthz')).status, 200);
    assert.equal((await readyz(agent)).status, 503);
    assert.equal((await sign(agent, 1n)).body.reason, 'local_unavailable');

    fs.free();
    await waitReadyz(agent, 200);
    assert.equal((await sign(agent, 1n)).status, 200);
    await agent.kill('SIGTERM');
  });
});
