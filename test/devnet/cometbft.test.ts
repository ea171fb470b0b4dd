import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentClient } from '../../src/agent/client.js';
import { faultKindsFor, planFaults, runChaos } from '../../src/devnet/chaos.js';
import { runDevnet, type DevnetControl } from '../../src/devnet/devnet.js';
import { parse as parseYaml } from 'yaml';
import { DevnetFileSchema, type DevnetFile } from '../../src/devnet/devnet-file.js';
import type { TickOutcome } from '../../src/devnet/duty-network.js';

const cometbftDevnet = (blockMs: number, nodes: number): DevnetFile =>
  DevnetFileSchema.parse({
    name: 'cometbft-test',
    chains: [
      { family: 'cometbft', chainId: 'cmt-test', blockMs, nodes, conflictingProposals: true },
    ],
  });

test('the devnet file takes a CometBFT chain and rejects a bad one precisely', () => {
  const ok = cometbftDevnet(500, 2);
  assert.deepEqual(ok.chains[0], {
    family: 'cometbft',
    chainId: 'cmt-test',
    blockMs: 500,
    nodes: 2,
    conflictingProposals: true,
    protocol: 'v0.38',
  });
  const bad = DevnetFileSchema.safeParse({
    name: 'x',
    chains: [{ family: 'cometbft', chainId: 'c'.repeat(51), blockMs: 10 }],
  });
  assert.equal(bad.success, false);
  const paths = bad.error!.issues.map((i) => i.path.join('.')).sort();
  assert.deepEqual(paths, ['chains.0.blockMs', 'chains.0.chainId']);
});

test('the devnet pins every CometBFT node by the id of its SecretConnection key', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-cmt-pin-'));
  const abort = new AbortController();
  let control: DevnetControl | undefined;
  let signedTicks = 0;
  const run = runDevnet({
    file: cometbftDevnet(300, 2),
    workDir: dir,
    durationMs: 15_000,
    signal: abort.signal,
    onStarted: (c) => (control = c),
    onTick: (o) => {
      if (o.signers && o.signers.length > 0) signedTicks++;
    },
  });
  try {
    const deadline = Date.now() + 12_000;
    while (signedTicks < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(signedTicks >= 2, 'the pinned links signed nothing');
    for (const member of control!.members) {
      const config = parseYaml(readFileSync(member.configFile, 'utf8')) as {
        cometbft: { chains: Array<{ nodes: string[] }> };
      };
      const [address] = config.cometbft.chains[0]!.nodes;
      assert.match(address!, /^tcp:\/\/[0-9a-f]{40}@127\.0\.0\.1:\d+$/);
      const client = AgentClient.for(member.agent!);
      const ready = (
        await client.get<{
          cometbft: Array<{ pinnedNodeId?: string; remoteNodeId?: string; connected: boolean }>;
        }>('/readyz')
      ).body;
      client.close();
      const [link] = ready.cometbft;
      assert.equal(link!.connected, true);
      assert.equal(link!.pinnedNodeId, address!.slice(6, 46));
      assert.equal(link!.remoteNodeId, link!.pinnedNodeId);
    }
    abort.abort();
    const report = await run;
    assert.equal(report.equivocations, 0);
  } finally {
    abort.abort();
    await run.catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('negative control: CometBFT agents on separate stores double-sign conflicting proposals, and the collector sees it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-cmt-unsafe-'));
  try {
    const report = await runDevnet({
      file: cometbftDevnet(300, 2),
      workDir: dir,
      durationMs: 2500,
      separateStores: true,
    });
    assert.ok(report.equivocations > 0, 'separate stores must produce equivocations');
    assert.ok(
      report.equivocationDetails.some((e) => / round 0 proposal$/.test(e.position)),
      `no proposal equivocation among ${JSON.stringify(report.equivocationDetails.slice(0, 3))}`,
    );
    assert.equal(report.invalidSignatures, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bounded CometBFT chaos run: every fault kind, conflicting proposals, zero equivocations', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-cmt-chaos-'));
  try {
    const opts = { seed: 5, durationMs: 14_000, meanIntervalMs: 250, maxFaultMs: 1200 };
    const planned = new Set(planFaults(opts, 3).map((f) => f.kind));
    assert.deepEqual([...planned].sort(), [...faultKindsFor('sqlite')].sort());
    const ticks: TickOutcome[] = [];
    const report = await runChaos({
      // A height counts as signed only when its precommit is signed within the last third of
      // the block: at 300 ms that left 100 ms, which a loaded 2-core machine missed for every
      // height of a run (signed 0, a full-suite run of 2026-12-03 beside another test run).
      file: cometbftDevnet(600, 3),
      workDir: dir,
      ...opts,
      onTick: (o) => ticks.push(o),
    });
    assert.ok(report.faults >= 10, `only ${report.faults} faults`);
    assert.equal(report.devnet.equivocations, 0, JSON.stringify(report.devnet.equivocationDetails));
    assert.equal(report.devnet.invalidSignatures, 0);
    const chain = report.devnet.chains['cmt-test']!;
    assert.ok(chain.signed > 0, `no height signed in time of ${chain.ticks}`);
    assert.equal(chain.ticks, report.devnet.ticks);
    // Identical votes asked by several nodes all get the one stored signature: HA without
    // equivocation, and the guard's refusals are what kept the conflicting proposals apart.
    assert.ok(
      ticks.some((t) => (t.signers?.length ?? 0) > 1),
      'no height had its precommit signed for more than one node',
    );
    assert.ok(report.devnet.refusals > 0, 'conflicting proposals were never refused');
    // Each height is reported once (a timer firing early once reported a height twice,
    // the second time as missed).
    const heights = ticks.map((t) => t.tick);
    assert.equal(new Set(heights).size, heights.length, 'a height was reported twice');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
