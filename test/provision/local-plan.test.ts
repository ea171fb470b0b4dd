/** The local fleet's pure parts, on the rendered cosmos-sentries plan (no root needed). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWireguard } from '../../src/provision/local/wireguard.js';
import { rerootPaths } from '../../src/provision/local/agents.js';
import { deriveFlows, servicesOf } from '../../src/provision/local/reachability.js';
import { simUnitsOf } from '../../src/provision/local/sim-services.js';
import { LOCAL_UNIT_MAIN, translateAction } from '../../src/provision/local/supervised.js';
import { planFleet } from '../../src/render/fleet.js';
import { wantsLocal } from '../../src/cli/local-fleet.js';
import { planExample, removeDir, tempDir } from '../render/helpers.js';

test('the rendered wg0.conf loses exactly the wg-quick-only Address for wg setconf', () => {
  const state = tempDir('lf-wg');
  try {
    const r = planExample('cosmos-sentries', state);
    const text = r.files!.get('hosts/validator/files/etc__wireguard__wg0.conf')!;
    const wg = parseWireguard(text);
    assert.deepEqual(wg.addresses, ['10.77.0.1/32']);
    assert.equal(wg.listenPort, 51820);
    assert.equal(wg.peers.length, 4);
    assert.doesNotMatch(wg.stripped, /Address/i);
    assert.match(wg.stripped, /PrivateKey = /);
    assert.equal((wg.stripped.match(/AllowedIPs/g) ?? []).length, 4);
  } finally {
    removeDir(state);
  }
});

test('agent paths move under the host root; addresses and relative values stay', () => {
  const out = rerootPaths(
    { agent: { dataDir: '/var/lib/vigil' }, metricsListen: { host: '10.77.0.1', port: 9900 } },
    '/run/x',
  );
  assert.deepEqual(out, {
    agent: { dataDir: '/run/x/var/lib/vigil' },
    metricsListen: { host: '10.77.0.1', port: 9900 },
  });
});

test('flows follow the plan: the validator is reachable only over the VPN, by whom it allows', () => {
  const state = tempDir('lf-flows');
  try {
    const r = planExample('cosmos-sentries', state);
    const pub = new Map(r.plan!.hosts.map((h, i) => [h.name, `198.18.0.${i + 1}`]));
    const flows = deriveFlows(r.plan!, servicesOf(r.plan!, r.files!), pub);
    const find = (from: string, to: string, port: number, via: string) =>
      flows.find((f) => f.from === from && f.to === to && f.port === port && f.via === via);
    assert.equal(find('sentry-do', 'validator', 26656, 'vpn')?.expect, 'open');
    assert.equal(find('sentry-do', 'validator', 26659, 'vpn')?.expect, 'blocked');
    assert.equal(find('sentry-do', 'validator', 9900, 'vpn')?.expect, 'blocked');
    assert.equal(find('monitor', 'validator', 9900, 'vpn')?.expect, 'open');
    assert.equal(find('internet', 'validator', 26656, 'public')?.expect, 'blocked');
    assert.equal(find('internet', 'sentry-do', 26656, 'public')?.expect, 'open');
    assert.equal(find('internet', 'validator', 26656, 'vpn'), undefined);
  } finally {
    removeDir(state);
  }
});

test('simulated units come from the rendered unit flags, topology.json and Decred configs', () => {
  const state = tempDir('lf-units');
  try {
    const dot = planExample('polkadot-guarded', state + '/dot');
    const a = simUnitsOf(
      dot.plan!,
      dot.plan!.hosts.find((h) => h.name === 'validator-a')!,
      dot.files!,
    );
    // The validator runs only under the watchdog; its standby's sync node from boot, and
    // starting the validator stops the sync node first (the unit's Conflicts=).
    assert.deepEqual(
      a.map((u) => [u.unit, u.startedBy, u.conflicts]),
      [
        ['polkadot-node.service', 'watchdog', ['polkadot-sync.service']],
        ['polkadot-sync.service', 'boot', []],
      ],
    );
    assert.deepEqual(
      a[0]!.listeners.map((l) => `${l.purpose} ${l.bind}:${l.port}`),
      [
        'substrate p2p 0.0.0.0:30333',
        'substrate metrics 0.0.0.0:9615',
        'substrate RPC 127.0.0.1:9944',
      ],
    );
    const ada = planExample('cardano-pool', state + '/ada');
    const of = (name: string) =>
      simUnitsOf(
        ada.plan!,
        ada.plan!.hosts.find((h) => h.name === name)!,
        ada.files!,
      );
    assert.equal(of('standby')[0]!.startedBy, 'operator');
    assert.equal(of('producer')[0]!.startedBy, 'boot');
    assert.deepEqual(of('producer')[0]!.peers, ['10.77.0.3:3001', '10.77.0.4:3001']);
    const dcr = planExample('decred-solo', state + '/dcr');
    const w = simUnitsOf(dcr.plan!, dcr.plan!.hosts[0]!, dcr.files!);
    // dcrwallet-setup is a oneshot that serves nothing: no stand-in.
    assert.deepEqual(
      w.map((u) => u.unit),
      ['dcrd.service', 'dcrwallet.service'],
    );
    assert.deepEqual(
      w[0]!.listeners.map((l) => `${l.bind}:${l.port}`),
      ['0.0.0.0:9108', '127.0.0.1:9109'],
    );
  } finally {
    removeDir(state);
  }
});

test('the rendered watchdog actions translate one for one, anything else is refused', () => {
  const dir = '/run/units';
  assert.deepEqual(translateAction({ run: ['systemctl', 'start', 'x.service'] }, dir, 'node'), {
    run: ['node', LOCAL_UNIT_MAIN, 'start', dir, 'x.service'],
  });
  assert.deepEqual(
    translateAction(
      { run: ['sh', '-c', '! systemctl is-active --quiet x.service'], pollMs: 100 },
      dir,
      'node',
    ),
    { run: ['node', LOCAL_UNIT_MAIN, 'inactive', dir, 'x.service'], pollMs: 100 },
  );
  assert.deepEqual(translateAction({ signal: 'SIGKILL', systemdUnit: 'x.service' }, dir), {
    signal: 'SIGKILL',
    pidFile: '/run/units/x.service.pid',
  });
  assert.throws(() => translateAction({ run: ['systemctl', 'restart', 'x.service'] }, dir), {
    name: 'LocalFleetError',
  });
});

test('provider: local plans without Terraform and makes vigil apply/destroy run the local fleet', async () => {
  const state = tempDir('lf-provider');
  try {
    const r = planFleet('examples/local/cosmos-guarded.yaml', { state, write: false });
    assert.ok(r.plan && r.files, JSON.stringify(r.findings));
    assert.ok(r.plan.hosts.every((h) => h.provider === 'local'));
    assert.ok(![...r.files.keys()].some((k) => k.startsWith('terraform/')));
    assert.equal(r.summary!.monthlyCost.total, 0);
    assert.deepEqual(r.summary!.monthlyCost.unknown, []);
    assert.equal(await wantsLocal('examples/local/cosmos-guarded.yaml', {}), true);
    // A cloud topology keeps going to Terraform unless --local is given.
    assert.equal(await wantsLocal('examples/topologies/cosmos-sentries.yaml', {}), false);
    assert.equal(
      await wantsLocal('examples/topologies/cosmos-sentries.yaml', { local: true }),
      true,
    );
    assert.equal(await wantsLocal(undefined, {}), false);
  } finally {
    removeDir(state);
  }
});
