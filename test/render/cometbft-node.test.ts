/**
 * Issue 12: a rendered CometBFT node must be able to start and sync. Its config.toml keys are
 * checked against those recorded from CometBFT's own config template (upstream-node-flags.json,
 * v0.38.25), the genesis is fetched and verified before the node starts (the download script is
 * run for real against a local HTTP server), sentries get the chain's seeds and validators do
 * not, and state sync is rendered when asked for.
 *
 * A Cosmos SDK node also needs app.toml (it refuses to start without minimum-gas-prices): its
 * keys are checked against those recorded from cosmos-sdk's DefaultConfigTemplate (v0.50.9-lsm,
 * the SDK of gaia v21), every one of them present with the kind the template writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { parse as parseToml } from 'smol-toml';
import { buildPlan } from '../../src/topology/plan.js';
import { PlanState } from '../../src/render/state.js';
import {
  GENESIS_COMMAND,
  GENESIS_SCRIPT,
  chainFiles,
  chainUnits,
  cometbftConfig,
  genesisPath,
  genesisUnit,
  genesisUnitName,
  renderUnit,
} from '../../src/render/chains.js';
import { prometheusConfig } from '../../src/render/services.js';
import type { CometbftChain, CosmosSdkApp, TopologyInput } from '../../src/topology/schema.js';
import { parse as parseYaml } from 'yaml';
import { TopologySchema } from '../../src/topology/schema.js';
import { artifact, baseInput, cosmosApp, genesis, topology } from '../topology/fixtures.js';
import { planExample, removeDir, requireTool, tempDir } from './helpers.js';
import { verifyUnits } from '../helpers/systemd-verify.js';

const recorded = (
  JSON.parse(readFileSync('test/render/upstream-node-flags.json', 'utf8')) as {
    cometbft: { flags: Record<string, string>; configKeys: Record<string, string> };
  }
).cometbft;

const sdk = (
  JSON.parse(readFileSync('test/render/upstream-node-flags.json', 'utf8')) as {
    'cosmos-sdk': {
      configKeys: Record<string, string>;
      rules: {
        decCoin: string;
        pruningStrategies: string[];
        pruningCustomMinKeepRecent: number;
        pruningCustomMinInterval: number;
        snapshotsForbiddenWithPruning: string;
        apiAddressScheme: string;
        telemetryPath: string;
      };
    };
  }
)['cosmos-sdk'];

const wasmd = (
  JSON.parse(readFileSync('test/render/upstream-node-flags.json', 'utf8')) as {
    wasmd: {
      template: string;
      configKeys: Record<string, string>;
      optionalKeys: string[];
      limits: Record<string, 'uint32' | 'uint64'>;
    };
  }
).wasmd;

const SEED = {
  id: 'ade4d8bc8cbe014af6ebdf3cb7b1e9ad36f412c0',
  address: 'seeds.example.org',
  port: 14956,
};
const STATE_SYNC = {
  rpcServers: ['https://rpc-a.example.org:443', 'https://rpc-b.example.org:443'],
  trustHeight: 25_000_000,
  trustHash: 'AB'.repeat(32),
};

const fleet = (
  extra: Partial<NonNullable<TopologyInput['chains']>[number]> = {},
): TopologyInput => ({
  ...baseInput(),
  spread: false,
  chains: [
    {
      name: 'hub',
      kind: 'cometbft',
      chainId: 'hub-1',
      binary: artifact('gaiad'),
      genesis: genesis(),
      seeds: [SEED],
      app: cosmosApp(),
      ...extra,
    } as NonNullable<TopologyInput['chains']>[number],
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
    },
  ],
});

/** Every `section.key` of a parsed config with the kind of its value. */
function flatten(doc: Record<string, unknown>, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(doc)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v))
      for (const [kk, vv] of flatten(v as Record<string, unknown>, key)) out.set(kk, vv);
    else out.set(key, Array.isArray(v) ? 'array' : typeof v === 'string' ? 'string' : 'bare');
  }
  return out;
}

