/**
 * The rules of resizing the etcd guard cluster, apart from any I/O (src/etcd/resize.ts does the
 * calls). Each plan takes what the cluster answered (its id, members, leader, which members
 * answered a status call) and either says what to do or refuses with a typed error.
 *
 * - Identity before trust: every change names the cluster id it is meant for, and a cluster
 *   answering with another id is refused before anything is changed.
 * - A new member joins as a raft learner (it gets the log without voting) and is promoted once
 *   it has caught up; etcd itself refuses the promotion before ("can only promote a learner
 *   member which is in sync with leader"). One learner at a time (etcd's default
 *   `--experimental-max-learners` is 1), and no change while a member was added but never
 *   started: it counts as a voter that does not answer.
 * - A removal must leave a quorum of the remaining voters answering, and at least one voter.
 *   Removing the leader first moves leadership to a healthy voter (`--move-leader`), so the
 *   cluster does not sit through an election with a member already gone.
 */
import { VigilError } from '../errors.js';

export interface ClusterMember {
  /** etcd's member id in hex, as `etcdctl member list -w table` prints it. */
  readonly id: string;
  /** Empty until the member was started once. */
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

export interface ClusterView {
  readonly clusterId: string;
  readonly members: readonly ClusterMember[];
  /** Member id of the raft leader, if a status call named one. */
  readonly leaderId: string | undefined;
  /** Member ids that answered a status call just now. */
  readonly healthy: ReadonlySet<string>;
}

export class MembershipRefusal extends VigilError {
  constructor(code: string, message: string, hint: string) {
    super(code, message, hint);
  }
}

/** A hex member or cluster id as etcd prints it: lowercase, no leading zeros. */
export function normalizeId(id: string): string {
  const trimmed = id.trim().toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]{1,16}$/.test(trimmed))
    throw new MembershipRefusal(
      'ETCD_BAD_ID',
      `${JSON.stringify(id)} is not an etcd id (up to 16 hex digits)`,
      'copy it from `vigil cluster member list`',
    );
  return BigInt(`0x${trimmed}`).toString(16);
}

/** Refuses unless the live cluster is the one the operator named. */
export function checkClusterId(expected: string, view: ClusterView): void {
  if (normalizeId(expected) !== normalizeId(view.clusterId))
    throw new MembershipRefusal(
      'ETCD_WRONG_CLUSTER',
      `the endpoints reach etcd cluster ${view.clusterId}, not ${normalizeId(expected)} as --cluster-id says; nothing was changed`,
      'check the endpoints (another cluster, or this one restored under a new token); `vigil cluster member list` prints the live id',
    );
}

export const voters = (members: readonly ClusterMember[]) => members.filter((m) => !m.isLearner);

/** Votes a raft group of `n` voters needs to commit anything. */
export const quorumOf = (n: number) => Math.floor(n / 2) + 1;

/** A member by id (hex) or by name. */
export function findMember(view: ClusterView, idOrName: string): ClusterMember {
  const byName = view.members.filter((m) => m.name !== '' && m.name === idOrName);
  if (byName.length === 1) return byName[0]!;
  let id: string | undefined;
  try {
    id = normalizeId(idOrName);
  } catch {
    id = undefined;
  }
  const byId = view.members.find((m) => m.id === id);
  if (byId) return byId;
  throw new MembershipRefusal(
    'ETCD_NO_SUCH_MEMBER',
    `no member ${JSON.stringify(idOrName)} in cluster ${view.clusterId}`,
    'list the members with `vigil cluster member list`',
  );
}

export interface AddPlan {
  readonly name: string;
  readonly peerUrls: readonly string[];
  /** The new member's `--initial-cluster`: every member's name and peer URL, itself included. */
  readonly initialCluster: Record<string, string>;
}

