/**
 * Issue 12: a supervised Polkadot validator's standby runs synced. Each validator host of a
 * guarded Substrate chain has the validator unit (started only by the watchdog) and a sync unit
 * on the same base path without --validator (enabled at boot); starting the validator stops
 * the sync node first, a demotion or a deadline kill starts it again, and a validator SIGKILLed
 * at the deadline is never restarted by systemd.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  chainUnits,
  renderUnit,
  substrateSyncUnit,
  WATCHDOG_UNIT,
} from '../../src/render/chains.js';
import { watchdogConfig, watchdogUnit } from '../../src/render/services.js';
import { WatchdogConfigSchema } from '../../src/watchdog/config.js';
import { verifyUnits } from '../helpers/systemd-verify.js';
import { planExample, removeDir, tempDir } from './helpers.js';

const line = (unit: string, key: string) =>
  unit
    .split('\n')
    .find((l) => l.startsWith(`${key}=`))
    ?.slice(key.length + 1);

test('a supervised Polkadot validator has a sync node on the same base path as its standby', (t) => {
  const state = tempDir('substrate-standby');
  const root = tempDir('substrate-verify');
  try {
    const { plan } = planExample('polkadot-guarded', state);
    const validators = plan!.hosts.filter(
      (h) => h.chain?.kind === 'substrate' && h.role === 'validator',
    );
    assert.ok(validators.length >= 2);
    for (const host of validators) {
      const units = chainUnits(plan!, host);
      assert.equal(units.length, 2, `${host.name}: validator and sync units`);
      const [node, sync] = units as [(typeof units)[0], (typeof units)[0]];
      assert.equal(sync.name, substrateSyncUnit(host.chain!));
      assert.equal(node.enable, false, 'only the watchdog starts the validator');
      assert.equal(sync.enable, true, 'the sync node runs from boot');
      // Same command line but --validator: same base path, key file and peers.
      assert.ok(node.execStart.includes(' --validator'));
      assert.equal(sync.execStart, node.execStart.replace(' --validator', ''));
      const nodeText = renderUnit(node);
      assert.equal(line(nodeText, 'Conflicts'), sync.name);
      assert.ok(
        line(nodeText, 'After')!.split(' ').includes(sync.name),
        'ordered after the sync node',
      );
      assert.equal(line(nodeText, 'BindsTo'), WATCHDOG_UNIT);
      assert.equal(line(nodeText, 'RestartPreventExitStatus'), 'SIGKILL');
      assert.equal(line(renderUnit(sync), 'Conflicts'), undefined);

      const wd = WatchdogConfigSchema.parse(parseYaml(watchdogConfig(host)));
      const start = ['systemctl', 'start', '--no-block', sync.name];
      assert.deepEqual(wd.activate, [{ run: ['systemctl', 'start', node.name] }]);
      assert.deepEqual(wd.deactivate, [{ run: ['systemctl', 'stop', node.name] }, { run: start }]);
      assert.deepEqual(wd.kill, [{ signal: 'SIGKILL', systemdUnit: node.name }, { run: start }]);

      const exe = node.execStart.split(' ')[0]!;
      const hostRoot = join(root, host.name);
      mkdirSync(join(hostRoot, exe, '..'), { recursive: true });
      writeFileSync(join(hostRoot, exe), '#!/bin/sh\n');
      chmodSync(join(hostRoot, exe), 0o755);
      const r = verifyUnits(hostRoot, {
        [node.name]: nodeText,
        [sync.name]: renderUnit(sync),
        [WATCHDOG_UNIT]: watchdogUnit(host, '/opt/vigil/bin/vigil'),
      });
      if ('skipped' in r) return t.skip(r.skipped);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), '', r.stderr);
    }
    // A Substrate node the watchdog does not supervise keeps its one unit.
    const single = plan!.hosts.filter(
      (h) => h.chain?.kind === 'substrate' && h.role !== 'validator',
    );
    for (const host of single) assert.equal(chainUnits(plan!, host).length, 1);
  } finally {
    removeDir(state);
    removeDir(root);
  }
});
