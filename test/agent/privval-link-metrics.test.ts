/**
 * vigil_privval_link_up and vigil_privval_reconnects_total follow the CometBFT signer's links
 * (the state /readyz shows), on a real agent dialling a simulated node that goes away and
 * comes back on the same address.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AgentConfigSchema } from '../../src/agent/config.js';
import { AgentClient } from '../../src/agent/client.js';
import { initStore } from '../../src/agent/store.js';
import { startAgent } from '../../src/agent/daemon.js';
import { CometbftNodeSimulator } from '../../src/devnet/cometbft-node.js';
import { cometbftKeyJson } from '../../src/keys/generate.js';
import { Ed25519Key } from '../../src/keys/ed25519.js';
import { sampleOf } from '../helpers/prometheus-text.js';

const SEED = new Uint8Array(32).fill(7);
const CHAIN = 'link-test-1';

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('privval link up/down and reconnects per chain and node, from the links /readyz shows', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-link-metrics-'));
  const start = (port?: number) =>
    CometbftNodeSimulator.start({
      chainId: CHAIN,
      protocol: 'v1',
      validatorPublicKey: Ed25519Key.fromSeed(SEED).publicKey,
      blockTimeMs: 20,
      lastHeight: 3n,
      ...(port !== undefined ? { port } : {}),
    });
  let node = await start();
  const address = node.address;
  writeFileSync(join(dir, 'pv.json'), cometbftKeyJson(SEED), { mode: 0o600 });
  const config = AgentConfigSchema.parse({
    agent: { id: 'links', dataDir: join(dir, 'agent') },
    store: { engine: 'sqlite', path: join(dir, 'store.db') },
    keys: [{ id: 'validator', file: join(dir, 'pv.json'), protocol: 'cometbft', chains: [CHAIN] }],
    cometbft: {
      chains: [
        {
          chainId: CHAIN,
          keyId: 'validator',
          protocol: 'v1',
          nodes: [address],
          connectionKeyFile: join(dir, 'conn.json'),
          backoff: { initialMs: 50, maxMs: 200 },
        },
      ],
    },
  });
  await (await initStore(config.store)).close();
  const agent = await startAgent(config, pino({ level: 'silent' }));
  const client = AgentClient.for(agent);
  const scrape = async () => (await client.get<string>('/metrics')).body;
  const labels = { chain_id: CHAIN, node: address };
  const up = async () => sampleOf(await scrape(), 'vigil_privval_link_up', labels);
  const reconnects = async () => sampleOf(await scrape(), 'vigil_privval_reconnects_total', labels);
  try {
    await node.waitForHeight(3n, 15_000);
    assert.equal(await up(), 1);
    assert.equal(await reconnects(), 0);
    const ready = (await client.get<{ cometbft: Array<{ connected: boolean }> }>('/readyz')).body;
    assert.equal(ready.cometbft[0]!.connected, true);
    // A signature through the link set the chain's last-signed time.
    assert.ok(
      (sampleOf(await scrape(), 'vigil_last_signed_timestamp_seconds', {
        chain_id: CHAIN,
        key: 'validator',
        family: 'cometbft',
      }) ?? 0) > 0,
    );

    const port = node.port;
    await node.stop();
    await until('link down', async () => (await up()) === 0);
    assert.equal(await reconnects(), 0);

    node = await start(port);
    await until('link up again', async () => (await up()) === 1);
    assert.equal(await reconnects(), 1);
  } finally {
    client.close();
    await agent.stop();
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
