/**
 * Two hosts on one machine competing for one exclusive role, as real processes: on each, a
 * fake node (fake-node.ts), a `vigil watchdog` running it (mode 'watchdog'), and a
 * `vigil agent` supervising the role. In mode 'in-agent' the agent runs the actions itself
 * (the pre-watchdog design), which lets the same trials run against the old behaviour.
 *
 * What a trial measures comes from the nodes' "produced" files only: CLOCK_MONOTONIC stamps,
 * comparable across processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { fileURLToPath } from 'node:url';
import { initAgentStore, startAgentProcess, type AgentProcess } from '../helpers/agent-process.js';
import { sleep } from '../helpers/etcd-cluster.js';
import { CLI_ENTRY } from '../helpers/paths.js';

const FAKE_NODE = fileURLToPath(new URL('./fake-node.js', import.meta.url));

export type HarnessMode = 'watchdog' | 'in-agent';

export interface HarnessOptions {
  dir: string;
  mode: HarnessMode;
  /** The agents' store section (YAML-able object). */
  store: Record<string, unknown>;
  ttlMs?: number;
  /** How long each fake node takes to stop forging after SIGHUP. */
  stopDelayMs?: number;
  role?: string;
}

export interface Host {
  readonly name: string;
  readonly dir: string;
  readonly produced: string;
  readonly agentConfig: string;
  agent: AgentProcess | undefined;
  watchdog: ChildProcess | undefined;
  node: ChildProcess | undefined;
  /** The watchdog's log lines (JSON), for diagnosing a failed trial. */
  watchdogLog: string[];
}

const yaml = (v: unknown) => JSON.stringify(v, null, 2); // JSON is YAML

/** CLOCK_MONOTONIC ns stamps of every line the host's node produced. */
export function producedStamps(host: Host): bigint[] {
  if (!existsSync(host.produced)) return [];
  return readFileSync(host.produced, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => BigInt(l));
}

export class RoleHarness {
  readonly hosts: Host[];
  private readonly o: Required<HarnessOptions>;

  constructor(options: HarnessOptions) {
    this.o = { ttlMs: 2000, stopDelayMs: 0, role: 'cardano/test/POOL-producer', ...options };
    this.hosts = ['A', 'B'].map((name) => this.prepare(name));
  }

  private prepare(name: string): Host {
    const dir = join(this.o.dir, name);
    for (const d of ['standby', 'live', 'data']) mkdirSync(join(dir, d), { recursive: true });
    writeFileSync(join(dir, 'standby', 'kes.skey'), 'secret', { mode: 0o600 });
    const produced = join(dir, 'produced');
    writeFileSync(produced, '');
    const nodeArgs = JSON.stringify({
      credential: join(dir, 'live', 'kes.skey'),
      produced,
      status: join(dir, 'status'),
      everyMs: 10,
      stopDelayMs: this.o.stopDelayMs,
      pidFile: join(dir, 'node.pid'),
    });
    const keyIn = {
      moveFile: { from: join(dir, 'standby', 'kes.skey'), to: join(dir, 'live', 'kes.skey') },
    };
    const keyOut = {
      moveFile: { from: join(dir, 'live', 'kes.skey'), to: join(dir, 'standby', 'kes.skey') },
    };
    const lease = { ttlMs: this.o.ttlMs, marginMs: 100, pollMs: 50, callTimeoutMs: 200 };
    const timing = {
      lease,
      renewEveryMs: Math.floor(this.o.ttlMs / 10),
      deactivateBudgetMs: Math.floor(this.o.ttlMs / 4),
    };
    let supervisor: Record<string, unknown>;
    if (this.o.mode === 'watchdog') {
      const socket = join(dir, 'wd.sock');
      writeFileSync(
        join(dir, 'watchdog.yaml'),
        yaml({
          role: this.o.role,
          socket,
          node: { run: [process.execPath, FAKE_NODE, nodeArgs], restartDelayMs: 200 },
          activate: [keyIn, { signalNode: 'SIGHUP' }],
          deactivate: [keyOut, { signalNode: 'SIGHUP' }],
          confirm: {
            run: ['sh', '-c', `test "$(cat '${join(dir, 'status')}')" = idle`],
            pollMs: 20,
          },
        }),
      );
      supervisor = { role: this.o.role, ...timing, watchdog: { socket } };
    } else {
      const pidFile = join(dir, 'node.pid');
      writeFileSync(join(dir, 'node-args.json'), nodeArgs);
      supervisor = {
        role: this.o.role,
        ...timing,
        activate: [keyIn, { signal: 'SIGHUP', pidFile }],
        deactivate: [keyOut, { signal: 'SIGHUP', pidFile }],
      };
    }
    const agentConfig = join(dir, 'agent.yaml');
    writeFileSync(
      agentConfig,
      yaml({
        agent: { id: `agent-${name}`, dataDir: join(dir, 'data') },
        store: this.o.store,
        supervisors: [supervisor],
        log: { level: 'info' },
      }),
    );
    // The operator's act before any agent runs (idempotent: every host runs it, one store).
    initAgentStore(agentConfig);
    return {
      name,
      dir,
      produced,
      agentConfig,
      agent: undefined,
      watchdog: undefined,
      node: undefined,
      watchdogLog: [],
    };
  }