function withPlan<T>(input: TopologyInput, fn: (p: ReturnType<typeof buildPlan>) => T): T {
  const dir = tempDir('cometbft-node');
  try {
    return fn(buildPlan(topology(input), new PlanState(dir)));
  } finally {
    removeDir(dir);
  }
}

test('every rendered config.toml key is a CometBFT v0.38 key with the value kind its template writes', () => {
  const state = tempDir('cometbft-keys');
  try {
    const plans = [
      planExample('cosmos-sentries', state).plan!,
      ...[{}, { stateSync: STATE_SYNC }].map((extra) => withPlan(fleet(extra), (p) => p)),
    ];
    let checked = 0;
    for (const plan of plans)
      for (const host of plan.hosts) {
        if (host.chain?.kind !== 'cometbft') continue;
        const doc = parseToml(cometbftConfig(plan, host, host.chain)) as Record<string, unknown>;
        for (const [key, kind] of flatten(doc)) {
          assert.ok(key in recorded.configKeys, `${host.name}: ${key} is not a CometBFT v0.38 key`);
          assert.equal(
            kind,
            recorded.configKeys[key],
            `${host.name}: ${key} is written as ${kind}`,
          );
          checked++;
        }
        // The node's command line: `<binary> start --home <dir>`, and --home is a recorded flag.
        const [unit] = chainUnits(plan, host);
        const words = unit!.execStart.split(/\s+/);
        assert.equal(words[1], 'start');
        for (const w of words.slice(2).filter((x) => x.startsWith('--')))
          assert.ok(w in recorded.flags, `${w} is not a recorded CometBFT flag`);
      }
    assert.ok(checked > 50, `only ${checked} keys checked`);
  } finally {
    removeDir(state);
  }
});

test('sentries get the chain seeds; validators dial only their sentries', () => {
  withPlan(fleet(), (plan) => {
    const chain = plan.topology.chains[0] as CometbftChain;
    const cfg = (n: string) =>
      parseToml(
        cometbftConfig(
          plan,
          plan.hosts.find((h) => h.name === n)!,
          chain,
        ),
      ) as {
        p2p: { seeds?: string; persistent_peers: string };
      };
    assert.equal(cfg('sen-1').p2p.seeds, `${SEED.id}@${SEED.address}:${SEED.port}`);
    assert.equal(cfg('val').p2p.seeds, undefined);
    assert.ok(!cfg('val').p2p.persistent_peers.includes(SEED.address));
  });
});

test('state sync is rendered only when the topology asks for it', () => {
  withPlan(fleet({ stateSync: STATE_SYNC }), (plan) => {
    const host = plan.hosts.find((h) => h.name === 'sen-2')!;
    const doc = parseToml(cometbftConfig(plan, host, plan.topology.chains[0] as CometbftChain)) as {
      statesync: Record<string, unknown>;
    };
    assert.deepEqual(
      { ...doc.statesync },
      {
        enable: true,
        rpc_servers: STATE_SYNC.rpcServers.join(','),
        trust_height: 25_000_000,
        trust_hash: STATE_SYNC.trustHash,
        trust_period: '168h0m0s',
      },
    );
  });
  withPlan(fleet(), (plan) => {
    const host = plan.hosts.find((h) => h.name === 'sen-2')!;
    const doc = parseToml(cometbftConfig(plan, host, plan.topology.chains[0] as CometbftChain));
    assert.equal('statesync' in doc, false);
  });
});

