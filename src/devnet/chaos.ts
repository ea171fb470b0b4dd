/**
 * `vigil chaos`: seeded, reproducible fault injection against a devnet. Faults hit agents
 * (SIGKILL and restart, SIGSTOP/SIGCONT), links (node ↔ agent cut through the TCP proxy) and
 * clocks (a node's clock jumps by a few ticks). The report says what was injected, what the
 * chain saw (signatures, equivocations, missed ticks) and how long each fault took to be
 * followed by the next good signature.
 */
import type { DevnetFile } from './devnet-file.js';
import { VigilError } from '../errors.js';
import { runDevnet, type DevnetControl, type DevnetReport, type DevnetTotals } from './devnet.js';
import type { TickOutcome } from './duty-network.js';

import { ETCD_FAULT_KINDS, FAULT_KINDS, type FaultKind } from './fault-kinds.js';

export { ETCD_FAULT_KINDS, FAULT_KINDS, type FaultKind };

/** The fault kinds that make sense on a devnet with this store. */
export function faultKindsFor(store: DevnetFile['store']): readonly FaultKind[] {
  return store === 'etcd' ? FAULT_KINDS : FAULT_KINDS.filter((k) => !ETCD_FAULT_KINDS.includes(k));
}

/** Faults whose target is an etcd member rather than a devnet member. */
const ON_ETCD_MEMBER: readonly FaultKind[] = ['etcd-kill', 'etcd-pause'];

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
  /** Stops the run early (Ctrl-C); the report covers what ran. */
  readonly signal?: AbortSignal;
  readonly onFault?: (f: InjectedFault) => void;
  /** Every position reported by any chain (for a live view or a test's own checks). */
  readonly onTick?: (o: TickOutcome, totals: DevnetTotals) => void;
}

/** One planned fault. The whole plan is drawn from the seed before the run starts, so the
 * same seed injects the same faults at the same offsets whatever the run's timing. */
export interface PlannedFault {
  readonly kind: FaultKind;
  /** Index of the member hit (of the etcd member for etcd-kill and etcd-pause). */
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

/** The devnet's etcd cluster size with `store: etcd`. */
export const DEVNET_ETCD_MEMBERS = 3;

/** Time an agent needs to come back after its fault is healed; no new fault hits it before. */
const SETTLE_MS = 1500;

/**
 * Draws the whole fault plan from the seed. A devnet member takes one fault at a time; so
 * does the etcd cluster as a whole (one member down or paused at a time keeps its quorum, so
 * what is measured is failover, not an outage by design).
 */
export function planFaults(
  opts: Pick<ChaosOptions, 'seed' | 'durationMs' | 'meanIntervalMs' | 'maxFaultMs' | 'kinds'>,
  members: number,
  etcdMembers = 0,
): PlannedFault[] {
  const random = seededRandom(opts.seed);
  const kinds = (opts.kinds ?? FAULT_KINDS).filter(
    (k) => etcdMembers > 0 || !ETCD_FAULT_KINDS.includes(k),
  );
  if (kinds.length === 0) return [];
  // One slot per devnet member, then one for the etcd cluster.
  const freeAt = new Array<number>(members + 1).fill(0);
  const plan: PlannedFault[] = [];
  // Exponential gaps: faults arrive as a Poisson process, sometimes close together.
  for (
    let at = opts.meanIntervalMs;
    at < opts.durationMs - opts.maxFaultMs;
    at += Math.max(20, Math.round(-Math.log(1 - random()) * opts.meanIntervalMs))
  ) {
    const kind = kinds[Math.floor(random() * kinds.length)]!;
    const onEtcd = ON_ETCD_MEMBER.includes(kind);
    const target = Math.floor(random() * (onEtcd ? etcdMembers : members));
    const lastsMs = Math.round(100 + random() * (opts.maxFaultMs - 100));
    const skewTicks = Math.floor(random() * 7) - 3 || 1;
    const slot = onEtcd ? members : target;
    if (freeAt[slot]! > at) continue;
    freeAt[slot] = at + lastsMs + SETTLE_MS;
    plan.push({ kind, target, atMs: at, lastsMs, skewTicks });
  }
  return plan;
}

export interface ChaosReport {
  readonly seed: number;
  readonly store: DevnetFile['store'];
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
  const etcdMembers = opts.file.store === 'etcd' ? DEVNET_ETCD_MEMBERS : 0;
  const wrongStore = (opts.kinds ?? []).filter((k) => !faultKindsFor(opts.file.store).includes(k));
  if (wrongStore.length > 0)
    throw new VigilError(
      'CHAOS_FAULT_NEEDS_ETCD',
      `fault kinds ${wrongStore.join(', ')} need the devnet's etcd cluster, but devnet ${opts.file.name} runs on the ${opts.file.store} store`,
      'set `store: etcd` in the devnet file, or leave these kinds out of --kinds',
    );
  const plan = planFaults(
    { ...opts, kinds: opts.kinds ?? faultKindsFor(opts.file.store) },
    members,
    etcdMembers,
  );
  const injected: InjectedFault[] = [];
  const pending = new Set<InjectedFault>();
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;
  let start = 0;

  const at = (ms: number, fn: () => void | Promise<void>) => {
    const t = setTimeout(
      () => {
        timers.delete(t);
        // A heal that fails (a port taken meanwhile) leaves the fault in place: the run
        // goes on degraded, which is still a valid safety test.
        if (!stopped)
          void Promise.resolve()
            .then(fn)
            .catch(() => undefined);
      },
      Math.max(0, ms),
    );
    timers.add(t);
  };

  function inject(control: DevnetControl, f: PlannedFault): void {
    const heal = (fn: () => void | Promise<void>) => at(f.lastsMs, fn);
    const etcd = control.etcd;
    if (ON_ETCD_MEMBER.includes(f.kind)) {
      if (!etcd) return;
      if (f.kind === 'etcd-kill') {
        void etcd.killMember(f.target);
        // Back on the same data dir, as after a crash and a reboot.
        heal(() => etcd.startMember(f.target));
      } else {
        etcd.pauseMember(f.target);
        heal(() => etcd.resumeMember(f.target));
      }
      record({ ...f, targetName: etcd.members[f.target]!.name });
      return;
    }
    const member = control.members[f.target]!;
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
      case 'etcd-link-cut':
        etcd?.cutAgent(member.name, f.lastsMs);
        break;
    }
    record({ ...f, targetName: member.name });
  }

  function record(fault: InjectedFault): void {
    injected.push(fault);
    pending.add(fault);
    opts.onFault?.(fault);
  }

  const devnet = await runDevnet({
    file: opts.file,
    workDir: opts.workDir,
    durationMs: opts.durationMs,
    ...(opts.signal ? { signal: opts.signal } : {}),
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
    store: opts.file.store,
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
