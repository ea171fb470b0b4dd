/**
 * The exclusive-role supervisor: only the lease holder is active.
 *
 *   follower ──acquire──► (wait until safeAfter, renewing) ──activate──► active
 *   active ──renewal not confirmed by deadline − deactivateBudget, or lease lost──► deactivate
 *
 * Deactivation starts `deactivateBudgetMs` before our own deadline. The lease is handed back
 * early only once the node is CONFIRMED stopped (it exited, or the recipe's check passed);
 * otherwise it runs out, and the successor waits for it.
 *
 * With `watchdog`, a separate `vigil watchdog` process runs the node and its actions; after
 * every confirmed renewal the agent sends it the new deadline, and it stops the node at that
 * deadline by itself. That is what makes a frozen or killed agent safe: an agent running the
 * actions itself cannot deactivate while frozen, and its node keeps producing (guarded writes
 * are still refused by the store's fence check, but a node that signs by itself is not).
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { errorMessage } from '../errors.js';
import type { LeaderElection, Leadership } from '../lease/types.js';
import { LeaseTimingSchema, now } from '../lease/types.js';
import type { FenceToken } from '../store/types.js';
import { ActionSchema, ConfirmCheckSchema } from './actions.js';
import { InAgentActuator, WatchdogActuator, type RoleActuator } from './actuator.js';

export const SupervisorConfigSchema = z
  .object({
    role: z.string().regex(/^[A-Za-z0-9._:/-]{1,128}$/),
    /** Shown to operators as the holder; defaults to host:pid. */
    holderId: z.string().min(1).max(200).optional(),
    lease: LeaseTimingSchema.default(LeaseTimingSchema.parse({})),
    /** How often the holder renews; default ttl/5. */
    renewEveryMs: z.number().int().min(20).optional(),
    /** Time reserved for deactivation before the deadline; every deactivate action must fit. */
    deactivateBudgetMs: z.number().int().min(50).default(1000),
    /** The agent runs these itself (no watchdog). */
    activate: z.array(ActionSchema).min(1).optional(),
    deactivate: z.array(ActionSchema).min(1).optional(),
    /** Without a watchdog: a command exiting 0 once the node stopped, for an early handover. */
    confirm: ConfirmCheckSchema.optional(),
    /** The `vigil watchdog` that runs the node and its actions (see src/watchdog). */
    watchdog: z
      .object({ socket: z.string().min(1).max(100) })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.watchdog && (c.activate || c.deactivate || c.confirm))
      ctx.addIssue({
        code: 'custom',
        path: ['watchdog'],
        message: 'with a watchdog, activate/deactivate/confirm belong in the watchdog config',
      });
    if (!c.watchdog && (!c.activate || !c.deactivate))
      ctx.addIssue({
        code: 'custom',
        path: ['activate'],
        message: 'give `activate` and `deactivate` actions, or a `watchdog`',
      });
    const renew = c.renewEveryMs ?? Math.floor(c.lease.ttlMs / 5);
    // At least two renewal attempts must fit before deactivation has to start.
    if (2 * renew + c.deactivateBudgetMs + c.lease.marginMs > c.lease.ttlMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['lease', 'ttlMs'],
        message: `ttlMs ${c.lease.ttlMs} is too short for 2 × renewEveryMs (${renew}) + deactivateBudgetMs (${c.deactivateBudgetMs}) + marginMs (${c.lease.marginMs})`,
      });
    }
  });
export type SupervisorConfig = z.output<typeof SupervisorConfigSchema>;
export type SupervisorConfigInput = z.input<typeof SupervisorConfigSchema>;

export type SupervisorState =
  'follower' | 'waiting' | 'activating' | 'active' | 'deactivating' | 'stopped';

export type SupervisorEvent =
  | { type: 'acquired'; token: bigint; deadlineWallMs: number; safeAfterWallMs: number }
  | { type: 'activated'; token: bigint; deadlineWallMs: number }
  | { type: 'renewed'; token: bigint; deadlineWallMs: number }
  | { type: 'renewal-unconfirmed'; token: bigint }
  | { type: 'deactivating'; token: bigint; reason: string }
  | { type: 'deactivated'; token: bigint; ok: boolean; confirmed: boolean; error?: string }
  | { type: 'action-failed'; phase: 'activate' | 'deactivate'; error: string };

