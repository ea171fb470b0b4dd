/**
 * `vigil drill failover`: move an exclusive role from its holder to the standby and back,
 * through the agents' own API, measuring each switch.
 *
 * Safety comes from the agents, not from the drill: a handover releases the lease only after
 * the holder's node was confirmed stopped, the successor activates only after that (or one
 * TTL), and the old holder stays out of the campaign only until another holder took the role
 * or its hold-off ran out — so a drill that dies or is interrupted anywhere leaves the role to
 * whichever agent acquires it next, never to nobody and never to two. The drill watches both
 * agents throughout and fails the run if it ever sees two active.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { errorMessage } from '../errors.js';
import {
  assessRole,
  drillSteps,
  type AgentObservation,
  type Assessment,
  type Check,
  type PlanOptions,
} from './assess.js';
import { observe, requestHandover, type DrillAgent } from './observe.js';

export interface DrillOptions extends PlanOptions {
  readonly role: string;
  readonly agents: readonly DrillAgent[];
  readonly execute: boolean;
  readonly standby?: string;
  /** How often the agents are polled while waiting. */
  readonly pollMs: number;
  /** Set on SIGINT: no new step starts; the drill waits for one active holder and reports. */
  readonly signal?: AbortSignal;
  /** Progress lines (stderr). */
  readonly progress?: (line: string) => void;
  /** A lock held by a live drill (checked and reported; execute refuses). */
  readonly lockedBy?: string;
}

export interface Leg {
  readonly from: string;
  readonly to: string;
  /** The old holder's confirmed stop, as its agent stamped it. */
  readonly stopConfirmedAt?: string;
  /** The new holder's activation, as its agent stamped it. */
  readonly activeAt?: string;
  /** activeAt − stopConfirmedAt: the switch on the agents' clocks (NTP-synchronised hosts). */
  readonly switchMs?: number;
  /** From sending the handover to seeing the standby active, on the drill's own clock. */
  readonly observedMs?: number;
  readonly checks: readonly Check[];
}

export type DrillOutcome = 'planned' | 'passed' | 'refused' | 'failed' | 'aborted';

export interface DrillResult {
  readonly role: string;
  readonly mode: 'dry-run' | 'execute';
  readonly outcome: DrillOutcome;
  readonly reason?: string;
  readonly message?: string;
  readonly holder?: string;
  readonly standby?: string;
  readonly checks: readonly Check[];
  readonly steps: readonly string[];
  readonly legs: readonly Leg[];
  /** Who was active when the drill ended (execute only). */
  readonly finalHolder?: string;
  /** The most agents seen active at once by the drill's polls (must stay ≤ 1). */
  readonly maxActiveSeen: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** Runs a shell command with the drill's context; exit 0 within `timeoutMs` is a pass. */
function commandPasses(
  command: string,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], {
      stdio: 'ignore',
      env: { ...process.env, ...env },
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(10, timeoutMs));
    child.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code === 0);
    });
  });
}

class Drill {
  private maxActive = 0;
  private readonly byName: Map<string, DrillAgent>;

  constructor(private readonly o: DrillOptions) {
    this.byName = new Map(o.agents.map((a) => [a.name, a]));
  }

  private aborted(): boolean {
    return this.o.signal?.aborted === true;
  }

  /** Every agent once; counts how many are active at this instant. */
  private async poll(): Promise<AgentObservation[]> {
    const all = await Promise.all(this.o.agents.map((a) => observe(a, this.o.role)));
    const active = all.filter((x) => x.role?.state === 'active').length;
    this.maxActive = Math.max(this.maxActive, active);
    return all;
  }

  /** Polls until `until` holds or `ms` passed (or, with `stopOnAbort`, an abort). */
  private async waitFor(
    ms: number,
    until: (obs: AgentObservation[]) => boolean,
    stopOnAbort: boolean,
  ): Promise<AgentObservation[] | undefined> {
    const end = performance.now() + ms;
    for (;;) {
      const obs = await this.poll();
      if (until(obs)) return obs;
      if (performance.now() >= end || (stopOnAbort && this.aborted())) return undefined;
      await sleep(this.o.pollMs);
    }
  }

