/**
 * Leadership on etcd: the leader key `<prefix>leaders/<role>` is created, only if absent, and
 * attached to a lease of ours. The fencing token is the revision that created it and the id
 * of the cluster that answered (revisions repeat across a rebuild or a restore); the etcd
 * store checks both for every fenced transaction.
 *
 * A successor can only create the key after etcd deleted it, i.e. after etcd expired (or we
 * revoked) the previous lease. etcd expires a lease no earlier than TTL after the last renewal
 * it processed, and the previous holder's own deadline is that renewal's send time + TTL −
 * margin, so by then it has already deactivated: the successor may act at once.
 */
import type { EtcdClient } from '../etcd/client.js';
import { leaderKey } from '../store/etcd.js';
import type { FenceToken } from '../store/types.js';
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
  ) {
    this.deadlineAt = sentAt + ttlSeconds * 1000 - timing.marginMs;
  }

  readonly safeAfter = now();

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
    // Revoking deletes the leader key with the lease; if it fails, expiry does the same later.
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
      const sentAt = now();
      const lease = await this.client.leaseGrant(Math.ceil(this.timing.ttlMs / 1000));
      let won = false;
      try {
        const res = await this.client.txn(
          `campaign ${this.key}`,
          [{ key: this.key, target: 'create', revision: 0n }],
          [{ put: { key: this.key, value: this.holderId, lease: lease.id } }],
        );
        won = res.succeeded;
        if (!won) return undefined;
        return new EtcdLeadership(
          this.client,
          lease.id,
          { role: this.role, token: res.revision, clusterId: res.clusterId },
          sentAt,
          lease.ttlSeconds,
          this.timing,
        );
      } finally {
        if (!won) await this.client.leaseRevoke(lease.id).catch(() => undefined);
      }
    } catch {
      // Unreachable or ambiguous: not leader. A key we may have created dies with its lease.
      return undefined;
    }
  }

  /** The current holder's id and token, for status displays. */
  async current(): Promise<{ holderId: string; token: bigint } | undefined> {
    const { kv } = await this.client.get(this.key);
    return kv ? { holderId: kv.value.toString(), token: kv.createRevision } : undefined;
  }

  async close(): Promise<void> {}
}
