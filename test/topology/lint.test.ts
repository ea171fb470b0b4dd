import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { lintTopology, regionsBreakingQuorum, type LintFinding } from '../../src/topology/lint.js';
import { PROVIDERS, type Topology, type TopologyInput } from '../../src/topology/schema.js';
import {
  SHA,
  artifact,
  baseInput,
  cosmosApp,
  topology,
  vigilRelease,
  genesis,
} from './fixtures.js';

type HostIn = TopologyInput['hosts'][number];
const codes = (f: readonly LintFinding[]) => f.map((x) => x.code);
const withHosts = (hosts: HostIn[], chains: TopologyInput['chains'] = [], extra = {}) =>
  topology({ ...baseInput(), ...extra, chains, hosts: [...baseInput().hosts, ...hosts] });

const cometChain = {
  name: 'hub',
  kind: 'cometbft' as const,
  chainId: 'hub-1',
  binary: artifact('gaiad'),
  genesis: genesis(),
  app: cosmosApp(),
};
const cardanoChain = {
  name: 'ada',
  kind: 'cardano' as const,
  network: 'mainnet' as const,
  binary: artifact('cardano'),
};
const decredChain = {
  name: 'dcr',
  kind: 'decred' as const,
  network: 'mainnet' as const,
  dcrd: artifact('dcrd'),
  dcrwallet: artifact('dcrwallet'),
  voteChoices: { agenda: 'yes' },
};
const h = (
  name: string,
  role: HostIn['role'],
  region: string,
  extra: Partial<HostIn> = {},
): HostIn => ({
  name,
  role,
  provider: 'hetzner',
  region,
  size: 'cx22',
  ...extra,
});

