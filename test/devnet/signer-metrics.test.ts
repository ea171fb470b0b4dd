/** `vigil up`'s reading of an agent's signer metrics, on the exposition AgentMetrics writes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { cometbftPosition, slotPosition } from '../../src/guard/index.js';
import { formatSignerMetrics, signerMetricsOf } from '../../src/devnet/signer-metrics.js';

test('granted, last signed per chain with its age, refusals by reason, from real /metrics text', async () => {
  let now = 1_700_000_000_000;
  const m = new AgentMetrics({ agent: 'a' }, () => now);
  const wm = (family: 'slot' | 'cometbft', position: readonly bigint[]) => ({
    family,
    position,
  });
  m.onDecision({
    family: 'slot',
    chainId: 'c-slot',
    keyId: 'k',
    outcome: 'granted',
    seconds: 0.001,
    watermark: wm('slot', slotPosition(40n)) as never,
  });
  m.onDecision({
    family: 'cometbft',
    chainId: 'c-cmt',
    keyId: 'v',
    outcome: 'granted',
    seconds: 0.001,
    watermark: wm('cometbft', cometbftPosition(7n, 0n, 'precommit')) as never,
  });
  for (const reason of ['conflict', 'conflict', 'regression'] as const)
    m.onDecision({
      family: 'slot',
      chainId: 'c-slot',
      keyId: 'k',
      outcome: 'refused',
      reason,
      seconds: 0.001,
    });
  now += 5000;
  const text = await m.registry.metrics();
  const s = signerMetricsOf(text, 'test', now);
  assert.equal(s.granted, 2);
  assert.deepEqual(s.refusals, { conflict: 2, regression: 1 });
  assert.deepEqual(
    s.lastSigned.map((l) => [l.chainId, l.key, l.position, l.secondsAgo]),
    [
      ['c-cmt', 'v', 'height 7 round 0 precommit', 5],
      ['c-slot', 'k', 'slot 40', 5],
    ],
  );
  assert.equal(
    formatSignerMetrics(s),
    'granted 2 · c-cmt height 7 round 0 precommit (5 s ago) · c-slot slot 40 (5 s ago) · refused conflict 2, regression 1',
  );
  assert.throws(() => signerMetricsOf('vigil_x{', 'bad', now), /line 1/);
});
