/**
 * The API's own cost: one guarded decision (a CometBFT proposal at a fresh height, parsed and
 * signed, one SQLite store file in a temp dir) made three ways, in blocks that alternate so disk and CPU drift hit all alike:
 *
 *   in process:  GuardedSigner.sign in this process (the baseline)
 *   socket:      POST /v1/sign to a `vigil agent` child process over its unix socket
 *   tcp:         the same agent over loopback TCP with a bearer token
 *
 * Both clients are the AgentClient every Vigil part uses, one request in flight. The figure
 * is what the API adds to the decision: p50(socket) − p50(in process), and the same for TCP.
 * Target (issue 9): at most 0.3 ms added at p50.
 *
 * The same pair on an in-memory store (informational) separates the API's own cost from what
 * a durable write does to it: after each fsync the process wakes with cold caches, and the
 * HTTP code that runs then costs more than it does warm.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { AgentClient } from '../src/agent/client.js';
import { startAgentProcess } from '../src/devnet/agent-process.js';
import { Ed25519Key } from '../src/keys/ed25519.js';
import { KeyRing } from '../src/keys/keyring.js';
import { GuardedSigner } from '../src/signer/guarded-signer.js';
import { LocalWatermarks } from '../src/signer/local-watermark.js';
import { SqliteWatermarkStore } from '../src/store/sqlite.js';
import type { BenchFigure } from './figures.js';
import { cometbftProposal } from './messages.js';

const SEED = new Uint8Array(32).fill(42);
/** Each way of deciding signs on a chain of its own, so every decision is a grant that writes. */
const CHAINS = ['in-process', 'in-process-mem', 'socket', 'tcp', 'socket-mem'] as const;
const TOKEN = 'ab'.repeat(32);
const TARGET_ADDED_MS = 0.3;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summarize(latenciesMs: readonly number[]) {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

/** The agent as an operator runs it, serving on a socket and on loopback TCP with a token. */
async function startAgent(dir: string, name: string, storePath: string) {
  writeFileSync(join(dir, 'key.hex'), Buffer.from(SEED).toString('hex') + '\n', { mode: 0o600 });
  writeFileSync(join(dir, 'api.token'), TOKEN + '\n', { mode: 0o600 });
  const config = join(dir, `${name}.yaml`);
  writeFileSync(
    config,
    [
      `agent: { id: ${name}, dataDir: ${name}-data }`,
      'listen:',
      `  socket: { path: ${name}-data/api.sock }`,
      '  tcp: { host: 127.0.0.1, port: 0, tokenFile: api.token }',
      `store: { engine: sqlite, path: ${JSON.stringify(storePath)} }`,
      `keys: [{ id: bench, file: key.hex, protocol: cometbft, chains: [${CHAINS.join(', ')}] }]`,
      'log: { level: info }',
      '',
    ].join('\n'),
  );
  const agent = await startAgentProcess(name, config, 30_000);
  if (agent.socketPath === undefined || agent.url === undefined) {
    await agent.stop();
    throw new Error(`agent ${name} did not announce both its socket and its TCP URL`);
  }
  return { socketPath: agent.socketPath, url: agent.url, stop: () => agent.stop() };
}

/** Fresh heights on a chain of its own, so every decision is a grant that writes. */
class Decisions {
  private height = 1n;
  readonly latenciesMs: number[] = [];
  constructor(
    readonly chainId: string,
    private readonly decide: (body: {
      chainId: string;
      height: bigint;
    }) => Promise<{ ok: boolean; detail: string }>,
  ) {}

  async run(n: number, record = true): Promise<void> {
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const r = await this.decide({ chainId: this.chainId, height: this.height++ });
      const ms = performance.now() - t;
      if (!r.ok) throw new Error(`${this.chainId}: not granted: ${r.detail}`);
      if (record) this.latenciesMs.push(ms);
    }
  }
}

const apiDecision =
  (client: AgentClient) =>
  async ({ chainId, height }: { chainId: string; height: bigint }) => {
    const r = await client.post<{ decision?: string }>('/v1/sign', {
      family: 'cometbft',
      chainId,
      keyId: 'bench',
      payload: Buffer.from(cometbftProposal(chainId, height)).toString('hex'),
    });
    return { ok: r.status === 200 && r.body.decision === 'granted', detail: JSON.stringify(r) };
  };

const ms = (x: number) => `${x.toFixed(3)} ms`;

/** A GuardedSigner in this process on its own local watermark, over `store`. */
function inProcessGuard(dir: string, name: string, store: SqliteWatermarkStore) {
  const local = new LocalWatermarks(join(dir, name, 'local-watermarks.db'));
  const key = Ed25519Key.fromSeed(SEED);
  const keys = new KeyRing();
  keys.add({
    id: 'bench',
    scopeKeyId: key.publicKeyHex,
    signer: key,
    binding: { protocol: 'cometbft', chains: new Set(CHAINS) },
  });
  const guard = new GuardedSigner({ store, keys, local, agentId: name });
  const decisions = new Decisions(name, async ({ chainId, height }) => {
    const payload = cometbftProposal(chainId, height);
    const r = await guard.sign({ chainId, keyId: 'bench', payload });
    return { ok: r.outcome === 'granted', detail: JSON.stringify(r.outcome) };
  });
  return { decisions, close: () => local.close() };
}

