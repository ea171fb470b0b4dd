/**
 * What the dashboard shows, as data: one shape for an agent's own page (GET /v1/overview on
 * its read-only listener) and for a fleet (`vigil dashboard`). Each agent's health, readiness,
 * store, roles, last signatures and refusal counts are `vigil status`'s own reading of its
 * /healthz, /readyz and /metrics answers (src/status/report.ts); the dashboard adds what
 * metrics cannot carry: the store's watermarks for the agent's keys and its recent refusals.
 * Pure: no I/O here.
 */
import {
  buildReport,
  summarizeAgent,
  type AgentProbe,
  type AgentStatus,
  type AlertsReport,
  type RoleHolders,
} from '../status/report.js';
import type { RecentRefusal } from './refusals.js';

/** A watermark as the store holds it, for one of the agent's keys. */
export interface StoreWatermark {
  readonly chainId: string;
  /** The configured key id, and its public key (the store's scope). */
  readonly key: string;
  readonly publicKey: string;
  readonly family: string;
  /** Named components, e.g. { height: '7', round: '0', step: 'precommit' }. */
  readonly position: Readonly<Record<string, string>>;
  /** The agent that wrote it, and when (absent in records written before either was kept). */
  readonly writer?: string;
  readonly updatedAt?: string;
}

export interface DashboardAgent extends AgentStatus {
  /** The store's watermarks for this agent's keys, or why they could not be read. */
  readonly watermarks: readonly StoreWatermark[];
  readonly watermarksError?: string;
  /** The last refusals, newest first (a bounded ring in the agent: not since start). */
  readonly recentRefusals: readonly RecentRefusal[];
}

export interface Overview {
  /** `agent`: one agent's own page; `fleet`: `vigil dashboard`. */
  readonly source: 'agent' | 'fleet';
  readonly at: string;
  readonly ok: boolean;
  readonly agents: readonly DashboardAgent[];
  readonly roles: readonly RoleHolders[];
  readonly alerts?: AlertsReport;
}

/** What the dashboard adds to a probe: absent when an agent does not serve /v1/overview. */
export interface AgentExtras {
  readonly watermarks?: readonly StoreWatermark[];
  readonly watermarksError?: string;
  readonly recentRefusals?: readonly RecentRefusal[];
}

export function buildOverview(
  source: Overview['source'],
  probes: ReadonlyArray<{ probe: AgentProbe; extras: AgentExtras }>,
  nowMs: number,
  alerts?: AlertsReport,
): Overview {
  const report = buildReport(
    probes.map((p) => p.probe),
    nowMs,
    alerts,
  );
  const agents = report.agents.map((status, i): DashboardAgent => {
    const extras = probes[i]!.extras;
    return {
      ...status,
      watermarks: extras.watermarks ?? [],
      ...(extras.watermarksError !== undefined ? { watermarksError: extras.watermarksError } : {}),
      recentRefusals: extras.recentRefusals ?? [],
    };
  });
  return {
    source,
    at: report.at,
    ok: report.ok,
    agents,
    roles: report.roles,
    ...(report.alerts ? { alerts: report.alerts } : {}),
  };
}

/** The one-agent summary `summarizeAgent` gives, re-exported for the fleet's fallbacks. */
export { summarizeAgent };
