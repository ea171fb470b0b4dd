/**
 * What a bench module may return from `run()` for the summary printed by bench/run.ts.
 * Modules that print their own figures and return nothing are fine too.
 */
export interface BenchFigure {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** Measured in the same run. */
  readonly baseline?: number;
  readonly baselineName?: string;
  readonly ratio?: number;
  /** Human-readable target, e.g. "≥ 0.80× raw" or "≤ 5 ms". */
  readonly target?: string;
  /** Whether the target was met (undefined when there is no target). */
  readonly ok?: boolean;
}

export function isBenchFigureList(x: unknown): x is BenchFigure[] {
  return (
    Array.isArray(x) &&
    x.every(
      (f) =>
        typeof f === 'object' &&
        f !== null &&
        typeof (f as BenchFigure).name === 'string' &&
        typeof (f as BenchFigure).value === 'number',
    )
  );
}