  private async leg(from: string, to: string): Promise<Leg> {
    const { role, timeoutMs, holdOffMs } = this.o;
    const checks: Check[] = [];
    const say = (line: string) => this.o.progress?.(`${role}: ${line}`);
    say(`asking ${from} to hand over`);
    const sentAt = performance.now();
    // The agent answers once the stop is confirmed and the lease released, or after its lease
    // ran out (at most one TTL and the deactivation budget): within the drill's timeout.
    const reply = await requestHandover(this.byName.get(from)!, role, holdOffMs, timeoutMs);
    if (!reply.ok) {
      checks.push({
        name: 'handover',
        ok: false,
        detail: `${from}: ${reply.code}: ${reply.message}`,
      });
      return { from, to, checks };
    }
    checks.push({
      name: 'handover',
      ok: true,
      detail: `${from} stop confirmed, lease released at ${reply.stoppedAt}`,
    });
    say(`${from} stopped (confirmed) at ${reply.stoppedAt}; waiting for ${to}`);
    const isActive = (obs: AgentObservation[], name: string) =>
      obs.find((x) => x.name === name)?.role?.state === 'active';
    // Not cut short by an abort: the role is in flight, and the drill reports where it lands.
    const seen = await this.waitFor(timeoutMs, (obs) => isActive(obs, to), false);
    const observedMs = performance.now() - sentAt;
    if (!seen) {
      checks.push({
        name: 'standby active',
        ok: false,
        detail: `${to} not active within ${timeoutMs} ms`,
      });
      return { from, to, stopConfirmedAt: reply.stoppedAt, checks };
    }
    const view = seen.find((x) => x.name === to)!.role!;
    const activeAt = view.activeSince;
    const switchMs =
      activeAt !== undefined ? Date.parse(activeAt) - Date.parse(reply.stoppedAt) : undefined;
    checks.push({
      name: 'standby active',
      ok: true,
      detail: `${to} active at ${activeAt ?? '?'} (token ${view.token ?? '?'})`,
    });
    say(`${to} active${switchMs !== undefined ? ` ${switchMs} ms after the stop` : ''}; verifying`);
    checks.push(...(await this.verify(to)));
    return {
      from,
      to,
      stopConfirmedAt: reply.stoppedAt,
      ...(activeAt !== undefined ? { activeAt } : {}),
      ...(switchMs !== undefined ? { switchMs } : {}),
      observedMs: Math.round(observedMs),
      checks,
    };
  }

  /** The new holder produced: still active and named by the store, and what was asked for. */
  private async verify(name: string): Promise<Check[]> {
    const { role, timeoutMs, expectGrants, verifyRun } = this.o;
    const checks: Check[] = [];
    const end = performance.now() + timeoutMs;
    let grantsOk = !expectGrants;
    let runOk = verifyRun === undefined;
    let last: AgentObservation | undefined;
    for (;;) {
      const obs = await this.poll();
      last = obs.find((x) => x.name === name);
      const r = last?.role;
      if (r?.state !== 'active') break;
      if (!grantsOk) grantsOk = r.granted > 0;
      if (!runOk)
        runOk = await commandPasses(
          verifyRun!,
          { VIGIL_DRILL_ROLE: role, VIGIL_DRILL_ACTIVE: name, VIGIL_DRILL_WHERE: last!.where },
          Math.max(10, end - performance.now()),
        );
      if ((grantsOk && runOk) || performance.now() >= end || this.aborted()) break;
      await sleep(this.o.pollMs);
    }
    const r = last?.role;
    const named = r?.storeHolder?.holderId === r?.holderId && r?.storeHolder?.token === r?.token;
    checks.push(
      r?.state === 'active' && named
        ? {
            name: 'holder confirmed',
            ok: true,
            detail: `${name} active, named by the store with token ${r.token}`,
          }
        : {
            name: 'holder confirmed',
            ok: false,
            detail: `${name}: state ${r?.state ?? last?.unreachable ?? '?'}, the store names ${r?.storeHolder?.holderId ?? 'nobody'}`,
          },
    );
    if (expectGrants)
      checks.push({
        name: 'grants',
        ok: grantsOk,
        detail: grantsOk
          ? `${r?.granted ?? 0} granted under ${name}'s fence`
          : `nothing granted under ${name}'s fence within ${timeoutMs} ms`,
      });
    if (verifyRun !== undefined)
      checks.push({
        name: 'verify command',
        ok: runOk,
        detail: runOk
          ? `\`${verifyRun}\` passed`
          : `\`${verifyRun}\` did not pass within ${timeoutMs} ms`,
      });
    return checks;
  }

