/**
 * `vigil status` as pure functions: what was fetched from each agent (`/healthz`, `/readyz`,
 * `/metrics`) and from Prometheus (`/api/v1/alerts`) in, a report, its table and its exit code
 * out. Nothing here does I/O (fetch.ts does), so every line of the output is unit-testable.
 */
import { describePosition, positionComponents } from '../guard/describe.js';
import { DUTY_FAMILIES, type DutyFamily } from '../guard/watermark.js';
import { parsePrometheusText, type Sample } from './prometheus-text.js';
import { errorMessage } from '../errors.js';

/** What one agent answered (or why it did not), as fetch.ts collected it. */
export interface AgentProbe {
  /** The agent as the operator named it: its id from --config, or the plan's host name. */
  readonly name: string;
  /** Where it answered (socket path or URL), or every listener that was tried. */
  readonly endpoint: string;
  /** Set when no listener answered /healthz: one line per listener tried. */
  readonly unreachable?: string;
  readonly healthz?: { readonly status: number; readonly body: unknown };
  /** The answer of /readyz, or why there was none although /healthz answered. */
  readonly readyz?:
    { readonly status: number; readonly body: unknown } | { readonly error: string };
  /** /metrics text, or why there was none. */
  readonly metrics?: string | { readonly error: string };
}

export interface Condition {
  readonly name: string;
  readonly ready: boolean;
  readonly reason?: string;
  readonly since?: string;
}

export interface RoleState {
  readonly role: string;
  /** vigil_role_active: this agent holds the role and has activated it. */
  readonly active: boolean;
  /** The supervisor's state from /readyz (follower, waiting, activating, active, …); /readyz
   * names roles only while the agent is ready. */
  readonly state?: string;
}

export interface LastSignature {
  readonly chainId: string;
  readonly key: string;
  readonly family: string;
  /** ISO time of the last signature granted since the agent started; null: none yet. */
  readonly at: string | null;
  readonly secondsAgo: number | null;
  /** Named components, e.g. { height: '7', round: '1', step: 'precommit' }. */
  readonly position: Readonly<Record<string, string>>;
}

export interface Refusals {
  readonly family: string;
  readonly reason: string;
  /** Refusals since the agent started (vigil_guard_decisions_total{outcome="refused"}). */
  readonly count: number;
}

export interface AgentStatus {
  readonly name: string;
  readonly endpoint: string;
  readonly reachable: boolean;
  readonly error?: string;
  /** /healthz answered 200 {status: ok}. */
  readonly healthy: boolean;
  readonly ready: boolean;
  /** The `agent` label of its metrics: the id in its config. */
  readonly agentId?: string;
  /** When its process started (process_start_time_seconds): refusal counts start there. */
  readonly startedAt?: string;
  /** Store engine and id from /readyz, and whether the last readiness check reached it. */
  readonly store?: { readonly engine?: string; readonly id?: string; readonly up?: boolean };
  readonly conditions: readonly Condition[];
  readonly roles: readonly RoleState[];
  readonly signatures: readonly LastSignature[];
  readonly refusals: readonly Refusals[];
  readonly links: ReadonlyArray<{ chainId: string; node: string; up: boolean }>;
  /** Parts of the answer that could not be read (a bad /readyz or /metrics body). */
  readonly problems: readonly string[];
}

export interface FiringAlert {
  readonly name: string;
  readonly severity?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly summary?: string;
  readonly activeAt?: string;
}

export interface AlertsReport {
  readonly source: string;
  readonly firing: readonly FiringAlert[];
  /** Alerts pending (their `for` not yet elapsed), counted. */
  readonly pending: number;
  readonly error?: string;
}

export interface RoleHolders {
  readonly role: string;
  /** Agents where vigil_role_active is 1. */
  readonly holders: readonly string[];
  /** Agents that may hold it (their metrics declare the role). */
  readonly candidates: readonly string[];
}

