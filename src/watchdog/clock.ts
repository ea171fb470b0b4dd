/**
 * CLOCK_MONOTONIC in nanoseconds. Node's process.hrtime.bigint() and performance.now() both
 * read it (through libuv's uv_hrtime), and on Linux it is one clock for every process of the
 * host, so an instant computed by the agent means the same instant to its watchdog.
 */
import { performance } from 'node:perf_hooks';

export const monoNs = (): bigint => process.hrtime.bigint();

/** The CLOCK_MONOTONIC instant of a performance.now() reading taken in this process. */
export function perfToMonoNs(perfMs: number): bigint {
  const base = process.hrtime.bigint();
  const perfNow = performance.now();
  return base + BigInt(Math.round((perfMs - perfNow) * 1e6));
}

/** Milliseconds from now until `at` (negative when past). */
export const msUntil = (at: bigint): number => Number(at - monoNs()) / 1e6;