export async function run(): Promise<BenchFigure[]> {
  const n = Number(process.env.VIGIL_BENCH_N ?? 2000);
  const per = 20;
  const blocks = Math.max(1, Math.ceil(n / per));
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-api-'));
  const agents: Array<Awaited<ReturnType<typeof startAgent>>> = [];
  const clients: AgentClient[] = [];
  const closers: Array<() => unknown> = [];
  try {
    // The in-process guard shares the agent's store file, as agents on one host do.
    const fileStore = SqliteWatermarkStore.open({ path: join(dir, 'store.db'), create: true });
    closers.push(() => fileStore.close());
    const memStore = SqliteWatermarkStore.open({ path: ':memory:' });
    closers.push(() => memStore.close());
    const fileGuard = inProcessGuard(dir, 'in-process', fileStore);
    const memGuard = inProcessGuard(dir, 'in-process-mem', memStore);
    closers.push(fileGuard.close, memGuard.close);
    const agent = await startAgent(dir, 'bench-api', 'store.db');
    agents.push(agent);
    const memAgent = await startAgent(dir, 'bench-api-mem', ':memory:');
    agents.push(memAgent);
    const socketClient = new AgentClient({ socketPath: agent.socketPath });
    const tcpClient = new AgentClient({ url: agent.url, token: TOKEN });
    const memClient = new AgentClient({ socketPath: memAgent.socketPath });
    clients.push(socketClient, tcpClient, memClient);
    const all = {
      inProcess: fileGuard.decisions,
      socket: new Decisions('socket', apiDecision(socketClient)),
      tcp: new Decisions('tcp', apiDecision(tcpClient)),
      memInProcess: memGuard.decisions,
      memSocket: new Decisions('socket-mem', apiDecision(memClient)),
    };
    // Warm-up: page cache, JIT, prepared statements, kept-alive connections.
    for (const d of Object.values(all)) await d.run(100, false);
    for (let b = 0; b < blocks; b++) for (const d of Object.values(all)) await d.run(per);
    const a = summarize(all.inProcess.latenciesMs);
    const s = summarize(all.socket.latenciesMs);
    const t = summarize(all.tcp.latenciesMs);
    const ma = summarize(all.memInProcess.latenciesMs);
    const ms_ = summarize(all.memSocket.latenciesMs);
    const added = (x: typeof s, base: typeof s) => ({
      p50: x.p50 - base.p50,
      p99: x.p99 - base.p99,
    });
    const sa = added(s, a);
    const ta = added(t, a);
    const msa = added(ms_, ma);
    const line = (label: string, x: typeof s, extra: string) =>
      console.log(`  ${label.padEnd(34)} p50 ${ms(x.p50)}  p99 ${ms(x.p99)}   ${extra}`);
    const vs = (d: { p50: number; p99: number }) =>
      `added p50 ${ms(d.p50)}  p99 ${ms(d.p99)}  (target ≤ ${TARGET_ADDED_MS} ms at p50)`;
    console.log(
      `One guarded decision, ${a.n} each, blocks of ${per} interleaved (slot, fresh slots)`,
    );
    line('GuardedSigner.sign in process', a, '(baseline)');
    line('POST /v1/sign, unix socket', s, vs(sa));
    line('POST /v1/sign, TCP + token', t, vs(ta));
    line(':memory: store, in process', ma, '(informational baseline: no disk)');
    line(':memory: store, unix socket', ms_, `added p50 ${ms(msa.p50)}  p99 ${ms(msa.p99)}`);
    return [
      {
        name: 'API added p50, unix socket',
        value: sa.p50,
        unit: 'ms',
        baseline: a.p50,
        baselineName: 'in-process decision p50',
        ratio: s.p50 / a.p50,
        target: `≤ ${TARGET_ADDED_MS} ms`,
        ok: sa.p50 <= TARGET_ADDED_MS,
      },
      {
        name: 'API added p50, TCP + token',
        value: ta.p50,
        unit: 'ms',
        baseline: a.p50,
        baselineName: 'in-process decision p50',
        ratio: t.p50 / a.p50,
        target: `≤ ${TARGET_ADDED_MS} ms`,
        ok: ta.p50 <= TARGET_ADDED_MS,
      },
      {
        name: 'API added p99, unix socket',
        value: sa.p99,
        unit: 'ms',
        baseline: a.p99,
        baselineName: 'in-process decision p99',
        ratio: s.p99 / a.p99,
      },
      {
        name: 'API added p99, TCP + token',
        value: ta.p99,
        unit: 'ms',
        baseline: a.p99,
        baselineName: 'in-process decision p99',
        ratio: t.p99 / a.p99,
      },
      {
        name: 'API added p50, :memory: socket',
        value: msa.p50,
        unit: 'ms',
        baseline: ma.p50,
        baselineName: 'in-process :memory: p50',
        ratio: ms_.p50 / ma.p50,
      },
    ];
  } finally {
    for (const c of clients) c.close();
    for (const agent of agents) await agent.stop();
    for (const close of closers.reverse()) await close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run();
}
