/**
 * The CometBFT chain watcher: tenderduty's conditions, read from a node's CometBFT RPC and,
 * when configured, the Cosmos SDK's REST endpoint.
 *
 * Each poll asks `/status` (height, block time, catching_up, the node's chain and its
 * validator_info), `/net_info` (peers), then `/block?height=h+1` for every commit height h not
 * yet checked (at most `blocksPerPoll` per poll): block h+1's `last_commit` is the canonical
 * commit of h, and the validator signed h when its address is among the signatures with a flag
 * other than absent (a nil vote counts as signed, as in the SDK's x/slashing). That is how
 * tenderduty counts misses without an SDK endpoint. With `rest`, the staking validator (jailed,
 * bonded) and the slashing signing info (tombstoned, the chain's own missed counter) are read
 * too; while the validator is known not to be bonded, its absence from commits is not a miss.
 *
 * Every answer is validated (./cometbft-schemas.ts, upstream sources cited there). A node that
 * cannot be reached, answers an error or answers something malformed is a `ProbeError`, counted
 * in `vigil_watch_cometbft_probe_errors_total{probe,kind}`; the watcher never throws out of a
 * poll.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { z } from 'zod';
import { errorMessage } from '../errors.js';
import { PROBE_ERROR_KINDS, PollLoop, ProbeError, fetchProbe, perRegistry } from './probe.js';
import { bech32Encode } from '../keys/bech32.js';
import {
  BLOCK_ID_FLAG_ABSENT,
  BlockResultSchema,
  NetInfoResultSchema,
  RpcEnvelopeSchema,
  SigningInfoSchema,
  StakingValidatorSchema,
  StatusResultSchema,
} from './cometbft-schemas.js';
import { valconsPrefixOf, type CometbftWatchConfig } from './config.js';

export const PROBES = ['status', 'net_info', 'block', 'signing_info', 'validator'] as const;
export type Probe = (typeof PROBES)[number];

export { PROBE_ERROR_KINDS, ProbeError, type ProbeErrorKind } from './probe.js';

type ChainLabel = 'chain_id';

/** The CometBFT watchers' metrics, one set per registry, one series per chain. */
export class CometbftWatchMetrics {
  readonly up: Gauge<ChainLabel>;
  readonly height: Gauge<ChainLabel>;
  readonly heightAge: Gauge<ChainLabel>;
  readonly blockTime: Gauge<ChainLabel>;
  readonly stalled: Gauge<ChainLabel>;
  readonly catchingUp: Gauge<ChainLabel>;
  readonly peers: Gauge<ChainLabel>;
  readonly peersLow: Gauge<ChainLabel>;
  readonly nodeIsValidator: Gauge<ChainLabel>;
  readonly signed: Counter<ChainLabel>;
  readonly missed: Counter<ChainLabel>;
  readonly missedWindow: Gauge<ChainLabel>;
  readonly windowSize: Gauge<ChainLabel>;
  readonly consecutiveMissed: Gauge<ChainLabel>;
  readonly lastCheckedHeight: Gauge<ChainLabel>;
  readonly jailed: Gauge<ChainLabel>;
  readonly tombstoned: Gauge<ChainLabel>;
  readonly bonded: Gauge<ChainLabel>;
  readonly sdkMissed: Gauge<ChainLabel>;
  readonly probeErrors: Counter<ChainLabel | 'probe' | 'kind'>;

