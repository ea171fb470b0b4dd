/**
 * `vigil chaos --local`: seeded, reproducible faults on a running local fleet (one network
 * namespace per host, see fleet.ts) — a host's links cut in, out or both ways (faults.ts
 * partitionHost), and host loss: every process of its namespace killed, then the host
 * restarted as a reboot would (restart.ts). The report is the one `vigil chaos` prints.
 *
 * What was signed is read from the chain's side only: every simulated CometBFT validator node
 * appends each answer it gets to its evidence file (node-main.ts), and every signature of
 * every validator key on every host goes through the devnet's EvidenceCollector, which reads
 * the position from the signed bytes, verifies the signature against the key the node was
 * configured with, and counts two different messages at one height/round/step as an
 * equivocation. Polkadot validators, Cardano producers and Decred voting wallets are
 * simulated units (sim-unit-main.ts) that append each block they author or forge, each vote
 * they cast and each duty they are refused to their unit's evidence file (ProducedLine, one
 * schema for the three); two different blocks (votes) at one slot (ticket) for one key, from
 * whichever hosts, are an equivocation (ProducerTally). Nothing the agents say about
 * themselves is counted.
 */
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../../topology/plan.js';
import { VigilError, errorMessage } from '../../errors.js';
import { guardMembers } from '../../render/services.js';
import { seededRandom } from '../../devnet/chaos.js';
import { EvidenceCollector, type Equivocation } from '../../devnet/evidence.js';
import { healAllSlowLinks, healSlowLink, slowLink } from './delay.js';
import { healHost, killHost, partitionHost, type PartitionDirection } from './faults.js';
import { NodeProcessConfigSchema, type EvidenceLine } from './node-config.js';
import { restartHost } from './restart.js';
import {
  ProducedLineSchema,
  SimUnitProcessConfigSchema,
  type ProducedLine,
} from './sim-unit-config.js';
import type { RunRecordFile } from './run-record.js';

export const LOCAL_FAULT_KINDS = [
  'partition-in',
  'partition-out',
  'partition-both',
  'host-loss',
  'slow-link',
] as const;
export type LocalFaultKind = (typeof LOCAL_FAULT_KINDS)[number];

/** One planned fault; the whole plan is drawn from the seed before the run starts. */
export interface LocalPlannedFault {
  readonly kind: LocalFaultKind;
  readonly host: string;
  readonly atMs: number;
  /** How long the partition lasts, or how long the lost host stays down before its restart. */
  readonly lastsMs: number;
  /** slow-link: the other end of the link, and the round trip added to it. */
  readonly peer?: string;
  readonly rttMs?: number;
}

export interface LocalFaultOutcome extends LocalPlannedFault {
  /** When it was injected, from the start of the run (later than planned when one of its
   * hosts was still being healed or restarted). */
  injectedAtMs?: number;
  /** Injection → the next height any validator node got signed in time. */
  recoveryMs?: number;
  /** Heal (or restart begun) → the next height signed in time: signing resumed. */
  resumedMs?: number;
  /** How long the restart of a lost host took. */
  restartMs?: number;
  /** The fault could not be injected or healed (the run goes on). */
  error?: string;
}

/** Time a host needs after a heal before it takes another fault. */
const SETTLE_MS = 2000;
/** Host loss: the restart (WireGuard, etcd rejoin, node, agent) takes seconds more. */
const RESTART_SETTLE_MS = 10_000;
/** The shortest fault: a partition shorter than this tests little over WireGuard. */
const MIN_FAULT_MS = 500;
/** Round trips a slow link adds: from a neighbouring region to the other side of the world. */
const SLOW_RTT_MS = { min: 20, max: 300 };

export interface LocalScheduleOptions {
  readonly seed: number;
  readonly durationMs: number;
  readonly meanIntervalMs: number;
  readonly maxFaultMs: number;
  readonly kinds?: readonly LocalFaultKind[];
  /** The hosts faults may hit, in plan order. */
  readonly hosts: readonly string[];
  /** Guard members among them: one at a time is faulted, so the guard keeps its quorum. */
  readonly guardHosts?: readonly string[];
}

