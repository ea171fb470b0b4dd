/**
 * Issue 10, "a replaced SQLite file", end to end with real `vigil agent` processes on real
 * files: the store is deleted, renamed over or restored from a backup under a running agent,
 * and a second agent starts on the same path. Before store identities, agent 1 kept granting
 * on the unlinked inode with /readyz ready, and agent 2 silently started a fresh store and
 * signed the same slot with another payload.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  initAgentStore,
  startAgentProcess,
  writeAgentConfig,
  writeRigKeyFiles,
  type AgentKeyEntry,
  type AgentProcess,
} from '../helpers/agent-process.js';
import { babeHeader, CHAIN, tempDir } from '../helpers/guard-fixtures.js';
import { CLI_ENTRY } from '../helpers/paths.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

interface SignAnswer {
  status: number;
  body: { decision?: string; reason?: string; message?: string; signature?: string };
}

/** One BABE seal (key `s1`) of a header at `slot` whose content is `content`, over the
 * agent's HTTP API (the only place this test builds a body). */
async function sign(agent: AgentProcess, slot: bigint, content: string): Promise<SignAnswer> {
  const res = await agent.client.post('/v1/sign', {
    family: 'slot',
    chainId: CHAIN,
    keyId: 's1',
    position: { slot: String(slot) },
    payload: hex(babeHeader(slot, content)),
  });
  return { status: res.status, body: res.body as SignAnswer['body'] };
}

async function readiness(agent: AgentProcess) {
  const res = await agent.client.get('/readyz');
  return { status: res.status, body: res.body as { status: string; reason?: string } };
}