  async run(): Promise<DrillResult> {
    const o = this.o;
    const assessment: Assessment = assessRole(o.role, await this.poll(), {
      ...(o.standby !== undefined ? { standby: o.standby } : {}),
    });
    const checks: Check[] = [...assessment.checks];
    if (o.lockedBy !== undefined)
      checks.push({
        name: 'no other drill',
        ok: false,
        detail: o.lockedBy,
        reason: 'drill_running',
      });
    const steps = drillSteps(assessment, o);
    const refusal =
      assessment.refusal ??
      (o.lockedBy !== undefined
        ? { reason: 'drill_running', message: `another drill is running: ${o.lockedBy}` }
        : undefined);
    const base = {
      role: o.role,
      mode: o.execute ? ('execute' as const) : ('dry-run' as const),
      ...(assessment.holder ? { holder: assessment.holder } : {}),
      ...(assessment.standby ? { standby: assessment.standby } : {}),
      checks,
      steps,
    };
    if (refusal)
      return {
        ...base,
        outcome: 'refused',
        reason: refusal.reason,
        message: refusal.message,
        legs: [],
        maxActiveSeen: this.maxActive,
      };
    if (!o.execute) return { ...base, outcome: 'planned', legs: [], maxActiveSeen: this.maxActive };

    const legs: Leg[] = [];
    const holder = assessment.holder!;
    const standby = assessment.standby!;
    const plan: Array<[string, string]> = [
      [holder, standby],
      ...(o.returnBack ? [[standby, holder] as [string, string]] : []),
    ];
    let failed = false;
    for (const [from, to] of plan) {
      if (this.aborted()) break;
      const leg = await this.leg(from, to);
      legs.push(leg);
      if (leg.checks.some((c) => !c.ok)) {
        failed = true;
        break;
      }
    }
    // Where the role landed: exactly one active holder, waited for (bounded) — after a failed
    // leg the old holder campaigns again once its hold-off ends.
    const landed = await this.waitFor(
      o.holdOffMs + o.timeoutMs,
      (obs) => obs.filter((x) => x.role?.state === 'active').length === 1,
      false,
    );
    const finalHolder = landed?.find((x) => x.role?.state === 'active')?.name;
    const overlap: Check =
      this.maxActive <= 1
        ? { name: 'never two active', ok: true, detail: 'at most one agent active in every poll' }
        : {
            name: 'never two active',
            ok: false,
            detail: `${this.maxActive} agents seen active at once`,
          };
    const holderCheck: Check = finalHolder
      ? { name: 'role held at the end', ok: true, detail: `${finalHolder} active` }
      : { name: 'role held at the end', ok: false, detail: 'no single active holder at the end' };
    const allChecks = [...checks, overlap, holderCheck];
    const anyFailed = failed || !overlap.ok || !holderCheck.ok;
    const outcome: DrillOutcome = this.aborted() ? 'aborted' : anyFailed ? 'failed' : 'passed';
    const firstFailure = [...legs.flatMap((l) => l.checks), overlap, holderCheck].find(
      (c) => !c.ok,
    );
    return {
      ...base,
      checks: allChecks,
      outcome,
      ...(outcome === 'aborted'
        ? {
            reason: 'interrupted',
            message: `interrupted; ${finalHolder ?? 'nobody yet'} holds the role`,
          }
        : firstFailure
          ? { reason: firstFailure.name, message: firstFailure.detail }
          : {}),
      legs,
      ...(finalHolder ? { finalHolder } : {}),
      maxActiveSeen: this.maxActive,
    };
  }
}

export async function runDrill(o: DrillOptions): Promise<DrillResult> {
  try {
    return await new Drill(o).run();
  } catch (err) {
    return {
      role: o.role,
      mode: o.execute ? 'execute' : 'dry-run',
      outcome: 'failed',
      reason: 'internal',
      message: errorMessage(err),
      checks: [],
      steps: [],
      legs: [],
      maxActiveSeen: 0,
    };
  }
}