test('a CometBFT chain needs a pinned genesis; state sync needs two RPC servers', () => {
  const chain = (extra: object) =>
    TopologySchema.safeParse({
      ...fleet(),
      chains: [
        {
          name: 'hub',
          kind: 'cometbft',
          chainId: 'hub-1',
          binary: artifact('gaiad'),
          app: cosmosApp(),
          ...extra,
        },
      ],
    });
  const issues = (extra: object) => {
    const r = chain(extra);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  assert.ok(issues({}).some((m) => m.startsWith('chains.0.genesis')));
  assert.ok(
    issues({ genesis: { url: 'https://example.org/g.json' } }).some((m) =>
      m.startsWith('chains.0.genesis.sha256'),
    ),
  );
  assert.ok(
    issues({
      genesis: genesis(),
      stateSync: { ...STATE_SYNC, rpcServers: ['https://a.example'] },
    }).some((m) => m.startsWith('chains.0.stateSync.rpcServers')),
  );
  assert.ok(
    issues({ genesis: genesis(), stateSync: { ...STATE_SYNC, trustPeriod: 'a week' } }).some((m) =>
      m.startsWith('chains.0.stateSync.trustPeriod'),
    ),
  );
  assert.deepEqual(issues({ genesis: genesis(), stateSync: STATE_SYNC }), []);
});

test('the node unit requires the genesis unit; both pass systemd-analyze verify', (t) => {
  withPlan(fleet(), (plan) => {
    const host = plan.hosts.find((h) => h.name === 'val')!;
    const chain = plan.topology.chains[0] as CometbftChain;
    const [nodeSpec] = chainUnits(plan, host);
    const node = renderUnit(nodeSpec!);
    assert.match(node, new RegExp(`^Requires=${genesisUnitName(chain)}$`, 'm'));
    assert.match(node, new RegExp(`^After=.*${genesisUnitName(chain)}`, 'm'));
    const files = chainFiles(plan, host, new PlanState(tempDir('cometbft-files')));
    const unitFile = files.find((f) => f.path === `/etc/systemd/system/${genesisUnitName(chain)}`);
    assert.equal(unitFile?.content, genesisUnit(chain));
    assert.equal(files.find((f) => f.path === GENESIS_COMMAND)?.permissions, '0755');

    const root = tempDir('cometbft-verify');
    try {
      // The executables the units name must exist in the root systemd-analyze checks.
      for (const exe of [GENESIS_COMMAND, nodeSpec!.execStart.split(' ')[0]!]) {
        mkdirSync(join(root, exe, '..'), { recursive: true });
        writeFileSync(join(root, exe), '#!/bin/sh\n');
        chmodSync(join(root, exe), 0o755);
      }
      const r = verifyUnits(root, {
        [genesisUnitName(chain)]: genesisUnit(chain),
        [nodeSpec!.name]: node,
      });
      if ('skipped' in r) return t.skip(r.skipped);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), '', r.stderr);
    } finally {
      removeDir(root);
    }
  });
});

test('vigil-genesis installs a verified genesis (gzip or plain) and refuses a wrong one, leaving nothing', async (t) => {
  if (!requireTool('curl', ['--version'], false)) return t.skip('curl is not installed');
  const genesisJson = JSON.stringify({ chain_id: 'hub-1', initial_height: '1' }) + '\n';
  const bodies: Record<string, Buffer> = {
    '/genesis.json.gz': gzipSync(genesisJson),
    '/genesis.json': Buffer.from(genesisJson),
  };
  const server = createServer((req, res) => {
    const body = bodies[req.url ?? ''];
    if (!body) return res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dir = tempDir('genesis-script');
  const script = join(dir, 'vigil-genesis');
  writeFileSync(script, GENESIS_SCRIPT, { mode: 0o755 });
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const run = (path: string, sum: string, dest: string) => {
    // Asynchronously: the server answering curl runs on this event loop.
    return new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const p = spawn('sh', [script, `${base}${path}`, sum, dest]);
      let stderr = '';
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('close', (status) => resolve({ status, stderr }));
    });
  };
  try {
    for (const path of Object.keys(bodies)) {
      const conf = join(dir, path.replace(/\W/g, '_'), 'config');
      mkdirSync(conf, { recursive: true });
      const dest = join(conf, 'genesis.json');
      const ok = await run(path, sha(bodies[path]!), dest);
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(readFileSync(dest, 'utf8'), genesisJson);
      assert.deepEqual(readdirSync(conf), ['genesis.json'], 'temporary files left behind');
    }
    const conf = join(dir, 'refused', 'config');
    mkdirSync(conf, { recursive: true });
    const dest = join(conf, 'genesis.json');
    const wrong = await run('/genesis.json.gz', 'f'.repeat(64), dest);
    assert.notEqual(wrong.status, 0);
    assert.match(wrong.stderr, /did NOT match/);
    const missing = await run('/nothing.json', sha(bodies['/genesis.json']!), dest);
    assert.notEqual(missing.status, 0);
    assert.equal(existsSync(dest), false);
    assert.deepEqual(readdirSync(conf), [], 'a refused download left files behind');
  } finally {
    server.close();
    removeDir(dir);
  }
});

