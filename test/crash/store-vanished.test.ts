/**
 * Issue 10, a vanished store: SQLite keeps writing into a database file that was removed while
 * open, so its commits land in an inode nobody will ever open again. A real agent whose store
 * file is removed under it, directory and all, must refuse (store_identity: the store it opened
 * is gone for good), not release signatures whose watermark is nowhere on disk.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  babeSignBody,
  startAgentProcess,
  writeSlotAgent,
  type AgentProcess,
} from '../helpers/agent-process.js';
import { tempDir } from '../helpers/guard-fixtures.js';

describe('store file removed under a running agent', () => {
  let dir: string;
  let cleanup: () => void;
  let agent: AgentProcess | undefined;
  before(() => ({ dir, cleanup } = tempDir('vigil-store-gone-')));
  after(async () => {
    await agent?.kill('SIGKILL');
    cleanup();
  });

  it('refuses with store_identity instead of committing into the removed file', async () => {
    const storeDir = join(dir, 'store');
    mkdirSync(storeDir);
    agent = await startAgentProcess(
      writeSlotAgent(
        { dir, dataDir: join(dir, 'data'), storePath: join(storeDir, 'store.db') },
        'store-gone',
      ),
    );
    const sign = async (slot: number) => {
      const res = await agent!.client.request('POST', '/v1/sign', babeSignBody(slot));
      return { status: res.status, body: res.body as Record<string, string> };
    };
    assert.equal((await sign(1)).status, 200);
    rmSync(storeDir, { recursive: true });
    const r = await sign(2);
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.equal(r.body.reason, 'store_identity');
    assert.match(r.body.message ?? '', /was deleted while this agent had it open/);
    assert.equal((await agent.client.get('/healthz')).status, 200);
    assert.equal((await agent.client.get('/readyz')).status, 503);
  });
});
