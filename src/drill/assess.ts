/**
 * The drill's rules, pure: from what each agent answered (its /readyz and /v1/roles), who
 * holds the role, who stands by, whether every precondition holds, and the steps an executed
 * drill would take. No I/O here; observe.ts asks the agents, failover.ts acts.
 */

/** A role as one agent reports it on GET /v1/roles. */
export interface RoleAnswer {
  readonly state: string;
  readonly holderId: string;
  readonly token?: string;
  readonly activeSince?: string;
  readonly standingAsideUntil?: string;
  readonly storeHolder: { readonly holderId: string; readonly token: string } | null;
  readonly storeError?: string;
  readonly granted: number;
}

export interface AgentObservation {
  readonly name: string;
  /** Where it was reached (socket path or URL). */
  readonly where: string;
  /** Why it could not be asked; nothing else is known then. */
  readonly unreachable?: string;
  readonly ready?: boolean;
  readonly notReadyReason?: string;
  readonly storeId?: string;
  /** The role's view; undefined when the agent answered but supervises no such role. */
  readonly role?: RoleAnswer;
}

export type RefusalReason =
  | 'too_few_agents'
  | 'role_unknown'
  | 'store_unreachable'
  | 'store_mismatch'
  | 'no_holder'
  | 'two_holders'
  | 'identity_mismatch'
  | 'holder_not_ready'
  | 'standby_not_ready'
  | 'standby_ambiguous'
  | 'drill_running';

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
  /** The refusal a failed precondition stands for. */
  readonly reason?: RefusalReason;
}

export interface Assessment {
  readonly role: string;
  readonly checks: readonly Check[];
  readonly holder?: string;
  readonly standby?: string;
  /** The first failed precondition: the drill refuses with it and changes nothing. */
  readonly refusal?: { readonly reason: RefusalReason; readonly message: string };
}

const pass = (name: string, detail: string): Check => ({ name, ok: true, detail });
const fail = (name: string, reason: RefusalReason, detail: string): Check => ({
  name,
  ok: false,
  detail,
  reason,
});

/**
 * Every precondition of a drill on `role`: at least two agents, all supervising the role on
 * one store that they reach, exactly one active holder whom the store names with the same
 * token, a holder and a standby that are ready, and one standby (or the one named).
 */
