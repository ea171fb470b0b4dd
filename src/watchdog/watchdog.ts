/**
 * The watchdog: a small process apart from the agent that runs the supervised node (as its
 * child, or through systemd) and stops it when the lease deadline the agent last fed it
 * passes. A frozen, killed or partitioned agent stops feeding it; the watchdog does not share
 * that fate, so the node cannot keep producing past the holder's deadline.
 *
 *   inactive ──activate (before deactivateAt)──► activating ──► active
 *   active ──deactivateAt passed / asked / node exited──► deactivating ──confirmed?──► inactive
 *
 * Every action on the node goes through one queue, so activation and deactivation never
 * interleave. The deadline timers only start work; what they do is decided by reading the
 * clock, so a timer that fires late (the watchdog was frozen too) acts on the real time.
 * Past the lease deadline no graceful stop is waited for: the node is killed first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import { ActionError, checkPasses, runAction } from '../supervisor/actions.js';
import { monoNs, msUntil } from './clock.js';
import type { WatchdogAction, WatchdogConfig } from './config.js';
import {
  LineSplitter,
  decodeAgentMessage,
  encodeMessage,
  type AgentMessage,
  type WatchdogMessage,
} from './protocol.js';

export type WatchdogState = 'inactive' | 'activating' | 'active' | 'deactivating';

/** How long the node may take to exit after SIGKILL before we call it unconfirmed. */
const KILL_CONFIRM_MS = 5000;
/** Actions started after the deadline still get this long (they must run, late or not). */
const LATE_ACTION_MS = 1000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

export class Watchdog {
  private st: WatchdogState = 'inactive';
  private token: bigint | undefined;
  private deactivateAt = 0n;
  private deadline = 0n;
  /** Whether the last deactivation was confirmed (true at start: nothing was activated). */
  private stoppedConfirmed = true;
  private queue: Promise<unknown> = Promise.resolve();
  private softTimer: NodeJS.Timeout | undefined;
  private hardTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private child: ChildProcess | undefined;
  private childExit: Promise<void> = Promise.resolve();
  private server: Server | undefined;
  private conn: Socket | undefined;
  private stopping = false;

  constructor(
    private readonly config: WatchdogConfig,
    private readonly log: Logger,
  ) {}

  state(): WatchdogState {
    return this.st;
  }

  nodePid(): number | undefined {
    return this.nodeRunning() ? this.child!.pid : undefined;
  }

  /**
   * Puts the node into a known inactive state (the deactivate actions, tolerating signals to
   * nothing), starts the node, then listens.
   */
  async start(): Promise<void> {
    for (const a of this.config.deactivate) {
      try {
        await this.runOne(a, 5000);
      } catch (err) {
        const signal = 'signal' in a || 'signalNode' in a;
        // A signal with no process to receive it: nothing is running, which is the goal.
        if (!signal) throw err;
        this.log.info({ err: errorMessage(err) }, 'startup deactivation: signal not delivered');
      }
    }
    if (!this.config.node && !(await this.confirmNow())) {
      this.log.warn('startup: deactivation not confirmed; running the kill actions');
      await this.killNode();
    }
    this.startNode();
    await this.listen();
  }