// CometBFT's default genesis_file is config/genesis.json under --home (config/config.go), so the
// rendered config leaves the key out and the unit writes the file there.
test('the genesis lands where CometBFT reads it by default', () => {
  withPlan(fleet(), (plan) => {
    const chain = plan.topology.chains[0] as CometbftChain;
    assert.equal(recorded.configKeys['genesis_file'], 'string');
    assert.ok(genesisPath(chain).endsWith('/config/genesis.json'));
  });
});

const SNAPSHOTS = { interval: 1000, keepRecent: 3 };
const customApp = (extra: object = {}) => ({
  app: {
    kind: 'cosmos-sdk' as const,
    minimumGasPrices:
      '0.0025uatom,0.1ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2',
    pruning: { strategy: 'custom' as const, keepRecent: 100, interval: 10 },
    snapshots: SNAPSHOTS,
    ...extra,
  },
});

test('app.toml: every cosmos-sdk v0.50 key, each with the kind its template writes, under --home', () => {
  const state = tempDir('cosmos-app-keys');
  try {
    const plans = [
      planExample('cosmos-sentries', state).plan!,
      withPlan(fleet(customApp()), (p) => p),
      withPlan(fleet({ app: { kind: 'cosmos-sdk', minimumGasPrices: '1uatom' } }), (p) => p),
      withPlan(fleet(customApp({ wasm: {} })), (p) => p),
      withPlan(fleet(customApp({ wasm: { simulationGasLimit: 25_000_000 } })), (p) => p),
    ];
    const decCoin = new RegExp(sdk.rules.decCoin);
    let checked = 0;
    for (const plan of plans)
      for (const host of plan.hosts) {
        const chain = host.chain;
        if (chain?.kind !== 'cometbft' || chain.app.kind !== 'cosmos-sdk') continue;
        const app: CosmosSdkApp = chain.app;
        // Where the node reads it: <--home>/config/app.toml.
        const home = /--home (\S+)/.exec(chainUnits(plan, host)[0]!.execStart)![1]!;
        const file = chainFiles(plan, host, new PlanState(join(state, 'files'))).find(
          (f) => f.path === `${home}/config/app.toml`,
        );
        assert.ok(file, `${host.name}: no app.toml under ${home}/config`);
        const doc = parseToml(file.content) as Record<string, Record<string, unknown>>;
        const keys = flatten(doc);
        // Every key, so none is read as its zero value; no key the SDK does not have. With
        // app.wasm, wasmd's section too (simulation_gas_limit only when set).
        const wasmKeys = app.wasm
          ? Object.keys(wasmd.configKeys).filter(
              (k) => !wasmd.optionalKeys.includes(k) || app.wasm!.simulationGasLimit !== undefined,
            )
          : [];
        const upstream = { ...sdk.configKeys, ...wasmd.configKeys };
        assert.deepEqual(
          [...keys.keys()].sort(),
          [...Object.keys(sdk.configKeys), ...wasmKeys].sort(),
          host.name,
        );
        for (const [key, kind] of keys) {
          assert.equal(kind, upstream[key], `${host.name}: ${key} is written as ${kind}`);
          checked++;
        }
        // What the node checks at start, and where it listens.
        const prices = doc['minimum-gas-prices'] as unknown as string;
        assert.ok(
          prices.split(',').every((c) => decCoin.test(c)),
          prices,
        );
        assert.equal(prices, app.minimumGasPrices);
        const pruning = doc.pruning as unknown as string;
        assert.ok(sdk.rules.pruningStrategies.includes(pruning), pruning);
        if (pruning === 'custom') {
          assert.ok(Number(doc['pruning-keep-recent']) >= sdk.rules.pruningCustomMinKeepRecent);
          assert.ok(Number(doc['pruning-interval']) >= sdk.rules.pruningCustomMinInterval);
        }
        const interval = doc['state-sync']!['snapshot-interval'] as number;
        if (interval > 0) assert.notEqual(pruning, sdk.rules.snapshotsForbiddenWithPruning);
        // Snapshots are served by sentries only, and by every sentry when asked for.
        assert.equal(interval > 0, host.role === 'sentry' && app.snapshots !== undefined);
        if (interval > 0) {
          assert.equal(interval, app.snapshots!.interval);
          assert.equal(doc['state-sync']!['snapshot-keep-recent'], app.snapshots!.keepRecent);
        }
        assert.equal(
          doc.api!.address,
          `${sdk.rules.apiAddressScheme}${host.vpnAddress}:${app.apiPort}`,
        );
        assert.equal(doc.grpc!.address, `127.0.0.1:${app.grpcPort}`);
        assert.equal(doc.telemetry!.enabled, true);
        assert.ok((doc.telemetry!['prometheus-retention-time'] as number) > 0);
        assert.deepEqual(doc.telemetry!['global-labels'], [['chain_id', chain.chainId]]);
      }
    assert.ok(checked >= 42 * 6, `only ${checked} keys checked`);
  } finally {
    removeDir(state);
  }
});

