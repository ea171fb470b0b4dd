/**
 * Issue 14 (chain watchers, Cardano): the watcher against a fake cardano-node metrics endpoint
 * writing the upstream names in all three namings (sources cited in ./fake-cardano.ts and
 * src/watch/cardano.ts): KES periods and the KES-end estimate, forged / adopted / didn't-adopt,
 * missed slots, the block-delay CDF; an unreachable, failing or malformed endpoint counted as a
 * typed probe error without a crash; the config; `vigil watch` serving a Cardano chain.
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
  CardanoWatcher,
  NODE_METRIC_NAMES,
  kesRemainingSeconds,
  readNodeMetrics,
} from '../../src/watch/cardano.js';
import { ProbeError } from '../../src/watch/cometbft.js';
import {
  CardanoWatchSchema,
  WatchConfigSchema,
  type CardanoWatchInput,
} from '../../src/watch/config.js';
import { withWatchProcess } from './watch-process.js';
import { sampleOf } from '../helpers/prometheus-text.js';
import { exposition, startFakeCardano, type FakeCardanoNode } from './fake-cardano.js';

const CHAIN = 'cardano-mainnet';
const DAY = 86_400;

let nodes: FakeCardanoNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  nodes = [];
});

async function fake(init: Parameters<typeof startFakeCardano>[0]) {
  const n = await startFakeCardano(init);
  nodes.push(n);
  return n;
}

function setup(url: string, extra: Partial<CardanoWatchInput> = {}) {
  const registry = new Registry();
  const warnings: string[] = [];
  const config = CardanoWatchSchema.parse({
    kind: 'cardano',
    name: CHAIN,
    metricsUrl: url,
    timeoutMs: 1000,
    ...extra,
  });
  const watcher = new CardanoWatcher(config, registry, {
    log: { info: () => {}, warn: (_o, msg) => warnings.push(msg) },
  });
  const sample = async (name: string, labels: Record<string, string> = {}) =>
    sampleOf(await registry.metrics(), `vigil_watch_cardano_${name}`, {
      chain_id: CHAIN,
      ...labels,
    });
  return { watcher, registry, sample, warnings };
}

/** A block producer: 30 periods left, 1000 slots into the current one (mainnet: 129600). */
const PRODUCER = {
  remainingKESPeriods: 30,
  slot: 129_600 * 1000 + 1000,
  forged: 7,
  adopted: 6,
  didntAdopt: 1,
  missedSlots: 3,
  cdf: { one: 0.61, three: 0.93, five: 0.985 },
};

