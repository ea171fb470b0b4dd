/**
 * The Cardano chain watcher: gLiveView's forging view, read from the cardano-node's own
 * Prometheus endpoint (text format) — KES periods left and when the hot key expires, blocks
 * forged / adopted / not adopted, missed slot leadership checks, and the block-delay CDF that
 * the large-pool guidelines' 4,000 ms rule is about.
 *
 * The node names its metrics in one of three ways, all read here (`NODE_METRIC_NAMES`):
 *
 * - `legacy`: the old tracing system (iohk-monitoring), cardano-node up to 10.x's
 *   `hasPrometheus`: cardano-node/src/Cardano/Tracing/Tracers.hs (before dfea9b3a1 removed it;
 *   read at 1276f2268f4e): `liftCounting … "metrics.Forge" "forged" / "adopted" / "didnt-adopt"`,
 *   `traceCounter "slotsMissedNum"` / `"blocksForgedNum"`, `LogValue "remainingKESPeriods"`, the
 *   labels `cardano.node.metrics.blockfetchclient.blockdelay.cdfOne/cdfThree/cdfFive`; on the
 *   wire `cardano_node_metrics_Forge_forged_int`, `…_slotsMissedNum_int`,
 *   `…_blockfetchclient_blockdelay_cdfFive` (no suffix), as upstream's own alert expressions
 *   spell them (bench/cardano-timeseries-io/docs/sre-expressions.txt). Recognised by
 *   `ekg_server_timestamp_ms`, which only the old system's EKG store has (the migration guide,
 *   cardano-foundation/developer-portal docs/operate-a-stake-pool/node-operations/
 *   new-tracing-system/metrics-migration.md, lists it as removed).
 * - `new`: the new tracing system (trace-dispatcher), scraped from cardano-tracer or the node's
 *   `PrometheusSimple` backend: trace-dispatcher/src/Cardano/Logging/Tracer/EKG.hs names an
 *   `IntM` `<prefix><name>_int`, a `DoubleM` `…_real`, a `CounterM` `…_counter`, with the prefix
 *   `cardano.node.metrics.` (cardano-node/src/Cardano/Node/Tracing/DefaultTraceConfig.hs) and
 *   dots and dashes made underscores (trace-dispatcher/src/Cardano/Logging/Prometheus/
 *   Exposition.hs). The names: `IntM "remainingKESPeriods"` (Tracers/KESInfo.hs),
 *   `CounterM "Forge.forged" / "Forge.adopted" / "Forge.didnt-adopt"` (Tracers/Consensus.hs,
 *   counters since fea2c9ff8, node 10.3), `IntM "blocksForged" / "slotsMissed"`
 *   (Tracers/ForgingStats.hs), `DoubleM "blockfetchclient.blockdelay.cdfOne/cdfThree/cdfFive"`
 *   (Tracers/Consensus.hs, ClientMetrics), `IntM "slotNum"` (Tracers/ChainDB.hs).
 * - `new_nosuffix`: the same, with `PrometheusSimple`'s `nosuffix` switch (or cardano-tracer's
 *   `metricsNoSuffix`): `_int`, `_counter`, `_real` stripped (Exposition.hs, stripSuffix).
 *
 * The node creates a counter at its first event, so an absent forge counter reads 0; a gauge
 * that is absent (no KES metrics on a relay, no CDF before the first block fetch) has no series
 * here either. Only the lines named in the table are parsed, strictly
 * (src/status/prometheus-text.ts): the rest of the node's exposition is not ours to judge.
 *
 * An endpoint that cannot be reached, answers an HTTP error, or answers something that is not a
 * cardano-node's metrics is a `ProbeError`, counted in
 * `vigil_watch_cardano_probe_errors_total{probe,kind}`; the watcher never throws out of a poll.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { errorMessage } from '../errors.js';
import { MetricsFormatError, parsePrometheusText } from '../status/prometheus-text.js';
import type { WatchLog } from './cometbft.js';
import { PollLoop, ProbeError, fetchProbe, perRegistry, type ProbeErrorKind } from './probe.js';
import type { CardanoWatchConfig } from './config.js';

export const CARDANO_PROBES = ['metrics'] as const;
export type CardanoProbe = (typeof CARDANO_PROBES)[number];
export const CARDANO_PROBE_ERROR_KINDS = [
  'unreachable',
  'timeout',
  'http',
  'malformed',
] as const satisfies readonly ProbeErrorKind[];

export const NAMINGS = ['new', 'new_nosuffix', 'legacy'] as const;
export type Naming = (typeof NAMINGS)[number];

/** The CDF points the node exports (seconds): the 4,000 ms rule lies between 3 s and 5 s. */
export const CDF_POINTS = ['1s', '3s', '5s'] as const;
export type CdfPoint = (typeof CDF_POINTS)[number];

