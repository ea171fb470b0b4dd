import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { AgentClient } from '../../src/agent/client.js';
import { CometbftNodeSimulator } from '../../src/devnet/cometbft-node.js';
import { startAgentProcess } from '../../src/devnet/agent-process.js';
import { initAgentStore } from '../helpers/agent-process.js';
import { cometbftKeyJson } from '../../src/keys/generate.js';
import { Ed25519Key } from '../../src/keys/ed25519.js';

const SEED = new Uint8Array(32).fill(42);

for (const protocol of ['v0.38', 'v1'] as const) {
  test(`vigil agent signs for a CometBFT node from its config (${protocol})`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-agent-cmt-'));
    const node = await CometbftNodeSimulator.start({
      chainId: 'cosmoshub-test',
      protocol,
      validatorPublicKey: Ed25519Key.fromSeed(SEED).publicKey,
      blockTimeMs: 50,
      lastHeight: 4n,
    });
    writeFileSync(join(dir, 'priv_validator_key.json'), cometbftKeyJson(SEED), { mode: 0o600 });
    writeFileSync(
      join(dir, 'agent.yaml'),
      stringify({
        agent: { id: 'cmt', dataDir: './data' },
        store: { engine: 'sqlite', path: './watermarks.db' },
        keys: [
          {
            id: 'validator',
            file: 'priv_validator_key.json',
            protocol: 'cometbft',
            chains: ['cosmoshub-test'],
          },
        ],
        cometbft: {
          chains: [
            {
              chainId: 'cosmoshub-test',
              keyId: 'validator',
              protocol,
              nodes: [node.address],
              connectionKeyFile: 'conn_key.json',
            },
          ],
        },
      }),
    );
    initAgentStore(join(dir, 'agent.yaml'));
    const agent = await startAgentProcess('cmt', join(dir, 'agent.yaml'));
    try {
      await node.waitForHeight(4n, 20_000);
      assert.ok(node.signed.length >= 8, `only ${node.signed.length} signatures`);
      assert.ok(node.signed.every((r) => r.verified));
      assert.deepEqual(node.refused, []);
      const client = AgentClient.for(agent);
      const ready = (await client.get<{ cometbft: Array<{ connected: boolean }> }>('/readyz')).body;
      assert.equal(ready.cometbft.length, 1);
      const metrics = (await client.get<string>('/metrics')).body;
      client.close();
      assert.match(metrics, /vigil_guard_decisions_total\{family="cometbft",outcome="granted"/);
    } finally {
      await agent.stop();
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