  constructor(registry: Registry) {
    const gauge = (name: string, help: string) =>
      new Gauge({ name, help, labelNames: ['chain_id'], registers: [registry] });
    const counter = (name: string, help: string) =>
      new Counter({ name, help, labelNames: ['chain_id'], registers: [registry] });
    const p = 'vigil_watch_cometbft_';
    this.up = gauge(`${p}up`, '1 when the last /status answer was valid and of the right chain.');
    this.height = gauge(`${p}height`, 'latest_block_height the node reported last.');
    this.heightAge = gauge(
      `${p}height_age_seconds`,
      "Seconds since the watcher last saw the node's height advance (grows while the node is unreachable too).",
    );
    this.blockTime = gauge(
      `${p}latest_block_time_seconds`,
      'latest_block_time the node reported last, unix seconds.',
    );
    this.stalled = gauge(
      `${p}stalled`,
      '1 while height_age_seconds exceeds the configured stallSeconds.',
    );
    this.catchingUp = gauge(`${p}catching_up`, 'sync_info.catching_up of the node (1 true).');
    this.peers = gauge(`${p}peers`, 'n_peers of /net_info.');
    this.peersLow = gauge(`${p}peers_low`, '1 while peers is below the configured peersMin.');
    this.nodeIsValidator = gauge(
      `${p}node_is_validator`,
      "1 when the node's /status validator_info.address is the watched validator (the node signs through it).",
    );
    this.signed = counter(
      `${p}signed_blocks_total`,
      'Commits checked in which the validator signed (commit or nil vote).',
    );
    this.missed = counter(
      `${p}missed_blocks_total`,
      "Commits checked in which the validator's signature is absent (while not known to be unbonded).",
    );
    this.missedWindow = gauge(
      `${p}missed_blocks_window`,
      'Misses among the last missedWindow commits checked.',
    );
    this.windowSize = gauge(
      `${p}window_blocks`,
      'Commits currently in the window (up to missedWindow).',
    );
    this.consecutiveMissed = gauge(
      `${p}consecutive_missed`,
      'Misses in a row up to the last commit checked.',
    );
    this.lastCheckedHeight = gauge(
      `${p}last_checked_height`,
      'The last commit height checked for the validator signature.',
    );
    this.jailed = gauge(`${p}jailed`, 'Staking validator.jailed from REST (1 true).');
    this.tombstoned = gauge(
      `${p}tombstoned`,
      'Slashing signing info tombstoned from REST (1 true).',
    );
    this.bonded = gauge(`${p}bonded`, 'Staking validator status is BOND_STATUS_BONDED (1).');
    this.sdkMissed = gauge(
      `${p}sdk_missed_blocks_counter`,
      "The chain's own missed_blocks_counter over its signed_blocks_window (slashing signing info).",
    );
    this.probeErrors = new Counter({
      name: `${p}probe_errors_total`,
      help: 'Probes without a usable answer, by probe (status, net_info, block, signing_info, validator) and kind (unreachable, timeout, http, rpc, malformed, wrong_chain).',
      labelNames: ['chain_id', 'probe', 'kind'],
      registers: [registry],
    });
  }
}

/** The one metrics set of a registry (several watchers share it, one chain_id each). */
export const cometbftWatchMetrics = perRegistry((r) => new CometbftWatchMetrics(r));

export interface WatchLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface CometbftWatcherOptions {
  /** Unix time in ms; tests pass their own clock. */
  readonly now?: () => number;
  readonly fetch?: typeof globalThis.fetch;
  readonly log?: WatchLog;
}

/** What one poll saw, for callers and tests (the metrics say the same). */
export interface PollReport {
  readonly errors: readonly ProbeError[];
  readonly height?: number;
  /** Commit heights checked in this poll and whether the validator's signature was missing. */
  readonly checked: ReadonlyArray<{ height: number; missed: boolean }>;
}

export class CometbftWatcher {
  private readonly metrics: CometbftWatchMetrics;
  private readonly now: () => number;
  private readonly fetchFn: typeof globalThis.fetch;
  private readonly labels: { chain_id: string };
  private readonly valcons: string | undefined;
  private lastHeight: number | undefined;
  private lastHeightAt: number;
  private nextCommit: number | undefined;
  /** The last missedWindow commits checked, oldest first: true where missed. */
  private readonly window: boolean[] = [];
  private consecutive = 0;
  private bonded: boolean | undefined;
  private wasStalled = false;
  private readonly loop: PollLoop;

  constructor(
    readonly config: CometbftWatchConfig,
    registry: Registry,
    private readonly options: CometbftWatcherOptions = {},
  ) {
    this.loop = new PollLoop(() => this.poll(), config.pollMs);
    this.metrics = cometbftWatchMetrics(registry);
    this.now = options.now ?? Date.now;
    this.fetchFn = options.fetch ?? globalThis.fetch;
    this.labels = { chain_id: config.chainId };
    this.lastHeightAt = this.now();
    const prefix = valconsPrefixOf(config);
    this.valcons =
      prefix !== undefined
        ? bech32Encode(prefix, Buffer.from(config.validatorAddress, 'hex'))
        : undefined;
    // Every series exists from the start, so a dashboard shows 0 rather than nothing.
    const m = this.metrics;
    for (const g of [m.up, m.stalled, m.catchingUp, m.peersLow, m.missedWindow, m.windowSize])
      g.set(this.labels, 0);
    m.consecutiveMissed.set(this.labels, 0);
    m.signed.inc(this.labels, 0);
    m.missed.inc(this.labels, 0);
    for (const probe of PROBES)
      for (const kind of PROBE_ERROR_KINDS) m.probeErrors.inc({ ...this.labels, probe, kind }, 0);
  }