/** Resolves a finding path like `hosts[2].region` in the parsed topology. */
function resolvePath(t: Topology, path: string): unknown {
  let cur: unknown = t;
  for (const part of path.match(/[^.[\]]+/g) ?? []) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

test('two active unguarded validators on one key: single-active-signer; guarded: fine', () => {
  const hosts = [
    h('val-a', 'validator', 'fsn1', { chain: 'hub' }),
    h('val-b', 'validator', 'hel1', { chain: 'hub' }),
    h('s1', 'sentry', 'fsn1', { chain: 'hub' }),
    h('s2', 'sentry', 'hel1', { chain: 'hub' }),
  ];
  assert.ok(codes(lintTopology(withHosts(hosts, [cometChain]))).includes('single-active-signer'));
  const standby = hosts.map((x) => (x.name === 'val-b' ? { ...x, active: false } : x));
  assert.ok(
    !codes(lintTopology(withHosts(standby, [cometChain]))).includes('single-active-signer'),
  );
  const guarded = lintTopology(
    withHosts(
      [
        ...hosts,
        h('g1', 'guard-member', 'a'),
        h('g2', 'guard-member', 'b'),
        h('g3', 'guard-member', 'c'),
      ],
      [{ ...cometChain, guarded: true }],
      { vigil: { agent: vigilRelease(), store: 'etcd' } },
    ),
  );
  assert.deepEqual(codes(guarded), []);
  // Guarded but with per-host SQLite watermarks: nothing is shared, so still two signers.
  const local = lintTopology(
    withHosts(hosts, [{ ...cometChain, guarded: true }], {
      vigil: { agent: vigilRelease(), store: 'sqlite' },
    }),
  );
  assert.ok(codes(local).includes('single-active-signer'));
});

test('each rule fires on its own violation and points at an existing path', () => {
  const cases: Array<[string, Topology]> = [
    [
      'cometbft-sentry-count',
      withHosts(
        [
          h('val', 'validator', 'fsn1', { chain: 'hub' }),
          h('sen', 'sentry', 'hel1', { chain: 'hub' }),
        ],
        [cometChain],
      ),
    ],
    [
      'cardano-relay-count',
      withHosts(
        [
          h('prod', 'producer', 'fsn1', { chain: 'ada' }),
          h('rel', 'relay', 'hel1', { chain: 'ada' }),
        ],
        [cardanoChain],
      ),
    ],
    [
      'cardano-producer-isolated',
      withHosts(
        [
          h('prod', 'producer', 'fsn1', {
            chain: 'ada',
            peers: [{ address: '1.2.3.4', port: 3001 }],
          }),
          h('rel', 'relay', 'hel1', { chain: 'ada', count: 2, region: 'x' }),
          h('r2', 'relay', 'y', { chain: 'ada' }),
        ],
        [cardanoChain],
        { spread: false },
      ),
    ],
    [
      'decred-wallet-count',
      withHosts([h('w1', 'voting-wallet', 'fsn1', { chain: 'dcr' })], [decredChain]),
    ],
    [
      'decred-full-node',
      withHosts(
        [
          h('w1', 'voting-wallet', 'a', { chain: 'dcr', decred: { spv: true } }),
          h('w2', 'voting-wallet', 'b', { chain: 'dcr', provider: 'vultr' }),
          h('w3', 'voting-wallet', 'c', { chain: 'dcr', provider: 'linode' }),
        ],
        [decredChain],
      ),
    ],
    [
      'decred-consistency',
      withHosts(
        [
          h('w1', 'voting-wallet', 'a', {
            chain: 'dcr',
            decred: { voteChoices: { agenda: 'no' } },
          }),
          h('w2', 'voting-wallet', 'b', { chain: 'dcr', provider: 'vultr' }),
          h('w3', 'voting-wallet', 'c', { chain: 'dcr', provider: 'linode' }),
        ],
        [decredChain],
      ),
    ],
    [
      'decred-wallet-spread',
      withHosts(
        [
          h('w1', 'voting-wallet', 'a', { chain: 'dcr' }),
          h('w2', 'voting-wallet', 'b', { chain: 'dcr' }),
          h('w3', 'voting-wallet', 'c', { chain: 'dcr', provider: 'linode' }),
        ],
        [decredChain],
      ),
    ],
    [
      'cometbft-validator-isolated',
      withHosts(
        [
          h('val', 'validator', 'fsn1', {
            chain: 'hub',
            peers: [{ address: '1.2.3.4', port: 26656, id: 'ab'.repeat(20) }],
          }),
          h('sen', 'sentry', 'hel1', { chain: 'hub', count: 2, region: 'x' }),
        ],
        [cometChain],
        { spread: false },
      ),
    ],
    [
      'peer-address',
      withHosts(
        [
          h('val', 'validator', 'fsn1', { chain: 'hub' }),
          h('sen', 'sentry', 'hel1', {
            chain: 'hub',
            count: 2,
            peers: [{ address: 'seed.example.org', port: 26656 }],
          }),
        ],
        [cometChain],
        { spread: false },
      ),
    ],
    [
      'substrate-workers',
      withHosts(
        [h('dot', 'validator', 'fsn1', { chain: 'dot' })],
        [
          {
            name: 'dot',
            kind: 'substrate',
            chainSpec: 'polkadot',
            binary: { ...artifact('polkadot'), binary: 'polkadot' },
            workers: [artifact('polkadot-prepare-worker')],
          },
        ],
      ),
    ],
    ['guard-member-count', withHosts([h('g1', 'guard-member', 'a'), h('g2', 'guard-member', 'b')])],
    [
      'guard-region-quorum',
      withHosts([h('g1', 'guard-member', 'a', { count: 2 }), h('g3', 'guard-member', 'b')], [], {
        spread: false,
      }),
    ],
    [
      'artifact-checksum',
      topology({ ...baseInput(), vigil: { agent: { url: 'https://example.org/v' } } }),
    ],
    [
      'artifact-unpinned',
      topology({
        ...baseInput(),
        vigil: { agent: { url: 'https://example.org/latest/v', sha256: SHA } },
      }),
    ],
    ['region-spread', withHosts([h('sen', 'monitor', 'nbg1')])],
    ['role-chain', withHosts([h('xx', 'relay', 'fsn1', { chain: 'hub' })], [cometChain])],
    [
      'provider-settings',
      withHosts([
        h('xx', 'guard-member', 'a', { provider: 'ovh' }),
        h('yy', 'guard-member', 'b'),
        h('zz', 'guard-member', 'c'),
      ]),
    ],
    [
      'provider-local-mixed',
      withHosts([
        h('xx', 'guard-member', 'a', { provider: 'local' }),
        h('yy', 'guard-member', 'b'),
        h('zz', 'guard-member', 'c'),
      ]),
    ],
  ];
  for (const [code, t] of cases) {
    const found = lintTopology(t).filter((f) => f.code === code);
    assert.ok(found.length > 0, `${code} not reported`);
    for (const f of found) {
      // A missing field points where it belongs: then its parent must exist.
      const found = resolvePath(t, f.path) ?? resolvePath(t, f.path.replace(/\.[^.]+$/, ''));
      assert.notEqual(found, undefined, `${code}: path ${f.path} does not resolve`);
      assert.ok(f.message.length > 0 && !f.message.includes('\n'));
    }
  }
});

test('a fleet without a monitor gets a warning, not an error', () => {
  const t = topology({
    ...baseInput(),
    hosts: [
      h('g1', 'guard-member', 'a'),
      h('g2', 'guard-member', 'b'),
      h('g3', 'guard-member', 'c'),
    ],
  });
  const f = lintTopology(t);
  assert.deepEqual(
    f.map((x) => [x.code, x.severity]),
    [['monitor-missing', 'warning']],
  );
});

// ---- property tests -------------------------------------------------------------------

const regionArb = fc.constantFrom('r1', 'r2', 'r3', 'r4', 'r5');

test('property: guard quorum finding iff some single-region loss leaves no strict majority', () => {
  fc.assert(
    fc.property(fc.array(regionArb, { minLength: 1, maxLength: 9 }), (regions) => {
      const t = withHosts(
        regions.map((r, i) => h(`g${i}`, 'guard-member', r)),
        [],
        { spread: false },
      );
      const reported = lintTopology(t).some((f) => f.code === 'guard-region-quorum');
      // Independent formulation: simulate losing each region and count survivors.
      const n = regions.length;
      const someLossBreaks = [...new Set(regions)].some(
        (lost) => 2 * regions.filter((r) => r !== lost).length <= n,
      );
      assert.equal(reported, someLossBreaks);
      assert.equal(
        regionsBreakingQuorum(regions.map((r) => `hetzner:${r}`)).length > 0,
        someLossBreaks,
      );
      const countBad = lintTopology(t).some((f) => f.code === 'guard-member-count');
      assert.equal(countBad, n < 3 || n % 2 === 0);
    }),
    { numRuns: 300 },
  );
});

test('property: a producer with fewer than 2 relays always gets cardano-relay-count, else never', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 4 }),
      fc.integer({ min: 1, max: 2 }),
      (relays, producers) => {
        const hosts = [
          ...Array.from({ length: producers }, (_, i) =>
            h(`p${i}`, 'producer', `pr${i}`, { chain: 'ada', active: i === 0 }),
          ),
          ...Array.from({ length: relays }, (_, i) =>
            h(`r${i}`, 'relay', `rr${i}`, { chain: 'ada' }),
          ),
        ];
        const got = codes(lintTopology(withHosts(hosts, [cardanoChain])));
        assert.equal(got.includes('cardano-relay-count'), relays < 2);
      },
    ),
  );
});