function vigilState(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI_ENTRY, 'state', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const storeIdOf = (initOutput: string) => {
  const id = /store ([0-9a-f-]{36}) \(sqlite/.exec(initOutput)?.[1];
  assert.ok(id, initOutput);
  return id;
};

const removeStore = (path: string) => {
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
};

describe('a SQLite store replaced under running agents (issue 10)', () => {
  let dir: string;
  let cleanup: () => void;
  let keys: AgentKeyEntry[];
  const running: AgentProcess[] = [];
  before(() => {
    ({ dir, cleanup } = tempDir('vigil-replaced-'));
    keys = writeRigKeyFiles(dir);
  });
  afterEach(async () => {
    for (const a of running.splice(0)) await a.kill('SIGKILL');
  });
  after(() => cleanup());

  /** An agent config on `storePath` with its own data dir. */
  const agentConfig = (name: string, storePath: string) => {
    const dataDir = join(dir, `${name}-data`);
    mkdirSync(dataDir, { recursive: true });
    return writeAgentConfig({ dir, storePath, dataDir, keyFile: keys[0]!.file!, keys }, name);
  };
  const start = async (config: string, options: { acceptNotReady?: boolean } = {}) => {
    const agent = await startAgentProcess(config, 30_000, options);
    running.push(agent);
    return agent;
  };

  it('deleted: agent 1 refuses and is not ready; agent 2 needs `state init`; agent 1 never trusts the new store unless adopted', async () => {
    const storePath = join(dir, 'wm.db');
    const config1 = agentConfig('agent-1', storePath);
    const config2 = agentConfig('agent-2', storePath);

    // Nobody has initialised the store: the agent refuses to start instead of creating one.
    await assert.rejects(startAgentProcess(config1), /no watermark store at .*wm\.db/);
    const first = storeIdOf(initAgentStore(config1));

    let agent1 = await start(config1);
    const granted = await sign(agent1, 10n, 'payload A');
    assert.equal(granted.status, 200, JSON.stringify(granted.body));
    assert.equal((await readiness(agent1)).status, 200);

    // An operator "cleans up" the store while agent 1 runs.
    removeStore(storePath);
    const afterDelete = await sign(agent1, 11n, 'payload A2');
    assert.equal(afterDelete.status, 503, JSON.stringify(afterDelete.body));
    assert.equal(afterDelete.body.reason, 'store_identity');
    assert.match(afterDelete.body.message!, /was deleted while this agent had it open/);
    const notReady = await readiness(agent1);
    assert.equal(notReady.status, 503);
    assert.match(notReady.body.reason!, /was deleted/);
    assert.equal((await agent1.client.get('/healthz')).status, 200, 'alive, just refusing');

    // Agent 2 on the same path: the store is missing, so it does not start.
    await assert.rejects(startAgentProcess(config2), /no watermark store at .*wm\.db.*state init/s);

    // The operator initialises a new store on purpose; agent 2 (no history) may use it.
    const second = storeIdOf(initAgentStore(config2));
    assert.notEqual(second, first);
    const agent2 = await start(config2);
    const signed2 = await sign(agent2, 10n, 'payload B');
    assert.equal(signed2.status, 200, JSON.stringify(signed2.body));

    // Agent 1 still refuses: its open file is gone for good (sticky, even with a file back).
    assert.equal((await sign(agent1, 12n, 'payload A3')).body.reason, 'store_identity');
    assert.equal((await readiness(agent1)).status, 503);

    // Restarted, agent 1 opens the new store but its local watermark was built against the
    // first one: every decision refused, not ready, with the way out in the message.
    await agent1.kill('SIGTERM');
    agent1 = await start(config1, { acceptNotReady: true });
    assert.equal(agent1.startedReady, false, 'started, refusing, not ready');
    for (const slot of [10n, 13n]) {
      const r = await sign(agent1, slot, 'payload A4');
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.equal(r.body.reason, 'store_identity');
      assert.match(r.body.message!, new RegExp(`built against store ${first}.*is ${second}`));
    }
    const wrongStore = await readiness(agent1);
    assert.equal(wrongStore.status, 503);
    assert.match(wrongStore.body.reason!, new RegExp(`built against store ${first}`));

    // Adopting is an operator act on a stopped agent, naming the store it adopts.
    const whileRunning = vigilState('adopt', '--config', config1, '--store-id', second);
    assert.notEqual(whileRunning.code, 0, 'the running agent holds its local file');
    await agent1.kill('SIGTERM');
    const wrongId = vigilState('adopt', '--config', config1, '--store-id', first);
    assert.notEqual(wrongId.code, 0);
    assert.match(wrongId.err, new RegExp(`is ${second}, not ${first}`));
    const adopted = vigilState('adopt', '--config', config1, '--store-id', second);
    assert.equal(adopted.code, 0, adopted.err);
    assert.match(adopted.out, new RegExp(`rebound from store ${first} to store ${second}`));
    agent1 = await start(config1);
    assert.equal((await readiness(agent1)).status, 200);
    // The new store holds agent 2's slot 10: agent 1's own slot 10 is a conflict there, and
    // it signs on above it.
    assert.equal((await sign(agent1, 10n, 'payload A')).status, 409);
    assert.equal((await sign(agent1, 14n, 'payload A5')).status, 200);
  });

  it('renamed over: another initialised store moved onto the path is refused at once', async () => {
    const storePath = join(dir, 'renamed.db');
    const config = agentConfig('agent-r', storePath);
    initAgentStore(config);
    const agent = await start(config);
    assert.equal((await sign(agent, 10n, 'r1')).status, 200);
    // A config-management run writes "its" store and moves it into place.
    const otherPath = join(dir, 'staging', 'renamed.db');
    const staging = agentConfig('staging', otherPath);
    initAgentStore(staging);
    renameSync(otherPath, storePath);
    const r = await sign(agent, 11n, 'r2');
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.equal(r.body.reason, 'store_identity');
    assert.match(r.body.message!, /replaced by another file/);
    const ready = await readiness(agent);
    assert.equal(ready.status, 503);
    assert.match(ready.body.reason!, /replaced by another file/);
  });

  it('restored from an old backup: same identity, so the local watermark catches it (store_behind_local)', async () => {
    const storePath = join(dir, 'restored.db');
    const config = agentConfig('agent-b', storePath);
    initAgentStore(config);
    let agent = await start(config);
    assert.equal((await sign(agent, 10n, 'b1')).status, 200);
    await agent.kill('SIGTERM'); // the last connection checkpoints the WAL into the file
    copyFileSync(storePath, `${storePath}.bak`);
    agent = await start(config);
    assert.equal((await sign(agent, 11n, 'b2')).status, 200);
    assert.equal((await sign(agent, 12n, 'b3')).status, 200);
    await agent.kill('SIGTERM');
    removeStore(storePath);
    copyFileSync(`${storePath}.bak`, storePath);
    agent = await start(config);
    assert.equal((await readiness(agent)).status, 200, 'the same store, only behind');
    const r = await sign(agent, 13n, 'b4');
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal(r.body.reason, 'store_behind_local');
    assert.match(r.body.message!, /\(10\).*behind this agent's own \(12\)/);
  });
});
