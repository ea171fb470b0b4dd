/**
 * Issue 12: rendered chain nodes must start. The `polkadot` command line is checked against
 * the flags and clap conflicts recorded from polkadot-sdk (upstream-node-flags.json); and
 * `hosts[].peers` reaches every chain's own config in the form that chain dials.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { buildPlan } from '../../src/topology/plan.js';
import { PlanState } from '../../src/render/state.js';
import { renderPlan } from '../../src/render/index.js';
import {
  chainUnits,
  cardanoTopology,
  cometbftConfig,
  decredConfigs,
} from '../../src/render/chains.js';
import { ed25519FromPeerId } from '../../src/registry/peer-id.js';
import { loadTopology } from '../../src/topology/load.js';
import { lintTopology } from '../../src/topology/lint.js';
import type { TopologyInput } from '../../src/topology/schema.js';
import { artifact, baseInput, cosmosApp, genesis, topology } from '../topology/fixtures.js';
import { hostSetupYaml, planExample, removeDir, tempDir } from './helpers.js';

interface Recorded {
  flags: Record<string, 'switch' | 'value' | 'values'>;
  conflicts: Array<[string, string]>;
  nodeNameForbidden: string;
  nodeNameMaxLength: number;
}
const polkadot = (
  JSON.parse(readFileSync('test/render/upstream-node-flags.json', 'utf8')) as {
    polkadot: Recorded;
  }
).polkadot;

/** Splits an ExecStart into the binary and its flags with their values. */
function parseCommandLine(execStart: string, recorded: Recorded): Map<string, string[]> {
  const words = execStart.split(/\s+/).slice(1);
  const flags = new Map<string, string[]>();
  for (let i = 0; i < words.length; i++) {
    const flag = words[i]!;
    assert.ok(flag.startsWith('--'), `${flag}: a value with no flag in ${execStart}`);
    const kind = recorded.flags[flag];
    assert.ok(kind, `${flag} is not a flag of the recorded polkadot CLI`);
    const values = flags.get(flag) ?? [];
    if (kind !== 'switch') {
      const value = words[++i];
      assert.ok(value && !value.startsWith('--'), `${flag} needs a value`);
      values.push(value);
    } else assert.equal(flags.has(flag), false, `${flag} given twice`);
    flags.set(flag, values);
  }
  return flags;
}

test('every rendered polkadot command line uses recorded flags, no clap conflict, a node key for authorities', () => {
  const state = tempDir('polkadot-flags');
  try {
    const { plan } = planExample('polkadot-guarded', state);
    const nodes = plan!.hosts.filter((h) => h.chain?.kind === 'substrate');
    assert.ok(nodes.length >= 2);
    // Every unit: a supervised validator also has its standby's sync node.
    for (const host of nodes)
      for (const unit of chainUnits(plan!, host)) {
        const flags = parseCommandLine(unit.execStart, polkadot);
        for (const [a, b] of polkadot.conflicts)
          assert.ok(!(flags.has(a) && flags.has(b)), `${host.name}: ${a} conflicts with ${b}`);
        // An authority without an existing key file stops with NetworkKeyNotFound.
        if (flags.has('--validator')) assert.ok(flags.has('--node-key-file'), host.name);
        const name = flags.get('--name')![0]!;
        assert.doesNotMatch(name, new RegExp(polkadot.nodeNameForbidden));
        assert.ok(name.length < polkadot.nodeNameMaxLength);
        assert.match(flags.get('--listen-addr')![0]!, /^\/ip4\/0\.0\.0\.0\/tcp\/\d+$/);
      }
  } finally {
    removeDir(state);
  }
});

test('the old command line (--listen-addr with --port) is refused by the recorded conflicts', () => {
  const old =
    '/opt/polkadot/bin/polkadot --chain polkadot --validator --listen-addr /ip4/0.0.0.0/tcp/30333 --port 30333';
  const flags = parseCommandLine(old, polkadot);
  assert.ok(polkadot.conflicts.some(([a, b]) => flags.has(a) && flags.has(b)));
});

