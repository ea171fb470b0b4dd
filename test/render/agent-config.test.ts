/** Every agent config the planner renders must be one the agent accepts, as written. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentConfigSchema } from '../../src/agent/config.js';
import { parseYaml } from '../../src/config/yaml-file.js';
import { planExample } from './helpers.js';

for (const example of ['cosmos-sentries', 'polkadot-guarded', 'cardano-pool', 'decred-solo']) {
  test(`${example}: every rendered agent.yaml passes the agent's own schema`, () => {
    const state = mkdtempSync(join(tmpdir(), 'vigil-agentcfg-'));
    try {
      const files = planExample(example, state).files!;
      const agents = [...files].filter(([path]) => path.endsWith('etc__vigil__agent.yaml'));
      for (const [path, text] of agents) {
        const config = parseYaml(path, text, AgentConfigSchema);
        assert.ok(config.listen?.socket, `${path}: the signing API must be on a unix socket`);
        assert.equal(config.listen.socket.group, undefined, `${path}: no node calls the API`);
        assert.equal(config.listen.tcp, undefined, `${path}: the signing API must not be on TCP`);
        assert.ok(config.metricsListen, `${path}: metrics must be reachable by the monitor`);
        if (config.cometbft) {
          for (const chain of config.cometbft.chains) {
            assert.ok(
              config.keys.some((k) => k.id === chain.keyId && k.file),
              `${path}: ${chain.keyId} has no key file`,
            );
          }
        }
      }
      // Hosts that use no validator key (sentries, relays, wallets, monitors) run no agent.
      const hosts = new Set(
        [...files.keys()].filter((p) => p.startsWith('hosts/')).map((p) => p.split('/')[1]),
      );
      assert.ok(agents.length < hosts.size, `${agents.length} agents for ${hosts.size} hosts`);
      if (example !== 'decred-solo') assert.ok(agents.length > 0);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
}