export interface NodeMetricNames {
  readonly remainingKESPeriods: string;
  readonly slot: string;
  /** The forge counter first, then the forging-stats count (used when the first is absent). */
  readonly forged: readonly [string, string];
  readonly adopted: string;
  readonly didntAdopt: string;
  readonly missedSlots: string;
  readonly cdf: Readonly<Record<CdfPoint, string>>;
}

const P = 'cardano_node_metrics_';
const CDF = `${P}blockfetchclient_blockdelay_`;

/** The cardano-node's names for what is watched, per naming scheme (sources above). */
export const NODE_METRIC_NAMES: Readonly<Record<Naming, NodeMetricNames>> = {
  new: {
    remainingKESPeriods: `${P}remainingKESPeriods_int`,
    slot: `${P}slotNum_int`,
    forged: [`${P}Forge_forged_counter`, `${P}blocksForged_int`],
    adopted: `${P}Forge_adopted_counter`,
    didntAdopt: `${P}Forge_didnt_adopt_counter`,
    missedSlots: `${P}slotsMissed_int`,
    cdf: { '1s': `${CDF}cdfOne_real`, '3s': `${CDF}cdfThree_real`, '5s': `${CDF}cdfFive_real` },
  },
  new_nosuffix: {
    remainingKESPeriods: `${P}remainingKESPeriods`,
    slot: `${P}slotNum`,
    forged: [`${P}Forge_forged`, `${P}blocksForged`],
    adopted: `${P}Forge_adopted`,
    didntAdopt: `${P}Forge_didnt_adopt`,
    missedSlots: `${P}slotsMissed`,
    cdf: { '1s': `${CDF}cdfOne`, '3s': `${CDF}cdfThree`, '5s': `${CDF}cdfFive` },
  },
  legacy: {
    remainingKESPeriods: `${P}remainingKESPeriods_int`,
    slot: `${P}slotNum_int`,
    forged: [`${P}Forge_forged_int`, `${P}blocksForgedNum_int`],
    adopted: `${P}Forge_adopted_int`,
    didntAdopt: `${P}Forge_didnt_adopt_int`,
    missedSlots: `${P}slotsMissedNum_int`,
    cdf: { '1s': `${CDF}cdfOne`, '3s': `${CDF}cdfThree`, '5s': `${CDF}cdfFive` },
  },
};

/** Only the old tracing system's EKG store has it. */
export const LEGACY_MARKER = 'ekg_server_timestamp_ms';

/** What one scrape of the node said, in its own units. */
export interface NodeReading {
  readonly naming: Naming;
  readonly remainingKESPeriods?: number;
  readonly slot?: number;
  readonly forged: number;
  readonly adopted: number;
  readonly didntAdopt: number;
  readonly missedSlots: number;
  readonly cdf: Partial<Record<CdfPoint, number>>;
}

const malformed = (message: string) =>
  new ProbeError<CardanoProbe>('metrics', 'malformed', message);

/**
 * Reads a cardano-node's exposition: finds its naming scheme and the watched values. Throws a
 * `ProbeError` (malformed) for text that is not a cardano-node's metrics or a watched line that
 * is not well-formed.
 */
export function readNodeMetrics(text: string, where: string): NodeReading {
  const lines = text.split('\n');
  const names = lines.map((l) =>
    l.startsWith('#') ? undefined : /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)?.[0],
  );
  const nodeNames = names.filter((n): n is string => n?.startsWith(P) === true);
  if (nodeNames.length === 0)
    throw malformed(
      `no cardano-node metrics (${P}…) in the answer: ${JSON.stringify(text.slice(0, 80))}`,
    );
  const naming: Naming = names.includes(LEGACY_MARKER)
    ? 'legacy'
    : nodeNames.some((n) => /_(int|counter|real)$/.test(n))
      ? 'new'
      : 'new_nosuffix';
  const table = NODE_METRIC_NAMES[naming];
  const wanted = new Set([
    table.remainingKESPeriods,
    table.slot,
    ...table.forged,
    table.adopted,
    table.didntAdopt,
    table.missedSlots,
    ...Object.values(table.cdf),
  ]);
  // Blank every other line: line numbers in errors stay those of the answer.
  const selected = lines.map((l, i) => (wanted.has(names[i] ?? '') ? l : '')).join('\n');
  let samples;
  try {
    samples = parsePrometheusText(selected, where);
  } catch (err) {
    if (err instanceof MetricsFormatError) throw malformed(err.message);
    throw err;
  }
  const values = new Map<string, number>();
  for (const s of samples) {
    if (values.has(s.name)) throw malformed(`${s.name} appears more than once`);
    values.set(s.name, s.value);
  }
  const count = (name: string): number | undefined => {
    const v = values.get(name);
    if (v !== undefined && !(Number.isInteger(v) && v >= 0))
      throw malformed(`${name} is ${v}, not a count`);
    return v;
  };
  const cdf: Partial<Record<CdfPoint, number>> = {};
  for (const point of CDF_POINTS) {
    const v = values.get(table.cdf[point]);
    if (v === undefined || Number.isNaN(v)) continue; // NaN: no block fetched yet (0 / 0)
    if (!(v >= 0 && v <= 1)) throw malformed(`${table.cdf[point]} is ${v}, not a fraction`);
    cdf[point] = v;
  }
  const remaining = count(table.remainingKESPeriods);
  const slot = count(table.slot);
  return {
    naming,
    ...(remaining !== undefined ? { remainingKESPeriods: remaining } : {}),
    ...(slot !== undefined ? { slot } : {}),
    forged: count(table.forged[0]) ?? count(table.forged[1]) ?? 0,
    adopted: count(table.adopted) ?? 0,
    didntAdopt: count(table.didntAdopt) ?? 0,
    missedSlots: count(table.missedSlots) ?? 0,
    cdf,
  };
}

