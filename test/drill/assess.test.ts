/**
 * The drill's preconditions (src/drill/assess.ts) and its lock (src/drill/lock.ts). The
 * observations have the shapes the agent's GET /v1/roles and /readyz answer (role-api.ts,
 * http.ts); the lock is exercised on real files and real processes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { assessRole, type AgentObservation } from '../../src/drill/assess.js';
import { DrillLockedError, acquireDrillLock, lockHolder } from '../../src/drill/lock.js';

const ROLE = 'polkadot/westend/validator';

function agent(
  name: string,
  state: string,
  opts: { ready?: boolean; storeId?: string; storeHolder?: string | null; token?: string } = {},
): AgentObservation {
  const token = opts.token ?? '41';
  return {
    name,
    where: `/run/${name}.sock`,
    ready: opts.ready ?? true,
    ...(opts.ready === false ? { notReadyReason: 'store: unreachable' } : {}),
    storeId: opts.storeId ?? 'store-1',
    role: {
      state,
      holderId: name,
      ...(state === 'active' ? { token } : {}),
      storeHolder:
        opts.storeHolder === null ? null : { holderId: opts.storeHolder ?? 'a', token: '41' },
      granted: 0,
    },
  };
}

test('a healthy pair: holder and standby found, every check passes', () => {
  const a = assessRole(ROLE, [agent('a', 'active'), agent('b', 'follower')]);
  assert.equal(a.refusal, undefined, JSON.stringify(a.checks));
  assert.equal(a.holder, 'a');
  assert.equal(a.standby, 'b');
  assert.ok(a.checks.every((c) => c.ok));
});

test('refusals, each with its typed reason', () => {
  const cases: Array<[string, AgentObservation[], string]> = [
    ['one agent', [agent('a', 'active')], 'too_few_agents'],
    [
      'nobody active',
      [
        agent('a', 'follower', { storeHolder: null }),
        agent('b', 'follower', { storeHolder: null }),
      ],
      'no_holder',
    ],
    ['two active', [agent('a', 'active'), agent('b', 'active')], 'two_holders'],
    [
      'standby not ready',
      [agent('a', 'active'), agent('b', 'follower', { ready: false })],
      'standby_not_ready',
    ],
    [
      'standby still deactivating',
      [agent('a', 'active'), agent('b', 'deactivating')],
      'standby_not_ready',
    ],
    [
      'holder not ready',
      [agent('a', 'active', { ready: false }), agent('b', 'follower')],
      'holder_not_ready',
    ],
    [
      'two stores',
      [agent('a', 'active'), agent('b', 'follower', { storeId: 'store-2' })],
      'store_mismatch',
    ],
    [
      'store names another token',
      [agent('a', 'active', { token: '40' }), agent('b', 'follower')],
      'identity_mismatch',
    ],
    [
      'three could stand by',
      [agent('a', 'active'), agent('b', 'follower'), agent('c', 'follower')],
      'standby_ambiguous',
    ],
    [
      'standby frozen',
      [
        agent('a', 'active'),
        { name: 'b', where: '/run/b.sock', unreachable: 'timed out after 1500 ms' },
      ],
      'standby_not_ready',
    ],
    [
      'an agent without the role',
      [agent('a', 'active'), { name: 'b', where: '/run/b.sock', ready: true, storeId: 'store-1' }],
      'role_unknown',
    ],
  ];
  for (const [what, agents, reason] of cases) {
    const a = assessRole(ROLE, agents);
    assert.equal(a.refusal?.reason, reason, `${what}: ${JSON.stringify(a.checks)}`);
  }
  // Naming the standby settles the ambiguity.
  const named = assessRole(
    ROLE,
    [agent('a', 'active'), agent('b', 'follower'), agent('c', 'follower')],
    {
      standby: 'c',
    },
  );
  assert.equal(named.refusal, undefined);
  assert.equal(named.standby, 'c');
});

test('property: a drill is planned only with exactly one active holder and a ready follower', () => {
  const states = fc.constantFrom('active', 'follower', 'waiting', 'activating', 'deactivating');
  fc.assert(
    fc.property(
      fc.array(fc.record({ state: states, ready: fc.boolean() }), { minLength: 0, maxLength: 4 }),
      (xs) => {
        const agents = xs.map((x, i) =>
          agent(`n${i}`, x.state, {
            ready: x.ready,
            storeHolder: `n${xs.findIndex((y) => y.state === 'active')}`,
          }),
        );
        const a = assessRole(ROLE, agents);
        const active = xs.filter((x) => x.state === 'active');
        if (a.refusal === undefined) {
          assert.equal(active.length, 1);
          assert.equal(a.holder, agents[xs.indexOf(active[0]!)]!.name);
          const s = xs[agents.findIndex((g) => g.name === a.standby)]!;
          assert.ok(s.state === 'follower' && s.ready && active[0]!.ready);
        }
        // A refusal always names a failed check.
        assert.equal(
          a.refusal === undefined,
          a.checks.every((c) => c.ok),
        );
      },
    ),
  );
});

test('drill lock: one at a time; a lock left by a dead drill is taken over', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-drill-lock-'));
  try {
    const path = join(dir, 'drill.lock');
    const lock = acquireDrillLock(path, ROLE);
    assert.match(lockHolder(path) ?? '', new RegExp(`"pid":${process.pid}`));
    assert.throws(() => acquireDrillLock(path, ROLE), DrillLockedError);
    lock.release();
    assert.ok(!existsSync(path));
    // A real process that has exited: its pid names nobody now.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    writeFileSync(path, JSON.stringify({ pid: Number(dead.stdout), role: ROLE }));
    assert.equal(lockHolder(path), undefined);
    const taken = acquireDrillLock(path, ROLE);
    assert.match(lockHolder(path) ?? '', new RegExp(`"pid":${process.pid}`));
    // Releasing never removes another drill's lock.
    writeFileSync(path, JSON.stringify({ pid: 1, role: ROLE }));
    taken.release();
    assert.ok(existsSync(path));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