  private nodeRunning(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  private startNode(): void {
    const node = this.config.node;
    if (!node || this.stopping) return;
    const child = spawn(node.run[0]!, node.run.slice(1), {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, VIGIL_ROLE: this.config.role },
    });
    this.child = child;
    this.childExit = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        resolve();
        this.onNodeExit(code, signal);
      }),
    );
    child.once('error', (err) =>
      this.log.error({ err: errorMessage(err) }, 'node failed to start'),
    );
    this.log.info({ pid: child.pid }, 'node started');
  }

  private onNodeExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.log.warn({ code, signal, state: this.st }, 'node exited');
    if (this.stopping) return;
    if (this.st === 'active' || this.st === 'activating')
      void this.enqueue(() => this.deactivateNow('the node exited'));
    const restart = () => {
      if (this.stopping || this.nodeRunning()) return;
      // Only an inactive node is started: its credentials have been put away by then.
      if (this.st !== 'inactive') this.restartTimer = setTimeout(restart, 100);
      else this.startNode();
    };
    this.restartTimer = setTimeout(restart, this.config.node!.restartDelayMs);
  }

  private listen(): Promise<void> {
    const path = this.config.socket;
    // A stale socket from a previous run would make listen fail; nobody serves it any more.
    if (existsSync(path)) unlinkSync(path);
    const server = createServer((socket) => this.onConnection(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      // Created 0600 (no window where another user could connect), then widened if asked.
      const umask = process.umask(0o177);
      server.listen(path, () => {
        process.umask(umask);
        chmodSync(path, parseInt(this.config.socketMode, 8));
        server.off('error', reject);
        resolve();
      });
    });
  }

  private onConnection(socket: Socket): void {
    if (this.conn && !this.conn.destroyed) {
      // One agent feeds one watchdog; a second connection is a misconfiguration.
      socket.end(encodeMessage({ type: 'refused', id: 0, reason: 'another agent is connected' }));
      return;
    }
    this.conn = socket;
    this.log.info({ state: this.st }, 'agent connected');
    const lines = new LineSplitter();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      try {
        for (const line of lines.push(chunk)) this.onMessage(decodeAgentMessage(line));
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'bad message from the agent; closing');
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.conn === socket) this.conn = undefined;
      // The deadline we hold stays: a dead agent stops the node then, not later.
      this.log.warn({ state: this.st }, 'agent channel closed; the current deadline stands');
    });
  }

  private send(m: WatchdogMessage): void {
    if (this.conn && !this.conn.destroyed) this.conn.write(encodeMessage(m));
  }

  private enqueue<T>(step: () => Promise<T>): Promise<T> {
    const next = this.queue.then(step, step);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private onMessage(m: AgentMessage): void {
    if (m.type === 'renew') {
      // Only the live activation's holder extends it; deadlines never move back.
      if (m.token !== this.token || (this.st !== 'active' && this.st !== 'activating')) return;
      if (m.deactivateAt > this.deactivateAt) this.deactivateAt = m.deactivateAt;
      if (m.deadline > this.deadline) this.deadline = m.deadline;
      this.armTimers();
      return;
    }
    if (m.type === 'activate') {
      void this.enqueue(async () => this.send(await this.activate(m)));
      return;
    }
    void this.enqueue(async () => {
      let confirmed: boolean;
      let detail: string;
      if (this.st === 'inactive' || m.token !== this.token) {
        confirmed = this.stoppedConfirmed;
        detail = 'already inactive';
      } else {
        confirmed = await this.deactivateNow('asked by the agent', false);
        detail = confirmed ? 'stopped' : 'not confirmed';
      }
      this.send({ type: 'deactivated', id: m.id, token: m.token, confirmed, detail });
    });
  }

  private async activate(m: Extract<AgentMessage, { type: 'activate' }>): Promise<WatchdogMessage> {
    if (this.st !== 'inactive') {
      if (this.st === 'active' && m.token === this.token)
        return { type: 'activated', id: m.id, token: m.token };
      return { type: 'refused', id: m.id, reason: `busy (${this.st}, token ${this.token})` };
    }
    if (monoNs() >= m.deactivateAt)
      return { type: 'refused', id: m.id, reason: 'the deadline has already passed' };
    this.token = m.token;
    this.deactivateAt = m.deactivateAt;
    this.deadline = m.deadline;
    this.st = 'activating';
    this.stoppedConfirmed = false;
    this.armTimers();
    this.log.info({ token: String(m.token), leftMs: msUntil(m.deactivateAt) }, 'activating');
    try {
      for (const a of this.config.activate) {
        const left = msUntil(this.deactivateAt);
        if (left <= 0) throw new Error('no time left before the deadline');
        await this.runOne(a, left);
      }
    } catch (err) {
      const reason = `activation failed: ${errorMessage(err)}`;
      await this.deactivateNow(reason, false);
      return { type: 'refused', id: m.id, reason };
    }
    if (monoNs() >= this.deactivateAt) {
      await this.deactivateNow('deadline reached during activation', false);
      return { type: 'refused', id: m.id, reason: 'deadline reached during activation' };
    }
    this.st = 'active';
    this.log.info({ token: String(m.token) }, 'active');
    return { type: 'activated', id: m.id, token: m.token };
  }

  private armTimers(): void {
    clearTimeout(this.softTimer);
    clearTimeout(this.hardTimer);
    this.softTimer = setTimeout(
      () => this.onSoftDeadline(),
      Math.max(0, msUntil(this.deactivateAt)),
    );
    this.hardTimer = setTimeout(() => this.onHardDeadline(), Math.max(0, msUntil(this.deadline)));
  }

  private onSoftDeadline(): void {
    if (this.st !== 'active' && this.st !== 'activating') return;
    if (monoNs() < this.deactivateAt) return this.armTimers();
    // Woken past the hard deadline (we were frozen too): a successor may be active, kill first.
    if (monoNs() >= this.deadline) void this.killNode();
    void this.enqueue(() => this.deactivateNow('the lease deadline passed without a renewal'));
  }

  private onHardDeadline(): void {
    if (this.st === 'inactive') return;
    if (monoNs() < this.deadline) return this.armTimers();
    this.log.warn(
      { state: this.st },
      'lease deadline passed before a confirmed stop: killing the node',
    );
    void this.killNode();
  }

  private env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      VIGIL_ROLE: this.config.role,
      ...(this.token !== undefined ? { VIGIL_FENCE_TOKEN: this.token.toString() } : {}),
    };
  }

  private async runOne(a: WatchdogAction, timeoutMs: number): Promise<void> {
    if ('signalNode' in a) {
      if (!this.nodeRunning())
        throw new ActionError(`${a.signalNode} to the node`, 'the node is not running');
      this.child!.kill(a.signalNode);
      return;
    }
    await runAction(a, timeoutMs, this.env());
  }

  /** Node gone, or the recipe's check passes. */
  private async confirmNow(): Promise<boolean> {
    if (this.config.node && !this.nodeRunning()) return true;
    if ('nodeExited' in this.config.confirm) return false;
    return checkPasses(this.config.confirm, 2000, this.env());
  }

  private async killNode(): Promise<void> {
    if (this.config.kill) {
      for (const a of this.config.kill) {
        try {
          await this.runOne(a, LATE_ACTION_MS * 5);
        } catch (err) {
          this.log.error({ err: errorMessage(err) }, 'kill action failed');
        }
      }
    } else if (this.nodeRunning()) {
      this.child!.kill('SIGKILL');
    }
  }

  /**
   * The role's deactivation, then confirmation: polled until the lease deadline, after which
   * the node is killed and confirmation is its exit (or the check passing soon after).
   */
  private async deactivateNow(reason: string, notify = true): Promise<boolean> {
    if (this.st === 'inactive') return this.stoppedConfirmed;
    const token = this.token!;
    this.st = 'deactivating';
    clearTimeout(this.softTimer);
    this.log.warn({ token: String(token), reason }, 'deactivating');
    for (const a of this.config.deactivate) {
      try {
        await this.runOne(a, Math.max(LATE_ACTION_MS, msUntil(this.deadline)));
      } catch (err) {
        // Keep going: a later action (the signal) may still stop the node.
        this.log.error({ err: errorMessage(err) }, 'deactivate action failed');
      }
    }
    let confirmed = false;
    const pollMs = 'pollMs' in this.config.confirm ? this.config.confirm.pollMs : 20;
    for (;;) {
      if (await this.confirmNow()) {
        confirmed = true;
        break;
      }
      if (monoNs() >= this.deadline) break;
      await sleep(Math.min(pollMs, msUntil(this.deadline)));
    }
    if (!confirmed) {
      await this.killNode();
      const until = monoNs() + BigInt(KILL_CONFIRM_MS) * 1_000_000n;
      while (!confirmed && monoNs() < until) {
        if (this.config.node) await Promise.race([this.childExit, sleep(pollMs)]);
        else await sleep(pollMs);
        confirmed = await this.confirmNow();
      }
    }
    clearTimeout(this.hardTimer);
    this.st = 'inactive';
    this.stoppedConfirmed = confirmed;
    this.log[confirmed ? 'info' : 'error']({ token: String(token), confirmed }, 'deactivated');
    if (notify) this.send({ type: 'stopped', token, confirmed, reason });
    return confirmed;
  }

  /** Deactivates (if active), stops the node and closes the socket. */
  async stop(): Promise<void> {
    if (this.st !== 'inactive') {
      // Shutting down is no reason to wait for the lease: stop the node now.
      if (this.deadline > monoNs()) this.deadline = monoNs();
      await this.enqueue(() => this.deactivateNow('the watchdog is stopping'));
    }
    this.stopping = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.softTimer);
    clearTimeout(this.hardTimer);
    if (this.nodeRunning()) {
      this.child!.kill('SIGTERM');
      const killed = await Promise.race([
        this.childExit.then(() => true),
        sleep(5000).then(() => false),
      ]);
      if (!killed && this.nodeRunning()) this.child!.kill('SIGKILL');
      await this.childExit;
    }
    this.conn?.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    if (existsSync(this.config.socket)) unlinkSync(this.config.socket);
  }
}