describe('Cardano watcher', () => {
  for (const naming of ['new', 'new_nosuffix', 'legacy'] as const) {
    it(`reads the ${naming} names: KES, forge counters, missed slots, block-delay CDF`, async () => {
      const node = await fake({ naming, ...PRODUCER });
      const { watcher, sample } = setup(node.url);
      const r = await watcher.poll();
      assert.deepEqual(r.errors, []);
      assert.equal(r.reading?.naming, naming);
      assert.equal(await sample('up'), 1);
      for (const scheme of ['new', 'new_nosuffix', 'legacy'])
        assert.equal(await sample('node_metric_names', { scheme }), scheme === naming ? 1 : 0);
      assert.equal(await sample('kes_periods_remaining'), 30);
      assert.equal(await sample('slot'), PRODUCER.slot);
      // 30 periods of 129600 one-second slots, less the 1000 slots of this one already gone.
      assert.equal(await sample('kes_remaining_seconds'), 30 * 129_600 - 1000);
      assert.equal(r.kesRemainingSeconds, 30 * 129_600 - 1000);
      assert.equal(await sample('forged_blocks'), 7);
      assert.equal(await sample('adopted_blocks'), 6);
      assert.equal(await sample('didnt_adopt_blocks'), 1);
      assert.equal(await sample('missed_slots'), 3);
      assert.equal(await sample('block_delay_cdf', { within: '1s' }), 0.61);
      assert.equal(await sample('block_delay_cdf', { within: '3s' }), 0.93);
      assert.equal(await sample('block_delay_cdf', { within: '5s' }), 0.985);
    });
  }

  it('the names are the upstream ones, each scheme apart', () => {
    // Spot checks against the sources cited in src/watch/cardano.ts and the migration guide.
    assert.equal(NODE_METRIC_NAMES.new.forged[0], 'cardano_node_metrics_Forge_forged_counter');
    assert.equal(NODE_METRIC_NAMES.legacy.forged[0], 'cardano_node_metrics_Forge_forged_int');
    assert.equal(NODE_METRIC_NAMES.new_nosuffix.forged[0], 'cardano_node_metrics_Forge_forged');
    assert.equal(
      NODE_METRIC_NAMES.new.didntAdopt,
      'cardano_node_metrics_Forge_didnt_adopt_counter',
    );
    assert.equal(NODE_METRIC_NAMES.legacy.missedSlots, 'cardano_node_metrics_slotsMissedNum_int');
    assert.equal(NODE_METRIC_NAMES.new.missedSlots, 'cardano_node_metrics_slotsMissed_int');
    assert.equal(
      NODE_METRIC_NAMES.new.cdf['5s'],
      'cardano_node_metrics_blockfetchclient_blockdelay_cdfFive_real',
    );
    assert.equal(
      NODE_METRIC_NAMES.legacy.cdf['5s'],
      'cardano_node_metrics_blockfetchclient_blockdelay_cdfFive',
    );
    assert.equal(
      NODE_METRIC_NAMES.new.remainingKESPeriods,
      'cardano_node_metrics_remainingKESPeriods_int',
    );
    assert.equal(
      NODE_METRIC_NAMES.new_nosuffix.remainingKESPeriods,
      'cardano_node_metrics_remainingKESPeriods',
    );
    // A legacy counter is not read as a new-tracing one, nor the other way round.
    const legacyText = exposition({ naming: 'legacy', ...PRODUCER });
    assert.ok(legacyText.includes('cardano_node_metrics_Forge_forged_int 7'));
    const asNew = readNodeMetrics(legacyText.replace(/^ekg_server_timestamp_ms.*$/m, ''), 'x');
    assert.equal(asNew.naming, 'new');
    assert.equal(asNew.forged, 0);
  });

  it('the KES estimate follows slotsPerKESPeriod and the slot length; without slotNum it is periods × length', async () => {
    const node = await fake({ naming: 'new', remainingKESPeriods: 4, slot: 3600 * 77 + 600 });
    const { watcher, sample } = setup(node.url, { slotsPerKESPeriod: 3600, slotLengthSeconds: 2 });
    await watcher.poll();
    assert.equal(await sample('kes_remaining_seconds'), (4 * 3600 - 600) * 2);
    delete node.state.slot;
    await watcher.poll();
    assert.equal(await sample('kes_remaining_seconds'), 4 * 3600 * 2);
    assert.equal(await sample('slot'), undefined);
    node.state.remainingKESPeriods = 0;
    node.state.slot = 5;
    await watcher.poll();
    assert.equal(await sample('kes_remaining_seconds'), 0);
    // The mainnet defaults: 129600 slots of 1 s, 1.5 days a period.
    assert.equal(kesRemainingSeconds(10, undefined, 129_600, 1), 15 * DAY);
    assert.equal(kesRemainingSeconds(1, 129_600 * 5 + 129_000, 129_600, 1), 600);
  });

  it('a relay: no KES series, no CDF before a block is fetched, absent counters read 0', async () => {
    const node = await fake({ naming: 'new', slot: 42 });
    const { watcher, sample } = setup(node.url);
    const r = await watcher.poll();
    assert.deepEqual(r.errors, []);
    assert.equal(r.kesRemainingSeconds, undefined);
    assert.equal(await sample('kes_periods_remaining'), undefined);
    assert.equal(await sample('kes_remaining_seconds'), undefined);
    assert.equal(await sample('block_delay_cdf', { within: '5s' }), undefined);
    for (const m of ['forged_blocks', 'adopted_blocks', 'didnt_adopt_blocks', 'missed_slots'])
      assert.equal(await sample(m), 0, m);
    // A series that was there and is gone again (the node restarted as a relay) is removed.
    node.state.remainingKESPeriods = 3;
    node.state.cdf = { one: 0.5, three: 0.9, five: 0.95 };
    await watcher.poll();
    assert.equal(await sample('kes_periods_remaining'), 3);
    delete node.state.remainingKESPeriods;
    node.state.extra = ['cardano_node_metrics_blockfetchclient_blockdelay_cdfOne_real NaN'];
    delete node.state.cdf;
    await watcher.poll();
    assert.equal(await sample('kes_periods_remaining'), undefined);
    // NaN is the node's 0 / 0 before its first fetch: no value.
    assert.equal(await sample('block_delay_cdf', { within: '1s' }), undefined);
  });

  it('new tracing without the Forge.forged counter: the forging-stats count', async () => {
    const node = await fake({ naming: 'new', forged: 5, forgingStatsOnly: true });
    const { watcher, sample } = setup(node.url);
    await watcher.poll();
    assert.equal(await sample('forged_blocks'), 5);
  });

  it('a block forged and not adopted is logged once when the counter moves', async () => {
    const node = await fake({ naming: 'legacy', ...PRODUCER, didntAdopt: 0 });
    const { watcher, warnings } = setup(node.url);
    await watcher.poll();
    await watcher.poll();
    assert.deepEqual(warnings, []);
    node.state.didntAdopt = 1;
    await watcher.poll();
    await watcher.poll();
    assert.deepEqual(warnings, ['the node forged a block it did not adopt']);
  });

  it('unreachable, timeout, HTTP error and malformed answers are counted probe errors; the watcher recovers', async () => {
    // A closed port: nothing listens there.
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    const down = setup(`http://127.0.0.1:${closed}/metrics`);
    const r0 = await down.watcher.poll();
    assert.equal(r0.errors.length, 1);
    assert.ok(r0.errors[0] instanceof ProbeError);
    assert.equal(r0.errors[0]!.kind, 'unreachable');
    assert.equal(r0.errors[0]!.code, 'WATCH_PROBE_UNREACHABLE');
    assert.equal(await down.sample('up'), 0);
    assert.equal(
      await down.sample('probe_errors_total', { probe: 'metrics', kind: 'unreachable' }),
      1,
    );

    const node = await fake({ naming: 'new', ...PRODUCER });
    const { watcher, sample } = setup(node.url, { timeoutMs: 200 });
    await watcher.poll();
    const cases: Array<[string, () => void, string, RegExp]> = [
      ['HTTP 500', () => (node.state.raw = { status: 500, body: 'oops' }), 'http', /HTTP 500/],
      [
        'an HTML page',
        () => (node.state.raw = { status: 200, body: '<html><body>hello</body></html>' }),
        'malformed',
        /no cardano-node metrics/,
      ],
      [
        "another program's metrics",
        () => (node.state.raw = { status: 200, body: 'process_cpu_seconds_total 3\n' }),
        'malformed',
        /no cardano-node metrics/,
      ],
      [
        'a watched line that is not a sample',
        () => {
          delete node.state.raw;
          node.state.extra = ['cardano_node_metrics_Forge_adopted_counter{ 3'];
        },
        'malformed',
        /line \d+ of the metrics/,
      ],
      [
        'a count that is not one',
        () => {
          node.state.adopted = 0; // the node's own counter line is then absent
          node.state.extra = ['cardano_node_metrics_Forge_adopted_counter -2'];
        },
        'malformed',
        /Forge_adopted_counter is -2, not a count/,
      ],
      [
        'a CDF above 1',
        () => {
          node.state.extra = [];
          node.state.adopted = 6;
          node.state.cdf = { one: 0.5, three: 0.9, five: 1.5 };
        },
        'malformed',
        /not a fraction/,
      ],
      [
        'no answer in time',
        () => {
          node.state.cdf = PRODUCER.cdf;
          node.state.delayMs = 600;
        },
        'timeout',
        /within 200 ms/,
      ],
    ];
    for (const [what, arrange, kind, message] of cases) {
      arrange();
      const r = await watcher.poll();
      assert.equal(r.errors.length, 1, what);
      assert.equal(r.errors[0]!.kind, kind, what);
      assert.match(r.errors[0]!.message, message, what);
      assert.equal(await sample('up'), 0, what);
      // The last good values stay for the dashboards.
      assert.equal(await sample('kes_periods_remaining'), 30, what);
    }
    assert.equal(await sample('probe_errors_total', { probe: 'metrics', kind: 'malformed' }), 5);
    assert.equal(await sample('probe_errors_total', { probe: 'metrics', kind: 'http' }), 1);
    assert.equal(await sample('probe_errors_total', { probe: 'metrics', kind: 'timeout' }), 1);
    delete node.state.delayMs;
    const ok = await watcher.poll();
    assert.deepEqual(ok.errors, []);
    assert.equal(await sample('up'), 1);
  });

  it('a name given twice is malformed, not a guess', () => {
    const text = exposition({ naming: 'new', ...PRODUCER }).replace(
      '# EOF',
      'cardano_node_metrics_remainingKESPeriods_int 31\n# EOF',
    );
    assert.throws(
      () => readNodeMetrics(text, 'x'),
      (e: unknown) =>
        e instanceof ProbeError && e.kind === 'malformed' && /more than once/.test(e.message),
    );
  });
});