test('property: a CometBFT validator with fewer than 2 sentries always gets cometbft-sentry-count', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 5 }), (sentries) => {
      const hosts = [
        h('val', 'validator', 'v1', { chain: 'hub' }),
        ...Array.from({ length: sentries }, (_, i) =>
          h(`s${i}`, 'sentry', `sr${i}`, { chain: 'hub' }),
        ),
      ];
      assert.equal(
        codes(lintTopology(withHosts(hosts, [cometChain]))).includes('cometbft-sentry-count'),
        sentries < 2,
      );
    }),
  );
});

const hostArb = fc.record({
  role: fc.constantFrom(
    'validator',
    'sentry',
    'producer',
    'relay',
    'voting-wallet',
    'guard-member',
    'monitor' as const,
  ),
  provider: fc.constantFrom(
    ...PROVIDERS.filter((p) => p !== 'ovh' && p !== 'gcp' && p !== 'local'),
  ),
  region: regionArb,
  count: fc.integer({ min: 1, max: 3 }),
  active: fc.boolean(),
});

interface Spec {
  role: string;
  provider: (typeof PROVIDERS)[number];
  region: string;
  count: number;
  active: boolean;
}

function randomTopology(specs: Spec[], spread: boolean): Topology {
  const chainFor: Record<string, string | undefined> = {
    validator: 'hub',
    sentry: 'hub',
    producer: 'ada',
    relay: 'ada',
    'voting-wallet': 'dcr',
  };
  return topology({
    ...baseInput(),
    spread,
    chains: [cometChain, cardanoChain, decredChain],
    hosts: specs.map((s, i) => ({
      name: `h${i}`,
      role: s.role as HostIn['role'],
      ...(chainFor[s.role] ? { chain: chainFor[s.role] } : {}),
      provider: s.provider,
      region: s.region,
      size: 'x',
      count: s.count,
      active: s.active,
    })),
  });
}

