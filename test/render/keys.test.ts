/** Plan-time keys and determinism: same input + same state dir → byte-identical output. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { PlanState, parseCometbftNodeKey } from '../../src/render/state.js';
import {
  exampleNames,
  hostSetupYaml,
  planExample,
  removeDir,
  requireTool,
  tempDir,
} from './helpers.js';

let root = '';
before(() => {
  root = tempDir('keys');
});
after(() => removeDir(root));

test('re-planning with the same state directory is byte-identical', () => {
  for (const name of exampleNames()) {
    const state = join(root, `same-${name}`);
    const a = planExample(name, state).files!;
    const b = planExample(name, state).files!;
    assert.deepEqual([...a.keys()], [...b.keys()], name);
    for (const [path, content] of a) assert.equal(b.get(path), content, `${name}: ${path}`);
  }
});

test('a fresh state directory gives fresh keys (nothing is derived from the topology alone)', () => {
  const a = planExample('cosmos-sentries', join(root, 'fresh-a')).files!;
  const b = planExample('cosmos-sentries', join(root, 'fresh-b')).files!;
  const path = 'hosts/validator/files/etc__wireguard__wg0.conf';
  assert.notEqual(a.get(path), b.get(path));
});

test('CometBFT node ID is hex of the first 20 bytes of sha256(pubkey) and matches the configs', () => {
  const state = join(root, 'cmt');
  const r = planExample('cosmos-sentries', state);
  const text = readFileSync(join(state, 'cometbft', 'validator.node_key.json'), 'utf8');
  const raw = Buffer.from(
    (JSON.parse(text) as { priv_key: { type: string; value: string } }).priv_key.value,
    'base64',
  );
  assert.equal(raw.length, 64);
  const pub = ed25519.getPublicKey(raw.subarray(0, 32));
  assert.deepEqual(Buffer.from(pub), raw.subarray(32), 'second half is the public key of the seed');
  const id = createHash('sha256').update(pub).digest().subarray(0, 20).toString('hex');
  assert.equal(parseCometbftNodeKey(text, 'x').id, id);
  // Every sentry lists the validator as private and unconditional, and as a persistent peer.
  for (const sentry of ['sentry-do', 'sentry-vultr', 'sentry-linode']) {
    const toml = r.files!.get(`hosts/${sentry}/files/var__lib__hub__config__config.toml`)!;
    assert.match(toml, new RegExp(`private_peer_ids = "${id}"`));
    assert.match(toml, new RegExp(`unconditional_peer_ids = "${id}"`));
    assert.match(toml, new RegExp(`persistent_peers = "${id}@10\\.77\\.0\\.1:26656"`));
  }
  const v = r.files!.get('hosts/validator/files/var__lib__hub__config__config.toml')!;
  assert.match(v, /pex = false/);
  assert.match(v, /addr_book_strict = false/);
  assert.match(v, /double_sign_check_height = 10/);
  assert.equal((v.match(/@10\.77\.0\.\d+:26656/g) ?? []).length, 3);
});

test('WireGuard keys are X25519 pairs in wg base64, and every peer is a /32', () => {
  const state = new PlanState(join(root, 'wg'));
  const k = state.wireguard('a');
  const pub = x25519.getPublicKey(Buffer.from(k.privateKey, 'base64'));
  assert.equal(Buffer.from(pub).toString('base64'), k.publicKey);
  assert.deepEqual(state.wireguard('a'), k, 'read back, not regenerated');
  // wg is a cross-check only (noble already verifies the pair), so CI need not install it.
  if (requireTool('wg', ['--version'], false)) {
    const r = spawnSync('wg', ['pubkey'], {
      input: k.privateKey + '\n',
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.stdout.trim(), k.publicKey);
  }
  const files = planExample('polkadot-guarded', join(root, 'wg-plan')).files!;
  const conf = files.get('hosts/guard-hel/files/etc__wireguard__wg0.conf')!;
  const allowed = conf.match(/AllowedIPs = .*/g)!;
  assert.equal(allowed.length, 5);
  for (const a of allowed) assert.match(a, /^AllowedIPs = 10\.77\.0\.\d+\/32$/);
});

