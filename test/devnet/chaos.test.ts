import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { faultKindsFor, planFaults, runChaos } from '../../src/devnet/chaos.js';
import { runDevnet } from '../../src/devnet/devnet.js';
import { EvidenceCollector } from '../../src/devnet/evidence.js';
import { Ed25519Key } from '../../src/keys/ed25519.js';
import { headerHash } from '../../src/protocols/substrate/header.js';
import { babeHeader, grandpaVote, srKeyFromTag } from '../helpers/guard-fixtures.js';

const devnet = (slotMs: number, nodes: number) => ({
  name: 'chaos-test',
  store: 'sqlite' as const,
  chains: [{ family: 'slot' as const, chainId: 'chaos', slotMs, nodes }],
});

test('a fault plan is a function of its seed and never hits a member twice at once', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2 ** 31 }),
      fc.integer({ min: 50, max: 2000 }),
      fc.integer({ min: 1, max: 5 }),
      (seed, interval, members) => {
        const opts = { seed, durationMs: 60_000, meanIntervalMs: interval, maxFaultMs: 2000 };
        const plan = planFaults(opts, members);
        assert.deepEqual(planFaults(opts, members), plan);
        for (let m = 0; m < members; m++) {
          const mine = plan.filter((f) => f.target === m);
          for (let i = 1; i < mine.length; i++)
            assert.ok(mine[i]!.atMs >= mine[i - 1]!.atMs + mine[i - 1]!.lastsMs);
        }
        for (const f of plan) assert.ok(f.atMs + f.lastsMs <= opts.durationMs);
      },
    ),
  );
  const a = planFaults({ seed: 1, durationMs: 30_000, meanIntervalMs: 300, maxFaultMs: 1000 }, 3);
  const b = planFaults({ seed: 2, durationMs: 30_000, meanIntervalMs: 300, maxFaultMs: 1000 }, 3);
  assert.notDeepEqual(a, b);
});

test('the evidence collector reads positions from the signed bytes and reports two messages at one', () => {
  const key = Ed25519Key.fromSeed(new Uint8Array(32).fill(1));
  const ev = new EvidenceCollector();
  const vote = (round: bigint, target: string, node: string) => {
    const payload = grandpaVote(3n, round, 'prevote', target);
    return {
      chainId: 'c',
      protocol: 'grandpa' as const,
      publicKey: key.publicKey,
      payload,
      signature: key.sign(payload),
      node,
    };
  };
  ev.record(vote(1n, 'a', 'n1'));
  ev.record(vote(1n, 'a', 'n2'));
  assert.equal(ev.equivocations.length, 0);
  ev.record(vote(1n, 'b', 'n2'));
  assert.equal(ev.equivocations.length, 1);
  assert.equal(ev.equivocations[0]!.position, 'set 3 round 1 prevote');
  ev.record({ ...vote(2n, 'c', 'n3'), signature: new Uint8Array(64) });
  assert.equal(ev.invalidSignatures.length, 1);
  // BABE: sr25519 over the header hash; two headers at one slot are double authoring.
  const babe = srKeyFromTag(5);
  const block = (content: string, node: string) => {
    const payload = babeHeader(40n, content);
    return {
      chainId: 'c',
      protocol: 'babe' as const,
      publicKey: babe.publicKey,
      payload,
      signature: babe.sign(headerHash(payload)),
      node,
    };
  };
  ev.record(block('x', 'n1'));
  ev.record(block('y', 'n2'));
  assert.equal(ev.invalidSignatures.length, 1);
  assert.equal(ev.equivocations.at(-1)!.position, 'slot 40');
  // Bytes that are no message of their protocol are never counted as a valid signature.
  ev.record({ ...vote(4n, 'd', 'n1'), payload: new Uint8Array([1, 2, 3]) });
  assert.equal(ev.invalidSignatures.length, 2);
});

test('negative control: agents on separate stores double-sign and the devnet sees it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-unsafe-'));
  try {
    const report = await runDevnet({
      file: devnet(200, 2),
      workDir: dir,
      durationMs: 1500,
      separateStores: true,
    });
    assert.ok(report.equivocations > 0, 'separate stores must produce equivocations');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bounded chaos run: every fault kind, zero equivocations', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-chaos-'));
  try {
    const opts = { seed: 5, durationMs: 14_000, meanIntervalMs: 250, maxFaultMs: 1200 };
    const planned = new Set(planFaults(opts, 3).map((f) => f.kind));
    assert.deepEqual(
      [...planned].sort(),
      [...faultKindsFor('sqlite')].sort(),
      'the seed must plan every fault kind',
    );
    const report = await runChaos({ file: devnet(250, 3), workDir: dir, ...opts });
    assert.ok(report.faults >= 10, `only ${report.faults} faults`);
    assert.equal(report.devnet.equivocations, 0, JSON.stringify(report.devnet.equivocationDetails));
    assert.equal(report.devnet.invalidSignatures, 0);
    assert.ok(report.devnet.signed > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
