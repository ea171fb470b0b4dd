/**
 * Issue 10, a vanished store: SQLite keeps writing into a database file that was removed while
 * open, so its commits land in an inode nobody will ever open again. A real agent whose store
 * file is removed under it must refuse (store_unavailable), not release signatures whose
 * watermark is nowhere on disk.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  startAgentProcess,
  writeAgentConfig,
  type AgentProcess,
} from '../helpers/agent-process.js';
import { tempDir, writePrivValidatorKey } from '../helpers/guard-fixtures.js';

describe('store file removed under a running agent', () => {
  let dir: string;
  let cleanup: () => void;
  let agent: AgentProcess | undefined;
  before(() => ({ dir, cleanup } = tempDir('vigil-store-gone-')));
  after(async () => {
    await agent?.kill('SIGKILL');
    cleanup();
  });

  it('refuses with store_unavailable instead of committing into the removed file', async () => {
    const keyFile = join(dir, 'key.json');
    writePrivValidatorKey(keyFile, 4);
    const storeDir = join(dir, 'store');
    mkdirSync(storeDir);
    agent = await startAgentProcess(
      writeAgentConfig(
        { dir, keyFile, dataDir: join(dir, 'data'), storePath: join(storeDir, 'store.db') },
        'store-gone',
      ),
    );
    const sign = async (slot: number) => {
      const res = await fetch(`${agent!.url}/v1/sign`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          family: 'slot',
          chainId: 'gone',
          keyId: 'k1',
          position: { slot: String(slot) },
          payload: 'cd',
        }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, string> };
    };
    assert.equal((await sign(1)).status, 200);
    rmSync(storeDir, { recursive: true });
    const r = await sign(2);
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.equal(r.body.reason, 'store_unavailable');
    assert.match(r.body.message ?? '', /removed or replaced/);
    assert.equal((await fetch(`${agent.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${agent.url}/readyz`)).status, 503);
  });
});
