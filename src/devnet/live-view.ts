/**
 * The terminal view `vigil up` redraws while a devnet runs: per chain the latest position,
 * who got it signed, refusals and misses; per member its agent's state (down, paused, ready,
 * store unreachable), its CometBFT links and any exclusive role it leads. Rendering is a pure
 * function of the state, so it can be tested without a terminal.
 */
import { AgentClient, type AgentEndpoint } from '../agent/client.js';
import type { DevnetTotals } from './devnet.js';
import type { TickOutcome } from './duty-network.js';
import { formatSignerMetrics, signerMetricsOf, type SignerMetrics } from './signer-metrics.js';

export interface ChainView {
  readonly family: string;
  last?: TickOutcome;
  signed: number;
  missed: number;
  refusals: number;
}

/** What an agent's /readyz said last (or why it said nothing). */
export interface AgentView {
  pid?: number;
  state: 'starting' | 'ready' | 'not ready' | 'down' | 'unresponsive';
  store?: string;
  /** Connected CometBFT node links / configured ones. */
  links?: { connected: number; total: number };
  /** Exclusive roles and this agent's state in each (leader, follower, …). */
  roles?: ReadonlyArray<{ role: string; state: string }>;
  reason?: string;
  /** Its signer metrics from /metrics (granted, last signed per chain, refusals by reason). */
  signer?: SignerMetrics;
}

export interface LiveState {
  readonly name: string;
  readonly store: string;
  readonly startedAt: number;
  readonly chains: Map<string, ChainView>;
  readonly agents: Map<string, AgentView>;
  totals?: DevnetTotals;
  /** Recent events (faults, restarts, misses), newest last. */
  readonly events: string[];
}

export function newLiveState(
  name: string,
  store: string,
  chains: ReadonlyArray<{ chainId: string; family: string }>,
  startedAt = Date.now(),
): LiveState {
  return {
    name,
    store,
    startedAt,
    chains: new Map(
      chains.map((c) => [c.chainId, { family: c.family, signed: 0, missed: 0, refusals: 0 }]),
    ),
    agents: new Map(),
    events: [],
  };
}

const MAX_EVENTS = 6;

export function noteEvent(state: LiveState, line: string, at = Date.now()): void {
  state.events.push(`${new Date(at).toISOString().slice(11, 19)}  ${line}`);
  if (state.events.length > MAX_EVENTS) state.events.splice(0, state.events.length - MAX_EVENTS);
}

export function applyTick(state: LiveState, o: TickOutcome, totals: DevnetTotals): void {
  const chain = state.chains.get(o.chainId);
  state.totals = { ...totals };
  if (!chain) return;
  chain.last = o;
  if (o.author) chain.signed++;
  else {
    chain.missed++;
    noteEvent(state, `${o.chainId}: ${o.label} MISSED`);
  }
  chain.refusals += o.refused;
}

/** Who got the position signed; CometBFT votes are identical, so several nodes may. */
export function signedBy(o: TickOutcome): string {
  if (!o.author) return 'MISSED';
  const who = o.signers && o.signers.length > 1 ? o.signers.join(',') : o.author;
  return `${who}${o.proposer ? ` (proposal: ${o.proposer})` : ''}`;
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));

export function renderLiveView(state: LiveState, now = Date.now()): string {
  const up = Math.round((now - state.startedAt) / 1000);
  const t = state.totals;
  const lines = [
    `vigil up — devnet ${state.name} on ${state.store} — ${up} s — Ctrl-C stops everything`,
    '',
    `${pad('chain', 16)}${pad('family', 10)}${pad('position', 34)}${pad('signed for', 42)}refused  signed  missed`,
  ];
  for (const [id, c] of state.chains) {
    lines.push(
      `${pad(id, 16)}${pad(c.family, 10)}${pad(c.last?.label ?? '—', 34)}${pad(c.last ? signedBy(c.last) : '—', 42)}` +
        `${pad(String(c.last?.refused ?? 0), 9)}${pad(String(c.signed), 8)}${c.missed}`,
    );
  }
  lines.push(
    '',
    `${pad('node', 10)}${pad('agent', 26)}${pad('store', 10)}${pad('privval', 10)}roles`,
  );
  for (const [name, a] of state.agents) {
    const agent = `${a.state}${a.pid ? ` (pid ${a.pid})` : ''}`;
    const links = a.links ? `${a.links.connected}/${a.links.total}` : '—';
    const roles = a.roles?.length ? a.roles.map((r) => `${r.role}: ${r.state}`).join(', ') : '—';
    lines.push(
      `${pad(name, 10)}${pad(agent, 26)}${pad(a.store ?? '—', 10)}${pad(links, 10)}${roles}`,
    );
  }
  const signers = [...state.agents].filter(([, a]) => a.signer);
  if (signers.length > 0) {
    lines.push('', "signer metrics (each agent's /metrics)");
    for (const [name, a] of signers)
      lines.push(`${pad(name, 10)}${formatSignerMetrics(a.signer!)}`);
  }
  if (t) {
    lines.push(
      '',
      `totals: ${t.ticks} positions, ${t.signed} signed, ${t.missed} missed, ${t.refusals} refusals, ` +
        `${t.signatures} signatures, EQUIVOCATIONS ${t.equivocations}`,
    );
  }
  if (state.events.length > 0) lines.push('', 'recent:', ...state.events.map((e) => `  ${e}`));
  return lines.join('\n');
}

interface ReadyBody {
  status?: string;
  store?: string;
  reason?: string;
  cometbft?: Array<{ connected?: boolean }>;
  roles?: Array<{ role: string; state: unknown }>;
}

/** Asks one agent's /readyz (directly, not through the node's proxy). */
export async function probeAgent(
  where: AgentEndpoint | undefined,
  pid?: number,
): Promise<AgentView> {
  if (!where) return { state: 'down' };
  const client = new AgentClient(where, { timeoutMs: 800 });
  try {
    const res = await client.get<ReadyBody>('/readyz');
    const body = res.body;
    // The signer metrics are extra: an answer without them still describes the agent.
    const signer = await client
      .get<unknown>('/metrics')
      .then((m) =>
        m.status === 200 && typeof m.body === 'string'
          ? signerMetricsOf(m.body, 'agent /metrics', Date.now())
          : undefined,
      )
      .catch(() => undefined);
    return {
      ...(pid !== undefined ? { pid } : {}),
      state: res.status === 200 ? 'ready' : 'not ready',
      ...(body.store ? { store: body.store } : {}),
      ...(body.cometbft
        ? {
            links: {
              connected: body.cometbft.filter((l) => l.connected).length,
              total: body.cometbft.length,
            },
          }
        : {}),
      ...(body.roles
        ? {
            roles: body.roles.map((r) => ({
              role: r.role,
              state: typeof r.state === 'string' ? r.state : JSON.stringify(r.state),
            })),
          }
        : {}),
      ...(body.reason ? { reason: body.reason } : {}),
      ...(signer ? { signer } : {}),
    };
  } catch {
    // A paused (SIGSTOP) agent accepts the connection and never answers.
    return { ...(pid !== undefined ? { pid } : {}), state: 'unresponsive' };
  } finally {
    client.close();
  }
}