describe('Cardano watch config', () => {
  it('defaults to mainnet KES timing and rejects unknown or bad fields', () => {
    const c = CardanoWatchSchema.parse({
      kind: 'cardano',
      name: CHAIN,
      metricsUrl: 'http://127.0.0.1:12798/metrics/',
    });
    assert.equal(c.slotsPerKESPeriod, 129_600);
    assert.equal(c.slotLengthSeconds, 1);
    assert.equal(c.pollMs, 10_000);
    assert.equal(c.metricsUrl, 'http://127.0.0.1:12798/metrics');
    for (const bad of [
      { metricsUrl: 'ftp://x/metrics' },
      { slotsPerKESPeriod: 0 },
      { slotLengthSeconds: -1 },
      { name: 'has space' },
      { chainId: 'x' },
    ])
      assert.equal(
        CardanoWatchSchema.safeParse({
          kind: 'cardano',
          name: CHAIN,
          metricsUrl: 'http://127.0.0.1:12798/metrics',
          ...bad,
        }).success,
        false,
        JSON.stringify(bad),
      );
  });

  it('a cardano chain next to a CometBFT one; one name each', () => {
    const yaml = (second: string) => `chains:
  - kind: cometbft
    chainId: hub
    rpc: http://127.0.0.1:26657
    validatorAddress: A1B2C3D4E5F60718293A4B5C6D7E8F9012345678
  - kind: cardano
    name: ${second}
    metricsUrl: http://127.0.0.1:12798/metrics
    slotsPerKESPeriod: 129600
`;
    const c = parseYaml('watch.yaml', yaml(CHAIN), WatchConfigSchema);
    assert.deepEqual(
      c.chains.map((x) => x.kind),
      ['cometbft', 'cardano'],
    );
    assert.throws(
      () => parseYaml('watch.yaml', yaml('hub'), WatchConfigSchema),
      (e: unknown) => e instanceof ConfigError && /watched once/.test(e.message),
    );
  });
});

