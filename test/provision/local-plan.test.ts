/** The local fleet's pure parts, on the rendered cosmos-sentries plan (no root needed). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWireguard } from '../../src/provision/local/wireguard.js';
import { rerootPaths } from '../../src/provision/local/agents.js';
import { deriveFlows, servicesOf } from '../../src/provision/local/reachability.js';
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
