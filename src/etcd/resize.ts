/**
 * Resizing the etcd guard cluster live: the calls behind `vigil cluster member`. What is allowed
 * is decided in membership.ts; here the cluster is read (members, cluster id, which member
 * answers, who leads) and changed. Every change first checks the live cluster id against the
 * one the operator named, and a change whose answer is lost is settled by reading the member
 * list again (as transactions are, see client.ts), never by sending it twice.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../errors.js';
import { EtcdCallError, EtcdClient, outcomeUnknown, type EtcdTlsFiles } from './client.js';
import {
  MembershipRefusal,
  checkClusterId,
  planAdd,
  planPromote,
  planRemove,
  type AddPlan,
  type ClusterMember,
  type ClusterView,
  type RemovePlan,
} from './membership.js';

export interface ResizeOptions {
  readonly tls?: EtcdTlsFiles;
  readonly callTimeoutMs?: number;
}

const hex = (id: bigint) => id.toString(16);

/**
 * etcd refuses a membership change with "etcdserver: unhealthy cluster" until enough members
 * have been connected for its health interval (5 s; etcd server/etcdserver/server.go,
 * mayAddMember/mayRemoveMember with --strict-reconfig-check), e.g. just after a member started
 * or was promoted. That answer is a refusal before anything is proposed, so the same change is
 * asked again, for up to `waitMs`.
 */
async function whileSettling<T>(change: () => Promise<T>, waitMs = 15_000): Promise<T> {
  const giveUpAt = Date.now() + waitMs;
  for (;;) {
    try {
      return await change();
    } catch (err) {
      if (
        !(err instanceof EtcdCallError) ||
        !/etcdserver: unhealthy cluster/.test(err.message) ||
        Date.now() >= giveUpAt
      )
        throw err;
      await sleep(500);
    }
  }
}

export class ClusterResizer {
  constructor(
    readonly client: EtcdClient,
    private readonly options: ResizeOptions = {},
  ) {}

  /** A short-lived client on one member's client URLs (status, move-leader). */
  private memberClient(member: ClusterMember): EtcdClient {
    return new EtcdClient({
      endpoints: member.clientUrls.slice(0, 1),
      ...(this.options.tls ? { tls: this.options.tls } : {}),
      callTimeoutMs: this.options.callTimeoutMs ?? 2000,
    });
  }

  /** Members and cluster id (a quorum's answer), then a status call to every started member. */
  async view(): Promise<ClusterView> {
    const { members, clusterId } = await this.client.members();
    const healthy = new Set<string>();
    let leaderId: string | undefined;
    await Promise.all(
      members
        .filter((m) => m.clientUrls.length > 0)
        .map(async (m) => {
          const c = this.memberClient(m);
          try {
            const [s] = await c.statusAll();
            if (s && 'memberId' in s && s.memberId === m.id) {
              healthy.add(m.id);
              if (s.leaderId !== '0') leaderId ??= s.leaderId;
            }
          } finally {
            c.close();
          }
        }),
    );
    return { clusterId: hex(clusterId), members, leaderId, healthy };
  }

  /** Adds a learner; resolves with the member etcd created and the new member's cluster map. */
  async addLearner(
    expectedClusterId: string,
    name: string,
    peerUrls: readonly string[],
  ): Promise<{ plan: AddPlan; member: ClusterMember }> {
    const view = await this.view();
    checkClusterId(expectedClusterId, view);
    const plan = planAdd(view, name, peerUrls);
    try {
      const { member, clusterId } = await whileSettling(() =>
        this.client.memberAdd(plan.peerUrls, true),
      );
      checkClusterId(expectedClusterId, { ...view, clusterId: hex(clusterId) });
      return { plan, member };
    } catch (err) {
      if (!outcomeUnknown(err)) throw err;
      // The answer was lost: the member list says whether etcd added it.
      const added = (await this.client.members()).members.find((m) =>
        m.peerUrls.some((u) => plan.peerUrls.includes(u)),
      );
      if (added) return { plan, member: added };
      throw err;
    }
  }

  /**
   * Promotes a learner, retrying while etcd says it has not caught up with the leader, until
   * `waitMs` has passed.
   */
  async promote(
    expectedClusterId: string,
    idOrName: string,
    waitMs = 60_000,
  ): Promise<ClusterMember> {
    const view = await this.view();
    checkClusterId(expectedClusterId, view);
    const learner = planPromote(view, idOrName);
    const giveUpAt = Date.now() + waitMs;
    let last: string;
    for (;;) {
      try {
        await this.client.memberPromote(learner.id);
        return { ...learner, isLearner: false };
      } catch (err) {
        if (!(err instanceof EtcdCallError)) throw err;
        last = errorMessage(err);
        // A lost answer or an earlier attempt may have promoted it already.
        const now = (await this.client.members()).members.find((m) => m.id === learner.id);
        if (now && !now.isLearner) return now;
        if (Date.now() >= giveUpAt) break;
        await sleep(500);
      }
    }
    throw new MembershipRefusal(
      'ETCD_LEARNER_NOT_READY',
      `learner ${learner.name || learner.id} was not promoted within ${waitMs} ms: ${last}`,
      'etcd promotes a learner only once its log has caught up with the leader: check that it runs and reaches the other members, then promote again',
    );
  }

  /** Removes a member, moving leadership away first when it leads (with `moveLeader`). */
  async remove(
    expectedClusterId: string,
    idOrName: string,
    options: { moveLeader: boolean; waitMs?: number },
  ): Promise<RemovePlan> {
    const view = await this.view();
    checkClusterId(expectedClusterId, view);
    const plan = planRemove(view, idOrName, options);
    if (plan.moveLeaderTo) await this.moveLeader(plan.member, plan.moveLeaderTo, options.waitMs);
    try {
      await whileSettling(() => this.client.memberRemove(plan.member.id));
    } catch (err) {
      if (!outcomeUnknown(err)) throw err;
      const still = (await this.client.members()).members.some((m) => m.id === plan.member.id);
      if (still) throw err;
    }
    return plan;
  }

  private async moveLeader(from: ClusterMember, to: ClusterMember, waitMs = 10_000): Promise<void> {
    const c = this.memberClient(from);
    try {
      await c.moveLeader(0, to.id);
    } finally {
      c.close();
    }
    const giveUpAt = Date.now() + waitMs;
    while (Date.now() < giveUpAt) {
      const { leaderId } = await this.view();
      if (leaderId !== undefined && leaderId !== from.id) return;
      await sleep(100);
    }
    throw new MembershipRefusal(
      'ETCD_LEADER_DID_NOT_MOVE',
      `leadership did not leave ${from.name || from.id} within ${waitMs} ms; nothing was removed`,
      'check `vigil cluster status` and try again',
    );
  }
}