export function planAdd(view: ClusterView, name: string, peerUrls: readonly string[]): AddPlan {
  if (!/^[A-Za-z0-9._-]{1,63}$/.test(name))
    throw new MembershipRefusal(
      'ETCD_BAD_NAME',
      `member name ${JSON.stringify(name)} is not usable`,
      'use 1-63 letters, digits, ".", "_" or "-"',
    );
  if (peerUrls.length === 0 || peerUrls.some((u) => !/^https?:\/\/[^\s,]+:\d{1,5}$/.test(u)))
    throw new MembershipRefusal(
      'ETCD_BAD_PEER_URL',
      `peer URLs ${JSON.stringify(peerUrls)} are not http(s)://host:port`,
      'give the address the other members will dial, e.g. https://10.0.0.4:2380',
    );
  const unstarted = view.members.filter((m) => m.name === '');
  if (unstarted.length > 0)
    throw new MembershipRefusal(
      'ETCD_MEMBER_NOT_STARTED',
      `member ${unstarted.map((m) => m.id).join(', ')} was added but never started`,
      'start it with the flags `cluster member add` printed, or remove it, before adding another',
    );
  const learners = view.members.filter((m) => m.isLearner);
  if (learners.length > 0)
    throw new MembershipRefusal(
      'ETCD_LEARNER_PENDING',
      `learner ${learners.map((m) => `${m.name} (${m.id})`).join(', ')} is not promoted yet`,
      'promote it (`vigil cluster member promote`) once it has caught up, then add the next one',
    );
  if (view.members.some((m) => m.name === name))
    throw new MembershipRefusal(
      'ETCD_NAME_TAKEN',
      `a member is already named ${name}`,
      'pick another name',
    );
  const taken = peerUrls.filter((u) => view.members.some((m) => m.peerUrls.includes(u)));
  if (taken.length > 0)
    throw new MembershipRefusal(
      'ETCD_PEER_URL_TAKEN',
      `peer URL ${taken.join(', ')} already belongs to a member`,
      'a replaced host must be removed first',
    );
  const healthyVoters = voters(view.members).filter((m) => view.healthy.has(m.id)).length;
  if (healthyVoters < quorumOf(voters(view.members).length))
    throw new MembershipRefusal(
      'ETCD_NO_QUORUM',
      `only ${healthyVoters} of ${voters(view.members).length} voters answer: no quorum to change the membership`,
      'bring members back first (`vigil cluster status`)',
    );
  const initialCluster: Record<string, string> = {};
  for (const m of view.members) initialCluster[m.name] = m.peerUrls[0]!;
  initialCluster[name] = peerUrls[0]!;
  return { name, peerUrls, initialCluster };
}

export function planPromote(view: ClusterView, idOrName: string): ClusterMember {
  const m = findMember(view, idOrName);
  if (!m.isLearner)
    throw new MembershipRefusal(
      'ETCD_NOT_A_LEARNER',
      `member ${m.name || m.id} is already a voter`,
      'nothing to promote',
    );
  return m;
}

export interface RemovePlan {
  readonly member: ClusterMember;
  /** Move leadership to this voter first (the member removed is the leader). */
  readonly moveLeaderTo: ClusterMember | undefined;
}

export function planRemove(
  view: ClusterView,
  idOrName: string,
  options: { moveLeader: boolean },
): RemovePlan {
  const member = findMember(view, idOrName);
  if (member.isLearner) return { member, moveLeaderTo: undefined };
  const remaining = voters(view.members).filter((m) => m.id !== member.id);
  if (remaining.length === 0)
    throw new MembershipRefusal(
      'ETCD_LAST_VOTER',
      `member ${member.name || member.id} is the last voter`,
      'a cluster needs one voter; add and promote another member before removing this one',
    );
  const answering = remaining.filter((m) => view.healthy.has(m.id));
  const needed = quorumOf(remaining.length);
  if (answering.length < needed)
    throw new MembershipRefusal(
      'ETCD_QUORUM_LOSS',
      `removing ${member.name || member.id} leaves ${remaining.length} voter(s) of which ${answering.length} answer; they need ${needed} to keep a quorum`,
      'bring the down members back, or remove a down member first',
    );
  if (member.id !== view.leaderId) return { member, moveLeaderTo: undefined };
  if (!options.moveLeader)
    throw new MembershipRefusal(
      'ETCD_REMOVING_LEADER',
      `member ${member.name || member.id} is the raft leader`,
      'add --move-leader: leadership moves to a healthy voter before the removal',
    );
  return { member, moveLeaderTo: answering[0]! };
}

/** The `etcd` flags a new member starts with, for the operator to copy. */
export function newMemberFlags(
  plan: AddPlan,
  where: {
    readonly clientUrls: readonly string[];
    readonly dataDir: string;
    readonly clusterToken?: string;
    readonly tls?: { readonly ca: string; readonly cert: string; readonly key: string };
  },
): string[] {
  const flags = [
    `--name=${plan.name}`,
    `--data-dir=${where.dataDir}`,
    `--listen-peer-urls=${plan.peerUrls.join(',')}`,
    `--initial-advertise-peer-urls=${plan.peerUrls.join(',')}`,
    `--listen-client-urls=${where.clientUrls.join(',')}`,
    `--advertise-client-urls=${where.clientUrls.join(',')}`,
    `--initial-cluster=${Object.entries(plan.initialCluster)
      .map(([n, u]) => `${n}=${u}`)
      .join(',')}`,
    '--initial-cluster-state=existing',
  ];
  if (where.clusterToken) flags.push(`--initial-cluster-token=${where.clusterToken}`);
  if (where.tls)
    flags.push(
      `--trusted-ca-file=${where.tls.ca}`,
      `--cert-file=${where.tls.cert}`,
      `--key-file=${where.tls.key}`,
      '--client-cert-auth=true',
      `--peer-trusted-ca-file=${where.tls.ca}`,
      `--peer-cert-file=${where.tls.cert}`,
      `--peer-key-file=${where.tls.key}`,
      '--peer-client-cert-auth=true',
    );
  return flags;
}