export interface StatusReport {
  readonly at: string;
  /** Every agent reachable and ready (and Prometheus answered, when asked). */
  readonly ok: boolean;
  readonly agents: readonly AgentStatus[];
  readonly roles: readonly RoleHolders[];
  readonly alerts?: AlertsReport;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function readConditions(body: Record<string, unknown>, problems: string[]): Condition[] {
  if (!Array.isArray(body.conditions)) {
    problems.push('/readyz has no conditions list');
    return [];
  }
  const out: Condition[] = [];
  for (const c of body.conditions) {
    if (!isObject(c) || typeof c.name !== 'string' || typeof c.ready !== 'boolean') {
      problems.push(`/readyz: unreadable condition ${JSON.stringify(c)}`);
      continue;
    }
    const reason = str(c.reason);
    const since = str(c.since);
    out.push({
      name: c.name,
      ready: c.ready,
      ...(reason !== undefined ? { reason } : {}),
      ...(since !== undefined ? { since } : {}),
    });
  }
  return out;
}

const familyOf = (f: string): DutyFamily | undefined =>
  (DUTY_FAMILIES as readonly string[]).includes(f) ? (f as DutyFamily) : undefined;

/** The position of a last signature from its vigil_last_signed_position components. */
function positionOf(samples: readonly Sample[], family: string): Record<string, string> {
  const byComponent = new Map(samples.map((s) => [s.labels.component ?? '', s.value]));
  const known = familyOf(family);
  if (known === undefined)
    return Object.fromEntries([...byComponent].map(([k, v]) => [k, String(v)]));
  const components = positionComponents(known);
  const values: bigint[] = [];
  for (const c of components) {
    const v = byComponent.get(c);
    if (v === undefined || !Number.isSafeInteger(v) || v < 0) break;
    values.push(BigInt(v));
  }
  return describePosition(known, values);
}

function readMetrics(
  samples: readonly Sample[],
  nowMs: number,
): Pick<AgentStatus, 'signatures' | 'refusals' | 'links' | 'agentId' | 'startedAt'> & {
  roles: Map<string, boolean>;
  storeUp?: boolean;
} {
  const named = (name: string) => samples.filter((s) => s.name === name);
  const key = (l: Readonly<Record<string, string>>) =>
    JSON.stringify([l.chain_id, l.key, l.family]);
  const positions = new Map<string, Sample[]>();
  for (const s of named('vigil_last_signed_position')) {
    const k = key(s.labels);
    positions.set(k, [...(positions.get(k) ?? []), s]);
  }
  const signatures: LastSignature[] = named('vigil_last_signed_timestamp_seconds')
    .map((s) => {
      const family = s.labels.family ?? '';
      const signed = s.value > 0;
      return {
        chainId: s.labels.chain_id ?? '',
        key: s.labels.key ?? '',
        family,
        at: signed ? new Date(s.value * 1000).toISOString() : null,
        secondsAgo: signed ? Math.max(0, Math.round(nowMs / 1000 - s.value)) : null,
        position: signed ? positionOf(positions.get(key(s.labels)) ?? [], family) : {},
      };
    })
    .sort(
      (a, b) =>
        a.chainId.localeCompare(b.chainId) ||
        a.key.localeCompare(b.key) ||
        a.family.localeCompare(b.family),
    );
  const refusals: Refusals[] = named('vigil_guard_decisions_total')
    .filter((s) => s.labels.outcome === 'refused' && s.value > 0)
    .map((s) => ({ family: s.labels.family ?? '', reason: s.labels.reason ?? '', count: s.value }))
    .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
  const links = named('vigil_privval_link_up').map((s) => ({
    chainId: s.labels.chain_id ?? '',
    node: s.labels.node ?? '',
    up: s.value === 1,
  }));
  const roles = new Map<string, boolean>();
  for (const s of named('vigil_role_active'))
    if (s.labels.role !== undefined) roles.set(s.labels.role, s.value === 1);
  const agentId = samples.find((s) => s.name.startsWith('vigil_') && s.labels.agent)?.labels.agent;
  const started = named('process_start_time_seconds')[0]?.value;
  const storeUp = named('vigil_store_up')[0]?.value;
  return {
    signatures,
    refusals,
    links,
    roles,
    ...(agentId !== undefined ? { agentId } : {}),
    ...(started !== undefined && started > 0
      ? { startedAt: new Date(started * 1000).toISOString() }
      : {}),
    ...(storeUp !== undefined ? { storeUp: storeUp === 1 } : {}),
  };
}

/** One agent's status from what it answered. */
export function summarizeAgent(probe: AgentProbe, nowMs: number): AgentStatus {
  const empty = { conditions: [], roles: [], signatures: [], refusals: [], links: [] };
  if (probe.unreachable !== undefined || probe.healthz === undefined) {
    return {
      name: probe.name,
      endpoint: probe.endpoint,
      reachable: false,
      error: probe.unreachable ?? 'no answer',
      healthy: false,
      ready: false,
      ...empty,
      problems: [],
    };
  }
  const problems: string[] = [];
  const h = probe.healthz;
  const healthy = h.status === 200 && isObject(h.body) && h.body.status === 'ok';
  if (!healthy) problems.push(`/healthz answered ${h.status}: ${JSON.stringify(h.body)}`);

  let ready = false;
  let conditions: Condition[] = [];
  let engine: string | undefined;
  let storeId: string | undefined;
  const states = new Map<string, string>();
  const r = probe.readyz;
  if (r === undefined || 'error' in r) {
    problems.push(`/readyz: ${r?.error ?? 'not asked'}`);
  } else if (!isObject(r.body)) {
    problems.push(`/readyz answered ${r.status} with ${JSON.stringify(r.body)}`);
  } else {
    conditions = readConditions(r.body, problems);
    engine = str(r.body.store);
    storeId = str(r.body.storeId);
    ready = r.status === 200 && r.body.status === 'ready' && conditions.every((c) => c.ready);
    if (r.status === 200 && !ready)
      problems.push(`/readyz answered 200 but status ${JSON.stringify(r.body.status)}`);
    if (Array.isArray(r.body.roles))
      for (const x of r.body.roles)
        if (isObject(x) && typeof x.role === 'string' && typeof x.state === 'string')
          states.set(x.role, x.state);
  }

  let fromMetrics: ReturnType<typeof readMetrics> | undefined;
  const m = probe.metrics;
  if (m === undefined || typeof m !== 'string') {
    problems.push(`/metrics: ${m?.error ?? 'not asked'}`);
  } else {
    try {
      fromMetrics = readMetrics(parsePrometheusText(m, `${probe.endpoint}/metrics`), nowMs);
    } catch (err) {
      problems.push(errorMessage(err));
    }
  }
  const roleNames = [...new Set([...(fromMetrics?.roles.keys() ?? []), ...states.keys()])].sort();
  const roles = roleNames.map((role) => {
    const state = states.get(role);
    return {
      role,
      active: fromMetrics?.roles.get(role) ?? state === 'active',
      ...(state !== undefined ? { state } : {}),
    };
  });
  const store =
    engine !== undefined || fromMetrics?.storeUp !== undefined
      ? {
          ...(engine !== undefined ? { engine } : {}),
          ...(storeId !== undefined ? { id: storeId } : {}),
          ...(fromMetrics?.storeUp !== undefined ? { up: fromMetrics.storeUp } : {}),
        }
      : undefined;
  return {
    name: probe.name,
    endpoint: probe.endpoint,
    reachable: true,
    healthy,
    ready,
    ...(fromMetrics?.agentId !== undefined ? { agentId: fromMetrics.agentId } : {}),
    ...(fromMetrics?.startedAt !== undefined ? { startedAt: fromMetrics.startedAt } : {}),
    ...(store ? { store } : {}),
    conditions,
    roles,
    signatures: fromMetrics?.signatures ?? [],
    refusals: fromMetrics?.refusals ?? [],
    links: fromMetrics?.links ?? [],
    problems,
  };
}

/** Who holds each exclusive role across the agents asked. */
export function roleHolders(agents: readonly AgentStatus[]): RoleHolders[] {
  const byRole = new Map<string, { holders: string[]; candidates: string[] }>();
  for (const a of agents)
    for (const r of a.roles) {
      const entry = byRole.get(r.role) ?? { holders: [], candidates: [] };
      entry.candidates.push(a.name);
      if (r.active) entry.holders.push(a.name);
      byRole.set(r.role, entry);
    }
  return [...byRole].sort(([a], [b]) => a.localeCompare(b)).map(([role, e]) => ({ role, ...e }));
}

/** Prometheus' GET /api/v1/alerts answer: the alerts firing, and how many are pending. */
export function readAlerts(source: string, body: unknown): AlertsReport {
  if (
    !isObject(body) ||
    body.status !== 'success' ||
    !isObject(body.data) ||
    !Array.isArray(body.data.alerts)
  ) {
    return {
      source,
      firing: [],
      pending: 0,
      error: `not an /api/v1/alerts answer: ${JSON.stringify(body).slice(0, 200)}`,
    };
  }
  const firing: FiringAlert[] = [];
  let pending = 0;
  for (const a of body.data.alerts) {
    if (!isObject(a)) continue;
    if (a.state === 'pending') pending++;
    if (a.state !== 'firing') continue;
    const labels: Record<string, string> = {};
    if (isObject(a.labels))
      for (const [k, v] of Object.entries(a.labels)) if (typeof v === 'string') labels[k] = v;
    const summary = isObject(a.annotations) ? str(a.annotations.summary) : undefined;
    const activeAt = str(a.activeAt);
    firing.push({
      name: labels.alertname ?? '(unnamed)',
      ...(labels.severity !== undefined ? { severity: labels.severity } : {}),
      labels,
      ...(summary !== undefined ? { summary } : {}),
      ...(activeAt !== undefined ? { activeAt } : {}),
    });
  }
  firing.sort((a, b) => a.name.localeCompare(b.name));
  return { source, firing, pending };
}

export function buildReport(
  probes: readonly AgentProbe[],
  nowMs: number,
  alerts?: AlertsReport,
): StatusReport {
  const agents = probes.map((p) => summarizeAgent(p, nowMs));
  return {
    at: new Date(nowMs).toISOString(),
    ok: agents.every((a) => a.reachable && a.ready) && alerts?.error === undefined,
    agents,
    roles: roleHolders(agents),
    ...(alerts ? { alerts } : {}),
  };
}

/** 0: every agent reachable and ready; 2: one is not (or Prometheus could not be asked). */
export function exitCodeOf(report: StatusReport): 0 | 2 {
  return report.ok ? 0 : 2;
}

function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].map((l) => `  ${l}\n`).join('');
}