  /** One round of probes. Never throws: failures are in the report and the metrics. */
  async poll(): Promise<PollReport> {
    const errors: ProbeError[] = [];
    const checked: Array<{ height: number; missed: boolean }> = [];
    const attempt = async <T>(probe: Probe, fn: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await fn();
      } catch (err) {
        const e =
          err instanceof ProbeError
            ? err
            : new ProbeError(probe, 'malformed', `unexpected: ${errorMessage(err)}`);
        errors.push(e);
        this.metrics.probeErrors.inc({ ...this.labels, probe: e.probe, kind: e.kind });
        return undefined;
      }
    };

    const status = await attempt('status', () => this.status());
    this.metrics.up.set(this.labels, status !== undefined ? 1 : 0);
    if (status !== undefined) {
      const height = status.sync_info.latest_block_height;
      if (this.lastHeight === undefined || height > this.lastHeight) {
        this.lastHeight = height;
        this.lastHeightAt = this.now();
      }
      this.metrics.height.set(this.labels, height);
      this.metrics.blockTime.set(this.labels, status.sync_info.latest_block_time / 1000);
      this.metrics.catchingUp.set(this.labels, status.sync_info.catching_up ? 1 : 0);
      this.metrics.nodeIsValidator.set(
        this.labels,
        status.validator_info.address.toUpperCase() === this.config.validatorAddress ? 1 : 0,
      );
    }
    this.updateStall();

    const peers = await attempt('net_info', () => this.netInfo());
    if (peers !== undefined) {
      this.metrics.peers.set(this.labels, peers);
      this.metrics.peersLow.set(this.labels, peers < this.config.peersMin ? 1 : 0);
    }

    if (this.config.rest !== undefined) {
      if (this.config.valoper !== undefined)
        await attempt('validator', () => this.stakingValidator());
      if (this.valcons !== undefined) await attempt('signing_info', () => this.signingInfo());
    }

    if (status !== undefined)
      await attempt('block', () =>
        this.checkCommits(
          status.sync_info.latest_block_height,
          status.sync_info.earliest_block_height,
          checked,
        ),
      );

