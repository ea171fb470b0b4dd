/** The planning rules of `vigil cluster member` (src/etcd/membership.ts), without etcd. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MembershipRefusal,
  checkClusterId,
  newMemberFlags,
  normalizeId,
  planAdd,
  planPromote,
  planRemove,
  quorumOf,
  type ClusterMember,
  type ClusterView,
} from '../../src/etcd/membership.js';

const member = (n: number, over: Partial<ClusterMember> = {}): ClusterMember => ({
  id: (0xa0 + n).toString(16),
  name: `m${n}`,
  peerUrls: [`https://10.0.0.${n}:2380`],
  clientUrls: [`https://10.0.0.${n}:2379`],
  isLearner: false,
  ...over,
});

function view(
  members: ClusterMember[],
  options: { leader?: number; down?: number[] } = {},
): ClusterView {
  const down = new Set((options.down ?? []).map((n) => member(n).id));
  return {
    clusterId: 'c0ffee',
    members,
    leaderId: member(options.leader ?? 0).id,
    healthy: new Set(members.map((m) => m.id).filter((id) => !down.has(id))),
  };
}

const three = () => [member(0), member(1), member(2)];

const refusedWith = (code: string) => (err: unknown) => {
  assert.ok(err instanceof MembershipRefusal, String(err));
  assert.equal(err.code, code, err.message);
  return true;
};

describe('cluster membership rules', () => {
  it('quorum of n voters is a strict majority', () => {
    assert.deepEqual([1, 2, 3, 4, 5].map(quorumOf), [1, 2, 2, 3, 3]);
  });

  it('identity before trust: another cluster id is refused, any spelling of the same passes', () => {
    checkClusterId('0xC0FFEE', view(three()));
    checkClusterId('0000c0ffee', view(three()));
    assert.throws(() => checkClusterId('c0ffef', view(three())), refusedWith('ETCD_WRONG_CLUSTER'));
    assert.throws(() => normalizeId('not-hex'), refusedWith('ETCD_BAD_ID'));
  });

  it('adds with a cluster map naming every member and the new one', () => {
    const plan = planAdd(view(three()), 'm3', ['https://10.0.0.3:2380']);
    assert.deepEqual(plan.initialCluster, {
      m0: 'https://10.0.0.0:2380',
      m1: 'https://10.0.0.1:2380',
      m2: 'https://10.0.0.2:2380',
      m3: 'https://10.0.0.3:2380',
    });
    const flags = newMemberFlags(plan, {
      clientUrls: ['https://10.0.0.3:2379'],
      dataDir: '/var/lib/etcd',
      tls: { ca: '/p/ca.crt', cert: '/p/m3.crt', key: '/p/m3.key' },
    });
    assert.ok(flags.includes('--initial-cluster-state=existing'));
    assert.ok(flags.includes('--name=m3'));
    assert.ok(
      flags.includes(
        '--initial-cluster=m0=https://10.0.0.0:2380,m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380,m3=https://10.0.0.3:2380',
      ),
    );
    assert.ok(flags.includes('--peer-client-cert-auth=true'));
  });

  it('refuses an add that repeats a name or peer URL, or comes while a learner or an unstarted member waits', () => {
    const v = view(three());
    assert.throws(
      () => planAdd(v, 'm1', ['https://10.0.0.9:2380']),
      refusedWith('ETCD_NAME_TAKEN'),
    );
    assert.throws(
      () => planAdd(v, 'm9', ['https://10.0.0.1:2380']),
      refusedWith('ETCD_PEER_URL_TAKEN'),
    );
    assert.throws(() => planAdd(v, 'bad name', ['https://x:1']), refusedWith('ETCD_BAD_NAME'));
    assert.throws(() => planAdd(v, 'm9', ['10.0.0.9:2380']), refusedWith('ETCD_BAD_PEER_URL'));
    const learning = view([...three(), member(3, { isLearner: true })]);
    assert.throws(
      () => planAdd(learning, 'm4', ['https://10.0.0.4:2380']),
      refusedWith('ETCD_LEARNER_PENDING'),
    );
    const unstarted = view([...three(), member(3, { name: '', isLearner: true })]);
    assert.throws(
      () => planAdd(unstarted, 'm4', ['https://10.0.0.4:2380']),
      refusedWith('ETCD_MEMBER_NOT_STARTED'),
    );
    assert.throws(
      () => planAdd(view(three(), { down: [1, 2] }), 'm4', ['https://10.0.0.4:2380']),
      refusedWith('ETCD_NO_QUORUM'),
    );
  });

  it('promotes only a learner', () => {
    const v = view([...three(), member(3, { isLearner: true })]);
    assert.equal(planPromote(v, 'm3').id, member(3).id);
    assert.equal(planPromote(v, member(3).id).name, 'm3');
    assert.throws(() => planPromote(v, 'm1'), refusedWith('ETCD_NOT_A_LEARNER'));
    assert.throws(() => planPromote(v, 'm7'), refusedWith('ETCD_NO_SUCH_MEMBER'));
  });

  it('refuses a removal that leaves the remaining voters without an answering quorum', () => {
    // 3 voters, m2 down: removing healthy m1 leaves {m0, m2}, one answering of the two needed.
    const v = view(three(), { down: [2] });
    assert.throws(
      () => planRemove(v, 'm1', { moveLeader: false }),
      refusedWith('ETCD_QUORUM_LOSS'),
    );
    // Removing the down member itself is the way out.
    assert.equal(planRemove(v, 'm2', { moveLeader: false }).member.name, 'm2');
    // 5 voters, one down: removing a healthy one leaves 4 with 3 answering: quorum 3, allowed.
    const five = view([...three(), member(3), member(4)], { down: [4] });
    assert.equal(planRemove(five, 'm3', { moveLeader: false }).member.name, 'm3');
    // ... two down: 4 remain with 2 answering: refused.
    const fiveTwoDown = view([...three(), member(3), member(4)], { down: [3, 4] });
    assert.throws(
      () => planRemove(fiveTwoDown, 'm1', { moveLeader: false }),
      refusedWith('ETCD_QUORUM_LOSS'),
    );
  });

  it('refuses removing the last voter; a learner can always go', () => {
    const single = view([member(0), member(1, { isLearner: true })]);
    assert.throws(
      () => planRemove(single, 'm0', { moveLeader: true }),
      refusedWith('ETCD_LAST_VOTER'),
    );
    assert.equal(planRemove(single, 'm1', { moveLeader: false }).moveLeaderTo, undefined);
  });

  it('removing the leader needs --move-leader and moves it to a healthy voter', () => {
    const v = view(three(), { leader: 1, down: [0] });
    assert.throws(
      () => planRemove(v, 'm1', { moveLeader: false }),
      refusedWith('ETCD_QUORUM_LOSS'),
    );
    const healthy = view(three(), { leader: 1 });
    assert.throws(
      () => planRemove(healthy, 'm1', { moveLeader: false }),
      refusedWith('ETCD_REMOVING_LEADER'),
    );
    const plan = planRemove(healthy, 'm1', { moveLeader: true });
    assert.equal(plan.member.name, 'm1');
    assert.ok(plan.moveLeaderTo && plan.moveLeaderTo.name !== 'm1');
    assert.ok(healthy.healthy.has(plan.moveLeaderTo.id));
  });
});