test('a Substrate node key is made once, kept, rendered 0600, and its peer id matches', () => {
  const state = tempDir('polkadot-key');
  try {
    const first = planExample('polkadot-guarded', state);
    const again = planExample('polkadot-guarded', state);
    for (const host of first.plan!.hosts.filter((h) => h.chain?.kind === 'substrate')) {
      const key = host.substrateNodeKey!;
      assert.match(key.secretHex, /^[0-9a-f]{64}$/);
      assert.equal(ed25519FromPeerId(key.peerId).length, 32);
      const same = again.plan!.hosts.find((h) => h.name === host.name)!.substrateNodeKey!;
      assert.deepEqual(same, key, `${host.name}: the node key changed between plans`);
      const file = first.files!.get(`hosts/${host.name}/files/var__lib__polkadot__node-key`);
      assert.equal(file, `${key.secretHex}\n`);
      assert.match(
        hostSetupYaml(first.files!, host.name),
        /path: \/var\/lib\/polkadot\/node-key\n(?:.*\n){2}\s+permissions: "0600"/,
      );
    }
    const keys = first.plan!.hosts.flatMap((h) =>
      h.substrateNodeKey ? [h.substrateNodeKey.peerId] : [],
    );
    assert.equal(new Set(keys).size, keys.length, 'each node has its own key');
  } finally {
    removeDir(state);
  }
});

test('a validator gets the PVF workers fetched beside the node binary', () => {
  const state = tempDir('polkadot-workers');
  try {
    const { files } = planExample('polkadot-guarded', state);
    const cloudInit = hostSetupYaml(files!, 'validator-a');
    for (const worker of ['polkadot-prepare-worker', 'polkadot-execute-worker'])
      assert.match(cloudInit, new RegExp(`- /opt/polkadot\\n\\s+- ${worker}\\n`));
  } finally {
    removeDir(state);
  }
});

const peersFleet = (): TopologyInput => ({
  ...baseInput(),
  spread: false,
  chains: [
    {
      name: 'hub',
      kind: 'cometbft',
      chainId: 'hub-1',
      binary: artifact('gaiad'),
      genesis: genesis(),
      app: cosmosApp(),
    },
    { name: 'ada', kind: 'cardano', network: 'mainnet', binary: artifact('cardano') },
    {
      name: 'dcr',
      kind: 'decred',
      network: 'mainnet',
      dcrd: artifact('dcrd'),
      dcrwallet: artifact('dcrwallet'),
      voteChoices: { agenda: 'yes' },
    },
    {
      name: 'dot',
      kind: 'substrate',
      chainSpec: 'polkadot',
      binary: artifact('polkadot'),
    },
  ],
  hosts: [
    ...baseInput().hosts,
    { name: 'val', role: 'validator', chain: 'hub', provider: 'hetzner', region: 'a', size: 's' },
    {
      name: 'sen',
      role: 'sentry',
      chain: 'hub',
      count: 2,
      provider: 'hetzner',
      region: 'b',
      size: 's',
      peers: [{ address: 'seed.example.org', port: 26656, id: 'ab'.repeat(20) }],
    },
    { name: 'prod', role: 'producer', chain: 'ada', provider: 'hetzner', region: 'a', size: 's' },
    {
      name: 'rel',
      role: 'relay',
      chain: 'ada',
      count: 2,
      provider: 'hetzner',
      region: 'c',
      size: 's',
      peers: [{ address: '2001:db8::7', port: 3001 }],
    },
    {
      name: 'wal',
      role: 'voting-wallet',
      chain: 'dcr',
      provider: 'hetzner',
      region: 'd',
      size: 's',
      peers: [{ address: '203.0.113.9', port: 9108 }],
    },
    {
      name: 'dotv',
      role: 'validator',
      chain: 'dot',
      provider: 'hetzner',
      region: 'e',
      size: 's',
      peers: [
        {
          address: '198.51.100.4',
          port: 30333,
          id: '12D3KooWEBo1HUPQJwiBmM5kSeg4XgiVxEArArQdDarYEsGxMfbS',
        },
      ],
    },
  ],
});

