/**
 * Issue 14 (chain watchers, CometBFT): the watcher against a fake node whose answers have the
 * upstream shapes (sources cited in ./fake-cometbft.ts): heights advancing and a stall on an
 * injected clock, misses counted from last_commit signatures over a window and in a row,
 * jailed/tombstoned through the SDK REST, malformed or failing answers counted as typed probe
 * errors without a crash, and `vigil watch` as a process serving /metrics and /healthz.
 */
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Registry } from 'prom-client';
import { ConfigError, parseYaml } from '../../src/config/yaml-file.js';
import { bech32Encode } from '../../src/keys/bech32.js';
import { packageRoot } from '../../src/package-root.js';
import { CometbftWatcher, ProbeError } from '../../src/watch/cometbft.js';
import {
  CometbftWatchSchema,
  WatchConfigSchema,
  loadWatchConfig,
  type CometbftWatchInput,
} from '../../src/watch/config.js';
import { CLI_ENTRY } from '../helpers/paths.js';
import { sampleOf } from '../helpers/prometheus-text.js';
import { startFakeCometbft, type FakeNode } from './fake-cometbft.js';

const VALIDATOR = 'A1B2C3D4E5F60718293A4B5C6D7E8F9012345678';
const VALOPER = bech32Encode('cosmosvaloper', Buffer.from(VALIDATOR, 'hex'));
const VALCONS = bech32Encode('cosmosvalcons', Buffer.from(VALIDATOR, 'hex'));
const CHAIN = 'fakechain-1';

let nodes: FakeNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  nodes = [];
});

async function fake(init: Parameters<typeof startFakeCometbft>[0]) {
  const n = await startFakeCometbft(init);
  nodes.push(n);
  return n;
}

function setup(node: FakeNode, extra: Partial<CometbftWatchInput> = {}) {
  let t = 1_714_564_800_000;
  const clock = {
    now: () => t,
    advance: (seconds: number) => {
      t += seconds * 1000;
    },
  };
  const registry = new Registry();
  const config = CometbftWatchSchema.parse({
    kind: 'cometbft',
    chainId: CHAIN,
    rpc: node.url,
    validatorAddress: VALIDATOR.toLowerCase(),
    stallSeconds: 30,
    missedWindow: 5,
    peersMin: 3,
    timeoutMs: 2000,
    ...extra,
  });
  const watcher = new CometbftWatcher(config, registry, { now: clock.now });
  const sample = async (name: string, labels: Record<string, string> = {}) =>
    sampleOf(await registry.metrics(), `vigil_watch_cometbft_${name}`, {
      chain_id: CHAIN,
      ...labels,
    });
  return { watcher, registry, clock, sample };
}