export function assessRole(
  role: string,
  agents: readonly AgentObservation[],
  options: { standby?: string } = {},
): Assessment {
  const checks: Check[] = [];
  const reached = agents.filter((a) => a.unreachable === undefined);
  const supervising = reached.filter((a) => a.role !== undefined);
  // The store's word on the holder, from whichever agent read it.
  const storeHolders = new Set(
    supervising.flatMap((a) => (a.role!.storeHolder ? [a.role!.storeHolder.holderId] : [])),
  );
  const storeHolder = storeHolders.size === 1 ? [...storeHolders][0] : undefined;

  checks.push(
    agents.length >= 2
      ? pass('agents', `${agents.length} agents given`)
      : fail(
          'agents',
          'too_few_agents',
          `a drill needs the holder and a standby; ${agents.length} agent given`,
        ),
  );

  const notSupervising = reached.filter((a) => a.role === undefined).map((a) => a.name);
  checks.push(
    notSupervising.length === 0
      ? pass('role supervised', `every agent reached supervises ${role}`)
      : fail(
          'role supervised',
          'role_unknown',
          `${notSupervising.join(', ')} supervise no role ${role}`,
        ),
  );

  const storeErrors = supervising.filter((a) => a.role!.storeError !== undefined);
  checks.push(
    storeErrors.length === 0
      ? pass('store reachable', 'every agent read the role from the store')
      : fail(
          'store reachable',
          'store_unreachable',
          storeErrors.map((a) => `${a.name}: ${a.role!.storeError}`).join('; '),
        ),
  );

  const storeIds = new Set(reached.flatMap((a) => (a.storeId ? [a.storeId] : [])));
  checks.push(
    storeIds.size <= 1
      ? pass(
          'same store',
          storeIds.size ? `store ${[...storeIds][0]}` : 'no store identity reported',
        )
      : fail(
          'same store',
          'store_mismatch',
          reached.map((a) => `${a.name}: ${a.storeId ?? '?'}`).join(', '),
        ),
  );

  const active = supervising.filter((a) => a.role!.state === 'active');
  if (active.length > 1 || storeHolders.size > 1) {
    checks.push(
      fail(
        'one holder',
        'two_holders',
        `active: ${active.map((a) => a.name).join(', ') || 'none'}; the store names ${[...storeHolders].join(', ') || 'nobody'}`,
      ),
    );
  } else if (active.length === 0) {
    checks.push(
      fail(
        'one holder',
        'no_holder',
        storeHolder !== undefined
          ? `no agent reached is active; the store names ${storeHolder}`
          : 'no agent is active and the store names nobody',
      ),
    );
  } else {
    checks.push(pass('one holder', `${active[0]!.name} is active`));
  }
  const holder = active.length === 1 ? active[0] : undefined;

  if (holder) {
    const r = holder.role!;
    const same =
      r.storeHolder !== null &&
      r.storeHolder.holderId === r.holderId &&
      r.storeHolder.token === r.token;
    checks.push(
      same
        ? pass('holder identity', `the store names ${r.holderId} with token ${r.token}`)
        : fail(
            'holder identity',
            'identity_mismatch',
            `${holder.name} is active as ${r.holderId} (token ${r.token ?? '?'}); the store names ${r.storeHolder ? `${r.storeHolder.holderId} (token ${r.storeHolder.token})` : 'nobody'}`,
          ),
    );
    checks.push(
      holder.ready
        ? pass('holder ready', `${holder.name} is ready`)
        : fail(
            'holder ready',
            'holder_not_ready',
            `${holder.name}: ${holder.notReadyReason ?? 'not ready'}`,
          ),
    );
  }

  // Who could take over: every other agent given, reached or not (an unreachable agent that
  // the store does not name as holder is a standby that is not ready).
  const others = agents.filter(
    (a) => a !== holder && !(a.unreachable !== undefined && a.name === storeHolder),
  );
  let standby: AgentObservation | undefined;
  if (options.standby !== undefined) {
    standby = others.find((a) => a.name === options.standby);
    checks.push(
      standby
        ? pass('standby chosen', `${standby.name} (named)`)
        : fail(
            'standby chosen',
            'standby_not_ready',
            `${options.standby} is not one of the other agents given`,
          ),
    );
  } else if (others.length === 1) {
    standby = others[0];
    checks.push(pass('standby chosen', `${standby!.name}`));
  } else if (others.length > 1) {
    checks.push(
      fail(
        'standby chosen',
        'standby_ambiguous',
        `${others.map((a) => a.name).join(', ')} could stand by; name one with --standby`,
      ),
    );
  } else {
    checks.push(fail('standby chosen', 'standby_not_ready', 'no other agent given'));
  }

  if (standby) {
    const r = standby.role;
    const why =
      standby.unreachable !== undefined
        ? `unreachable: ${standby.unreachable}`
        : !standby.ready
          ? (standby.notReadyReason ?? 'not ready')
          : r === undefined
            ? `supervises no role ${role}`
            : r.state !== 'follower'
              ? `state ${r.state}, not follower`
              : r.standingAsideUntil !== undefined
                ? `standing aside after a handover until ${r.standingAsideUntil}`
                : holder && r.holderId === holder.role!.holderId
                  ? `has the holder's own holder id ${r.holderId}`
                  : undefined;
    checks.push(
      why === undefined
        ? pass('standby ready', `${standby.name} is ready and campaigning`)
        : fail(
            'standby ready',
            why.startsWith('has the holder') ? 'identity_mismatch' : 'standby_not_ready',
            `${standby.name}: ${why}`,
          ),
    );
  }

  const failed = checks.find((c) => !c.ok);
  return {
    role,
    checks,
    ...(holder ? { holder: holder.name } : {}),
    ...(standby ? { standby: standby.name } : {}),
    ...(failed
      ? { refusal: { reason: failed.reason!, message: `${failed.name}: ${failed.detail}` } }
      : {}),
  };
}

export interface PlanOptions {
  readonly returnBack: boolean;
  readonly timeoutMs: number;
  readonly holdOffMs: number;
  readonly expectGrants: boolean;
  readonly verifyRun?: string;
}

/** What an executed drill would do, in order (the dry run prints this). */
export function drillSteps(a: Assessment, o: PlanOptions): string[] {
  const holder = a.holder ?? '<holder>';
  const standby = a.standby ?? '<standby>';
  const verify = [
    'its supervisor active and named by the store',
    ...(o.expectGrants ? ['an authorization or signature granted under its fence'] : []),
    ...(o.verifyRun !== undefined ? [`\`${o.verifyRun}\` exits 0`] : []),
  ].join(', ');
  const leg = (from: string, to: string) => [
    `ask ${from} to hand ${a.role} over: deactivate, confirm the stop, release the lease; it stays aside up to ${o.holdOffMs} ms`,
    `wait up to ${o.timeoutMs} ms for ${to} to acquire and activate (never two active: both agents polled throughout)`,
    `verify ${to} produced: ${verify} (up to ${o.timeoutMs} ms)`,
  ];
  return [...leg(holder, standby), ...(o.returnBack ? leg(standby, holder) : [])];
}
