/**
 * How the previous holding of a role ended, as the successor learns it from the store.
 *
 * A successor cannot read the old holder's monotonic clock, so it cannot know its deadline;
 * it knows only its own. The rule: it activates at once if the previous holder recorded that
 * its node was confirmed stopped; otherwise it waits one full TTL after acquiring. That wait
 * is enough whatever ended the old holding (expiry, a revoke by hand, an old Vigil): the old
 * holder's deadline is at most TTL − margin after its last acknowledged renewal was SENT,
 * which came before its lease ended, which came before our acquisition.
 *
 * On etcd the record is the key `<prefix>handover/<role>`, written in the same transaction
 * that creates the leader key (`held`: whatever ends this holding, the next one waits unless
 * it is overwritten) and in the same transaction that deletes it on release (`stopped`). On
 * SQLite the leases row says it: a released row (holder NULL) was released after a confirmed
 * stop; an expired one was not.
 */
import { z } from 'zod';

export function handoverKey(prefix: string, role: string): string {
  return `${prefix}handover/${encodeURIComponent(role)}`;
}

const HandoverSchema = z.discriminatedUnion('state', [
  z
    .object({
      state: z.literal('held'),
      holder: z.string(),
      /** The holder's TTL: a successor configured shorter must still wait this long. */
      ttlMs: z.number().int().positive(),
    })
    .strict(),
  z.object({ state: z.literal('stopped'), holder: z.string(), token: z.string() }).strict(),
]);
export type HandoverRecord = z.output<typeof HandoverSchema>;

export function encodeHandover(r: HandoverRecord): string {
  return JSON.stringify(r);
}

/** The record, or undefined when absent or unreadable (both mean: wait). */
export function decodeHandover(value: Buffer | string | undefined): HandoverRecord | undefined {
  if (value === undefined) return undefined;
  try {
    const r = HandoverSchema.safeParse(JSON.parse(value.toString()));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

/** How long after acquiring the successor waits before activating. */
export function successorWaitMs(previous: HandoverRecord | undefined, ownTtlMs: number): number {
  if (previous?.state === 'stopped') return 0;
  return Math.max(ownTtlMs, previous?.ttlMs ?? 0);
}