test("app.toml [wasm]: wasmd v0.53.0's template keys and defaults, then the topology's values", () => {
  // The recorded template with simulation_gas_limit uncommented, as ConfigTemplate writes it
  // when the limit is set.
  const template = parseToml(wasmd.template) as { wasm: Record<string, unknown> };
  const withSim = parseToml(
    wasmd.template.replace('# simulation_gas_limit =', 'simulation_gas_limit = 7'),
  ) as { wasm: Record<string, unknown> };
  assert.deepEqual(
    Object.keys(withSim.wasm).map((k) => `wasm.${k}`),
    Object.keys(wasmd.configKeys),
  );
  const rendered = (wasm: object | undefined) =>
    withPlan(fleet(customApp(wasm ? { wasm } : {})), (plan) => {
      const host = plan.hosts.find((h) => h.name === 'val')!;
      const file = chainFiles(plan, host, new PlanState(tempDir('wasm-app'))).find((f) =>
        f.path.endsWith('/config/app.toml'),
      )!;
      const wasm = (parseToml(file.content) as { wasm?: Record<string, unknown> }).wasm;
      return wasm && { ...wasm };
    });
  // wasm: {} is exactly wasmd's default section.
  assert.deepEqual(rendered({}), { ...template.wasm });
  assert.deepEqual(
    rendered({ queryGasLimit: 10_000_000, memoryCacheSizeMiB: 0, simulationGasLimit: 7 }),
    { ...withSim.wasm, query_gas_limit: 10_000_000, memory_cache_size: 0 },
  );
  // No app.wasm: no section (an app without wasmd would not know it).
  assert.equal(rendered(undefined), undefined);
  // Values wasmd's casts would refuse (cast.ToUint32E / ToUint64E) are refused first.
  const refused = (wasm: object) => !TopologySchema.safeParse(fleet(customApp({ wasm }))).success;
  assert.equal(wasmd.limits['wasm.memory_cache_size'], 'uint32');
  assert.ok(refused({ memoryCacheSizeMiB: 2 ** 32 }));
  assert.ok(refused({ memoryCacheSizeMiB: -1 }));
  assert.ok(refused({ queryGasLimit: 1.5 }));
  assert.ok(refused({ simulationGasLimit: 0 }), 'an explicit 0 would refuse every simulation');
  assert.ok(refused({ memoryCache: 1 }), 'unknown keys are refused');
  assert.ok(!refused({ memoryCacheSizeMiB: 2 ** 32 - 1 }));
});