    return { errors, checked, ...(status ? { height: status.sync_info.latest_block_height } : {}) };
  }

  /** Polls every pollMs until stop(); a poll never overlaps the next. */
  start(): void {
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  private updateStall(): void {
    const age = Math.max(0, (this.now() - this.lastHeightAt) / 1000);
    this.metrics.heightAge.set(this.labels, age);
    const stalled = age > this.config.stallSeconds;
    this.metrics.stalled.set(this.labels, stalled ? 1 : 0);
    if (stalled !== this.wasStalled)
      this.options.log?.[stalled ? 'warn' : 'info'](
        { chainId: this.config.chainId, height: this.lastHeight, ageSeconds: age },
        stalled ? 'chain height stalled' : 'chain height advancing again',
      );
    this.wasStalled = stalled;
  }

  private async checkCommits(
    latest: number,
    earliest: number,
    checked: Array<{ height: number; missed: boolean }>,
  ): Promise<void> {
    // Block h+1 carries the commit of h: the newest commit readable is latest - 1.
    const newest = latest - 1;
    if (newest < 1) return;
    const { missedWindow, blocksPerPoll } = this.config;
    let next = this.nextCommit ?? Math.max(1, newest - missedWindow + 1);
    if (newest - next + 1 > missedWindow) {
      // Too far behind (the watcher or the node was away): what is older than the window
      // no longer counts in it; start again at its beginning.
      next = newest - missedWindow + 1;
      this.window.length = 0;
    }
    // A pruned node keeps no blocks below earliest_block_height.
    next = Math.max(next, earliest - 1, 1);
    this.nextCommit = next;
    const last = Math.min(newest, next + blocksPerPoll - 1);
    for (let h = next; h <= last; h++) {
      const block = await this.block(h + 1);
      if (block.block.last_commit.height !== h)
        throw new ProbeError(
          'block',
          'malformed',
          `block ${h + 1} carries the commit of ${block.block.last_commit.height}, not ${h}`,
        );
      const present = block.block.last_commit.signatures.some(
        (s) =>
          s.block_id_flag !== BLOCK_ID_FLAG_ABSENT &&
          s.validator_address.toUpperCase() === this.config.validatorAddress,
      );
      this.nextCommit = h + 1;
      this.metrics.lastCheckedHeight.set(this.labels, h);
      if (present) {
        this.record(false);
        checked.push({ height: h, missed: false });
      } else if (this.bonded !== false) {
        this.record(true);
        checked.push({ height: h, missed: true });
        this.options.log?.warn(
          { chainId: this.config.chainId, height: h, consecutive: this.consecutive },
          'missed block',
        );
      }
    }
  }

  private record(missed: boolean): void {
    (missed ? this.metrics.missed : this.metrics.signed).inc(this.labels);
    this.window.push(missed);
    while (this.window.length > this.config.missedWindow) this.window.shift();
    this.consecutive = missed ? this.consecutive + 1 : 0;
    this.metrics.missedWindow.set(this.labels, this.window.filter(Boolean).length);
    this.metrics.windowSize.set(this.labels, this.window.length);
    this.metrics.consecutiveMissed.set(this.labels, this.consecutive);
  }

  private async status() {
    const s = await this.rpc('status', '/status', StatusResultSchema);
    if (s.node_info.network !== this.config.chainId)
      throw new ProbeError(
        'status',
        'wrong_chain',
        `the node is on ${JSON.stringify(s.node_info.network)}, not ${this.config.chainId}`,
      );
    return s;
  }

  private async netInfo(): Promise<number> {
    return (await this.rpc('net_info', '/net_info', NetInfoResultSchema)).n_peers;
  }

  private async block(height: number) {
    const b = await this.rpc('block', `/block?height=${height}`, BlockResultSchema);
    if (b.block.header.chain_id !== this.config.chainId)
      throw new ProbeError(
        'block',
        'wrong_chain',
        `block ${height} is of ${JSON.stringify(b.block.header.chain_id)}`,
      );
    if (b.block.header.height !== height)
      throw new ProbeError(
        'block',
        'malformed',
        `asked for block ${height}, got ${b.block.header.height}`,
      );
    return b;
  }

  private async stakingValidator(): Promise<void> {
    const path = `/cosmos/staking/v1beta1/validators/${this.config.valoper!}`;
    const { validator } = await this.rest('validator', path, StakingValidatorSchema);
    this.bonded = validator.status === 'BOND_STATUS_BONDED';
    this.metrics.jailed.set(this.labels, validator.jailed ? 1 : 0);
    this.metrics.bonded.set(this.labels, this.bonded ? 1 : 0);
  }

  private async signingInfo(): Promise<void> {
    const path = `/cosmos/slashing/v1beta1/signing_infos/${this.valcons!}`;
    const { val_signing_info: info } = await this.rest('signing_info', path, SigningInfoSchema);
    this.metrics.tombstoned.set(this.labels, info.tombstoned ? 1 : 0);
    this.metrics.sdkMissed.set(this.labels, info.missed_blocks_counter);
  }

  private async getJson(probe: Probe, url: string): Promise<{ status: number; body: unknown }> {
    const res = await fetchProbe(
      this.fetchFn,
      probe,
      url,
      this.config.timeoutMs,
      'application/json',
    );
    const text = res.text;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ProbeError(
        probe,
        res.ok ? 'malformed' : 'http',
        `HTTP ${res.status}, not JSON: ${JSON.stringify(text.slice(0, 80))}`,
      );
    }
    return { status: res.status, body };
  }

  private async rpc<S extends z.ZodType>(probe: Probe, path: string, schema: S) {
    const { status, body } = await this.getJson(probe, this.config.rpc + path);
    const env = RpcEnvelopeSchema.safeParse(body);
    if (!env.success)
      throw new ProbeError(
        probe,
        status >= 200 && status < 300 ? 'malformed' : 'http',
        `HTTP ${status}, not a JSON-RPC answer`,
      );
    if ('error' in env.data) {
      const e = env.data.error;
      throw new ProbeError(probe, 'rpc', `${e.message}${e.data ? `: ${e.data}` : ''}`);
    }
    return parseOrThrow(probe, schema, env.data.result);
  }

  private async rest<S extends z.ZodType>(probe: Probe, path: string, schema: S) {
    const { status, body } = await this.getJson(probe, this.config.rest + path);
    if (status < 200 || status >= 300) {
      const message =
        typeof body === 'object' && body !== null && 'message' in body
          ? String((body as { message: unknown }).message)
          : '';
      throw new ProbeError(probe, 'http', `HTTP ${status}${message ? `: ${message}` : ''}`);
    }
    return parseOrThrow(probe, schema, body);
  }
}

function parseOrThrow<S extends z.ZodType>(probe: Probe, schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw new ProbeError(
    probe,
    'malformed',
    `${issue.path.join('.') || '(answer)'}: ${issue.message}`,
  );
}