/**
 * Seconds until the hot KES key expires: remaining periods × slotsPerKESPeriod × slot length,
 * less the part of the current period already behind the node's tip slot when it is known (the
 * KES period is the absolute slot divided by slotsPerKESPeriod; the key is valid up to the start
 * of its expiry period). Never negative.
 */
export function kesRemainingSeconds(
  remainingPeriods: number,
  slot: number | undefined,
  slotsPerKESPeriod: number,
  slotLengthSeconds: number,
): number {
  const elapsed = slot !== undefined && remainingPeriods > 0 ? slot % slotsPerKESPeriod : 0;
  return Math.max(0, (remainingPeriods * slotsPerKESPeriod - elapsed) * slotLengthSeconds);
}

type ChainLabel = 'chain_id';

/** The Cardano watchers' metrics, one set per registry, one series per chain. */
export class CardanoWatchMetrics {
  readonly up: Gauge<ChainLabel>;
  readonly naming: Gauge<ChainLabel | 'scheme'>;
  readonly slot: Gauge<ChainLabel>;
  readonly kesPeriods: Gauge<ChainLabel>;
  readonly kesSeconds: Gauge<ChainLabel>;
  readonly forged: Gauge<ChainLabel>;
  readonly adopted: Gauge<ChainLabel>;
  readonly didntAdopt: Gauge<ChainLabel>;
  readonly missedSlots: Gauge<ChainLabel>;
  readonly cdf: Gauge<ChainLabel | 'within'>;
  readonly probeErrors: Counter<ChainLabel | 'probe' | 'kind'>;

  constructor(registry: Registry) {
    const gauge = (name: string, help: string) =>
      new Gauge({ name, help, labelNames: ['chain_id'], registers: [registry] });
    const p = 'vigil_watch_cardano_';
    this.up = gauge(`${p}up`, "1 when the last scrape of the node's metrics was usable.");
    this.naming = new Gauge({
      name: `${p}node_metric_names`,
      help: 'The naming scheme of the node metrics (new, new_nosuffix, legacy): 1 for the one seen last.',
      labelNames: ['chain_id', 'scheme'],
      registers: [registry],
    });
    this.slot = gauge(`${p}slot`, "The node's tip slot (slotNum).");
    this.kesPeriods = gauge(
      `${p}kes_periods_remaining`,
      "The node's remainingKESPeriods: KES periods until the operational certificate's hot key expires.",
    );
    this.kesSeconds = gauge(
      `${p}kes_remaining_seconds`,
      'Estimated seconds until the hot KES key expires: remaining periods × slotsPerKESPeriod × slot length, less the part of the current period behind the tip slot.',
    );
    this.forged = gauge(
      `${p}forged_blocks`,
      "The node's forged-blocks counter (restarts at 0 with the node: use increase()).",
    );
    this.adopted = gauge(
      `${p}adopted_blocks`,
      "The node's counter of forged blocks it adopted (restarts with the node).",
    );
    this.didntAdopt = gauge(
      `${p}didnt_adopt_blocks`,
      "The node's counter of forged blocks it did not adopt (restarts with the node).",
    );
    this.missedSlots = gauge(
      `${p}missed_slots`,
      "The node's count of slots whose leadership check it missed (restarts with the node).",
    );
    this.cdf = new Gauge({
      name: `${p}block_delay_cdf`,
      help: 'Fraction of recent blocks fetched within 1, 3 or 5 s of their slot (the node’s blockdelay cdfOne/cdfThree/cdfFive); the 4,000 ms rule lies between 3s and 5s.',
      labelNames: ['chain_id', 'within'],
      registers: [registry],
    });
    this.probeErrors = new Counter({
      name: `${p}probe_errors_total`,
      help: 'Scrapes of the node without a usable answer, by probe (metrics) and kind (unreachable, timeout, http, malformed).',
      labelNames: ['chain_id', 'probe', 'kind'],
      registers: [registry],
    });
  }
}