/**
 * Draws the fault plan from the seed: exponential gaps (a Poisson process), kinds drawn from a
 * shuffled bag so every kind comes once in each round of as many faults as there are kinds,
 * a uniformly drawn target host (and for a slow link a second one, and a round trip). A host
 * takes one fault at a time (a lost host until its restart has settled; both ends of a slow
 * link), and at most one guard member is hit at a time, so what is measured is failover, not
 * an outage by design. Every fault ends before the run does.
 */
export function planLocalFaults(opts: LocalScheduleOptions): LocalPlannedFault[] {
  const random = seededRandom(opts.seed);
  const kinds = [...(opts.kinds ?? LOCAL_FAULT_KINDS)];
  if (kinds.length === 0 || opts.hosts.length === 0) return [];
  const guard = new Set(opts.guardHosts ?? []);
  const freeAt = new Map<string, number>();
  let guardFreeAt = 0;
  let bag: LocalFaultKind[] = [];
  const plan: LocalPlannedFault[] = [];
  const maxFault = Math.max(MIN_FAULT_MS, opts.maxFaultMs);
  for (
    let at = opts.meanIntervalMs;
    at < opts.durationMs - maxFault;
    at += Math.max(20, Math.round(-Math.log(1 - random()) * opts.meanIntervalMs))
  ) {
    if (bag.length === 0) {
      bag = [...kinds];
      // Fisher–Yates with the seeded generator.
      for (let i = bag.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [bag[i], bag[j]] = [bag[j]!, bag[i]!];
      }
    }
    const host = opts.hosts[Math.floor(random() * opts.hosts.length)]!;
    const lastsMs = Math.round(MIN_FAULT_MS + random() * (maxFault - MIN_FAULT_MS));
    const kind = bag[bag.length - 1]!;
    const others = opts.hosts.filter((h) => h !== host);
    const peer = kind === 'slow-link' ? others[Math.floor(random() * others.length)] : undefined;
    const rttMs =
      kind === 'slow-link'
        ? Math.round(SLOW_RTT_MS.min + random() * (SLOW_RTT_MS.max - SLOW_RTT_MS.min))
        : undefined;
    // A slow link needs two hosts.
    if (kind === 'slow-link' && peer === undefined) {
      bag.pop();
      continue;
    }
    const hit = peer === undefined ? [host] : [host, peer];
    if (
      hit.some((h) => (freeAt.get(h) ?? 0) > at) ||
      (hit.some((h) => guard.has(h)) && guardFreeAt > at)
    )
      continue;
    // Taken from the bag only once placed: a skipped draw does not lose its kind.
    bag.pop();
    const until = at + lastsMs + (kind === 'host-loss' ? RESTART_SETTLE_MS : SETTLE_MS);
    for (const h of hit) freeAt.set(h, until);
    if (hit.some((h) => guard.has(h))) guardFreeAt = until;
    plan.push({
      kind,
      host,
      atMs: at,
      lastsMs,
      ...(peer !== undefined ? { peer, rttMs: rttMs! } : {}),
    });
  }
  return plan;
}

/** Totals in the shape `vigil chaos` reports a devnet's (formatChaosReport reads these). */
export interface LocalChaosTotals {
  /** Heights × validator keys the chain produced while the run lasted. */
  ticks: number;
  /** Of those, heights with a verified precommit signature in time. */
  signed: number;
  missed: number;
  refusals: number;
  signatures: number;
  equivocations: number;
  invalidSignatures: number;
  equivocationDetails: Equivocation[];
}

export interface LocalChaosReport {
  readonly seed: number;
  readonly fleet: string;
  readonly store: string;
  readonly durationMs: number;
  readonly blockTimeMs: number;
  readonly faults: number;
  readonly faultsByKind: Record<LocalFaultKind, number>;
  /** Named `devnet` as in `vigil chaos`'s JSON report, so one reader handles both. */
  readonly devnet: LocalChaosTotals;
  readonly missedPercent: number;
  readonly recoveryMs: Percentiles;
  /** Heal → next good signature, per fault. */
  readonly resumedMs: Percentiles & { readonly neverResumed: number };
  readonly faultLog: readonly LocalFaultOutcome[];
  /** Where evidence was read: validator nodes (host names) and producer units (`host/unit`). */
  readonly validatorNodes: readonly string[];
  /** True when the run was stopped early (Ctrl-C). */
  readonly interrupted: boolean;
}