test('property: on random fleets lint never throws, paths resolve, and rules match their definitions', () => {
  fc.assert(
    fc.property(
      fc.array(hostArb, { minLength: 1, maxLength: 10 }),
      fc.boolean(),
      (specs, spread) => {
        const t = randomTopology(specs, spread);
        const findings = lintTopology(t);
        for (const f of findings) assert.notEqual(resolvePath(t, f.path), undefined, f.path);
        // region-spread: reported iff spread is asked and two machines share role+chain+region.
        const machines = t.hosts.flatMap((x) =>
          Array.from({ length: x.count }, () => `${x.role}|${x.chain}|${x.provider}:${x.region}`),
        );
        const clash = new Set(machines).size !== machines.length;
        assert.equal(codes(findings).includes('region-spread'), spread && clash);
        // single-active-signer: reported iff an unguarded key has two active signing machines.
        const active = (chain: string, roles: string[]) =>
          t.hosts
            .filter((x) => x.chain === chain && roles.includes(x.role) && x.active)
            .reduce((n, x) => n + x.count, 0);
        const dup = active('hub', ['validator']) > 1 || active('ada', ['producer']) > 1;
        assert.equal(codes(findings).includes('single-active-signer'), dup);
      },
    ),
    { numRuns: 300 },
  );
});

test('property: removing any one checksum always yields artifact-checksum at that path', () => {
  const paths = [
    'vigil.agent',
    'chains[0].binary',
    'chains[1].binary',
    'chains[2].dcrd',
    'chains[2].dcrwallet',
  ];
  fc.assert(
    fc.property(fc.constantFrom(...paths), (path) => {
      const t = randomTopology(
        [{ role: 'monitor', provider: 'hetzner', region: 'r1', count: 1, active: true }],
        true,
      );
      const target = resolvePath(t, path) as { sha256?: string };
      delete target.sha256;
      const found = lintTopology(t).filter((f) => f.code === 'artifact-checksum');
      assert.deepEqual(
        found.map((f) => f.path),
        [`${path}.sha256`],
      );
    }),
  );
});

test('zones of one region are one failure domain for guard quorum, spread and wallet spread', () => {
  const guard = (name: string, provider: HostIn['provider'], region: string) =>
    h(name, 'guard-member', region, { provider });
  const gcp = { providers: { gcp: { project: 'p' } } };
  // Two of three guards in europe-west3 (zones a and b): losing that region loses quorum.
  const zones = withHosts(
    [
      guard('g1', 'gcp', 'europe-west3-a'),
      guard('g2', 'gcp', 'europe-west3-b'),
      guard('g3', 'hetzner', 'hel1'),
    ],
    [],
    gcp,
  );
  const q = lintTopology(zones).filter((f) => f.code === 'guard-region-quorum');
  assert.deepEqual(
    q.map((f) => f.message),
    ['losing region gcp:europe-west3 leaves the guard cluster without a quorum'],
  );
  // Distinct GCP regions are fine.
  const regions = withHosts(
    [
      guard('g1', 'gcp', 'europe-west3-a'),
      guard('g2', 'gcp', 'europe-west4-b'),
      guard('g3', 'hetzner', 'hel1'),
    ],
    [],
    gcp,
  );
  assert.ok(!codes(lintTopology(regions)).includes('guard-region-quorum'));
  // AWS availability zones: eu-west-1a and eu-west-1b are eu-west-1.
  const aws = withHosts([
    guard('g1', 'aws', 'eu-west-1a'),
    guard('g2', 'aws', 'eu-west-1b'),
    guard('g3', 'hetzner', 'hel1'),
  ]);
  assert.ok(codes(lintTopology(aws)).includes('guard-region-quorum'));
  // Spread: two sentries in zones of one region clash.
  const spread = withHosts(
    [
      h('val', 'validator', 'fsn1', { chain: 'hub' }),
      h('sen-a', 'sentry', 'us-east-1a', { chain: 'hub', provider: 'aws' }),
      h('sen-b', 'sentry', 'us-east-1c', { chain: 'hub', provider: 'aws' }),
    ],
    [cometChain],
  );
  const s = lintTopology(spread).filter((f) => f.code === 'region-spread');
  assert.equal(s.length, 1);
  assert.match(s[0]!.message, /sen-a and sen-b are both sentrys in us-east-1$/);
  // Decred wallets in two zones of one GCP region share a region.
  const sameGcp = withHosts(
    [
      h('w1', 'voting-wallet', 'europe-west1-b', { chain: 'dcr', provider: 'gcp' }),
      h('w2', 'voting-wallet', 'europe-west1-c', { chain: 'dcr', provider: 'gcp' }),
      h('w3', 'voting-wallet', 'fsn1', { chain: 'dcr' }),
    ],
    [decredChain],
    gcp,
  );
  const w = lintTopology(sameGcp).filter(
    (f) => f.code === 'decred-wallet-spread' && f.path === 'hosts[2].region',
  );
  assert.deepEqual(
    w.map((f) => f.message),
    ['voting wallets w1 and w2 share region europe-west1'],
  );
});

