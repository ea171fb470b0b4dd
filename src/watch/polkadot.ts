/**
 * The Polkadot chain watcher: a relay-chain validator's node, read over its JSON-RPC (HTTP
 * POST) and, when configured, its Prometheus endpoint.
 *
 * Each poll asks `system_health` (peers, isSyncing), `chain_getFinalizedHead` and
 * `chain_getHeader(hash)` (the finalized number), `chain_getHeader()` (the best number; asked
 * after the finalized one, so best ≥ finalized in one poll), then, when the config gives the
 * validator's on-chain session keys, `author_hasSessionKeys(keys)`: whether the node's keystore
 * holds their private keys, i.e. whether this node can author and vote with the keys the chain
 * expects. That method is unsafe: the node answers it on a localhost RPC (`--rpc-methods auto`)
 * or with `--rpc-methods unsafe`, and otherwise says "RPC call is unsafe to be called
 * externally" (a probe error `rpc` with that hint).
 *
 * With `metricsUrl`, the node's own gauges of how far its GRANDPA vote is held back by
 * para-validation are read (polkadot-sdk polkadot/node/service/src/relay_chain_selection.rs at
 * e2e0767d5ea8: `polkadot_parachain_approval_checking_finality_lag`, "How far behind the head of
 * the chain the Approval Checking protocol wants to vote", and
 * `polkadot_parachain_disputes_finality_lag`, the same after disputes; both in blocks, the
 * disputes one never below the approval one when both are set). The larger is exported. The
 * node labels every series `chain="<chain id>"` (substrate/client/service/src/config.rs,
 * PrometheusConfig::new_with_default_registry); labels are not judged here.
 *
 * Every answer is validated (./polkadot-schemas.ts, upstream sources cited there). A node that
 * cannot be reached, answers an error or something malformed is a `ProbeError`, counted in
 * `vigil_watch_polkadot_probe_errors_total{probe,kind}`; the watcher never throws out of a poll.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { z } from 'zod';
import { errorMessage } from '../errors.js';
import { MetricsFormatError, parsePrometheusText } from '../status/prometheus-text.js';
import type { WatchLog } from './cometbft.js';
import type { PolkadotWatchConfig } from './config.js';
import { PollLoop, ProbeError, fetchProbe, perRegistry, type ProbeErrorKind } from './probe.js';
import {
  HasSessionKeysSchema,
  HashSchema,
  HeaderSchema,
  MaybeHeaderSchema,
  PolkadotRpcEnvelopeSchema,
  RPC_METHOD_NOT_FOUND,
  SystemHealthSchema,
} from './polkadot-schemas.js';

export const POLKADOT_PROBES = [
  'system_health',
  'chain_getFinalizedHead',
  'chain_getHeader',
  'author_hasSessionKeys',
  'metrics',
] as const;
export type PolkadotProbe = (typeof POLKADOT_PROBES)[number];
export const POLKADOT_PROBE_ERROR_KINDS = [
  'unreachable',
  'timeout',
  'http',
  'rpc',
  'malformed',
] as const satisfies readonly ProbeErrorKind[];

/** The node's para-validation finality-lag gauges (source above). */
export const PARA_FINALITY_LAG_METRICS = [
  'polkadot_parachain_approval_checking_finality_lag',
  'polkadot_parachain_disputes_finality_lag',
] as const;

type ChainLabel = 'chain_id';

/** The Polkadot watchers' metrics, one set per registry, one series per chain. */
export class PolkadotWatchMetrics {
  readonly up: Gauge<ChainLabel>;
  readonly bestHeight: Gauge<ChainLabel>;
  readonly finalizedHeight: Gauge<ChainLabel>;
  readonly finalityLag: Gauge<ChainLabel>;
  readonly peers: Gauge<ChainLabel>;
  readonly isSyncing: Gauge<ChainLabel>;
  readonly paraFinalityLag: Gauge<ChainLabel>;
  readonly sessionKeysOnchain: Gauge<ChainLabel>;
  readonly lastPoll: Gauge<ChainLabel>;
  readonly probeErrors: Counter<ChainLabel | 'probe' | 'kind'>;

