/**
 * The exclusive-role supervisor: only the lease holder is active.
 *
 *   follower ──acquire──► (wait until safeAfter, renewing) ──activate──► active
 *   active ──renewal not confirmed by deadline − deactivateBudget, or lease lost──► deactivate
 *
 * Deactivation starts `deactivateBudgetMs` before our own deadline and each of its actions is
 * cut off at that deadline, so a live holder is inactive before anyone else may be active. A
 * holder frozen past its deadline (SIGSTOP, VM pause) deactivates the moment it runs again, and
 * any guarded write it tries meanwhile is refused by the store's fence check.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { errorMessage } from '../errors.js';
import type { LeaderElection, Leadership } from '../lease/types.js';
import { LeaseTimingSchema, now } from '../lease/types.js';
import type { FenceToken } from '../store/types.js';
import { ActionSchema, runAction, type Action } from './actions.js';

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
    activate: z.array(ActionSchema).min(1),
    deactivate: z.array(ActionSchema).min(1),
  })
  .strict()
  .superRefine((c, ctx) => {
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
  | { type: 'deactivated'; token: bigint; ok: boolean; error?: string }
  | { type: 'action-failed'; phase: 'activate' | 'deactivate'; error: string };

export interface Supervisor {
  state(): SupervisorState;
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
  private watchdog: NodeJS.Timeout | undefined;
  private deactivation: Promise<void> | undefined;
  private loopDone: Promise<void>;
  private readonly renewEveryMs: number;

  constructor(
    private readonly config: SupervisorConfig,
    private readonly election: LeaderElection,
    private readonly onEvent: (e: SupervisorEvent) => void,
  ) {
    this.renewEveryMs = config.renewEveryMs ?? Math.floor(config.lease.ttlMs / 5);
    this.loopDone = this.loop();
  }

  state(): SupervisorState {
    return this.st;
  }

  fence(): FenceToken | undefined {
    return this.st === 'active' && this.current?.held() ? this.current.fence : undefined;
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

  private armWatchdog(l: Leadership): void {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(
      () => {
        // Also runs late after a freeze; the deadline check decides, not the timer.
        if (this.current === l && now() >= this.mustDeactivateAt(l))
          void this.deactivate(l, 'renewal not confirmed before the deadline');
      },
      Math.max(0, this.mustDeactivateAt(l) - now()),
    );
  }

  private async runAll(actions: readonly Action[], until: number, l: Leadership): Promise<void> {
    for (const a of actions) {
      const left = until - now();
      if (left <= 0) throw new Error('no time left before the lease deadline');
      await runAction(a, left, this.env(l));
    }
  }

  private deactivate(l: Leadership, reason: string): Promise<void> {
    if (this.deactivation) return this.deactivation;
    this.deactivation = (async () => {
      clearTimeout(this.watchdog);
      this.st = 'deactivating';
      this.onEvent({ type: 'deactivating', token: l.fence.token, reason });
      let ok = true;
      let error: string | undefined;
      try {
        // Cut off at the deadline; past it we are deposed anyway, but the actions still run.
        await this.runAll(
          this.config.deactivate,
          Math.max(l.deadline(), now() + this.config.deactivateBudgetMs),
          l,
        );
      } catch (err) {
        ok = false;
        error = errorMessage(err);
        this.onEvent({ type: 'action-failed', phase: 'deactivate', error });
      }
      // Hand the role back only when we know we are inactive; otherwise let it expire.
      if (ok) await l.release();
      this.onEvent({ type: 'deactivated', token: l.fence.token, ok, ...(error ? { error } : {}) });
      if (!ok) await sleep(l.deadline() - now());
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
      this.armWatchdog(l);
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
        const got = await this.election.tryAcquire();
        if (!got || this.stopping) {
          if (got) await got.release();
          await sleep(this.config.lease.pollMs);
          continue;
        }
        this.current = got;
        this.st = 'waiting';
        this.armWatchdog(got);
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
        try {
          await this.runAll(this.config.activate, this.mustDeactivateAt(got), got);
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
    clearTimeout(this.watchdog);
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
