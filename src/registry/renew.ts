/**
 * A running node keeps its own record alive (issue 15: records expire; nothing re-broadcasts
 * an unchanged one): before the version it holds expires — at `at` of its lifetime (default
 * 2/3), moved by up to ±`jitter` of the lifetime so a fleet admitted together does not renew
 * together — it signs the same content again with new issued-at/expires-at on top of that
 * version (prevSeq = its seq, so the store gives the next seq in its commit order) and submits
 * it. A refusal or an unreachable validator is retried with exponential backoff (with jitter);
 * a stale answer (someone else, e.g. `vigil registry submit`, moved the record on) first
 * refreshes what the node holds. Nothing happens for a node that has no record yet: admission
 * is the operator's act (`vigil registry submit`), not this loop's.
 *
 * Metrics: `vigil_registry_renewals_total{result}` (renewed, stale, refused, unreachable) and
 * `vigil_registry_own_record_expires_at_seconds`; each attempt is reported to `onEvent` (the
 * daemon logs it).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { VigilError, errorMessage } from '../errors.js';
import type { RecordContent, SignedRecord } from './record.js';
import type { Submitted } from './submit.js';

export type RenewResult = 'renewed' | 'stale' | 'refused' | 'unreachable';

export interface RenewEvent {
  readonly result: RenewResult;
  /** The version renewed (its seq), and the new one's when renewed. */
  readonly fromSeq: bigint;
  readonly seq?: bigint;
  readonly error?: string;
  readonly code?: string;
  /** When the next attempt is due after a failure. */
  readonly retryInMs?: number;
}

export interface RenewTuning {
  /** Fraction of the lifetime after issued-at at which to renew (default 2/3). */
  readonly at?: number;
  /** ± this fraction of the lifetime, drawn once per version (default 0.05). */
  readonly jitter?: number;
  /** The renewed version's lifetime (default: the current version's). */
  readonly lifetimeMs?: number;
  /** How often it looks (default 1 s: one local read). */
  readonly checkMs?: number;
  /** First retry delay after a failure, doubled per failure up to retryMaxMs (1 s, 5 min). */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

export interface RenewerOptions extends RenewTuning {
  /** The newest version this node knows of its own record. */
  readonly current: () => Promise<SignedRecord | undefined>;
  /** Signs and submits `content`; throws the refusal (a VigilError with its code). */
  readonly submit: (content: RecordContent) => Promise<Submitted>;
  /** After a stale answer: bring `current` up to date (a peer syncs from a validator). */
  readonly refresh?: () => Promise<void>;
  readonly metrics: Registry;
  readonly nowMs?: () => number;
  readonly random?: () => number;
  readonly onEvent?: (e: RenewEvent) => void;
}

interface Held {
  readonly seq: bigint;
  readonly content: RecordContent;
}

export class RecordRenewer {
  private readonly renewals: Counter<'result'>;
  private readonly nowMs: () => number;
  private readonly random: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** What this loop itself got committed last: the view may not show it yet. */
  private committed: Held | undefined;
  private jitterFor: { seq: bigint; ms: number } | undefined;
  private failures = 0;
  private retryAtMs = 0;
  private expiresAtMs = 0;

  constructor(private readonly o: RenewerOptions) {
    this.nowMs = o.nowMs ?? Date.now;
    this.random = o.random ?? Math.random;
    this.renewals = new Counter({
      name: 'vigil_registry_renewals_total',
      help: "This node's re-submissions of its own record before it expires, by result",
      labelNames: ['result'],
      registers: [o.metrics],
    });
    const expiresAt = () => this.expiresAtMs;
    new Gauge({
      name: 'vigil_registry_own_record_expires_at_seconds',
      help: "When this node's own record (the newest version it knows) expires, Unix seconds; 0 without one",
      registers: [o.metrics],
      collect() {
        this.set(expiresAt() / 1000);
      },
    });
  }

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.running ??= this.check()
        .then(() => undefined)
        .finally(() => (this.running = undefined));
    };
    this.timer = setInterval(tick, this.o.checkMs ?? 1000);
    this.timer.unref();
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** The newer of what the node holds and what this loop got committed. */
  private async held(): Promise<Held | undefined> {
    const cur = await this.o.current();
    if (this.committed && (!cur || cur.seq < this.committed.seq)) return this.committed;
    return cur && { seq: cur.seq, content: cur.content };
  }

  /** One look: renews if due; never rejects. */
  async check(): Promise<RenewResult | undefined> {
    const now = this.nowMs();
    if (now < this.retryAtMs) return undefined;
    let held: Held | undefined;
    try {
      held = await this.held();
    } catch {
      return undefined; // the view or store is unreadable now: its own health says so
    }
    if (!held) return undefined;
    const c = held.content;
    this.expiresAtMs = c.expiresAtMs;
    const lifetime = c.expiresAtMs - c.issuedAtMs;
    if (this.jitterFor?.seq !== held.seq) {
      const j = this.o.jitter ?? 0.05;
      this.jitterFor = { seq: held.seq, ms: Math.round((this.random() * 2 - 1) * j * lifetime) };
    }
    const dueAt = c.issuedAtMs + Math.round((this.o.at ?? 2 / 3) * lifetime) + this.jitterFor.ms;
    if (now < dueAt) return undefined;
    const content: RecordContent = {
      ...c,
      prevSeq: held.seq,
      issuedAtMs: now,
      expiresAtMs: now + (this.o.lifetimeMs ?? lifetime),
    };
    let result: RenewResult;
    try {
      const r = await this.o.submit(content);
      this.committed = { seq: r.seq, content };
      this.expiresAtMs = content.expiresAtMs;
      this.failures = 0;
      this.retryAtMs = 0;
      this.renewals.inc({ result: 'renewed' });
      this.report({ result: 'renewed', fromSeq: held.seq, seq: r.seq });
      return 'renewed';
    } catch (err) {
      const code = err instanceof VigilError ? err.code : undefined;
      result =
        code === 'REGISTRY_SEQ_STALE'
          ? 'stale'
          : code === 'REGISTRY_UNAVAILABLE' || code === undefined
            ? 'unreachable'
            : 'refused';
      this.failures++;
      const base = Math.min(
        this.o.retryMaxMs ?? 300_000,
        (this.o.retryMinMs ?? 1000) * 2 ** (this.failures - 1),
      );
      const retryInMs = Math.round(base * (0.75 + 0.5 * this.random()));
      this.retryAtMs = this.nowMs() + retryInMs;
      this.renewals.inc({ result });
      this.report({
        result,
        fromSeq: held.seq,
        error: errorMessage(err),
        ...(code ? { code } : {}),
        retryInMs,
      });
      if (result === 'stale') {
        // Someone else committed a newer version: what this loop committed is not the newest.
        this.committed = undefined;
        await this.o.refresh?.().catch(() => undefined);
      }
      return result;
    }
  }

  private report(e: RenewEvent): void {
    try {
      this.o.onEvent?.(e);
    } catch {
      // a logging hook that throws must not stop renewals
    }
  }
}
