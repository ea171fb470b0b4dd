/**
 * Issue 14 (chain watchers, Polkadot): the watcher against a fake Polkadot node answering
 * JSON-RPC 2.0 and Prometheus text in the upstream shapes (sources cited in ./fake-polkadot.ts
 * and src/watch/polkadot-schemas.ts): best vs finalized, peers, syncing, whether the node holds
 * the on-chain session keys, the para-validation finality lag; unreachable, failing, denied or
 * malformed answers counted as typed probe errors without a crash; the config; `vigil watch`
 * serving a Polkadot chain; the README naming every metric.
 */
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { ConfigError, parseYaml } from '../../src/config/yaml-file.js';
import { packageRoot } from '../../src/package-root.js';
import {
  PARA_FINALITY_LAG_METRICS,
  PolkadotWatcher,
  readParaFinalityLag,
} from '../../src/watch/polkadot.js';
import { ProbeError } from '../../src/watch/probe.js';
import {
  PolkadotWatchSchema,
  WatchConfigSchema,
  type PolkadotWatchInput,
} from '../../src/watch/config.js';
import { withWatchProcess } from './watch-process.js';
import { sampleOf } from '../helpers/prometheus-text.js';
import {
  blockHash,
  polkadotExposition,
  startFakePolkadot,
  type FakePolkadotNode,
} from './fake-polkadot.js';

const CHAIN = 'polkadot';
/** Six keys' worth of SCALE-encoded session keys (grandpa … beefy: 5 × 32 + 33 bytes). */
const SESSION_KEYS = '0x' + 'ab'.repeat(5 * 32) + '02' + 'cd'.repeat(32);
const OTHER_KEYS = '0x' + '11'.repeat(5 * 32) + '03' + '22'.repeat(32);

let nodes: FakePolkadotNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  nodes = [];
});

async function fake(init: Parameters<typeof startFakePolkadot>[0] = {}) {
  const n = await startFakePolkadot(init);
  nodes.push(n);
  return n;
}

function setup(rpc: string, extra: Partial<PolkadotWatchInput> = {}, nowMs = 1_764_640_000_000) {
  const registry = new Registry();
  const logs: Array<[string, string]> = [];
  const config = PolkadotWatchSchema.parse({
    kind: 'polkadot',
    name: CHAIN,
    rpc,
    timeoutMs: 1000,
    ...extra,
  });
  const watcher = new PolkadotWatcher(config, registry, {
    now: () => nowMs,
    log: {
      info: (_o, msg) => logs.push(['info', msg]),
      warn: (_o, msg) => logs.push(['warn', msg]),
    },
  });
  const sample = async (name: string, labels: Record<string, string> = {}) =>
    sampleOf(await registry.metrics(), `vigil_watch_polkadot_${name}`, {
      chain_id: CHAIN,
      ...labels,
    });
  return { watcher, registry, sample, logs };
}

