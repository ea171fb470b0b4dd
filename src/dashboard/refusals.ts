/**
 * The agent's recent refusals: a bounded ring the guard's decision observer feeds, newest
 * first when read. Counts since start are in the metrics; this keeps what a count cannot say
 * (which chain, which key, the guard's message). A refused request may name a chain or key
 * the caller invented, so every field is cut to a fixed length and the ring never grows.
 */

export interface RecentRefusal {
  readonly at: string;
  readonly chainId: string;
  readonly key: string;
  readonly family: string;
  readonly reason: string;
  readonly message: string;
}

/** Longest kept text of a field; the rest is replaced by an ellipsis. */
export const MAX_FIELD_CHARS = 160;

const cut = (s: string | undefined, max = MAX_FIELD_CHARS) =>
  s === undefined ? '' : s.length > max ? `${s.slice(0, max - 1)}…` : s;

export class RefusalRing {
  private readonly entries: RecentRefusal[] = [];
  private next = 0;

  constructor(readonly capacity = 50) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
  }

  add(
    e: {
      chainId: string;
      keyId: string;
      family?: string | undefined;
      reason?: string | undefined;
      message?: string | undefined;
    },
    atMs = Date.now(),
  ): void {
    const entry: RecentRefusal = {
      at: new Date(atMs).toISOString(),
      chainId: cut(e.chainId),
      key: cut(e.keyId),
      family: cut(e.family ?? 'unknown', 32),
      reason: cut(e.reason ?? 'unknown', 64),
      message: cut(e.message, 2 * MAX_FIELD_CHARS),
    };
    if (this.entries.length < this.capacity) this.entries.push(entry);
    else this.entries[this.next] = entry;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Newest first. */
  recent(): RecentRefusal[] {
    const n = this.entries.length;
    const out: RecentRefusal[] = [];
    for (let i = 1; i <= n; i++) out.push(this.entries[(this.next - i + n) % n]!);
    return out;
  }
}