  constructor(registry: Registry) {
    const gauge = (name: string, help: string) =>
      new Gauge({ name, help, labelNames: ['chain_id'], registers: [registry] });
    const p = 'vigil_watch_polkadot_';
    this.up = gauge(
      `${p}up`,
      '1 when the last system_health and chain_getHeader answers of the node were valid.',
    );
    this.bestHeight = gauge(`${p}best_height`, "The node's best block number (chain_getHeader).");
    this.finalizedHeight = gauge(
      `${p}finalized_height`,
      "The node's finalized block number (chain_getFinalizedHead, then its header).",
    );
    this.finalityLag = gauge(
      `${p}finality_lag_blocks`,
      'Best minus finalized block number, as read in one poll.',
    );
    this.peers = gauge(`${p}peers`, 'system_health peers: connected peers of the node.');
    this.isSyncing = gauge(
      `${p}is_syncing`,
      'system_health isSyncing: 1 while the node performs a major sync.',
    );
    this.paraFinalityLag = gauge(
      `${p}para_finality_lag_blocks`,
      "Blocks the node's GRANDPA vote is held back by para-validation: the larger of its polkadot_parachain_approval_checking_finality_lag and polkadot_parachain_disputes_finality_lag (needs metricsUrl).",
    );
    this.sessionKeysOnchain = gauge(
      `${p}session_keys_onchain`,
      "author_hasSessionKeys of the configured on-chain session keys: 1 when the node's keystore holds all their private keys (needs sessionKeys).",
    );
    this.lastPoll = gauge(
      `${p}last_poll_timestamp_seconds`,
      'Unix time the last poll of the node ended (answered or not).',
    );
    this.probeErrors = new Counter({
      name: `${p}probe_errors_total`,
      help: 'Probes without a usable answer, by probe (system_health, chain_getFinalizedHead, chain_getHeader, author_hasSessionKeys, metrics) and kind (unreachable, timeout, http, rpc, malformed).',
      labelNames: ['chain_id', 'probe', 'kind'],
      registers: [registry],
    });
  }
}

/** The one metrics set of a registry (several watchers share it, one chain_id each). */
export const polkadotWatchMetrics = perRegistry((r) => new PolkadotWatchMetrics(r));

export interface PolkadotWatcherOptions {
  /** Unix time in ms; tests pass their own clock. */
  readonly now?: () => number;
  readonly fetch?: typeof globalThis.fetch;
  readonly log?: WatchLog;
}

/** What one poll saw, for callers and tests (the metrics say the same). */
export interface PolkadotPollReport {
  readonly errors: readonly ProbeError<PolkadotProbe>[];
  readonly peers?: number;
  readonly isSyncing?: boolean;
  readonly best?: bigint;
  readonly finalized?: bigint;
  readonly hasSessionKeys?: boolean;
  readonly paraFinalityLag?: bigint;
}

const malformed = (probe: PolkadotProbe, message: string) =>
  new ProbeError<PolkadotProbe>(probe, 'malformed', message);

/**
 * The larger of the node's para-validation finality-lag gauges in its exposition, in blocks.
 * Throws a `ProbeError` (malformed) when neither is there (not a relay-chain node's metrics),
 * one appears twice, or a value is not a block count.
 */
export function readParaFinalityLag(text: string, where: string): bigint {
  const wanted = new Set<string>(PARA_FINALITY_LAG_METRICS);
  const lines = text.split('\n');
  // Blank every other line: line numbers in errors stay those of the answer.
  const selected = lines
    .map((l) => {
      const name = l.startsWith('#') ? undefined : /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)?.[0];
      return name !== undefined && wanted.has(name) ? l : '';
    })
    .join('\n');
  let samples;
  try {
    samples = parsePrometheusText(selected, where);
  } catch (err) {
    if (err instanceof MetricsFormatError) throw malformed('metrics', err.message);
    throw err;
  }
  if (samples.length === 0)
    throw malformed(
      'metrics',
      `none of ${PARA_FINALITY_LAG_METRICS.join(', ')} in the answer: not a relay-chain node's metrics? ${JSON.stringify(text.slice(0, 80))}`,
    );
  const seen = new Set<string>();
  let lag = 0n;
  for (const s of samples) {
    if (seen.has(s.name)) throw malformed('metrics', `${s.name} appears more than once`);
    seen.add(s.name);
    if (!(Number.isSafeInteger(s.value) && s.value >= 0))
      throw malformed('metrics', `${s.name} is ${s.value}, not a block count`);
    const v = BigInt(s.value);
    if (v > lag) lag = v;
  }
  return lag;
}