test('app.toml settings a node would refuse are refused by the topology', () => {
  const issues = (app: unknown) => {
    const input = fleet() as unknown as { chains: Array<Record<string, unknown>> };
    const chain = { ...input.chains[0]! };
    if (app === undefined) delete chain.app;
    else chain.app = app;
    const r = TopologySchema.safeParse({ ...input, chains: [chain] });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  const sdkApp = (extra: object) => ({
    kind: 'cosmos-sdk',
    minimumGasPrices: '0.005uatom',
    ...extra,
  });
  assert.ok(issues(undefined).some((m) => m.startsWith('chains.0.app')));
  assert.ok(
    issues({ kind: 'cosmos-sdk' }).some((m) => m.startsWith('chains.0.app.minimumGasPrices')),
  );
  for (const bad of ['', '0.005', 'uatom', '0.005uatom;1stake', '1ua', '0.1uatom,0.2uatom'])
    assert.ok(
      issues(sdkApp({ minimumGasPrices: bad })).some((m) =>
        m.startsWith('chains.0.app.minimumGasPrices'),
      ),
      bad,
    );
  assert.ok(
    issues(sdkApp({ pruning: { strategy: 'custom', keepRecent: 1, interval: 10 } })).some((m) =>
      m.startsWith('chains.0.app.pruning.keepRecent'),
    ),
  );
  assert.ok(
    issues(sdkApp({ pruning: { strategy: 'custom', keepRecent: 2, interval: 9 } })).some((m) =>
      m.startsWith('chains.0.app.pruning.interval'),
    ),
  );
  assert.ok(
    issues(sdkApp({ pruning: { strategy: 'everything' }, snapshots: SNAPSHOTS })).some((m) =>
      m.startsWith('chains.0.app.snapshots'),
    ),
  );
  assert.deepEqual(issues(sdkApp({ pruning: { strategy: 'nothing' }, snapshots: SNAPSHOTS })), []);
  assert.deepEqual(issues(sdkApp({ minimumGasPrices: '0.005uatom, .5 stake' })), []);
  // Another ABCI application: no app.toml, nothing more to say.
  assert.deepEqual(issues({ kind: 'other' }), []);
  withPlan(fleet({ app: { kind: 'other' } }), (plan) => {
    const host = plan.hosts.find((h) => h.name === 'val')!;
    const files = chainFiles(plan, host, new PlanState(tempDir('other-app')));
    assert.ok(!files.some((f) => f.path.endsWith('/app.toml')));
    assert.ok(!host.ports.some((r) => r.purpose.startsWith('cosmos-sdk')));
  });
});

test("the monitor scrapes each node's app telemetry over the VPN, the only host let in", () => {
  withPlan(fleet(customApp({ apiPort: 1417 })), (plan) => {
    const monitor = plan.hosts.find((h) => h.role === 'monitor')!;
    const nodes = plan.hosts.filter((h) => h.chain?.kind === 'cometbft');
    const job = (
      parseYaml(prometheusConfig(plan)) as {
        scrape_configs: Array<{
          job_name: string;
          metrics_path?: string;
          params?: Record<string, string[]>;
          static_configs: Array<{ targets: string[] }>;
        }>;
      }
    ).scrape_configs.find((j) => j.job_name === 'cosmos-sdk');
    assert.ok(job, 'no cosmos-sdk scrape job');
    const [path, query] = sdk.rules.telemetryPath.split('?') as [string, string];
    assert.equal(job.metrics_path, path);
    assert.deepEqual(
      job.params,
      Object.fromEntries([query.split('=').map((x, i) => (i ? [x] : x))]),
    );
    assert.deepEqual(
      job.static_configs.flatMap((c) => c.targets).sort(),
      nodes.map((h) => `${h.vpnAddress}:1417`).sort(),
    );
    for (const h of nodes) {
      const rules = h.ports.filter((r) => r.port === 1417);
      assert.deepEqual(
        rules.map((r) => [r.vpnOnly, r.from]),
        [[true, [monitor.vpnAddress]]],
        h.name,
      );
    }
  });
});