describe('Polkadot watcher', () => {
  it('a healthy validator node: heights, lag, peers, session keys, para finality lag', async () => {
    const node = await fake({
      best: 21_000_123,
      finalized: 21_000_120,
      peers: 37,
      keystore: new Set([SESSION_KEYS]),
      approvalLag: 2,
      disputesLag: 3,
    });
    const { watcher, sample } = setup(node.rpc, {
      sessionKeys: SESSION_KEYS.toUpperCase().replace('0X', '0x'),
      metricsUrl: node.metricsUrl,
    });
    const r = await watcher.poll();
    assert.deepEqual(r.errors, []);
    assert.equal(r.best, 21_000_123n);
    assert.equal(r.finalized, 21_000_120n);
    assert.equal(r.hasSessionKeys, true);
    assert.equal(r.paraFinalityLag, 3n);
    assert.deepEqual(node.calls, [
      'system_health',
      'chain_getFinalizedHead',
      'chain_getHeader',
      'chain_getHeader',
      'author_hasSessionKeys',
    ]);
    assert.equal(await sample('up'), 1);
    assert.equal(await sample('best_height'), 21_000_123);
    assert.equal(await sample('finalized_height'), 21_000_120);
    assert.equal(await sample('finality_lag_blocks'), 3);
    assert.equal(await sample('peers'), 37);
    assert.equal(await sample('is_syncing'), 0);
    assert.equal(await sample('session_keys_onchain'), 1);
    assert.equal(await sample('para_finality_lag_blocks'), 3);
    assert.equal(await sample('last_poll_timestamp_seconds'), 1_764_640_000);
    assert.equal(
      await sample('probe_errors_total', { probe: 'system_health', kind: 'unreachable' }),
      0,
    );

    // The chain moves on, the node starts a major sync and loses its peers.
    node.state.best = 21_000_200;
    node.state.finalized = 21_000_130;
    node.state.isSyncing = true;
    node.state.peers = 0;
    node.state.approvalLag = 7;
    node.state.disputesLag = 4;
    await watcher.poll();
    assert.equal(await sample('finality_lag_blocks'), 70);
    assert.equal(await sample('is_syncing'), 1);
    assert.equal(await sample('peers'), 0);
    assert.equal(await sample('para_finality_lag_blocks'), 7);
  });

  it('session keys the keystore lacks read 0 and are logged once; a key rotation into it reads 1', async () => {
    const node = await fake({ keystore: new Set([OTHER_KEYS]) });
    const { watcher, sample, logs } = setup(node.rpc, { sessionKeys: SESSION_KEYS });
    await watcher.poll();
    await watcher.poll();
    assert.equal(await sample('session_keys_onchain'), 0);
    assert.deepEqual(
      logs.filter(([, m]) => /session keys/.test(m)).map(([level]) => level),
      ['warn'],
    );
    node.state.keystore.add(SESSION_KEYS);
    const r = await watcher.poll();
    assert.equal(r.hasSessionKeys, true);
    assert.equal(await sample('session_keys_onchain'), 1);
    assert.deepEqual(
      logs.filter(([, m]) => /session keys/.test(m)).map(([level]) => level),
      ['warn', 'info'],
    );
  });

  it('a node denying unsafe methods: an rpc probe error with the hint; the node is still up', async () => {
    const node = await fake({ keystore: new Set([SESSION_KEYS]), denyUnsafe: true });
    const { watcher, sample } = setup(node.rpc, { sessionKeys: SESSION_KEYS });
    const r = await watcher.poll();
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]!.probe, 'author_hasSessionKeys');
    assert.equal(r.errors[0]!.kind, 'rpc');
    assert.equal(r.errors[0]!.code, 'WATCH_PROBE_RPC');
    assert.match(r.errors[0]!.message, /unsafe to be called externally.*--rpc-methods unsafe/);
    assert.equal(await sample('up'), 1);
    assert.equal(await sample('session_keys_onchain'), undefined);
    assert.equal(
      await sample('probe_errors_total', { probe: 'author_hasSessionKeys', kind: 'rpc' }),
      1,
    );
  });

  it('without sessionKeys or metricsUrl those probes do not run and their series are absent', async () => {
    const node = await fake({ approvalLag: 1, disputesLag: 1 });
    const { watcher, sample } = setup(node.rpc);
    const r = await watcher.poll();
    assert.deepEqual(r.errors, []);
    assert.ok(!node.calls.includes('author_hasSessionKeys'));
    assert.equal(await sample('session_keys_onchain'), undefined);
    assert.equal(await sample('para_finality_lag_blocks'), undefined);
    assert.equal(await sample('up'), 1);
  });

  it('unreachable, HTTP errors, wrong ids, malformed and late answers are counted probe errors; the watcher recovers', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    const down = setup(`http://127.0.0.1:${closed}`);
    const r0 = await down.watcher.poll();
    assert.deepEqual(
      r0.errors.map((e) => [e.probe, e.kind]),
      [
        ['system_health', 'unreachable'],
        ['chain_getFinalizedHead', 'unreachable'],
        ['chain_getHeader', 'unreachable'],
      ],
    );
    assert.ok(r0.errors.every((e) => e instanceof ProbeError));
    assert.equal(await down.sample('up'), 0);
    // A poll that got no answer still says when it ran: the watcher itself is alive.
    assert.equal(await down.sample('last_poll_timestamp_seconds'), 1_764_640_000);

    const node = await fake({ approvalLag: 0, disputesLag: 0 });
    const { watcher, sample } = setup(node.rpc, { timeoutMs: 200, metricsUrl: node.metricsUrl });
    await watcher.poll();
    const header = (n: string) => ({
      parentHash: blockHash(1),
      number: n,
      stateRoot: blockHash(2),
      extrinsicsRoot: blockHash(3),
      digest: { logs: [] },
    });
    const cases: Array<[string, () => void, string, string, RegExp]> = [
      [
        'HTTP 500, not JSON',
        () => (node.state.rpcRaw = { status: 500, body: 'Internal Server Error' }),
        'system_health',
        'http',
        /HTTP 500, not JSON/,
      ],
      [
        'JSON that is not JSON-RPC',
        () => (node.state.rpcRaw = { status: 200, body: '{"peers": 3}' }),
        'system_health',
        'malformed',
        /not a JSON-RPC 2.0 answer/,
      ],
      [
        'an answer to another request',
        () => {
          delete node.state.rpcRaw;
          node.state.wrongId = true;
        },
        'system_health',
        'malformed',
        /answer to id \d+, not \d+/,
      ],
      [
        'peers as a string',
        () => {
          node.state.wrongId = false;
          node.state.results = { system_health: { peers: '3', isSyncing: false } };
        },
        'system_health',
        'malformed',
        /system_health: peers: /,
      ],
      [
        'a block number in decimal',
        () => (node.state.results = { chain_getHeader: header('101') }),
        'chain_getHeader',
        'malformed',
        /number: a 0x-prefixed hex number/,
      ],
      [
        'a block number with leading zeros',
        () => (node.state.results = { chain_getHeader: header('0x0065') }),
        'chain_getHeader',
        'malformed',
        /number: a 0x-prefixed hex number/,
      ],
      [
        'a finalized head the node has no header for',
        () => (node.state.results = { chain_getFinalizedHead: blockHash(10_000) }),
        'chain_getHeader',
        'malformed',
        /no header for its own finalized head/,
      ],
      [
        'a finalized head that is not a hash',
        () => (node.state.results = { chain_getFinalizedHead: '0x1234' }),
        'chain_getFinalizedHead',
        'malformed',
        /32-byte hash/,
      ],
      [
        'metrics of a node that is no relay-chain validator',
        () => {
          node.state.results = {};
          delete node.state.approvalLag;
          delete node.state.disputesLag;
        },
        'metrics',
        'malformed',
        /none of polkadot_parachain_approval_checking_finality_lag/,
      ],
      [
        'a lag that is not a block count',
        () => {
          node.state.approvalLag = -1;
        },
        'metrics',
        'malformed',
        /approval_checking_finality_lag is -1, not a block count/,
      ],
      [
        'metrics HTTP 404',
        () => (node.state.metricsRaw = { status: 404, body: 'not found' }),
        'metrics',
        'http',
        /HTTP 404/,
      ],
    ];
    for (const [what, arrange, probe, kind, message] of cases) {
      arrange();
      const r = await watcher.poll();
      const e = r.errors.find((x) => x.probe === probe);
      assert.ok(e, `${what}: ${JSON.stringify(r.errors.map((x) => x.message))}`);
      assert.equal(e.kind, kind, what);
      assert.match(e.message, message, what);
      // The last good values stay for the dashboards.
      assert.equal(await sample('best_height'), 100, what);
    }
    assert.equal(await sample('up'), 1);
    assert.equal(await sample('probe_errors_total', { probe: 'system_health', kind: 'http' }), 1);
    assert.equal(
      await sample('probe_errors_total', { probe: 'chain_getHeader', kind: 'malformed' }),
      // The best header also fails on a wrong id and on JSON that is not JSON-RPC; the two bad
      // numbers fail the finalized and the best header each; plus the unknown finalized head.
      7,
    );
    assert.equal(await sample('probe_errors_total', { probe: 'metrics', kind: 'malformed' }), 2);

    delete node.state.metricsRaw;
    node.state.approvalLag = 2;
    node.state.delayMs = 600;
    const late = await watcher.poll();
    assert.ok(late.errors.length >= 1);
    assert.ok(late.errors.every((e) => e.kind === 'timeout'));
    assert.match(late.errors[0]!.message, /within 200 ms/);
    assert.equal(await sample('up'), 0);

    delete node.state.delayMs;
    node.state.best = 105;
    const ok = await watcher.poll();
    assert.deepEqual(ok.errors, []);
    assert.equal(await sample('up'), 1);
    assert.equal(await sample('best_height'), 105);
    assert.equal(await sample('para_finality_lag_blocks'), 2);
  });

  it('reads the para finality lag as the larger gauge, labels and other series aside', () => {
    const text = polkadotExposition({
      best: 1,
      finalized: 1,
      peers: 1,
      isSyncing: false,
      keystore: new Set(),
      approvalLag: 5,
      disputesLag: 9,
    });
    assert.equal(readParaFinalityLag(text, 'test'), 9n);
    const approvalOnly = text
      .split('\n')
      .filter((l) => !l.includes(PARA_FINALITY_LAG_METRICS[1]))
      .join('\n');
    assert.equal(readParaFinalityLag(approvalOnly, 'test'), 5n);
    assert.throws(
      () => readParaFinalityLag(text + `${PARA_FINALITY_LAG_METRICS[0]} 1\n`, 'test'),
      (e: unknown) => e instanceof ProbeError && /appears more than once/.test(e.message),
    );
    assert.throws(
      () => readParaFinalityLag(text + `${PARA_FINALITY_LAG_METRICS[0]}{ 1\n`, 'test'),
      (e: unknown) => e instanceof ProbeError && /line \d+ of the metrics/.test(e.message),
    );
  });
});

