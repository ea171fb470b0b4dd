/**
 * The one place that knows why the agent is not ready. Readiness is the conjunction of named
 * conditions (the store answers and takes writes, the local watermark file is writable, …);
 * each holds its last failure. Parts push changes as they see them (a refused write, a flush
 * that failed) and probes are asked on each check (/readyz, the daemon's periodic check), so
 * a cause that clears while nobody signs is still noticed. Listeners hear only changes
 * between ready and not ready, so a failing disk is logged once, not once per request.
 */
import { errorMessage } from '../errors.js';

export interface ConditionStatus {
  readonly name: string;
  readonly ready: boolean;
  /** Why not, while not ready. */
  readonly reason?: string;
  /** When it last changed between ready and not ready (ms since the epoch). */
  readonly sinceMs: number;
}

export interface ReadinessReport {
  readonly ready: boolean;
  readonly conditions: readonly ConditionStatus[];
}

/** Answers a failure reason, or undefined when the condition holds; may also throw. */
export type ReadinessProbe = () => Promise<string | undefined> | string | undefined;

interface Condition {
  status: ConditionStatus;
  probe?: ReadinessProbe;
}

export class Readiness {
  private readonly conditions = new Map<string, Condition>();

  constructor(private readonly onChange?: (status: ConditionStatus) => void) {}

  /** Declares a condition (ready until told otherwise), with an optional probe. */
  define(name: string, probe?: ReadinessProbe): void {
    const existing = this.conditions.get(name);
    if (existing) {
      if (probe) existing.probe = probe;
      return;
    }
    this.conditions.set(name, {
      status: { name, ready: true, sinceMs: Date.now() },
      ...(probe ? { probe } : {}),
    });
  }

  /** Sets a condition: a reason means not ready, undefined means ready. */
  report(name: string, failure: string | undefined): void {
    this.define(name);
    const condition = this.conditions.get(name)!;
    const was = condition.status;
    const ready = failure === undefined;
    if (was.ready === ready && was.reason === failure) return;
    condition.status = {
      name,
      ready,
      ...(failure !== undefined ? { reason: failure } : {}),
      sinceMs: was.ready === ready ? was.sinceMs : Date.now(),
    };
    if (was.ready !== ready) this.onChange?.(condition.status);
  }

  /** Runs every probe (each bounded by `timeoutMs`) and answers the result. Never rejects. */
  async check(timeoutMs: number): Promise<ReadinessReport> {
    await Promise.all(
      [...this.conditions].map(async ([name, { probe }]) => {
        if (probe === undefined) return;
        let timer: NodeJS.Timeout | undefined;
        try {
          const failure = await Promise.race([
            Promise.resolve().then(probe),
            new Promise<string>((resolve) => {
              timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
            }),
          ]);
          this.report(name, failure);
        } catch (err) {
          this.report(name, errorMessage(err));
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    return this.snapshot();
  }

  /** The conditions as last reported or probed, without probing. */
  snapshot(): ReadinessReport {
    const conditions = [...this.conditions.values()].map((c) => c.status);
    return { ready: conditions.every((c) => c.ready), conditions };
  }

  /** "store: no answer within 2000 ms; local_watermark: the disk is full (…)" */
  static describe(report: ReadinessReport): string {
    return report.conditions
      .filter((c) => !c.ready)
      .map((c) => `${c.name}: ${c.reason}`)
      .join('; ');
  }
}

/** Condition names the agent defines; other parts may add their own. */
export const STORE_CONDITION = 'store';
export const LOCAL_WATERMARK_CONDITION = 'local_watermark';
/** The store reached is the one this agent's local watermark was built against. */
export const STORE_IDENTITY_CONDITION = 'store_identity';

/**
 * The store condition: the store answers its ping, and no write was refused as unavailable
 * since the last one it committed. On SQLite a ping is a read, which says nothing of a full or
 * read-only disk, so only a committed write clears a write failure there; on etcd the ping is a
 * linearizable read that needs the same quorum as a write, so a ping that answers clears it.
 * Returns what the agent calls with each guard decision.
 */
export function defineStoreCondition(
  readiness: Readiness,
  store: { readonly engine: string; ping(): Promise<void> },
): (decision: { outcome: string; reason?: string; message?: string }) => void {
  let writeFailure: string | undefined;
  const pingProvesWrites = store.engine === 'etcd';
  readiness.define(STORE_CONDITION, async () => {
    await store.ping();
    if (pingProvesWrites) writeFailure = undefined;
    return writeFailure;
  });
  return (decision) => {
    if (decision.outcome === 'refused' && decision.reason === 'store_unavailable') {
      writeFailure = decision.message ?? 'a write was refused';
      readiness.report(STORE_CONDITION, writeFailure);
    } else if (decision.outcome === 'granted') {
      writeFailure = undefined;
      readiness.report(STORE_CONDITION, undefined);
    }
  };
}
