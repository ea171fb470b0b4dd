/**
 * `vigil chaos`: seeded, reproducible fault injection against a devnet. Faults hit agents
 * (SIGKILL and restart, SIGSTOP/SIGCONT), links (node ↔ agent cut through the TCP proxy) and
 * clocks (a node's clock jumps by a few ticks). The report says what was injected, what the
 * chain saw (signatures, equivocations, missed ticks) and how long each fault took to be
 * followed by the next good signature.
 */
import type { DevnetFile } from './devnet-file.js';
import { runDevnet, type DevnetControl, type DevnetReport, type DevnetTotals } from './devnet.js';
import type { TickOutcome } from './duty-network.js';

export const FAULT_KINDS = ['agent-kill', 'agent-pause', 'link-cut', 'clock-jump'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** mulberry32: a small seeded generator, so a run can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ChaosOptions {
  readonly file: DevnetFile;
  readonly workDir: string;
  readonly seed: number;
  readonly durationMs: number;
  /** Mean time between fault injections. */
  readonly meanIntervalMs: number;
  /** Longest a fault lasts before it is healed. */
  readonly maxFaultMs: number;
  readonly kinds?: readonly FaultKind[];
  readonly onFault?: (f: InjectedFault) => void;
  /** Every position reported by any chain (for a live view or a test's own checks). */
  readonly onTick?: (o: TickOutcome, totals: DevnetTotals) => void;
}

/** One planned fault. The whole plan is drawn from the seed before the run starts, so the
 * same seed injects the same faults at the same offsets whatever the run's timing. */
export interface PlannedFault {
  readonly kind: FaultKind;
  /** Index of the member hit. */
  readonly target: number;
  readonly atMs: number;
  readonly lastsMs: number;
  /** clock-jump only: how many ticks the node's clock is off. */
  readonly skewTicks: number;
}

export interface InjectedFault extends PlannedFault {
  readonly targetName: string;
  /** Time from the injection to the next position any node got signed. */
  recoveryMs?: number;
}

/** Time an agent needs to come back after its fault is healed; no new fault hits it before. */
const SETTLE_MS = 1500;

export function planFaults(
  opts: Pick<ChaosOptions, 'seed' | 'durationMs' | 'meanIntervalMs' | 'maxFaultMs' | 'kinds'>,
  members: number,
): PlannedFault[] {
  const random = seededRandom(opts.seed);
  const kinds = opts.kinds ?? FAULT_KINDS;
  const freeAt = new Array<number>(members).fill(0);
  const plan: PlannedFault[] = [];
  // Exponential gaps: faults arrive as a Poisson process, sometimes close together.
  for (
    let at = opts.meanIntervalMs;
    at < opts.durationMs - opts.maxFaultMs;
    at += Math.max(20, Math.round(-Math.log(1 - random()) * opts.meanIntervalMs))
  ) {
    const target = Math.floor(random() * members);
    const kind = kinds[Math.floor(random() * kinds.length)]!;
    const lastsMs = Math.round(100 + random() * (opts.maxFaultMs - 100));
    const skewTicks = Math.floor(random() * 7) - 3 || 1;
    if (freeAt[target]! > at) continue;
    freeAt[target] = at + lastsMs + SETTLE_MS;
    plan.push({ kind, target, atMs: at, lastsMs, skewTicks });
  }
  return plan;
}

export interface ChaosReport {
  readonly seed: number;
  readonly durationMs: number;
  readonly faults: number;
  readonly faultsByKind: Record<FaultKind, number>;
  readonly devnet: DevnetReport;
  readonly missedPercent: number;
  readonly recoveryMs: {
    readonly p50: number;
    readonly p95: number;
    readonly max: number;
    readonly samples: number;
  };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const members = Math.max(...opts.file.chains.map((c) => c.nodes));
  const plan = planFaults(opts, members);
  const injected: InjectedFault[] = [];
  const pending = new Set<InjectedFault>();
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;
  let start = 0;

  const at = (ms: number, fn: () => void | Promise<void>) => {
    const t = setTimeout(
      () => {
        timers.delete(t);
        if (!stopped) void fn();
      },
      Math.max(0, ms),
    );
    timers.add(t);
  };

  function inject(control: DevnetControl, f: PlannedFault): void {
    const member = control.members[f.target]!;
    const heal = (fn: () => void | Promise<void>) => at(f.lastsMs, fn);
    switch (f.kind) {
      case 'agent-kill':
        control.killAgent(member);
        heal(() => control.restartAgent(member));
        break;
      case 'agent-pause': {
        const child = member.agent?.child;
        child?.kill('SIGSTOP');
        heal(() => {
          child?.kill('SIGCONT');
        });
        break;
      }
      case 'link-cut':
        // Every link between this member's nodes and its agent: the HTTP API and privval.
        member.proxy.cut(f.lastsMs);
        for (const link of member.nodeLinks) link.cut(f.lastsMs);
        break;
      case 'clock-jump':
        member.node.clockSkewTicks = BigInt(f.skewTicks);
        heal(() => {
          member.node.clockSkewTicks = 0n;
        });
        break;
    }
    const fault: InjectedFault = { ...f, targetName: member.name };
    injected.push(fault);
    pending.add(fault);
    opts.onFault?.(fault);
  }

  const devnet = await runDevnet({
    file: opts.file,
    workDir: opts.workDir,
    durationMs: opts.durationMs,
    onStarted: (control) => {
      start = Date.now();
      for (const f of plan) at(f.atMs, () => inject(control, f));
    },
    onTick: (o, totals) => {
      opts.onTick?.(o, totals);
      if (!o.author) return;
      const now = Date.now() - start;
      for (const f of pending) {
        f.recoveryMs = now - f.atMs;
        pending.delete(f);
      }
    },
  }).finally(() => {
    stopped = true;
    for (const t of timers) clearTimeout(t);
  });

  const recoveries = injected
    .flatMap((f) => (f.recoveryMs === undefined ? [] : [f.recoveryMs]))
    .sort((a, b) => a - b);
  const faultsByKind = Object.fromEntries(
    FAULT_KINDS.map((k) => [k, injected.filter((f) => f.kind === k).length]),
  ) as Record<FaultKind, number>;
  return {
    seed: opts.seed,
    durationMs: opts.durationMs,
    faults: injected.length,
    faultsByKind,
    devnet,
    missedPercent: devnet.ticks === 0 ? 0 : (100 * devnet.missed) / devnet.ticks,
    recoveryMs: {
      p50: percentile(recoveries, 50),
      p95: percentile(recoveries, 95),
      max: recoveries.at(-1) ?? 0,
      samples: recoveries.length,
    },
  };
}
