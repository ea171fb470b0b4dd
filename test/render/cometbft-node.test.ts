/**
 * Issue 12: a rendered CometBFT node must be able to start and sync. Its config.toml keys are
 * checked against those recorded from CometBFT's own config template (upstream-node-flags.json,
 * v0.38.25), the genesis is fetched and verified before the node starts (the download script is
 * run for real against a local HTTP server), sentries get the chain's seeds and validators do
 * not, and state sync is rendered when asked for.
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
import type { CometbftChain, TopologyInput } from '../../src/topology/schema.js';
import { TopologySchema } from '../../src/topology/schema.js';
import { artifact, baseInput, genesis, topology } from '../topology/fixtures.js';
import { planExample, removeDir, requireTool, tempDir } from './helpers.js';
import { verifyUnits } from '../helpers/systemd-verify.js';

const recorded = (
  JSON.parse(readFileSync('test/render/upstream-node-flags.json', 'utf8')) as {
    cometbft: { flags: Record<string, string>; configKeys: Record<string, string> };
  }
).cometbft;

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