export interface Percentiles {
  readonly p50: number;
  readonly p95: number;
  readonly max: number;
  readonly samples: number;
}

function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) =>
    sorted.length === 0
      ? 0
      : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
  return { p50: at(50), p95: at(95), max: sorted.at(-1) ?? 0, samples: sorted.length };
}

export interface LocalChaosOptions {
  readonly record: RunRecordFile;
  readonly plan: Plan;
  /** Rendered files of the same plan state (for restarts). */
  readonly files: ReadonlyMap<string, string>;
  readonly seed: number;
  readonly durationMs: number;
  readonly meanIntervalMs: number;
  readonly maxFaultMs: number;
  readonly kinds?: readonly LocalFaultKind[];
  /** Hosts faults may hit (default: every host). */
  readonly targets?: readonly string[];
  /** Stops the run early: active faults are healed and lost hosts restarted first. */
  readonly signal?: AbortSignal;
  /** One line per event, for a progress display. */
  readonly onEvent?: (line: string) => void;
}

/** An evidence file (a validator node's, a producer unit's), read as it grows. */
class EvidenceTail<T> {
  private offset = 0;
  private rest = '';
  constructor(
    readonly file: string,
    private readonly parse: (line: unknown) => T,
  ) {}

  read(): T[] {
    if (!existsSync(this.file)) return [];
    const size = statSync(this.file).size;
    if (size <= this.offset) return [];
    const buf = Buffer.alloc(size - this.offset);
    const fd = openSync(this.file, 'r');
    try {
      readSync(fd, buf, 0, buf.length, this.offset);
    } finally {
      closeSync(fd);
    }
    this.offset = size;
    const text = this.rest + buf.toString('utf8');
    const lines = text.split('\n');
    // A line being appended right now is completed at the next read.
    this.rest = lines.pop() ?? '';
    const out: T[] = [];
    for (const l of lines) {
      if (l.trim() === '') continue;
      try {
        out.push(this.parse(JSON.parse(l)));
      } catch {
        // Not a line the node wrote whole: nothing to count.
      }
    }
    return out;
  }
}

/**
 * When each position (height, slot, ticket) of each series (a key on a chain) was first done
 * in time, and the window arithmetic both tallies share: position N lasts from N × period,
 * and counts as done in time when done before the next one ended.
 */
class InTimeLog {
  private readonly series = new Map<string, Map<bigint, number>>();
  constructor(
    readonly start: number,
    readonly periodMs: number,
  ) {}

  /** Declares a series (it counts positions from now on, done or not). */
  declare(series: string): Map<bigint, number> {
    let m = this.series.get(series);
    if (!m) this.series.set(series, (m = new Map()));
    return m;
  }

  note(series: string, position: bigint, at: number): void {
    const m = this.declare(series);
    const earlier = m.get(position);
    if (earlier === undefined || at < earlier) m.set(position, at);
  }

  private inTime(position: bigint, at: number): boolean {
    return at <= (Number(position) + 2) * this.periodMs;
  }

  /** The first in-time position done at or after `t`, across series. */
  firstAfter(t: number): number | undefined {
    let best: number | undefined;
    for (const positions of this.series.values())
      for (const [p, at] of positions)
        if (at >= t && this.inTime(p, at) && (best === undefined || at < best)) best = at;
    return best;
  }

  /** Positions from the first begun after the start to the last one ended by `end`. */
  window(end: number): { ticks: number; signed: number } {
    const first = BigInt(Math.floor(this.start / this.periodMs)) + 1n;
    const last = BigInt(Math.floor(end / this.periodMs)) - 1n;
    let ticks = 0;
    let signed = 0;
    for (const positions of this.series.values())
      for (let p = first; p <= last; p++) {
        ticks++;
        const at = positions.get(p);
        if (at !== undefined && this.inTime(p, at)) signed++;
      }
    return { ticks, signed };
  }
}

/** What `vigil chaos --local` tallies evidence with (CometBFT signatures, produced blocks and votes). */
export interface LocalTally {
  readonly signatures: number;
  readonly refusals: number;
  readonly equivocations: readonly Equivocation[];
  firstSignedAfter(t: number): number | undefined;
  totals(end: number): LocalChaosTotals;
}