describe('vigil watch (Cardano)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-watch-cardano-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('serves a Cardano chain’s metrics and names it on /healthz', async () => {
    const node = await fake({ naming: 'new', ...PRODUCER });
    const file = join(dir, 'watch.yaml');
    writeFileSync(
      file,
      `listen: { host: 127.0.0.1, port: 0 }
chains:
  - kind: cardano
    name: ${CHAIN}
    metricsUrl: ${node.url}
    pollMs: 200
`,
    );
    await withWatchProcess(file, CHAIN, async (watch) => {
      const text = await watch.metricsWhen(
        (t) => sampleOf(t, 'vigil_watch_cardano_up', { chain_id: CHAIN }) === 1,
      );
      assert.equal(
        sampleOf(text, 'vigil_watch_cardano_kes_remaining_seconds', { chain_id: CHAIN }),
        30 * 129_600 - 1000,
      );
      assert.deepEqual(await watch.healthz(), {
        status: 'ok',
        chains: [{ kind: 'cardano', name: CHAIN }],
      });
    });
  });
});

describe('README (Cardano)', () => {
  it('names every Cardano watcher metric', async () => {
    const readme = readFileSync(join(packageRoot(), 'README.md'), 'utf8');
    const registry = new Registry();
    const watcher = new CardanoWatcher(
      CardanoWatchSchema.parse({ kind: 'cardano', name: CHAIN, metricsUrl: 'http://127.0.0.1:1' }),
      registry,
    );
    assert.ok(watcher);
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
    assert.ok(names.length >= 11, names.join(', '));
    for (const name of names)
      assert.ok(readme.includes(`\`${name}`), `README's Cardano metrics omit ${name}`);
  });
});