describe('CometBFT watcher', () => {
  it('follows the height, its time, peers and catching_up from /status and /net_info', async () => {
    const node = await fake({ validator: VALIDATOR, height: 10, peers: 5 });
    const { watcher, clock, sample } = setup(node);
    const r1 = await watcher.poll();
    assert.deepEqual(r1.errors, []);
    assert.equal(r1.height, 10);
    assert.equal(await sample('up'), 1);
    assert.equal(await sample('height'), 10);
    assert.equal(
      await sample('latest_block_time_seconds'),
      Date.parse('2024-05-01T12:01:00Z') / 1000,
    );
    assert.equal(await sample('peers'), 5);
    assert.equal(await sample('peers_low'), 0);
    assert.equal(await sample('catching_up'), 0);
    assert.equal(await sample('node_is_validator'), 1);

    node.state.height = 13;
    node.state.peers = 2;
    node.state.catchingUp = true;
    node.state.nodeValidator = '';
    clock.advance(20);
    await watcher.poll();
    assert.equal(await sample('height'), 13);
    assert.equal(await sample('height_age_seconds'), 0);
    assert.equal(await sample('peers'), 2);
    assert.equal(await sample('peers_low'), 1);
    assert.equal(await sample('catching_up'), 1);
    assert.equal(await sample('node_is_validator'), 0);
  });

  it('a height that does not move for stallSeconds is a stall; a new height ends it', async () => {
    const node = await fake({ validator: VALIDATOR, height: 50 });
    const { watcher, clock, sample } = setup(node);
    await watcher.poll();
    for (const step of [10, 10, 9]) {
      clock.advance(step);
      await watcher.poll();
      assert.equal(await sample('stalled'), 0);
    }
    assert.equal(await sample('height_age_seconds'), 29);
    clock.advance(2);
    await watcher.poll();
    assert.equal(await sample('height_age_seconds'), 31);
    assert.equal(await sample('stalled'), 1);
    // An unreachable node does not hide a stall: the age keeps growing.
    node.state.raw.set('/status', { status: 502, body: 'bad gateway' });
    clock.advance(10);
    await watcher.poll();
    assert.equal(await sample('up'), 0);
    assert.equal(await sample('height_age_seconds'), 41);
    assert.equal(await sample('stalled'), 1);
    node.state.raw.delete('/status');
    node.state.height = 51;
    clock.advance(1);
    await watcher.poll();
    assert.equal(await sample('stalled'), 0);
    assert.equal(await sample('height_age_seconds'), 0);
  });

  it('counts misses from last_commit signatures: total, over the window, and in a row', async () => {
    // Commits 1..9 are readable at height 10 (block h+1 carries the commit of h).
    const node = await fake({
      validator: VALIDATOR,
      height: 10,
      missed: new Set([3, 7, 8, 9, 10, 11]),
      nilVotes: new Set([6]),
    });
    const { watcher, sample } = setup(node, { missedWindow: 5, blocksPerPoll: 100 });
    const r1 = await watcher.poll();
    assert.deepEqual(r1.errors, []);
    // First poll: the window's worth of the newest commits, 5..9.
    assert.deepEqual(
      r1.checked.map((c) => [c.height, c.missed]),
      [
        [5, false],
        [6, false], // a nil vote is a signature (block_id_flag 3)
        [7, true],
        [8, true],
        [9, true],
      ],
    );
    assert.ok(node.requests.includes('/block?height=10'));
    assert.ok(!node.requests.includes('/block?height=4'), 'commit 3 is outside the window');
    assert.equal(await sample('missed_blocks_total'), 3);
    assert.equal(await sample('signed_blocks_total'), 2);
    assert.equal(await sample('missed_blocks_window'), 3);
    assert.equal(await sample('consecutive_missed'), 3);
    assert.equal(await sample('last_checked_height'), 9);

    node.state.height = 13; // commits 10, 11 missed; 12 signed
    const r2 = await watcher.poll();
    assert.deepEqual(
      r2.checked.map((c) => [c.height, c.missed]),
      [
        [10, true],
        [11, true],
        [12, false],
      ],
    );
    assert.equal(await sample('missed_blocks_total'), 5);
    // Window of 5: commits 8..12 → 8, 9, 10, 11 missed.
    assert.equal(await sample('missed_blocks_window'), 4);
    assert.equal(await sample('window_blocks'), 5);
    assert.equal(await sample('consecutive_missed'), 0);

    // No new height: nothing is checked twice.
    const r3 = await watcher.poll();
    assert.deepEqual(r3.checked, []);
    assert.equal(await sample('missed_blocks_total'), 5);
  });

  it('fetches at most blocksPerPoll blocks per poll and skips what a pruned node no longer has', async () => {
    const node = await fake({ validator: VALIDATOR, height: 30, earliest: 1 });
    const { watcher, sample } = setup(node, { missedWindow: 20, blocksPerPoll: 4 });
    const r1 = await watcher.poll();
    assert.deepEqual(
      r1.checked.map((c) => c.height),
      [10, 11, 12, 13],
    );
    const r2 = await watcher.poll();
    assert.deepEqual(
      r2.checked.map((c) => c.height),
      [14, 15, 16, 17],
    );
    node.state.earliest = 25;
    const r3 = await watcher.poll();
    assert.deepEqual(
      r3.checked.map((c) => c.height),
      [24, 25, 26, 27],
    );
    assert.equal(await sample('signed_blocks_total'), 12);
  });

  it('reads jailed, bonded and tombstoned from the SDK REST; an unbonded validator does not miss', async () => {
    const node = await fake({ validator: VALIDATOR, height: 6, missed: new Set([4, 5, 6]) });
    node.state.rest.valoper = VALOPER;
    const { watcher, sample } = setup(node, {
      rest: node.url + '/',
      valoper: VALOPER,
      missedWindow: 10,
    });
    await watcher.poll();
    assert.ok(node.requests.includes(`/cosmos/staking/v1beta1/validators/${VALOPER}`));
    assert.ok(node.requests.includes(`/cosmos/slashing/v1beta1/signing_infos/${VALCONS}`));
    assert.equal(await sample('jailed'), 0);
    assert.equal(await sample('tombstoned'), 0);
    assert.equal(await sample('bonded'), 1);
    assert.equal(await sample('missed_blocks_total'), 2); // commits 4, 5 (bonded)

    node.state.rest.jailed = true;
    node.state.rest.status = 'BOND_STATUS_UNBONDING';
    node.state.rest.tombstoned = true;
    node.state.rest.missedCounter = 17;
    node.state.height = 8;
    await watcher.poll();
    assert.equal(await sample('jailed'), 1);
    assert.equal(await sample('tombstoned'), 1);
    assert.equal(await sample('bonded'), 0);
    assert.equal(await sample('sdk_missed_blocks_counter'), 17);
    // Commit 6 (missing, but not bonded) is not a miss; 7 is signed.
    assert.equal(await sample('missed_blocks_total'), 2);
    assert.equal(await sample('signed_blocks_total'), 4); // 1, 2, 3 and 7

    // A valoper the chain does not know: an HTTP probe error, the rest still works.
    const { watcher: other, sample: otherSample } = setup(node, {
      rest: node.url,
      valoper: bech32Encode('cosmosvaloper', Buffer.alloc(20, 7)),
    });
    const r = await other.poll();
    assert.deepEqual(
      r.errors.map((e) => [e.probe, e.kind]),
      [['validator', 'http']],
    );
    assert.match(r.errors[0]!.message, /404: validator not found/);
    assert.equal(await otherSample('probe_errors_total', { probe: 'validator', kind: 'http' }), 1);
    assert.equal(await otherSample('up'), 1);
  });

  it('a malformed answer is a typed probe error in the metrics, never a crash', async () => {
    const node = await fake({ validator: VALIDATOR, height: 10 });
    const { watcher, sample } = setup(node);
    node.state.raw.set('/status', { status: 200, body: '{"jsonrpc":"2.0","id":-1,"result":{' });
    const r1 = await watcher.poll();
    assert.deepEqual(
      r1.errors.map((e) => [e.probe, e.kind]),
      [['status', 'malformed']],
    );
    assert.ok(r1.errors[0] instanceof ProbeError);
    assert.equal(r1.errors[0]!.code, 'WATCH_PROBE_MALFORMED');
    assert.equal(await sample('up'), 0);
    assert.equal(await sample('probe_errors_total', { probe: 'status', kind: 'malformed' }), 1);
    assert.equal(await sample('peers'), 5, 'the other probes still ran');

    // Valid JSON, wrong shape: a height as a JSON number (cmtjson writes int64 as strings).
    node.state.raw.set('/status', {
      status: 200,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: -1,
        result: { sync_info: { latest_block_height: 10 } },
      }),
    });
    node.state.raw.set('/net_info', { status: 200, body: '<html>proxy</html>' });
    const r2 = await watcher.poll();
    assert.deepEqual(
      r2.errors.map((e) => [e.probe, e.kind]),
      [
        ['status', 'malformed'],
        ['net_info', 'malformed'],
      ],
    );
    assert.equal(await sample('probe_errors_total', { probe: 'status', kind: 'malformed' }), 2);

    // A block with a malformed commit signature stops the batch; it is retried next poll.
    node.state.raw.clear();
    node.state.raw.set('/block', {
      status: 200,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: -1,
        result: { block: { header: { chain_id: CHAIN, height: '6' }, last_commit: {} } },
      }),
    });
    const r3 = await watcher.poll();
    assert.deepEqual(
      r3.errors.map((e) => [e.probe, e.kind]),
      [['block', 'malformed']],
    );
    assert.deepEqual(r3.checked, []);
    node.state.raw.clear();
    const r4 = await watcher.poll();
    assert.deepEqual(r4.errors, []);
    assert.equal(r4.checked.length, 5);
    assert.equal(await sample('up'), 1);
  });

  it('a JSON-RPC error, a node of another chain and a closed port are probe errors of their kind', async () => {
    const node = await fake({ validator: VALIDATOR, height: 10 });
    const { watcher, sample } = setup(node);
    node.state.raw.set('/net_info', {
      status: 500,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: -1,
        error: { code: -32603, message: 'Internal error', data: 'boom' },
      }),
    });
    const r1 = await watcher.poll();
    assert.deepEqual(
      r1.errors.map((e) => [e.probe, e.kind, e.message]),
      [['net_info', 'rpc', 'net_info: Internal error: boom']],
    );
    node.state.raw.clear();
    node.state.network = 'otherchain-2';
    const r2 = await watcher.poll();
    assert.deepEqual(
      r2.errors.map((e) => [e.probe, e.kind]),
      [['status', 'wrong_chain']],
    );
    assert.equal(await sample('up'), 0);
    await node.close();
    nodes = nodes.filter((n) => n !== node);
    const r3 = await watcher.poll();
    assert.deepEqual(
      r3.errors.map((e) => [e.probe, e.kind]),
      [
        ['status', 'unreachable'],
        ['net_info', 'unreachable'],
      ],
    );
    assert.equal(await sample('probe_errors_total', { probe: 'status', kind: 'unreachable' }), 1);
  });
});