/**
 * What both tallies share: the run's window (signatures and refusals counted from `start`), the
 * in-time log of positions, and the totals; a subclass adds its evidence and its conflicts.
 */
abstract class WindowTally implements LocalTally {
  protected readonly log: InTimeLog;
  signatures = 0;
  refusals = 0;

  constructor(
    /** When the run started (ms, wall clock). */
    readonly start: number,
    /** A block's (or slot's) length: a position counts when it came before the next one ended. */
    readonly blockMs: number,
  ) {
    this.log = new InTimeLog(start, blockMs);
  }

  abstract get equivocations(): readonly Equivocation[];

  /** Signatures that did not verify (only CometBFT evidence carries signatures to verify). */
  protected get invalidSignatures(): number {
    return 0;
  }

  /** The first in-time position that arrived at or after `t`, across keys. */
  firstSignedAfter(t: number): number | undefined {
    return this.log.firstAfter(t);
  }

  /** Positions from the first begun after the start to the last one ended by `end`. */
  totals(end: number): LocalChaosTotals {
    const { ticks, signed } = this.log.window(end);
    return {
      ticks,
      signed,
      missed: ticks - signed,
      refusals: this.refusals,
      signatures: this.signatures,
      equivocations: this.equivocations.length,
      invalidSignatures: this.invalidSignatures,
      equivocationDetails: [...this.equivocations],
    };
  }
}

/**
 * What the simulated producers (Polkadot validators, Cardano producers, Decred voting
 * wallets) produced, tallied from their evidence lines: two different blocks (or votes) at one
 * slot (or ticket) for one key on one chain, from whichever hosts, are an equivocation; a
 * position counts as produced when it was produced before the next one ended. Produced and
 * refused duties are counted over the run's window; conflicts over everything seen.
 */
export class ProducerTally extends WindowTally {
  private readonly seen = new Map<string, { produced: string; node: string }>();
  readonly equivocations: Equivocation[] = [];

  add(e: ProducedLine): void {
    if (e.at >= this.start) {
      if (e.produced !== undefined) this.signatures++;
      else this.refusals++;
    }
    const series = `${e.chain}\0${e.key}`;
    this.log.declare(series);
    if (e.produced === undefined) return;
    const position = `${e.duty === 'vote' ? 'ticket' : 'slot'} ${e.slot}`;
    const at = `${series}\0${position}`;
    const earlier = this.seen.get(at);
    if (earlier === undefined) this.seen.set(at, { produced: e.produced, node: e.node });
    else if (earlier.produced !== e.produced)
      this.equivocations.push({
        chainId: e.chain,
        publicKey: e.key,
        position,
        nodes: [earlier.node, e.node],
      });
    this.log.note(series, BigInt(e.slot), e.at);
  }
}

/**
 * What the validator nodes saw, tallied: every signature since the nodes started goes to the
 * collector (a conflict with one made before the run is still a conflict), while signatures,
 * refusals and positions are counted over the run's window only. A height counts as signed
 * when a verified precommit for it reached a node before the next height's block ended (a
 * later one is catch-up after an outage: the chain had moved on).
 */
export class EvidenceTally extends WindowTally {
  private readonly collector = new EvidenceCollector();

  get equivocations(): readonly Equivocation[] {
    return this.collector.equivocations;
  }

  protected override get invalidSignatures(): number {
    return this.collector.invalidSignatures.length;
  }

  add(e: EvidenceLine): void {
    if (e.at >= this.start) {
      if (e.refused !== undefined) this.refusals++;
      else this.signatures++;
    }
    if (e.signBytes === undefined || e.signature === undefined) return;
    const key = `${e.chainId}\0${e.publicKey}`;
    this.log.declare(key);
    const invalidBefore = this.collector.invalidSignatures.length;
    this.collector.record({
      chainId: e.chainId,
      protocol: 'cometbft',
      publicKey: Buffer.from(e.publicKey, 'hex'),
      payload: Buffer.from(e.signBytes, 'hex'),
      signature: Buffer.from(e.signature, 'hex'),
      node: e.node,
    });
    // A signature that does not verify signs nothing the chain would count.
    if (e.step !== 'precommit' || this.collector.invalidSignatures.length > invalidBefore) return;
    // chainId\0key → height → when its first verified precommit signature arrived.
    this.log.note(key, BigInt(e.height), e.at);
  }
}