  /** Starts what is not running: the watchdog (with its node) or the bare node, the agent. */
  async startHost(host: Host): Promise<void> {
    if (this.o.mode === 'watchdog') {
      if (!host.watchdog)
        host.watchdog = await startWatchdog(join(host.dir, 'watchdog.yaml'), host.watchdogLog);
    } else if (!host.node) {
      const args = readFileSync(join(host.dir, 'node-args.json'), 'utf8');
      host.node = spawn(process.execPath, [FAKE_NODE, args], { stdio: 'ignore' });
      const pidFile = join(host.dir, 'node.pid');
      for (let i = 0; i < 200 && !existsSync(pidFile); i++) await sleep(10);
    }
    const agent = host.agent?.child;
    if (!agent || agent.exitCode !== null || agent.signalCode !== null) await this.startAgent(host);
  }

  async startAgent(host: Host): Promise<void> {
    host.agent = await startAgentProcess(host.agentConfig);
  }

  /** The host whose node produced in the last `withinMs`, if exactly one did. */
  producing(withinMs = 200): Host | undefined {
    const since = process.hrtime.bigint() - BigInt(withinMs) * 1_000_000n;
    const live = this.hosts.filter((h) => producedStamps(h).some((t) => t >= since));
    return live.length === 1 ? live[0] : undefined;
  }

  async waitProducing(withinMs = 15_000): Promise<Host> {
    for (let waited = 0; waited < withinMs; waited += 20) {
      const h = this.producing();
      if (h) return h;
      await sleep(20);
    }
    throw new Error('no single host became active');
  }

  /** First stamp the host's node produced at or after `since`, waiting up to `withinMs`. */
  async firstProducedAfter(host: Host, since: bigint, withinMs = 15_000): Promise<bigint> {
    for (let waited = 0; waited < withinMs; waited += 10) {
      const t = producedStamps(host).find((s) => s >= since);
      if (t !== undefined) return t;
      await sleep(10);
    }
    throw new Error(`host ${host.name} did not become active within ${withinMs} ms`);
  }

  /**
   * On the SQLite engine: whether another process holds the store's write lock (an agent
   * frozen inside its renewal transaction does, and no successor can take over until it runs).
   */
  sqliteLocked(): boolean {
    if (this.o.store.engine !== 'sqlite') return false;
    const db = new Database(this.o.store.path as string, { timeout: 0 });
    try {
      db.exec('BEGIN IMMEDIATE');
      db.exec('ROLLBACK');
      return false;
    } catch {
      return true;
    } finally {
      db.close();
    }
  }

  /** The tail of every agent's and watchdog's log. */
  diagnose(): string {
    return this.hosts
      .map(
        (x) =>
          `--- ${x.name} agent\n${(x.agent?.output() ?? '').split('\n').slice(-15).join('\n')}\n` +
          `--- ${x.name} watchdog\n${x.watchdogLog.slice(-15).join('\n')}`,
      )
      .join('\n');
  }

  async close(): Promise<void> {
    for (const h of this.hosts) {
      for (const p of [h.agent?.child, h.watchdog, h.node]) {
        if (p && p.exitCode === null && p.signalCode === null) {
          try {
            process.kill(p.pid!, 'SIGCONT');
          } catch {
            /* gone */
          }
        }
      }
      await h.agent?.kill('SIGKILL');
      for (const p of [h.watchdog, h.node]) {
        if (p && p.exitCode === null && p.signalCode === null) {
          const gone = new Promise((r) => p.once('exit', r));
          // The watchdog's SIGTERM path stops its node too; SIGKILL only if it hangs.
          p.kill('SIGTERM');
          await Promise.race([gone, sleep(3000)]);
          if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
        }
      }
    }
  }
}

/** Starts `vigil watchdog` and resolves once it listens. */
export async function startWatchdog(
  configPath: string,
  log: string[] = [],
  readyWithinMs = 20_000,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CLI_ENTRY, 'watchdog', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`watchdog not ready:\n${out}`)),
        readyWithinMs,
      );
      createInterface({ input: child.stdout! }).on('line', (line) => {
        out += line + '\n';
        log.push(line);
        if (line.includes('"watchdog ready"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`watchdog exited (${code}):\n${out}`));
      });
    });
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return child;
}

/** The pid the host's node wrote at its last start. */
export function nodePid(host: Host): number {
  return Number(readFileSync(join(host.dir, 'node.pid'), 'utf8'));
}

