/**
 * Issue 14: the plan watches the Decred voting wallets. Each voting-wallet host runs `vigil
 * watch` on its own wallet over loopback (the RPC password of an unlocked voting wallet can
 * spend, so it never leaves the host), the monitor scrapes every watcher over the VPN, and the
 * cross-wallet checks are fleet rules over the wallets' own series (promtool-tested in
 * alert-rule-cases.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { renderHost } from '../../src/render/cloud-init.js';
import { PlanState } from '../../src/render/state.js';
import { WATCH_DCRWALLET_PASSWORD_PATH, WATCH_USER } from '../../src/render/watch.js';
import { WatchConfigSchema } from '../../src/watch/config.js';
import { DCRWALLET_RPC_PORT, WATCH_PORT } from '../../src/topology/plan.js';
import { planExample, removeDir, tempDir } from './helpers.js';

test('every voting wallet is watched on its host, with the password dcrwallet.conf carries', () => {
  const state = tempDir('decred-watch');
  try {
    const { plan, files } = planExample('decred-solo', state);
    const wallets = plan!.hosts.filter((h) => h.role === 'voting-wallet');
    assert.ok(wallets.length >= 3);
    const monitors = plan!.hosts.filter((h) => h.role === 'monitor').map((h) => h.vpnAddress);
    for (const host of wallets) {
      const rendered = renderHost(plan!, host, new PlanState(state));
      const watchYaml = rendered.files.find((f) => f.path === '/etc/vigil/watch.yaml');
      assert.ok(watchYaml, `${host.name}: no watch config`);
      const config = WatchConfigSchema.parse(parseYaml(watchYaml.content));
      assert.deepEqual(config.listen, { host: host.vpnAddress, port: WATCH_PORT });
      const [chain] = config.chains;
      assert.equal(chain?.kind, 'decred');
      if (chain?.kind !== 'decred') return;
      assert.deepEqual(
        chain.wallets.map((w) => [w.name, w.url, w.passwordFile]),
        [[host.name, `https://127.0.0.1:${DCRWALLET_RPC_PORT}`, WATCH_DCRWALLET_PASSWORD_PATH]],
      );
      const pass = rendered.files.find((f) => f.path === WATCH_DCRWALLET_PASSWORD_PATH)!;
      assert.equal(pass.permissions, '0600');
      assert.equal(pass.owner, `${WATCH_USER}:${WATCH_USER}`);
      const conf = rendered.files.find((f) => f.path === '/etc/decred/dcrwallet.conf')!;
      assert.equal(`${/^password=(.*)$/m.exec(conf.content)![1]}\n`, pass.content);
      // Only the monitor reaches the watcher.
      const rule = host.ports.find((r) => r.port === WATCH_PORT)!;
      assert.deepEqual([...(rule.from as string[])].sort(), [...monitors].sort());
    }
    const monitor = plan!.hosts.find((h) => h.role === 'monitor')!;
    const prometheus = parseYaml(
      files!.get(`hosts/${monitor.name}/files/etc__prometheus__prometheus.yml`)!,
    ) as {
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
    };
    const job = prometheus.scrape_configs.find((j) => j.job_name === 'vigil-watch')!;
    const targets = job.static_configs.flatMap((c) => c.targets);
    for (const host of wallets) assert.ok(targets.includes(`${host.vpnAddress}:${WATCH_PORT}`));
  } finally {
    removeDir(state);
  }
});