/** Where a fleet's evidence is written: a validator node's file or a producer unit's. */
interface EvidenceSource {
  /** Host name, and `/unit` for a producer unit. */
  readonly name: string;
  readonly periodMs: number;
  /** Reads what was appended since the last read into the tally it belongs to. */
  readonly kind: 'cometbft' | 'producer';
  readonly tail: EvidenceTail<EvidenceLine> | EvidenceTail<ProducedLine>;
}

/**
 * Every evidence file of a local fleet: each simulated CometBFT validator node's (its
 * node.json), and each simulated producer unit's (its `units/<unit>.sim.json`).
 */
function evidenceSourcesOf(record: RunRecordFile): EvidenceSource[] {
  const out: EvidenceSource[] = [];
  for (const h of record.record.hosts) {
    const hostDir = join(record.record.runDir, h.name);
    const nodeJson = join(hostDir, 'node.json');
    if (existsSync(nodeJson)) {
      const cfg = NodeProcessConfigSchema.parse(JSON.parse(readFileSync(nodeJson, 'utf8')));
      if (cfg.evidenceFile !== undefined)
        out.push({
          name: h.name,
          periodMs: cfg.blockTimeMs,
          kind: 'cometbft',
          tail: new EvidenceTail(cfg.evidenceFile, (l) => l as EvidenceLine),
        });
    }
    const unitsDir = join(hostDir, 'units');
    if (!existsSync(unitsDir)) continue;
    for (const f of readdirSync(unitsDir)
      .filter((n) => n.endsWith('.sim.json'))
      .sort()) {
      const cfg = SimUnitProcessConfigSchema.parse(
        JSON.parse(readFileSync(join(unitsDir, f), 'utf8')),
      );
      if (cfg.producer === undefined) continue;
      out.push({
        name: `${h.name}/${cfg.unit}`,
        periodMs: cfg.producer.slotMs,
        kind: 'producer',
        tail: new EvidenceTail(cfg.producer.evidenceFile, (l) => ProducedLineSchema.parse(l)),
      });
    }
  }
  return out;
}