describe('Polkadot watch config', () => {
  it('defaults and rejects bad session keys, URLs or unknown fields', () => {
    const c = PolkadotWatchSchema.parse({
      kind: 'polkadot',
      name: 'kusama',
      rpc: 'http://127.0.0.1:9944/',
      sessionKeys: '0xABCD',
    });
    assert.equal(c.pollMs, 6000);
    assert.equal(c.timeoutMs, 5000);
    assert.equal(c.rpc, 'http://127.0.0.1:9944');
    assert.equal(c.sessionKeys, '0xabcd');
    const base = { kind: 'polkadot', name: 'polkadot', rpc: 'http://127.0.0.1:9944' };
    for (const bad of [
      { ...base, sessionKeys: 'abcd' },
      { ...base, sessionKeys: '0xabc' },
      { ...base, sessionKeys: '0x' },
      { ...base, rpc: 'ws://127.0.0.1:9944' },
      { ...base, metricsUrl: 'not a url' },
      { ...base, pollMs: 10 },
      { ...base, chainId: 'polkadot' },
    ])
      assert.equal(PolkadotWatchSchema.safeParse(bad).success, false, JSON.stringify(bad));
  });

  it('a polkadot chain next to a Cardano one; one name each', () => {
    const yaml = `chains:
  - kind: polkadot
    name: polkadot
    rpc: http://127.0.0.1:9944
    metricsUrl: http://127.0.0.1:9615/metrics
  - kind: cardano
    name: cardano-mainnet
    metricsUrl: http://127.0.0.1:12798/metrics
`;
    const c = parseYaml('watch.yaml', yaml, WatchConfigSchema);
    assert.deepEqual(
      c.chains.map((x) => x.kind),
      ['polkadot', 'cardano'],
    );
    assert.throws(
      () => parseYaml('w.yaml', yaml.replace('cardano-mainnet', 'polkadot'), WatchConfigSchema),
      (e: unknown) => e instanceof ConfigError && /watched once/.test(e.message),
    );
  });

  it('the example config parses and watches a Polkadot chain', () => {
    const text = readFileSync(join(packageRoot(), 'examples/watch/watch.yaml'), 'utf8');
    const c = parseYaml('examples/watch/watch.yaml', text, WatchConfigSchema);
    const p = c.chains.find((x) => x.kind === 'polkadot');
    assert.ok(p, 'examples/watch/watch.yaml has no polkadot chain');
  });
});