/** What a graceful handover ended in (see Supervisor.handover). */
export type HandoverOutcome =
  | {
      readonly handedOver: true;
      readonly token: bigint;
      /** Wall time the stop was confirmed and the lease released (this host's clock). */
      readonly stoppedAtWallMs: number;
    }
  | {
      readonly handedOver: false;
      /** not_active: nothing to hand over; unconfirmed: the stop was not confirmed, so the
       * lease ran out instead of being released (the successor waited one TTL). */
      readonly reason: 'not_active' | 'unconfirmed';
      readonly state: SupervisorState;
      readonly detail?: string;
    };

/** The role as this agent sees it, for `GET /v1/roles` and drills. */
export interface RoleView {
  readonly state: SupervisorState;
  /** This agent's holder id for the role. */
  readonly holderId: string;
  /** The fence token of the holding, while this agent holds the role. */
  readonly token?: bigint;
  /** Wall time this agent last activated the role, while active. */
  readonly activeSinceWallMs?: number;
  /** Wall time until which this agent stays aside after a handover (0: not standing aside). */
  readonly standingAsideUntilWallMs: number;
}

/** The longest a handed-over holder stays out of the campaign waiting for a successor. */
export const MAX_HOLD_OFF_MS = 300_000;

export interface Supervisor {
  state(): SupervisorState;
  view(): RoleView;
  /**
   * Hands the role over gracefully: deactivates (the lease is released only once the stop is
   * confirmed), then stays out of the campaign until another holder has taken the role or
   * `holdOffMs` passed, whichever comes first — so a successor that never comes leaves the
   * role to this agent again, never to nobody.
   */
  handover(holdOffMs: number): Promise<HandoverOutcome>;
  /** Who the store says holds the role now. */
  holderInStore(): Promise<{ holderId: string; token: bigint } | undefined>;
  /** The fence to put on guarded writes while active; undefined otherwise. */
  fence(): FenceToken | undefined;
  stop(): Promise<void>;
}

const wall = (mono: number): number => Date.now() + (mono - now());
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

class RoleSupervisor implements Supervisor {
  private current: Leadership | undefined;
  private st: SupervisorState = 'follower';
  private stopping = false;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private readonly actuator: RoleActuator;
  /** Our last deactivation was not confirmed: until one is, we cannot vouch for the node. */
  private unconfirmedStop = false;
  /** The holdings for which activation was started (they need a confirmed stop). */
  private readonly activated = new WeakSet<Leadership>();
  private deactivation: Promise<void> | undefined;
  private loopDone: Promise<void>;
  private readonly renewEveryMs: number;
  /** Monotonic time until which a handed-over holder does not campaign (0: not aside). */
  private asideUntil = 0;
  private activeSince: number | undefined;

  constructor(
    private readonly config: SupervisorConfig,
    private readonly election: LeaderElection,
    private readonly onEvent: (e: SupervisorEvent) => void,
  ) {
    this.renewEveryMs = config.renewEveryMs ?? Math.floor(config.lease.ttlMs / 5);
    this.actuator = config.watchdog
      ? new WatchdogActuator(
          config.watchdog.socket,
          config.deactivateBudgetMs,
          (token, _c, reason) => {
            const l = this.current;
            if (l && l.fence.token === token) void this.deactivate(l, `watchdog: ${reason}`);
          },
          () => {
            // A restarted watchdog starts inactive: our renewals would feed nothing. Ask it
            // (reconnecting) whether the node is stopped, and campaign again.
            const l = this.current;
            if (l && this.st === 'active') void this.deactivate(l, 'watchdog channel closed');
          },
        )
      : new InAgentActuator(
          {
            activate: config.activate!,
            deactivate: config.deactivate!,
            ...(config.confirm ? { confirm: config.confirm } : {}),
          },
          config.deactivateBudgetMs,
          (l) => this.env(l),
        );
    this.loopDone = this.loop();
  }