export class PolkadotWatcher {
  private readonly metrics: PolkadotWatchMetrics;
  private readonly now: () => number;
  private readonly fetchFn: typeof globalThis.fetch;
  private readonly labels: { chain_id: string };
  private readonly loop: PollLoop;
  private nextId = 1;
  private hadSessionKeys: boolean | undefined;

  constructor(
    readonly config: PolkadotWatchConfig,
    registry: Registry,
    private readonly options: PolkadotWatcherOptions = {},
  ) {
    this.loop = new PollLoop(() => this.poll(), config.pollMs);
    this.metrics = polkadotWatchMetrics(registry);
    this.now = options.now ?? Date.now;
    this.fetchFn = options.fetch ?? globalThis.fetch;
    this.labels = { chain_id: config.name };
    // Every series exists from the start, so a dashboard shows 0 rather than nothing; the
    // optional probes' gauges appear with their first answer.
    const m = this.metrics;
    m.up.set(this.labels, 0);
    for (const probe of POLKADOT_PROBES)
      for (const kind of POLKADOT_PROBE_ERROR_KINDS)
        m.probeErrors.inc({ ...this.labels, probe, kind }, 0);
  }

  /** One round of probes. Never throws: failures are in the report and the metrics. */
  async poll(): Promise<PolkadotPollReport> {
    const errors: ProbeError<PolkadotProbe>[] = [];
    const attempt = async <T>(
      probe: PolkadotProbe,
      fn: () => Promise<T>,
    ): Promise<T | undefined> => {
      try {
        return await fn();
      } catch (err) {
        const e =
          err instanceof ProbeError
            ? (err as ProbeError<PolkadotProbe>)
            : malformed(probe, `unexpected: ${errorMessage(err)}`);
        errors.push(e);
        this.metrics.probeErrors.inc({ ...this.labels, probe: e.probe, kind: e.kind });
        return undefined;
      }
    };
    const m = this.metrics;
    const l = this.labels;

    const health = await attempt('system_health', () =>
      this.call('system_health', 'system_health', [], SystemHealthSchema),
    );
    if (health !== undefined) {
      m.peers.set(l, health.peers);
      m.isSyncing.set(l, health.isSyncing ? 1 : 0);
    }

    const finalizedHash = await attempt('chain_getFinalizedHead', () =>
      this.call('chain_getFinalizedHead', 'chain_getFinalizedHead', [], HashSchema),
    );
    const finalized =
      finalizedHash === undefined
        ? undefined
        : await attempt('chain_getHeader', async () => {
            const h = await this.call(
              'chain_getHeader',
              'chain_getHeader',
              [finalizedHash],
              MaybeHeaderSchema,
            );
            if (h === null)
              throw malformed(
                'chain_getHeader',
                `the node has no header for its own finalized head ${finalizedHash}`,
              );
            return blockNumber(h.number);
          });
    const best = await attempt('chain_getHeader', async () =>
      blockNumber((await this.call('chain_getHeader', 'chain_getHeader', [], HeaderSchema)).number),
    );
    if (finalized !== undefined) m.finalizedHeight.set(l, Number(finalized));
    if (best !== undefined) m.bestHeight.set(l, Number(best));
    if (best !== undefined && finalized !== undefined)
      m.finalityLag.set(l, Number(best > finalized ? best - finalized : 0n));
    m.up.set(l, health !== undefined && best !== undefined ? 1 : 0);

    let hasSessionKeys: boolean | undefined;
    const keys = this.config.sessionKeys;
    if (keys !== undefined) {
      hasSessionKeys = await attempt('author_hasSessionKeys', () =>
        this.call('author_hasSessionKeys', 'author_hasSessionKeys', [keys], HasSessionKeysSchema),
      );
      if (hasSessionKeys !== undefined) {
        m.sessionKeysOnchain.set(l, hasSessionKeys ? 1 : 0);
        if (hasSessionKeys !== this.hadSessionKeys)
          this.options.log?.[hasSessionKeys ? 'info' : 'warn'](
            { chain: this.config.name },
            hasSessionKeys
              ? "the node's keystore holds the on-chain session keys"
              : "the node's keystore lacks the on-chain session keys: it cannot author or vote with them",
          );
        this.hadSessionKeys = hasSessionKeys;
      }
    }

    let paraFinalityLag: bigint | undefined;
    const metricsUrl = this.config.metricsUrl;
    if (metricsUrl !== undefined) {
      paraFinalityLag = await attempt('metrics', async () =>
        readParaFinalityLag(await this.scrape(metricsUrl), metricsUrl),
      );
      if (paraFinalityLag !== undefined) m.paraFinalityLag.set(l, Number(paraFinalityLag));
    }

    m.lastPoll.set(l, this.now() / 1000);
    return {
      errors,
      ...(health !== undefined ? { peers: health.peers, isSyncing: health.isSyncing } : {}),
      ...(best !== undefined ? { best } : {}),
      ...(finalized !== undefined ? { finalized } : {}),
      ...(hasSessionKeys !== undefined ? { hasSessionKeys } : {}),
      ...(paraFinalityLag !== undefined ? { paraFinalityLag } : {}),
    };
  }

