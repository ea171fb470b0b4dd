/**
 * Issue 12: Cardano nodes bound their metrics to 127.0.0.1 (the release's config) while the
 * monitor scrapes the VPN address. The rendered patch script is run here, with jq, on the
 * upstream mainnet config's metrics keys (test/render/cardano-mainnet-config.json, cited
 * there) and on the legacy form, and the rendered host runs it and starts the node with its
 * output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  CARDANO_CONFIG_COMMAND,
  CARDANO_CONFIG_SCRIPT,
  chainUnits,
} from '../../src/render/chains.js';
import { hostSetup, planExample, removeDir, requireTool, tempDir } from './helpers.js';

const vectors = JSON.parse(readFileSync('test/render/cardano-mainnet-config.json', 'utf8')) as {
  newTracing: Record<string, unknown>;
  legacyTracing: { config: Record<string, unknown> };
};

function patch(config: unknown, host: string, port: number): Record<string, unknown> {
  const dir = tempDir('cardano-config');
  try {
    const script = join(dir, 'patch.sh');
    writeFileSync(script, CARDANO_CONFIG_SCRIPT, { mode: 0o755 });
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const out = join(dir, 'config.vigil.json');
    const r = spawnSync('sh', [script, join(dir, 'config.json'), out, host, String(port)], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
  } finally {
    removeDir(dir);
  }
}

test('the new tracing system: every PrometheusSimple backend moves to the VPN address, the rest is kept', (t) => {
  if (!requireTool('jq')) return t.skip('jq is not installed');
  const out = patch(vectors.newTracing, '10.77.0.5', 12798);
  const backends = (out.TraceOptions as Record<string, { backends?: string[] }>)['']!.backends!;
  assert.deepEqual(backends, [
    'EKGBackend',
    'Forwarder',
    'PrometheusSimple suffix 10.77.0.5 12798',
    'Stdout HumanFormatColoured',
  ]);
  // Everything else is the release's, byte for byte as data.
  const { TraceOptions: a, hasPrometheus, ...rest } = out;
  const { TraceOptions: b, ...upstream } = vectors.newTracing;
  assert.deepEqual(rest, upstream);
  assert.deepEqual(hasPrometheus, ['10.77.0.5', 12798]);
  assert.deepEqual(
    (a as Record<string, unknown>)['Forge.Loop'],
    (b as Record<string, unknown>)['Forge.Loop'],
  );
  // A backend without the suffix word, and another port.
  const bare = patch(
    { TraceOptions: { '': { backends: ['PrometheusSimple 127.0.0.1 12798'] } } },
    '10.77.0.9',
    12999,
  );
  assert.deepEqual((bare.TraceOptions as Record<string, { backends: string[] }>)['']!.backends, [
    'PrometheusSimple 10.77.0.9 12999',
  ]);
});

test('the legacy tracing system: hasPrometheus moves to the VPN address', (t) => {
  if (!requireTool('jq')) return t.skip('jq is not installed');
  const out = patch(vectors.legacyTracing.config, '10.77.0.5', 12798);
  assert.deepEqual(out.hasPrometheus, ['10.77.0.5', 12798]);
  assert.equal(out.hasEKG, 12788);
  assert.equal(out.TraceOptions, undefined);
});

test('every Cardano host runs the patch after the fetch and starts the node with its output', () => {
  const state = tempDir('cardano-metrics');
  try {
    const { plan, files } = planExample('cardano-pool', state);
    const hosts = plan!.hosts.filter((h) => h.chain?.kind === 'cardano');
    assert.ok(hosts.length >= 3);
    for (const host of hosts) {
      const cc = hostSetup(files!, host.name) as {
        runcmd: Array<string | string[]>;
        packages: string[];
        write_files: Array<{ path: string; content: string }>;
      };
      const i = cc.runcmd.findIndex((c) => Array.isArray(c) && c[0] === CARDANO_CONFIG_COMMAND);
      assert.ok(i > 0, host.name);
      const [, from, to, address, port] = cc.runcmd[i] as string[];
      assert.equal(address, host.vpnAddress);
      assert.equal(port, '12798');
      assert.match(from!, /\/share\/mainnet\/config\.json$/);
      // After the artifact is fetched, in the same directory (genesis paths are relative).
      const fetch = cc.runcmd.findIndex(
        (c) =>
          Array.isArray(c) && c[0] === '/usr/local/sbin/vigil-fetch' && c[3] === '/opt/cardano',
      );
      assert.ok(fetch >= 0 && fetch < i, host.name);
      assert.equal(to, from!.replace(/config\.json$/, 'config.vigil.json'));
      assert.ok(cc.packages.includes('jq'));
      assert.ok(cc.write_files.some((f) => f.path === CARDANO_CONFIG_COMMAND));
      const [unit] = chainUnits(plan!, host);
      assert.ok(unit!.execStart.includes(` --config ${to} `), unit!.execStart);
    }
  } finally {
    removeDir(state);
  }
});