  state(): SupervisorState {
    return this.st;
  }

  fence(): FenceToken | undefined {
    return this.st === 'active' && this.current?.held() ? this.current.fence : undefined;
  }

  view(): RoleView {
    const l = this.current;
    return {
      state: this.st,
      holderId: this.election.holderId,
      ...(l ? { token: l.fence.token } : {}),
      ...(this.st === 'active' && this.activeSince !== undefined
        ? { activeSinceWallMs: Math.floor(wall(this.activeSince)) }
        : {}),
      standingAsideUntilWallMs: this.asideUntil > now() ? Math.floor(wall(this.asideUntil)) : 0,
    };
  }

  async handover(holdOffMs: number): Promise<HandoverOutcome> {
    const l = this.current;
    if (!l || this.st !== 'active' || this.deactivation || this.stopping)
      return { handedOver: false, reason: 'not_active', state: this.st };
    // Set before deactivating: the loop must not campaign again the moment the lease is free.
    this.asideUntil = now() + Math.min(Math.max(0, holdOffMs), MAX_HOLD_OFF_MS);
    let confirmed = false;
    let detail: string | undefined;
    let stoppedAt = 0;
    const done = this.deactivate(l, 'handover requested', (c, error) => {
      confirmed = c;
      detail = error;
      stoppedAt = Date.now();
    });
    await done;
    if (confirmed) return { handedOver: true, token: l.fence.token, stoppedAtWallMs: stoppedAt };
    return {
      handedOver: false,
      reason: 'unconfirmed',
      state: this.st,
      ...(detail !== undefined ? { detail } : {}),
    };
  }

  holderInStore(): Promise<{ holderId: string; token: bigint } | undefined> {
    return this.election.current();
  }

  /** Whether a handed-over holder still stays out of the campaign. */
  private async standingAside(): Promise<boolean> {
    if (this.asideUntil === 0) return false;
    if (now() >= this.asideUntil) {
      this.asideUntil = 0;
      return false;
    }
    // Another holder took the role: from now on this agent is an ordinary standby.
    const holder = await this.election.current().catch(() => undefined);
    if (holder !== undefined && holder.holderId !== this.election.holderId) {
      this.asideUntil = 0;
      return false;
    }
    return true;
  }

  private env(l: Leadership): NodeJS.ProcessEnv {
    return {
      ...process.env,
      VIGIL_ROLE: this.config.role,
      VIGIL_HOLDER: this.election.holderId,
      VIGIL_FENCE_TOKEN: l.fence.token.toString(),
      VIGIL_LEASE_DEADLINE_MS: String(Math.floor(wall(l.deadline()))),
    };
  }

  /** Deactivation must begin by here to finish before the deadline. */
  private mustDeactivateAt(l: Leadership): number {
    return l.deadline() - this.config.deactivateBudgetMs;
  }