  /** Polls every pollMs until stop(); a poll never overlaps the next. */
  start(): void {
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  /** One JSON-RPC 2.0 call, its result checked with `schema`. Throws a `ProbeError`. */
  private async call<S extends z.ZodTypeAny>(
    probe: PolkadotProbe,
    method: string,
    params: readonly unknown[],
    schema: S,
  ): Promise<z.output<S>> {
    const id = this.nextId++;
    const res = await fetchProbe(
      this.fetchFn,
      probe,
      this.config.rpc,
      this.config.timeoutMs,
      'application/json',
      JSON.stringify({ jsonrpc: '2.0', id, method, params }),
    );
    let body: unknown;
    try {
      body = JSON.parse(res.text);
    } catch {
      throw new ProbeError(
        probe,
        res.ok ? 'malformed' : 'http',
        `HTTP ${res.status}, not JSON: ${JSON.stringify(res.text.slice(0, 80))}`,
      );
    }
    const env = PolkadotRpcEnvelopeSchema.safeParse(body);
    if (!env.success)
      throw new ProbeError(
        probe,
        res.ok ? 'malformed' : 'http',
        `HTTP ${res.status}, not a JSON-RPC 2.0 answer`,
      );
    if (env.data.id !== id)
      throw malformed(probe, `answer to id ${JSON.stringify(env.data.id)}, not ${id}`);
    if ('error' in env.data) {
      const e = env.data.error;
      const hint =
        e.code === RPC_METHOD_NOT_FOUND && probe === 'author_hasSessionKeys'
          ? ' (an unsafe method: watch through a localhost RPC or run the node with --rpc-methods unsafe on a private listener)'
          : '';
      throw new ProbeError(probe, 'rpc', `${method}: error ${e.code}: ${e.message}${hint}`);
    }
    const r = schema.safeParse(env.data.result);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      throw malformed(probe, `${method}: ${issue.path.join('.') || '(result)'}: ${issue.message}`);
    }
    return r.data as z.output<S>;
  }

  private async scrape(url: string): Promise<string> {
    const res = await fetchProbe<PolkadotProbe>(
      this.fetchFn,
      'metrics',
      url,
      this.config.timeoutMs,
      'text/plain; version=0.0.4',
    );
    if (!res.ok)
      throw new ProbeError<PolkadotProbe>(
        'metrics',
        'http',
        `HTTP ${res.status}: ${JSON.stringify(res.text.slice(0, 80))}`,
      );
    return res.text;
  }
}

/** A block number as a gauge can hold it exactly (Polkadot's are u32). */
function blockNumber(n: bigint): bigint {
  if (n > BigInt(Number.MAX_SAFE_INTEGER))
    throw malformed('chain_getHeader', `block number ${n} beyond 2^53`);
  return n;
}