describe('vigil watch (Polkadot)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-watch-polkadot-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('serves a Polkadot chain’s metrics and names it on /healthz', async () => {
    const node = await fake({
      best: 500,
      finalized: 497,
      keystore: new Set([SESSION_KEYS]),
      approvalLag: 1,
      disputesLag: 1,
    });
    const file = join(dir, 'watch.yaml');
    writeFileSync(
      file,
      `listen: { host: 127.0.0.1, port: 0 }
chains:
  - kind: polkadot
    name: ${CHAIN}
    rpc: ${node.rpc}
    sessionKeys: "${SESSION_KEYS}"
    metricsUrl: ${node.metricsUrl}
    pollMs: 200
`,
    );
    await withWatchProcess(file, CHAIN, async (watch) => {
      // up is set mid-poll; the last-poll time at its end, after every probe.
      const text = await watch.metricsWhen(
        (t) =>
          sampleOf(t, 'vigil_watch_polkadot_up', { chain_id: CHAIN }) === 1 &&
          !!sampleOf(t, 'vigil_watch_polkadot_last_poll_timestamp_seconds', { chain_id: CHAIN }),
      );
      const at = (name: string) =>
        sampleOf(text, `vigil_watch_polkadot_${name}`, { chain_id: CHAIN });
      assert.equal(at('finality_lag_blocks'), 3);
      assert.equal(at('session_keys_onchain'), 1);
      assert.equal(at('para_finality_lag_blocks'), 1);
      assert.deepEqual(await watch.healthz(), {
        status: 'ok',
        chains: [{ kind: 'polkadot', name: CHAIN }],
      });
    });
  });
});

describe('README (Polkadot)', () => {
  it('names every Polkadot watcher metric', async () => {
    const readme = readFileSync(join(packageRoot(), 'README.md'), 'utf8');
    const registry = new Registry();
    const watcher = new PolkadotWatcher(
      PolkadotWatchSchema.parse({ kind: 'polkadot', name: CHAIN, rpc: 'http://127.0.0.1:1' }),
      registry,
    );
    assert.ok(watcher);
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
    assert.equal(names.length, 10, names.join(', '));
    for (const name of names)
      assert.ok(readme.includes(`\`${name}`), `README's Polkadot metrics omit ${name}`);
  });
});