  private armDeadlineTimer(l: Leadership): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(
      () => {
        // Also runs late after a freeze; the deadline check decides, not the timer.
        if (this.current === l && now() >= this.mustDeactivateAt(l))
          void this.deactivate(l, 'renewal not confirmed before the deadline');
      },
      Math.max(0, this.mustDeactivateAt(l) - now()),
    );
  }

  private deactivate(
    l: Leadership,
    reason: string,
    onResult?: (confirmed: boolean, error: string | undefined) => void,
  ): Promise<void> {
    if (this.deactivation) return this.deactivation;
    this.deactivation = (async () => {
      clearTimeout(this.deadlineTimer);
      this.st = 'deactivating';
      this.onEvent({ type: 'deactivating', token: l.fence.token, reason });
      const r = await this.actuator.deactivate(l);
      const { ok, error } = r;
      if (error) this.onEvent({ type: 'action-failed', phase: 'deactivate', error });
      // A holding that never started activation left nothing running, unless an earlier
      // unconfirmed stop of ours might have.
      const confirmed = r.confirmed || (!this.activated.has(l) && !this.unconfirmedStop);
      this.unconfirmedStop = !confirmed;
      // Hand the role back early only when the node is known to have stopped: sending the
      // stop (a SIGHUP) is not stopping. Otherwise the lease runs out and the successor waits.
      if (confirmed) await l.release();
      onResult?.(confirmed, error);
      this.activeSince = undefined;
      this.onEvent({
        type: 'deactivated',
        token: l.fence.token,
        ok,
        confirmed,
        ...(error ? { error } : {}),
      });
      if (!confirmed) await sleep(l.deadline() - now());
      this.current = undefined;
      this.st = this.stopping ? 'stopped' : 'follower';
    })().finally(() => {
      this.deactivation = undefined;
    });
    return this.deactivation;
  }

  private async renewOnce(l: Leadership): Promise<boolean> {
    const ok = await l.renew();
    if (this.current !== l) return false;
    if (ok) {
      this.armDeadlineTimer(l);
      this.actuator.renewed(l);
      this.onEvent({ type: 'renewed', token: l.fence.token, deadlineWallMs: wall(l.deadline()) });
    } else {
      this.onEvent({ type: 'renewal-unconfirmed', token: l.fence.token });
    }
    return ok;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      if (this.deactivation) {
        await this.deactivation;
        continue;
      }
      const l = this.current;
      if (!l) {
        if (await this.standingAside()) {
          await sleep(this.config.lease.pollMs);
          continue;
        }
        const got = await this.election.tryAcquire();
        if (!got || this.stopping) {
          if (got) await got.release();
          await sleep(this.config.lease.pollMs);
          continue;
        }
        this.current = got;
        this.st = 'waiting';
        this.armDeadlineTimer(got);
        this.onEvent({
          type: 'acquired',
          token: got.fence.token,
          deadlineWallMs: wall(got.deadline()),
          safeAfterWallMs: wall(got.safeAfter),
        });
        while (now() < got.safeAfter && got.held() && !this.stopping) {
          await sleep(Math.min(this.renewEveryMs, got.safeAfter - now()));
          await this.renewOnce(got);
        }
        if (!got.held() || this.stopping) {
          await this.deactivate(got, this.stopping ? 'stopping' : 'lost while waiting to activate');
          continue;
        }
        this.st = 'activating';
        this.activated.add(got);
        try {
          await this.actuator.activate(got, this.mustDeactivateAt(got));
        } catch (err) {
          this.onEvent({ type: 'action-failed', phase: 'activate', error: errorMessage(err) });
          await this.deactivate(got, 'activation failed');
          continue;
        }
        if (this.current !== got || this.deactivation) continue;
        if (!got.held() || now() >= this.mustDeactivateAt(got)) {
          await this.deactivate(got, 'deadline reached during activation');
          continue;
        }
        this.st = 'active';
        this.activeSince = now();
        this.onEvent({
          type: 'activated',
          token: got.fence.token,
          deadlineWallMs: wall(got.deadline()),
        });
        continue;
      }
      await sleep(this.renewEveryMs);
      if (this.current !== l || this.deactivation || this.stopping) continue;
      if (now() >= this.mustDeactivateAt(l)) {
        await this.deactivate(l, 'renewal not confirmed before the deadline');
        continue;
      }
      const ok = await this.renewOnce(l);
      if (!ok && !l.held()) await this.deactivate(l, 'lease lost');
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.loopDone;
    if (this.deactivation) await this.deactivation;
    const l = this.current;
    if (l) await this.deactivate(l, 'stopping');
    clearTimeout(this.deadlineTimer);
    this.actuator.close();
    this.st = 'stopped';
  }
}

export function startSupervisor(
  config: SupervisorConfigInput,
  election: LeaderElection,
  onEvent: (e: SupervisorEvent) => void = () => undefined,
): Supervisor {
  const parsed = SupervisorConfigSchema.parse(config);
  return new RoleSupervisor(parsed, election, onEvent);
}

export function defaultHolderId(): string {
  return `${hostname()}:${process.pid}`;
}