export function formatAgo(seconds: number): string {
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86_400)}d ago`;
}

function formatPosition(p: Readonly<Record<string, string>>): string {
  return Object.entries(p)
    .map(([k, v]) => (k === 'step' || k === 'stage' ? v : `${k} ${v}`))
    .join(' ');
}

/** The report for a terminal: agents, failing conditions, roles, signatures, refusals, alerts. */
export function formatReport(report: StatusReport): string {
  const out: string[] = [];
  const agents = report.agents;
  out.push(
    'Agents\n' +
      table(
        ['AGENT', 'HEALTH', 'READY', 'STORE', 'ENDPOINT'],
        agents.map((a) => [
          a.name,
          !a.reachable ? 'unreachable' : a.healthy ? 'ok' : 'failing',
          !a.reachable ? '-' : a.ready ? 'ready' : 'NOT READY',
          a.store
            ? `${a.store.engine ?? '?'}${a.store.up === false ? ' (down)' : ''}`
            : a.reachable
              ? '?'
              : '-',
          a.endpoint,
        ]),
      ),
  );
  const notes: string[] = [];
  for (const a of agents) {
    if (!a.reachable) notes.push(`  ${a.name}: unreachable: ${a.error}\n`);
    for (const c of a.conditions.filter((c) => !c.ready))
      notes.push(
        `  ${a.name}: not ready: ${c.name}: ${c.reason ?? '(no reason given)'}${c.since ? ` (since ${c.since})` : ''}\n`,
      );
    for (const p of a.problems) notes.push(`  ${a.name}: ${p}\n`);
  }
  if (notes.length > 0) out.push('Problems\n' + notes.join(''));

  const roleRows = agents
    .flatMap((a) => a.roles.map((r) => [r.role, a.name, r.state ?? '-', r.active ? 'yes' : 'no']))
    .sort((x, y) => x[0]!.localeCompare(y[0]!));
  if (roleRows.length > 0) {
    const holders = report.roles
      .filter((r) => r.holders.length !== 1)
      .map(
        (r) =>
          `  ${r.role}: ${r.holders.length === 0 ? 'no holder' : `${r.holders.length} holders (${r.holders.join(', ')})`} among the agents asked\n`,
      );
    out.push('Roles\n' + table(['ROLE', 'AGENT', 'STATE', 'HOLDS'], roleRows) + holders.join(''));
  }

  const sigRows = agents.flatMap((a) =>
    a.signatures.map((s) => [
      a.name,
      s.chainId,
      s.key,
      s.family,
      s.at === null ? 'none since start' : formatPosition(s.position),
      s.at === null ? '-' : `${s.at} (${formatAgo(s.secondsAgo ?? 0)})`,
    ]),
  );
  if (sigRows.length > 0)
    out.push(
      'Last signatures\n' + table(['AGENT', 'CHAIN', 'KEY', 'FAMILY', 'POSITION', 'AT'], sigRows),
    );

  const linkRows = agents.flatMap((a) =>
    a.links.map((l) => [a.name, l.chainId, l.node, l.up ? 'up' : 'DOWN']),
  );
  if (linkRows.length > 0)
    out.push('Privval links\n' + table(['AGENT', 'CHAIN', 'NODE', 'LINK'], linkRows));

  const refusalRows = agents.flatMap((a) =>
    a.refusals.map((r) => [a.name, r.family, r.reason, String(r.count)]),
  );
  if (agents.some((a) => a.reachable))
    out.push(
      'Refusals since each agent started\n' +
        (refusalRows.length > 0
          ? table(['AGENT', 'FAMILY', 'REASON', 'COUNT'], refusalRows)
          : '  none\n'),
    );

  if (report.alerts) {
    const a = report.alerts;
    let body: string;
    if (a.error !== undefined) body = `  cannot read alerts from ${a.source}: ${a.error}\n`;
    else if (a.firing.length === 0) body = '  none\n';
    else
      body = table(
        ['ALERT', 'SEVERITY', 'SINCE', 'SUMMARY'],
        a.firing.map((f) => [f.name, f.severity ?? '-', f.activeAt ?? '-', f.summary ?? '']),
      );
    if (a.error === undefined && a.pending > 0) body += `  (${a.pending} pending)\n`;
    out.push(`Alerts firing (${a.source})\n` + body);
  }
  const bad = agents.filter((x) => !x.reachable || !x.ready).length;
  out.push(
    report.ok
      ? `All ${agents.length} agent(s) ready.\n`
      : bad > 0
        ? `${bad} of ${agents.length} agent(s) unreachable or not ready.\n`
        : `Every agent ready, but the alerts could not be read.\n`,
  );
  return out.join('\n');
}