test('two chain entries for one chain id serving one key: duplicate-chain-key', () => {
  const twin = { ...cometChain, name: 'hub-twin' };
  const hosts = [
    h('val-a', 'validator', 'fsn1', { chain: 'hub', key: 'k1', active: true }),
    h('sen-a', 'sentry', 'hel1', { chain: 'hub' }),
    h('sen-b', 'sentry', 'ash', { chain: 'hub' }),
    h('val-b', 'validator', 'hil', { chain: 'hub-twin', key: 'k1', active: true }),
    h('sen-c', 'sentry', 'sin', { chain: 'hub-twin' }),
    h('sen-d', 'sentry', 'nbg1', { chain: 'hub-twin' }),
  ];
  const t = withHosts(hosts, [cometChain, twin]);
  const found = lintTopology(t).filter((f) => f.code === 'duplicate-chain-key');
  assert.equal(found.length, 1);
  assert.equal(found[0]!.severity, 'error');
  assert.equal(found[0]!.path, 'hosts[4].key');
  assert.notEqual(resolvePath(t, found[0]!.path), undefined);
  assert.match(found[0]!.message, /hub and hub-twin are both cometbft:hub-1 and serve key k1/);
  // Distinct keys on one chain id, or one key name on two different chain ids: fine.
  const keys = withHosts(
    hosts.map((x) => (x.name === 'val-b' ? { ...x, key: 'k2' } : x)),
    [cometChain, twin],
  );
  assert.ok(!codes(lintTopology(keys)).includes('duplicate-chain-key'));
  const other = withHosts(hosts, [cometChain, { ...twin, chainId: 'other-1' }]);
  assert.ok(!codes(lintTopology(other)).includes('duplicate-chain-key'));
});

test('vigil.agent must be a Vigil release tarball with its launcher', () => {
  const lintAgent = (agent: { url: string; version?: string; binary?: string }) =>
    lintTopology(
      topology({ ...baseInput(), vigil: { agent: { sha256: SHA, ...agent }, store: 'sqlite' } }),
    )
      .filter((f) => f.code === 'vigil-release')
      .map((f) => `${f.severity} ${f.path}`);
  const release = vigilRelease();
  assert.deepEqual(lintAgent(release), []);
  // The bare binary hosts once fetched: no Node runtime to run on.
  assert.deepEqual(
    lintAgent({ url: 'https://example.org/vigil/v0.1.0/vigil-linux-amd64', binary: 'vigil' }),
    ['error vigil.agent.url'],
  );
  assert.deepEqual(lintAgent({ ...release, binary: 'vigil' }), ['error vigil.agent.binary']);
  assert.deepEqual(lintAgent({ ...release, version: '9.9.9' }), ['error vigil.agent.version']);
  // Another version's release: hosts run what the plan did not render for.
  assert.deepEqual(
    lintAgent({
      url: 'https://example.org/vigil-9.9.9-linux-arm64.tar.gz',
      version: '9.9.9',
      binary: 'vigil-9.9.9-linux-arm64/bin/vigil',
    }),
    ['warning vigil.agent.url'],
  );
});

test('a placeholder genesis checksum is flagged at the chain genesis, like any artifact', () => {
  const fleet = (sha256: string) =>
    lintTopology(
      topology({
        ...baseInput(),
        chains: [{ ...cometChain, genesis: { url: 'https://example.org/genesis.json', sha256 } }],
      }),
    )
      .filter((f) => f.code === 'artifact-placeholder')
      .map((f) => `${f.severity} ${f.path}`);
  assert.deepEqual(fleet('0'.repeat(64)), ['warning chains[0].genesis.sha256']);
  assert.deepEqual(fleet(SHA), []);
});