test('hosts[].peers reaches each chain in its own dial format', () => {
  const dir = tempDir('peers');
  try {
    const t = topology(peersFleet());
    const plan = buildPlan(t, new PlanState(dir));
    const host = (n: string) => plan.hosts.find((h) => h.name === n)!;
    const chainOf = <K extends string>(n: string, kind: K) =>
      t.chains.find((c) => c.name === n && c.kind === kind) as Extract<
        (typeof t.chains)[number],
        { kind: K }
      >;

    const sentry = parseToml(cometbftConfig(plan, host('sen-1'), chainOf('hub', 'cometbft'))) as {
      p2p: { persistent_peers: string };
    };
    assert.ok(
      sentry.p2p.persistent_peers.split(',').includes(`${'ab'.repeat(20)}@seed.example.org:26656`),
    );
    const validator = parseToml(cometbftConfig(plan, host('val'), chainOf('hub', 'cometbft'))) as {
      p2p: { persistent_peers: string };
    };
    assert.ok(!validator.p2p.persistent_peers.includes('seed.example.org'));

    const relay = JSON.parse(cardanoTopology(plan, host('rel-1'), chainOf('ada', 'cardano'))) as {
      publicRoots: Array<{ accessPoints: Array<{ address: string; port: number }> }>;
    };
    assert.deepEqual(relay.publicRoots[0]!.accessPoints, [{ address: '2001:db8::7', port: 3001 }]);

    const dcrd = decredConfigs(host('wal'), chainOf('dcr', 'decred'), new PlanState(dir), [
      { address: '203.0.113.9', port: 9108 },
    ]).dcrd;
    assert.match(dcrd, /^addpeer=203\.0\.113\.9:9108$/m);
    const rendered = renderPlan(plan, new PlanState(dir));
    assert.match(
      rendered.get('hosts/wal/files/etc__decred__dcrd.conf')!,
      /^addpeer=203\.0\.113\.9:9108$/m,
    );

    const [unit] = chainUnits(plan, host('dotv'));
    assert.match(
      unit!.execStart,
      / --reserved-nodes \/ip4\/198\.51\.100\.4\/tcp\/30333\/p2p\/12D3KooWEBo1HUPQJwiBmM5kSeg4XgiVxEArArQdDarYEsGxMfbS( |$)/,
    );
    parseCommandLine(unit!.execStart, polkadot);
  } finally {
    removeDir(dir);
  }
});

test('lint names a peer its chain cannot dial, and a validator with extra peers', () => {
  const codesAt = (input: TopologyInput) =>
    lintTopology(topology(input)).map((f) => `${f.code} ${f.path}`);
  const clean = codesAt(peersFleet());
  assert.ok(
    !clean.some((c) => /^peer-address|^cometbft-validator-isolated/.test(c)),
    clean.join('\n'),
  );

  const bad = peersFleet();
  bad.hosts[2] = { ...bad.hosts[2]!, peers: [{ address: '1.2.3.4', port: 26656, id: 'x' }] };
  bad.hosts[1] = {
    ...bad.hosts[1]!,
    peers: [{ address: '1.2.3.5', port: 26656, id: 'cd'.repeat(20) }],
  };
  bad.hosts[4] = { ...bad.hosts[4]!, peers: [{ address: '1.2.3.6', port: 3001, id: 'nope' }] };
  bad.hosts[6] = {
    ...bad.hosts[6]!,
    peers: [{ address: '1.2.3.7', port: 30333, id: 'QmNotEd25519' }],
  };
  const found = codesAt(bad);
  assert.ok(found.includes('peer-address hosts[2].peers[0]'), found.join('\n'));
  assert.ok(found.includes('cometbft-validator-isolated hosts[1].peers'), found.join('\n'));
  assert.ok(found.includes('peer-address hosts[4].peers[0]'), found.join('\n'));
  assert.ok(found.includes('peer-address hosts[6].peers[0]'), found.join('\n'));
});

test('the example topologies all plan with their peers and workers', () => {
  for (const name of ['polkadot-guarded']) {
    const t = loadTopology(`examples/topologies/${name}.yaml`);
    assert.ok(!lintTopology(t).some((f) => f.code === 'substrate-workers'));
  }
});