describe('watch config', () => {
  it('refuses REST without a way to name the validator, and a bad consensus address', () => {
    const entry = (address: string, rest: string) => `chains:
  - kind: cometbft
    chainId: c-1
    rpc: http://127.0.0.1:26657
${rest}    validatorAddress: "${address}"
`;
    assert.throws(
      () => parseYaml('watch.yaml', entry('1234', ''), WatchConfigSchema),
      (e: unknown) =>
        e instanceof ConfigError &&
        /watch\.yaml:5:\d+: chains\[0\]\.validatorAddress: 40 hex digits/.test(e.message),
    );
    assert.throws(
      () =>
        parseYaml(
          'watch.yaml',
          entry(VALIDATOR, '    rest: http://127.0.0.1:1317\n'),
          WatchConfigSchema,
        ),
      (e: unknown) =>
        e instanceof ConfigError &&
        /chains\[0\]\.rest: the REST probes need `valoper`/.test(e.message),
    );
    const parsed = parseYaml(
      'watch.yaml',
      entry(VALIDATOR, `    rest: http://127.0.0.1:1317\n    valoper: ${VALOPER}\n`),
      WatchConfigSchema,
    ).chains[0]!;
    assert.equal(parsed.kind === 'cometbft' ? parsed.rest : undefined, 'http://127.0.0.1:1317');
  });

  it('the example parses', () => {
    const c = loadWatchConfig(join(packageRoot(), 'examples', 'watch', 'watch.yaml'));
    // Other chains' entries follow (test/watch/decred.test.ts checks its own).
    assert.equal(c.chains[0]!.kind, 'cometbft');
  });
});

