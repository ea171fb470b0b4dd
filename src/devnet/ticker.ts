/**
 * Calls back at every multiple of `tickMs` of wall-clock time, with the tick number
 * (time / tickMs). Ticks follow the wall clock so a restarted devnet never reuses a position.
 */
export class WallClockTicker {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private lastBoundary = 0;

  constructor(
    readonly tickMs: number,
    private readonly onTick: (tick: bigint) => void,
  ) {}

  start(): void {
    this.running = true;
    this.scheduleNext();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
  }

  private scheduleNext(): void {
    if (!this.running) return;
    const now = Date.now();
    // A timer may fire a little before the wall clock reaches its boundary: never schedule
    // (and so report) the same boundary twice.
    const boundary = Math.max(Math.floor(now / this.tickMs) + 1, this.lastBoundary + 1);
    this.lastBoundary = boundary;
    this.timer = setTimeout(
      () => {
        this.onTick(BigInt(boundary));
        this.scheduleNext();
      },
      boundary * this.tickMs - now,
    );
  }
}