/** The one metrics set of a registry (several watchers share it, one chain_id each). */
export const cardanoWatchMetrics = perRegistry((r) => new CardanoWatchMetrics(r));

export interface CardanoWatcherOptions {
  readonly fetch?: typeof globalThis.fetch;
  readonly log?: WatchLog;
}

export interface CardanoPollReport {
  readonly errors: readonly ProbeError<CardanoProbe>[];
  readonly reading?: NodeReading;
  /** The KES estimate set this poll, when the node exports remainingKESPeriods. */
  readonly kesRemainingSeconds?: number;
}

export class CardanoWatcher {
  private readonly metrics: CardanoWatchMetrics;
  private readonly fetchFn: typeof globalThis.fetch;
  private readonly labels: { chain_id: string };
  private lastDidntAdopt: number | undefined;
  private readonly loop: PollLoop;

  constructor(
    readonly config: CardanoWatchConfig,
    registry: Registry,
    private readonly options: CardanoWatcherOptions = {},
  ) {
    this.loop = new PollLoop(() => this.poll(), config.pollMs);
    this.metrics = cardanoWatchMetrics(registry);
    this.fetchFn = options.fetch ?? globalThis.fetch;
    this.labels = { chain_id: config.name };
    const m = this.metrics;
    m.up.set(this.labels, 0);
    for (const probe of CARDANO_PROBES)
      for (const kind of CARDANO_PROBE_ERROR_KINDS)
        m.probeErrors.inc({ ...this.labels, probe, kind }, 0);
  }

  /** One scrape. Never throws: a failure is in the report and the metrics. */
  async poll(): Promise<CardanoPollReport> {
    let reading: NodeReading;
    try {
      reading = readNodeMetrics(await this.scrape(), this.config.metricsUrl);
    } catch (err) {
      const e =
        err instanceof ProbeError
          ? (err as ProbeError<CardanoProbe>)
          : malformed(`unexpected: ${errorMessage(err)}`);
      this.metrics.probeErrors.inc({ ...this.labels, probe: e.probe, kind: e.kind });
      this.metrics.up.set(this.labels, 0);
      return { errors: [e] };
    }
    const m = this.metrics;
    const l = this.labels;
    m.up.set(l, 1);
    for (const scheme of NAMINGS) m.naming.set({ ...l, scheme }, scheme === reading.naming ? 1 : 0);
    const setOrRemove = (g: Gauge<ChainLabel>, v: number | undefined) =>
      v === undefined ? g.remove(l) : g.set(l, v);
    setOrRemove(m.slot, reading.slot);
    setOrRemove(m.kesPeriods, reading.remainingKESPeriods);
    const kes =
      reading.remainingKESPeriods !== undefined
        ? kesRemainingSeconds(
            reading.remainingKESPeriods,
            reading.slot,
            this.config.slotsPerKESPeriod,
            this.config.slotLengthSeconds,
          )
        : undefined;
    setOrRemove(m.kesSeconds, kes);
    m.forged.set(l, reading.forged);
    m.adopted.set(l, reading.adopted);
    m.didntAdopt.set(l, reading.didntAdopt);
    m.missedSlots.set(l, reading.missedSlots);
    for (const within of CDF_POINTS) {
      const v = reading.cdf[within];
      if (v === undefined) m.cdf.remove({ ...l, within });
      else m.cdf.set({ ...l, within }, v);
    }
    if (this.lastDidntAdopt !== undefined && reading.didntAdopt > this.lastDidntAdopt)
      this.options.log?.warn(
        { chain: this.config.name, didntAdopt: reading.didntAdopt },
        'the node forged a block it did not adopt',
      );
    this.lastDidntAdopt = reading.didntAdopt;
    return { errors: [], reading, ...(kes !== undefined ? { kesRemainingSeconds: kes } : {}) };
  }

  /** Polls every pollMs until stop(); a poll never overlaps the next. */
  start(): void {
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  private async scrape(): Promise<string> {
    const res = await fetchProbe<CardanoProbe>(
      this.fetchFn,
      'metrics',
      this.config.metricsUrl,
      this.config.timeoutMs,
      'text/plain; version=0.0.4',
    );
    const text = res.text;
    if (!res.ok)
      throw new ProbeError<CardanoProbe>(
        'metrics',
        'http',
        `HTTP ${res.status}: ${JSON.stringify(text.slice(0, 80))}`,
      );
    return text;
  }
}
