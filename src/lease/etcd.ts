/**
 * Leadership on etcd: the leader key `<prefix>leaders/<role>` is created, only if absent, and
 * attached to a lease of ours. The fencing token is the revision that created it and the id
 * of the cluster that answered (revisions repeat across a rebuild or a restore); the etcd
 * store checks both for every fenced transaction.
 *
 * A successor can only create the key after etcd deleted it: after etcd expired or someone
 * revoked the previous lease. It then waits one TTL before acting unless the previous holder
 * recorded a confirmed stop (see handover.ts): a revoke may come long before the old holder's
 * deadline, and a node that signs by itself is not stopped by the fence.
 */
import { outcomeUnknown, type EtcdClient } from '../etcd/client.js';
import { leaderKey } from '../store/etcd.js';
import type { FenceToken } from '../store/types.js';
import { decodeHandover, encodeHandover, handoverKey, successorWaitMs } from './handover.js';
import { now, type LeaderElection, type Leadership, type LeaseTiming } from './types.js';

class EtcdLeadership implements Leadership {
  private deadlineAt: number;
  private lost = false;

  constructor(
    private readonly client: EtcdClient,
    private readonly leaseId: bigint,
    readonly fence: FenceToken,
    sentAt: number,
    ttlSeconds: number,
    private readonly timing: LeaseTiming,
    readonly safeAfter: number,
    private readonly keys: { leader: string; handover: string; holder: string },
  ) {
    this.deadlineAt = sentAt + ttlSeconds * 1000 - timing.marginMs;
  }

  deadline(): number {
    return this.deadlineAt;
  }

  held(): boolean {
    return !this.lost && now() < this.deadlineAt;
  }

  async renew(): Promise<boolean> {
    if (!this.held()) return false;
    const sentAt = now();
    // Waiting past our own deadline is pointless: the answer could no longer help.
    const budget = Math.max(1, Math.min(this.timing.callTimeoutMs, this.deadlineAt - sentAt));
    try {
      const ttl = await this.client.leaseKeepAliveOnce(this.leaseId, budget);
      if (ttl <= 0) {
        this.lost = true;
        return false;
      }
      this.deadlineAt = Math.max(this.deadlineAt, sentAt + ttl * 1000 - this.timing.marginMs);
      return this.held();
    } catch {
      return false;
    }
  }

  async release(): Promise<void> {
    this.lost = true;
    // The confirmed stop is recorded in the transaction that removes our key, and only if it
    // is still ours: the successor then starts at once. If this fails, expiry ends the
    // holding and the successor waits a TTL.
    const stopped = encodeHandover({
      state: 'stopped',
      holder: this.keys.holder,
      token: this.fence.token.toString(),
    });
    await this.client
      .txn(
        `release ${this.keys.leader}`,
        [{ key: this.keys.leader, target: 'create', revision: this.fence.token }],
        [
          { delete: { key: this.keys.leader } },
          { put: { key: this.keys.handover, value: stopped } },
        ],
      )
      .catch(() => undefined);
    await this.client.leaseRevoke(this.leaseId).catch(() => undefined);
  }
}

export class EtcdLeaderElection implements LeaderElection {
  constructor(
    private readonly client: EtcdClient,
    private readonly prefix: string,
    readonly role: string,
    readonly holderId: string,
    readonly timing: LeaseTiming,
  ) {}

  get key(): string {
    return leaderKey(this.prefix, this.role);
  }

  async tryAcquire(): Promise<Leadership | undefined> {
    try {
      const { kv } = await this.client.get(this.key);
      if (kv) return undefined;
      const handover = handoverKey(this.prefix, this.role);
      const { kv: previous } = await this.client.get(handover);
      const sentAt = now();
      const lease = await this.client.leaseGrant(Math.ceil(this.timing.ttlMs / 1000));
      let won = false;
      try {
        const held = encodeHandover({
          state: 'held',
          holder: this.holderId,
          ttlMs: lease.ttlSeconds * 1000,
        });
        const campaign = this.client.txn(
          `campaign ${this.key}`,
          [
            { key: this.key, target: 'create', revision: 0n },
            // The record we judged by must still be the last one written.
            previous
              ? { key: handover, target: 'mod', revision: previous.modRevision }
              : { key: handover, target: 'version', version: 0n },
          ],
          [
            { put: { key: this.key, value: this.holderId, lease: lease.id } },
            { put: { key: handover, value: held } },
          ],
        );
        const res = await campaign.catch((err: unknown) => this.settleLostAnswer(err, lease.id));
        won = res.succeeded;
        if (!won) return undefined;
        const wait = successorWaitMs(decodeHandover(previous?.value), lease.ttlSeconds * 1000);
        return new EtcdLeadership(
          this.client,
          lease.id,
          { role: this.role, token: res.revision, clusterId: res.clusterId },
          sentAt,
          lease.ttlSeconds,
          this.timing,
          now() + wait,
          { leader: this.key, handover, holder: this.holderId },
        );
      } finally {
        if (!won) await this.client.leaseRevoke(lease.id).catch(() => undefined);
      }
    } catch {
      // Unreachable or ambiguous: not leader. A key we may have created dies with its lease.
      return undefined;
    }
  }

  /**
   * A campaign whose answer was lost may have created the leader key. Read it back: the key
   * holding our id on our lease means we won, and its create revision is the fencing token the
   * answer would have carried. Anything else (or another failure) is a loss; the lease is
   * then revoked by the caller, which also deletes a key that would be ours after all.
   */
  private async settleLostAnswer(
    err: unknown,
    leaseId: bigint,
  ): Promise<{ succeeded: boolean; revision: bigint; clusterId: bigint }> {
    if (!outcomeUnknown(err)) throw err;
    const { kv, clusterId } = await this.client.get(this.key);
    const ours = kv !== undefined && kv.lease === leaseId && kv.value.toString() === this.holderId;
    return { succeeded: ours, revision: ours ? kv.createRevision : 0n, clusterId };
  }

  /** The current holder's id and token, for status displays. */
  async current(): Promise<{ holderId: string; token: bigint } | undefined> {
    const { kv } = await this.client.get(this.key);
    return kv ? { holderId: kv.value.toString(), token: kv.createRevision } : undefined;
  }

  async close(): Promise<void> {}
}