describe('vigil watch', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-watch-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('serves the watchers’ metrics and /healthz, and stops on SIGTERM', async () => {
    const node = await fake({ validator: VALIDATOR, height: 10, missed: new Set([9]) });
    const file = join(dir, 'watch.yaml');
    writeFileSync(
      file,
      `listen: { host: 127.0.0.1, port: 0 }
chains:
  - kind: cometbft
    chainId: ${CHAIN}
    rpc: ${node.url}
    validatorAddress: ${VALIDATOR}
    pollMs: 200
    missedWindow: 5
`,
    );
    const child = spawn(process.execPath, [CLI_ENTRY, 'watch', '--config', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const lines = createInterface({ input: child.stdout });
      let url: string | undefined;
      for await (const line of lines) {
        const entry = JSON.parse(line) as { msg: string; url?: string };
        if (entry.msg.startsWith('watching')) {
          url = entry.url;
          break;
        }
      }
      assert.ok(url, stderr);
      // Bounded wait for the first poll to land in the metrics.
      let text = '';
      for (let i = 0; i < 50; i++) {
        text = await (await fetch(url + '/metrics')).text();
        if (sampleOf(text, 'vigil_watch_cometbft_missed_blocks_total', { chain_id: CHAIN }) === 1)
          break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(sampleOf(text, 'vigil_watch_cometbft_height', { chain_id: CHAIN }), 10);
      assert.equal(
        sampleOf(text, 'vigil_watch_cometbft_missed_blocks_total', { chain_id: CHAIN }),
        1,
      );
      const health = (await (await fetch(url + '/healthz')).json()) as { status: string };
      assert.equal(health.status, 'ok');
      assert.equal((await fetch(url + '/nope')).status, 404);
    } finally {
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
    }
  });

  it('a config problem is reported with its line, no stack trace', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'chains: []\n');
    const child = spawn(process.execPath, [CLI_ENTRY, 'watch', '--config', file]);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 1);
    assert.match(stderr, /CONFIG_INVALID/);
    assert.match(stderr, /bad\.yaml:1:\d+: chains/);
    assert.doesNotMatch(stderr, /\n\s+at /);
  });
});

describe('README', () => {
  it('names every CometBFT watcher metric', async () => {
    const readme = readFileSync(join(packageRoot(), 'README.md'), 'utf8');
    const registry = new Registry();
    new CometbftWatcher(
      CometbftWatchSchema.parse({
        kind: 'cometbft',
        chainId: CHAIN,
        rpc: 'http://127.0.0.1:1',
        validatorAddress: VALIDATOR,
      }),
      registry,
    );
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
    assert.ok(names.length >= 15, names.join(', '));
    for (const name of names)
      assert.ok(readme.includes(`\`${name}`), `README's watcher metrics omit ${name}`);
  });
});