/** Both tallies as one: sums, and the earliest first signature. */
function combined(a: EvidenceTally, b: ProducerTally): LocalTally {
  return {
    get signatures() {
      return a.signatures + b.signatures;
    },
    get refusals() {
      return a.refusals + b.refusals;
    },
    get equivocations() {
      return [...a.equivocations, ...b.equivocations];
    },
    firstSignedAfter(t) {
      const x = a.firstSignedAfter(t);
      const y = b.firstSignedAfter(t);
      return x === undefined ? y : y === undefined ? x : Math.min(x, y);
    },
    totals(end) {
      const x = a.totals(end);
      const y = b.totals(end);
      return {
        ticks: x.ticks + y.ticks,
        signed: x.signed + y.signed,
        missed: x.missed + y.missed,
        refusals: x.refusals + y.refusals,
        signatures: x.signatures + y.signatures,
        equivocations: x.equivocations + y.equivocations,
        invalidSignatures: x.invalidSignatures + y.invalidSignatures,
        equivocationDetails: [...x.equivocationDetails, ...y.equivocationDetails],
      };
    },
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function runLocalChaos(opts: LocalChaosOptions): Promise<LocalChaosReport> {
  const { record, plan } = opts;
  const nodes = evidenceSourcesOf(record);
  if (nodes.length === 0)
    throw new VigilError(
      'CHAOS_NO_VALIDATOR',
      `the local fleet ${record.record.fleet} runs no simulated validator, producer or voting wallet: there is nothing signed to count`,
      'vigil chaos --local measures fleets that sign or produce, e.g. examples/local/cosmos-ha.yaml or examples/local/cardano-guarded.yaml',
    );
  const blockMs = Math.max(1, nodes[0]!.periodMs);
  const hostNames = record.record.hosts.map((h) => h.name);
  const targets = opts.targets ?? hostNames;
  const unknown = targets.filter((t) => !hostNames.includes(t));
  if (unknown.length > 0)
    throw new VigilError(
      'CHAOS_UNKNOWN_HOST',
      `no host ${unknown.join(', ')} in the local fleet ${record.record.fleet}`,
      `hosts: ${hostNames.join(', ')}`,
    );
  const schedule = planLocalFaults({
    seed: opts.seed,
    durationMs: opts.durationMs,
    meanIntervalMs: opts.meanIntervalMs,
    maxFaultMs: opts.maxFaultMs,
    ...(opts.kinds ? { kinds: opts.kinds } : {}),
    hosts: targets,
    guardHosts: guardMembers(plan).map((h) => h.name),
  });

  const start = Date.now();
  const signatures = new EvidenceTally(start, blockMs);
  const produced = new ProducerTally(start, blockMs);
  const tally = combined(signatures, produced);
  const since = (t: number) => `${((t - start) / 1000).toFixed(1).padStart(6)} s`;
  const say = (line: string) => opts.onEvent?.(`[${since(Date.now())}] ${line}`);
  const readEvidence = () => {
    for (const n of nodes)
      if (n.kind === 'cometbft')
        for (const e of (n.tail as EvidenceTail<EvidenceLine>).read()) signatures.add(e);
      else for (const e of (n.tail as EvidenceTail<ProducedLine>).read()) produced.add(e);
  };

  const outcomes: LocalFaultOutcome[] = [];
  /** Faults injected and not yet healed: healed (or restarted) at the end whatever happens. */
  const active = new Map<LocalFaultOutcome, () => Promise<void>>();
  const running = new Set<Promise<void>>();
  const timers = new Set<NodeJS.Timeout>();
  const healedAt = new Map<LocalFaultOutcome, number>();
  let stopped = false;

  const track = (p: Promise<void>) => {
    running.add(p);
    void p.finally(() => running.delete(p));
  };
  const later = (ms: number, fn: () => Promise<void>) => {
    if (stopped) return;
    const t = setTimeout(() => {
      timers.delete(t);
      if (!stopped) track(fn());
    }, ms);
    timers.add(t);
  };

  /** Per fault: frees its hosts for their next fault (see `busy`). */
  const release = new Map<LocalFaultOutcome, () => void>();
  const heal = async (o: LocalFaultOutcome): Promise<void> => {
    const fn = active.get(o);
    try {
      if (fn === undefined) return;
      active.delete(o);
      healedAt.set(o, Date.now());
      await fn();
    } catch (err) {
      o.error = `heal: ${errorMessage(err)}`;
      say(`${o.host}: ${o.error}`);
    } finally {
      release.get(o)?.();
      release.delete(o);
    }
  };

  /** Per host: resolves once its latest fault is healed (a lost host restarted). */
  const busy = new Map<string, Promise<void>>();

  const inject = async (f: LocalPlannedFault): Promise<void> => {
    const hit = f.peer === undefined ? [f.host] : [f.host, f.peer];
    // A restart can outlast its settle time on a busy machine: a host takes its next fault
    // only once whole again. A fault still waiting when the run ends is not injected.
    await Promise.all(hit.map((h) => busy.get(h)));
    if (stopped) return;
    const o: LocalFaultOutcome = { ...f };
    outcomes.push(o);
    const whole = new Promise<void>((r) => release.set(o, r));
    for (const h of hit) busy.set(h, whole);
    const injectedAt = Date.now();
    o.injectedAtMs = injectedAt - start;
    try {
      if (f.kind === 'host-loss') {
        const left = await killHost(record.record, f.host);
        if (left.length > 0) throw new Error(`still running: ${left.join(', ')}`);
        say(`host-loss ${f.host}: every process killed; restart in ${f.lastsMs} ms`);
        active.set(o, async () => {
          const t0 = Date.now();
          say(`${f.host}: restarting (as after a reboot)`);
          await restartHost({ record, plan, files: opts.files }, f.host);
          o.restartMs = Date.now() - t0;
          say(`${f.host}: restarted in ${(o.restartMs / 1000).toFixed(1)} s`);
        });
      } else if (f.kind === 'slow-link') {
        const peer = f.peer!;
        await slowLink(record.record, f.host, peer, f.rttMs!);
        say(`slow-link ${f.host} <-> ${peer}: +${f.rttMs} ms round trip for ${f.lastsMs} ms`);
        active.set(o, async () => {
          await healSlowLink(record.record, f.host, peer);
          say(`${f.host} <-> ${peer}: direct again`);
        });
      } else {
        const direction = f.kind.slice('partition-'.length) as PartitionDirection;
        partitionHost(record.record, f.host, direction);
        say(`${f.kind} ${f.host} for ${f.lastsMs} ms`);
        active.set(o, async () => {
          healHost(record.record, f.host);
          say(`${f.host}: healed`);
        });
      }
    } catch (err) {
      o.error = `inject: ${errorMessage(err)}`;
      say(`${f.kind} ${f.host}: ${o.error}`);
      release.get(o)?.();
      return;
    }
    later(Math.max(0, f.lastsMs - (Date.now() - injectedAt)), () => heal(o));
  };

  say(
    `${schedule.length} faults planned on ${targets.length} hosts; evidence from ${nodes.map((n) => n.name).join(', ')}`,
  );
  for (const f of schedule) later(f.atMs, () => inject(f));
  let lastSummary = start;
  const aborted = () => opts.signal?.aborted ?? false;
  while (!aborted() && Date.now() - start < opts.durationMs) {
    readEvidence();
    if (Date.now() - lastSummary >= 5000) {
      lastSummary = Date.now();
      say(
        `signatures ${tally.signatures}, refusals ${tally.refusals}, equivocations ${tally.equivocations.length}`,
      );
    }
    await sleep(100);
  }
  const end = Date.now();
  stopped = true;
  for (const t of timers) clearTimeout(t);
  // Faults being injected finish (those still waiting for a host give up), and every active
  // one is healed or its host restarted; healing frees hosts that waiting faults wait for.
  while (running.size > 0 || active.size > 0) {
    for (const o of [...active.keys()]) await heal(o);
    if (running.size > 0) await Promise.race([...running, sleep(100)]);
  }
  // Whatever a failed heal left (a slow link's relay, a chaos table) goes too.
  await healAllSlowLinks(record.record).catch(() => undefined);
  for (const h of record.record.hosts) healHost(record.record, h.name);
  // Signing resumed after every fault? Given a bounded while to show it after the last heal.
  const unresumed = () =>
    outcomes.some((o) => {
      const t = healedAt.get(o);
      return t !== undefined && tally.firstSignedAfter(t) === undefined;
    });
  for (const deadline = Date.now() + 30_000; unresumed() && Date.now() < deadline;) {
    await sleep(250);
    readEvidence();
  }
  // The last heights' grace (their next block) passes before the final read.
  await sleep(Math.max(0, (Math.floor(end / blockMs) + 2) * blockMs - Date.now()) + 200);
  readEvidence();

  const totals = tally.totals(end);
  for (const o of outcomes) {
    if (o.error?.startsWith('inject')) continue;
    const injected = start + (o.injectedAtMs ?? o.atMs);
    const first = tally.firstSignedAfter(injected);
    if (first !== undefined) o.recoveryMs = first - injected;
    const healed = healedAt.get(o);
    const resumed = healed === undefined ? undefined : tally.firstSignedAfter(healed);
    if (healed !== undefined && resumed !== undefined) o.resumedMs = resumed - healed;
  }
  const injectedOk = outcomes.filter((o) => !o.error?.startsWith('inject'));
  const faultsByKind = Object.fromEntries(
    LOCAL_FAULT_KINDS.map((k) => [k, injectedOk.filter((o) => o.kind === k).length]),
  ) as Record<LocalFaultKind, number>;
  const recoveries = injectedOk.flatMap((o) => (o.recoveryMs === undefined ? [] : [o.recoveryMs]));
  const resumes = injectedOk.flatMap((o) => (o.resumedMs === undefined ? [] : [o.resumedMs]));
  return {
    seed: opts.seed,
    fleet: record.record.fleet,
    store: plan.topology.vigil.store,
    durationMs: end - start,
    blockTimeMs: blockMs,
    faults: injectedOk.length,
    faultsByKind,
    devnet: totals,
    missedPercent: totals.ticks === 0 ? 0 : (100 * totals.missed) / totals.ticks,
    recoveryMs: percentiles(recoveries),
    resumedMs: { ...percentiles(resumes), neverResumed: injectedOk.length - resumes.length },
    faultLog: outcomes,
    validatorNodes: nodes.map((n) => n.name),
    interrupted: aborted(),
  };
}
