/**
 * Leadership of an exclusive role, the same contract on etcd (a cluster) and SQLite (one host).
 *
 * The holder never trusts a "lost" signal from a client library. It keeps its own deadline on
 * the monotonic clock: the moment it SENT the last renewal that was acknowledged, plus the TTL,
 * minus a margin for clock-rate drift. The engine's expiry for that renewal starts no earlier
 * than the send, so at our deadline the engine may still count us as holder, never the
 * reverse. Whatever the holder believes, every fenced write is checked by the engine itself.
 */
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import type { FenceToken } from '../store/types.js';

export const LeaseTimingSchema = z
  .object({
    /** Lease time-to-live. etcd counts whole seconds, so it is rounded up there. */
    ttlMs: z.number().int().min(2000).max(600_000).default(5000),
    /** Allowance for the holder's and the engine's clocks running at different rates. */
    marginMs: z.number().int().min(0).max(60_000).default(250),
    /** How often a follower looks for a free role. */
    pollMs: z.number().int().min(20).max(60_000).default(200),
    /** Deadline of one renewal round trip. */
    callTimeoutMs: z.number().int().min(50).max(60_000).default(1000),
  })
  .strict();
export type LeaseTiming = z.output<typeof LeaseTimingSchema>;

export const now = (): number => performance.now();

export interface Leadership {
  readonly fence: FenceToken;
  /**
   * Monotonic time (performance.now) from which the role may act: one TTL after acquisition
   * unless the previous holder recorded a confirmed stop (see handover.ts).
   */
  readonly safeAfter: number;
  /** Monotonic time at which this holder must consider itself deposed. */
  deadline(): number;
  /** Still the holder by our own clock (and not told otherwise). */
  held(): boolean;
  /** One renewal. true: confirmed, the deadline moved on. false: not confirmed or lost. */
  renew(): Promise<boolean>;
  /**
   * Hands the role back at once and records that its effects are CONFIRMED stopped, so the
   * successor need not wait. Call it only then (a signal sent is not a node stopped); otherwise
   * let the lease run out, and the successor waits one TTL after acquiring.
   */
  release(): Promise<void>;
}

export interface LeaderElection {
  readonly role: string;
  readonly holderId: string;
  readonly timing: LeaseTiming;
  /** One attempt: the leadership if the role was free, else undefined. Never waits. */
  tryAcquire(): Promise<Leadership | undefined>;
  /** Who the store says holds the role now (undefined: nobody), for drills and status. */
  current(): Promise<{ holderId: string; token: bigint } | undefined>;
  close(): Promise<void>;
}
