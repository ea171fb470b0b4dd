/**
 * The info line per granted signature, capped per chain: a validator signs several times a
 * second on a fast chain, and a log that scrolls faster than anyone reads hides the warnings.
 * At most one line per chain per interval; the lines held back are counted and the count is
 * carried by the next line that is written for that chain.
 */
export class SignedLogLimiter {
  private readonly chains = new Map<string, { lastAt: number; suppressed: number }>();

  constructor(
    private readonly intervalMs = 1000,
    /** Milliseconds; only differences are used, so any monotonic clock will do. */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Whether a line for `chainId` may be written now and, if so, how many were held back since
   * the last one written. Chains are only ever configured ones (a grant passed the key's
   * binding), so the map stays as small as the agent's config.
   */
  admit(chainId: string): { log: false } | { log: true; suppressed: number } {
    const at = this.now();
    const state = this.chains.get(chainId);
    if (state && at - state.lastAt < this.intervalMs) {
      state.suppressed++;
      return { log: false };
    }
    const suppressed = state?.suppressed ?? 0;
    this.chains.set(chainId, { lastAt: at, suppressed: 0 });
    return { log: true, suppressed };
  }
}
