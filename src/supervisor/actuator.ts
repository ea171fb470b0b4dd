/**
 * Who acts on the supervised node for the supervisor. Either the agent itself runs the role's
 * actions (it then shares the node's fate with nothing: a frozen agent leaves the node as it
 * is), or a separate `vigil watchdog` does, fed with the lease deadline after every renewal
 * and stopping the node at that deadline on its own.
 *
 * Deactivation reports whether the node is known to have stopped. Only then may the lease be
 * handed back early; otherwise it must run out, so a successor waits for the deadline.
 */
import { errorMessage } from '../errors.js';
import type { Leadership } from '../lease/types.js';
import { now } from '../lease/types.js';
import { perfToMonoNs } from '../watchdog/clock.js';
import { WatchdogClient } from '../watchdog/client.js';
import { checkPasses, runAction, type Action, type ConfirmCheck } from './actions.js';

export interface DeactivationResult {
  /** Every deactivate action ran without error. */
  ok: boolean;
  /** The node is known to have stopped (exited, or the recipe's check passed). */
  confirmed: boolean;
  error?: string;
}

export interface RoleActuator {
  /** Activates before `until` (monotonic ms); throws if it could not. */
  activate(l: Leadership, until: number): Promise<void>;
  /** A renewal was confirmed: the deadline moved on. */
  renewed(l: Leadership): void;
  deactivate(l: Leadership): Promise<DeactivationResult>;
  close(): void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

export class InAgentActuator implements RoleActuator {
  constructor(
    private readonly actions: { activate: Action[]; deactivate: Action[]; confirm?: ConfirmCheck },
    private readonly budgetMs: number,
    private readonly env: (l: Leadership) => NodeJS.ProcessEnv,
  ) {}

  private async runAll(actions: readonly Action[], until: number, l: Leadership): Promise<void> {
    for (const a of actions) {
      const left = until - now();
      if (left <= 0) throw new Error('no time left before the lease deadline');
      await runAction(a, left, this.env(l));
    }
  }

  activate(l: Leadership, until: number): Promise<void> {
    return this.runAll(this.actions.activate, until, l);
  }

  renewed(): void {}

  async deactivate(l: Leadership): Promise<DeactivationResult> {
    let error: string | undefined;
    try {
      // Cut off at the deadline; past it we are deposed anyway, but the actions still run.
      await this.runAll(this.actions.deactivate, Math.max(l.deadline(), now() + this.budgetMs), l);
    } catch (err) {
      error = errorMessage(err);
    }
    const check = this.actions.confirm;
    // Without a check nothing proves the node stopped: sending a signal is not stopping.
    if (!check) return { ok: !error, confirmed: false, ...(error ? { error } : {}) };
    const until = Math.max(l.deadline(), now() + this.budgetMs);
    for (;;) {
      if (await checkPasses(check, Math.max(10, until - now()), this.env(l)))
        return { ok: !error, confirmed: true, ...(error ? { error } : {}) };
      if (now() >= until)
        return { ok: !error, confirmed: false, error: error ?? 'stop not confirmed' };
      await sleep(Math.min(check.pollMs, until - now()));
    }
  }

  close(): void {}
}

/** Extra time the watchdog may take past the deadline: killing the node and seeing it exit. */
const WATCHDOG_KILL_MS = 6000;

export class WatchdogActuator implements RoleActuator {
  private readonly client: WatchdogClient;

  constructor(
    socket: string,
    private readonly budgetMs: number,
    onStopped: (token: bigint, confirmed: boolean, reason: string) => void,
    onChannelClosed: () => void,
  ) {
    this.client = new WatchdogClient(
      socket,
      (m) => onStopped(m.token, m.confirmed, m.reason),
      onChannelClosed,
    );
  }

  private deadlines(l: Leadership) {
    const deadline = l.deadline();
    return {
      token: l.fence.token,
      deactivateAt: perfToMonoNs(deadline - this.budgetMs),
      deadline: perfToMonoNs(deadline),
    };
  }

  async activate(l: Leadership, until: number): Promise<void> {
    const reply = await this.client.request(
      { type: 'activate', ...this.deadlines(l) },
      Math.max(1, until - now()),
    );
    if (reply.type !== 'activated') {
      throw new Error(
        `the watchdog refused to activate: ${reply.type === 'refused' ? reply.reason : reply.type}`,
      );
    }
  }

  renewed(l: Leadership): void {
    this.client.renew({ type: 'renew', ...this.deadlines(l) });
  }

  async deactivate(l: Leadership): Promise<DeactivationResult> {
    try {
      const reply = await this.client.request(
        { type: 'deactivate', token: l.fence.token },
        Math.max(0, l.deadline() - now()) + this.budgetMs + WATCHDOG_KILL_MS,
      );
      if (reply.type !== 'deactivated') return { ok: false, confirmed: false, error: reply.type };
      return {
        ok: reply.confirmed,
        confirmed: reply.confirmed,
        ...(reply.confirmed ? {} : { error: reply.detail }),
      };
    } catch (err) {
      // The watchdog still holds our last deadline and stops the node then; we cannot know
      // when it did, so the lease must run out.
      return { ok: false, confirmed: false, error: errorMessage(err) };
    }
  }

  close(): void {
    this.client.close();
  }
}
