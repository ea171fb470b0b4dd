/**
 * The signer's and the Cardano watcher's alert rules under `promtool test rules`: every case passes, every rule has a
 * case where it fires and one where it must not, and a rule broken either way (never firing,
 * always firing) fails its cases.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import {
  ALERT_RULES,
  CARDANO_ALERT_RULES,
  DECRED_ALERT_RULES,
  POLKADOT_ALERT_RULES,
  COMETBFT_ALERT_RULES,
  SIGNER_ALERT_RULES,
  signerAlertRules,
} from '../../src/render/alert-rules.js';
import { RULE_TESTS } from './alert-rule-cases.js';
import { runRuleTests } from '../helpers/promtool.js';
import { removeDir, requireTool, tempDir } from './helpers.js';

test('the rendered rules file passes `promtool check rules`', () => {
  if (!requireTool('promtool', ['--version'])) return;
  const dir = tempDir('rules');
  try {
    const file = join(dir, 'vigil-signer.rules.yml');
    writeFileSync(file, signerAlertRules());
    const r = spawnSync('promtool', ['check', 'rules', file], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`SUCCESS: ${ALERT_RULES.length} rules found`));
  } finally {
    removeDir(dir);
  }
  const parsed = parse(signerAlertRules()) as {
    groups: Array<{ name: string; rules: Array<{ alert: string }> }>;
  };
  assert.deepEqual(
    parsed.groups.map((g) => [g.name, g.rules.map((r) => r.alert)]),
    [
      ['vigil-signer', SIGNER_ALERT_RULES.map((r) => r.alert)],
      ['vigil-cardano', CARDANO_ALERT_RULES.map((r) => r.alert)],
      ['vigil-decred', DECRED_ALERT_RULES.map((r) => r.alert)],
      ['vigil-polkadot', POLKADOT_ALERT_RULES.map((r) => r.alert)],
      ['vigil-cometbft', COMETBFT_ALERT_RULES.map((r) => r.alert)],
    ],
  );
});

for (const group of RULE_TESTS) {
  test(`promtool: ${group.name}`, () => {
    if (!requireTool('promtool', ['--version'])) return;
    const [r] = runRuleTests(signerAlertRules(), [group]);
    assert.ok(r!.passed, r!.output);
  });
}

test('every rule has a firing case and a quiet case', () => {
  for (const rule of ALERT_RULES) {
    const evals = RULE_TESTS.flatMap((g) => g.alert_rule_test).filter(
      (t) => t.alertname === rule.alert,
    );
    assert.ok(
      evals.some((t) => t.exp_alerts.length > 0),
      `${rule.alert} has no case where it fires`,
    );
    assert.ok(
      evals.some((t) => t.exp_alerts.length === 0),
      `${rule.alert} has no case where it stays quiet`,
    );
  }
});

test('a rule broken to never fire, or to always fire, fails its promtool cases', () => {
  if (!requireTool('promtool', ['--version'])) return;
  for (const rule of ALERT_RULES) {
    for (const [how, expr] of [
      ['never fires', 'vector(1) == 0'],
      ['always fires', 'vector(1)'],
    ] as const) {
      const broken = ALERT_RULES.map((r) => (r === rule ? { ...r, expr } : r));
      // Only the groups that evaluate this rule can notice it broken; running every group for
      // every rule grew as rules × groups (minutes of promtool once the watchers' rules came).
      const own = RULE_TESTS.filter((g) =>
        g.alert_rule_test.some((t) => t.alertname === rule.alert),
      );
      assert.ok(own.length > 0, `${rule.alert} has no promtool case`);
      const results = runRuleTests(signerAlertRules(broken), own);
      assert.ok(
        results.some((r) => !r.passed),
        `${rule.alert} broken so that it ${how} still passes every case`,
      );
    }
  }
});