test('etcd members use mutual TLS with the conventional vigil pki paths', () => {
  const files = planExample('polkadot-guarded', join(root, 'etcd')).files!;
  const cfg = files.get('hosts/guard-lon/files/etc__vigil__etcd.yaml')!;
  assert.match(cfg, /client-cert-auth: true/);
  assert.match(cfg, /trusted-ca-file: \/etc\/vigil\/pki\/ca\.crt/);
  assert.match(cfg, /cert-file: \/etc\/vigil\/pki\/guard-lon\.crt/);
  assert.match(cfg, /key-file: \/etc\/vigil\/pki\/guard-lon\.key/);
  // listen + advertise for itself, plus the three members of initial-cluster.
  assert.equal((cfg.match(/https:\/\/10\.77\.0\.\d+:2380/g) ?? []).length, 5);
  assert.doesNotMatch(cfg, /http:\/\/10\.77\.0\.\d+:23(79|80)/);
});

test('Cardano producer talks only to its relays and does not advertise itself', () => {
  const files = planExample('cardano-pool', join(root, 'ada')).files!;
  const producer = JSON.parse(files.get('hosts/producer/files/etc__cardano__topology.json')!) as {
    localRoots: Array<{ accessPoints: Array<{ address: string }>; advertise: boolean }>;
    publicRoots: unknown[];
    useLedgerAfterSlot: number;
  };
  assert.equal(producer.localRoots[0]!.advertise, false);
  assert.deepEqual(producer.publicRoots, []);
  assert.equal(producer.useLedgerAfterSlot, -1);
  assert.equal(producer.localRoots[0]!.accessPoints.length, 2);
  const relay = JSON.parse(files.get('hosts/relay-do/files/etc__cardano__topology.json')!) as {
    localRoots: Array<{ accessPoints: Array<{ address: string }> }>;
  };
  const relayPeers = relay.localRoots[0]!.accessPoints.map((a) => a.address);
  assert.ok(relayPeers.includes('10.77.0.1') && relayPeers.includes('10.77.0.2'));
  // The standby producer is installed but not started: Vigil starts it on promotion.
  const standby = hostSetupYaml(files, 'standby');
  assert.doesNotMatch(standby, /^\s+- cardano-node\.service$/m);
  assert.match(hostSetupYaml(files, 'producer'), /^\s+- cardano-node\.service$/m);
});

test('Decred wallets: full dcrd, voting on, same choices everywhere', () => {
  const files = planExample('decred-solo', join(root, 'dcr')).files!;
  const choices = new Set<string>();
  for (const w of ['wallet-eu', 'wallet-us', 'wallet-asia']) {
    const wallet = files.get(`hosts/${w}/files/etc__decred__dcrwallet.conf`)!;
    assert.match(wallet, /^enablevoting=1$/m);
    assert.match(wallet, /^rpcconnect=127\.0\.0\.1:9109$/m);
    assert.doesNotMatch(wallet, /spv/i);
    choices.add(
      JSON.stringify(
        (
          JSON.parse(files.get(`hosts/${w}/files/etc__decred__dcrwallet-setup.json`)!) as {
            voteChoices: unknown;
          }
        ).voteChoices,
      ),
    );
  }
  assert.equal(choices.size, 1);
});

test('guarded Polkadot validators are started by Vigil, never both at boot', () => {
  const files = planExample('polkadot-guarded', join(root, 'dot')).files!;
  for (const v of ['validator-a', 'validator-b']) {
    const ci = hostSetupYaml(files, v);
    // runcmd enables units as `- - systemctl / - enable / - --now / - <unit>`.
    assert.doesNotMatch(
      ci,
      /- enable\n\s+- --now\n\s+- polkadot-node\.service$/m,
      `${v} must not start at boot`,
    );
    assert.match(ci, /- enable\n\s+- --now\n\s+- vigil-agent\.service$/m);
    assert.match(ci, /--validator/);
    const agent = files.get(`hosts/${v}/files/etc__vigil__agent.yaml`)!;
    assert.match(agent, /role: polkadot\/[\w-]+/);
    // The agent feeds the watchdog; the watchdog (root) starts and stops the node's unit,
    // which systemd stops if the watchdog dies.
    assert.match(agent, /watchdog:\n\s+socket: \/run\/vigil-watchdog\/watchdog\.sock/);
    assert.doesNotMatch(agent, /activate:/);
    const watchdog = files.get(`hosts/${v}/files/etc__vigil__watchdog.yaml`)!;
    assert.match(watchdog, /- systemctl\n\s+- start\n\s+- polkadot-node\.service/);
    assert.match(watchdog, /systemdUnit: polkadot-node\.service/);
    assert.match(ci, /path: \/etc\/systemd\/system\/vigil-watchdog\.service/);
    assert.match(ci, /- enable\n\s+- --now\n\s+- vigil-watchdog\.service$/m);
    assert.match(ci, /BindsTo=vigil-watchdog\.service/);
    assert.doesNotMatch(ci, /sudoers/);
    assert.match(agent, /engine: etcd/);
  }
});