export interface FrozenHostResult {
  /** ms from the freeze to the successor's first production. */
  failoverMs: number;
  /** Lines the old node produced after it was thawed (it ran before its watchdog did). */
  linesAfterThaw: number;
  /** ms from the thaw to the old node's last line (0 when none). */
  lastLineAfterThawMs: number;
}

/**
 * A frozen host (VM pause): its agent, watchdog and node all SIGSTOPped. The successor takes
 * over; then the node is thawed FIRST, its watchdog right after, the agent not at all. What
 * the node manages to produce before its watchdog stops it is measured, not prevented.
 */
export async function frozenHostTrial(h: RoleHarness): Promise<FrozenHostResult> {
  const old = await h.waitProducing();
  const next = h.hosts.find((x) => x !== old)!;
  await sleep(200 + Math.random() * 300);
  const procs = [old.agent!.child.pid!, old.watchdog!.pid!, nodePid(old)];
  const frozenAt = process.hrtime.bigint();
  for (const pid of procs) process.kill(pid, 'SIGSTOP');
  const first = await h.firstProducedAfter(next, frozenAt);
  await sleep(200);
  const thawAt = process.hrtime.bigint();
  process.kill(procs[2]!, 'SIGCONT');
  process.kill(procs[1]!, 'SIGCONT');
  // Quiet for 500 ms with the agent still frozen: the watchdog stopped the node by itself.
  let lines = -1;
  for (let waited = 0; waited < 10_000; waited += 500) {
    await sleep(500);
    const now = producedStamps(old).filter((t) => t >= thawAt).length;
    if (now === lines) break;
    lines = now;
  }
  const after = producedStamps(old).filter((t) => t >= thawAt);
  const stillProducing = producedStamps(old).some(
    (t) => t >= process.hrtime.bigint() - 400_000_000n,
  );
  process.kill(procs[0]!, 'SIGCONT');
  await sleep(300);
  if (stillProducing) throw new Error('the thawed node kept producing with its agent frozen');
  return {
    failoverMs: Number(first - frozenAt) / 1e6,
    linesAfterThaw: after.length,
    lastLineAfterThawMs: after.length ? Number(after[after.length - 1]! - thawAt) / 1e6 : 0,
  };
}

export interface TrialResult {
  /** ms from the fault to the successor's first production; NaN if none (see below). */
  failoverMs: number;
  /**
   * SQLite only: the agent was frozen holding the store's write lock, so nobody could take
   * over until it was thawed (no failover, and no overlap: its watchdog stopped its node).
   */
  lockedByFrozenAgent: boolean;
  /** Lines the old node produced at or after the successor's first one. */
  overlapLines: number;
}

export type Fault = 'SIGSTOP' | 'SIGKILL' | 'SIGTERM';

/**
 * One failover: the fault hits the active host's AGENT only (its node and watchdog run on),
 * then waits for the other host's node to produce, and counts the old node's lines from then.
 */
export async function failoverTrial(h: RoleHarness, fault: Fault): Promise<TrialResult> {
  const old = await h.waitProducing();
  const next = h.hosts.find((x) => x !== old)!;
  // Let renewals settle into their rhythm so the fault lands at a random phase.
  await sleep(200 + Math.random() * 300);
  const faultAt = process.hrtime.bigint();
  process.kill(old.agent!.child.pid!, fault);
  let first: bigint;
  try {
    first = await h.firstProducedAfter(next, faultAt, 10_000);
  } catch (err) {
    if (fault === 'SIGSTOP' && h.sqliteLocked()) {
      const since = process.hrtime.bigint() - 500_000_000n;
      if (producedStamps(old).some((t) => t >= since))
        throw new Error(`the frozen agent's node is still producing\n${h.diagnose()}`, {
          cause: err,
        });
      process.kill(old.agent!.child.pid!, 'SIGCONT');
      await sleep(300);
      return { failoverMs: NaN, overlapLines: 0, lockedByFrozenAgent: true };
    }
    throw new Error(`${(err as Error).message}\n${h.diagnose()}`, { cause: err });
  }
  // Give the old node time to show it is (or is not) still producing.
  await sleep(300);
  const overlapLines = producedStamps(old).filter((t) => t >= first).length;
  if (fault === 'SIGSTOP') {
    process.kill(old.agent!.child.pid!, 'SIGCONT');
  } else {
    await old.agent!.exited;
    await h.startAgent(old);
  }
  // The woken/restarted agent must settle as a follower before the next fault.
  await sleep(300);
  return { failoverMs: Number(first - faultAt) / 1e6, overlapLines, lockedByFrozenAgent: false };
}

export function summary(all: number[]): string {
  const s = all.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(0);
  return `n=${s.length} min ${s[0]!.toFixed(0)} p50 ${q(0.5)} p90 ${q(0.9)} max ${s[s.length - 1]!.toFixed(0)} ms`;
}
