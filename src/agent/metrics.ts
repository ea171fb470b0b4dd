/**
 * The agent's Prometheus metrics. Each agent owns its registry, so several agents (tests, the
 * devnet) can live in one process without sharing counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { positionComponents } from '../guard/describe.js';
import type { DecisionObserver } from '../signer/guarded-signer.js';
import type { SupervisorEvent } from '../supervisor/index.js';
import type { Readiness } from './readiness.js';

export class AgentMetrics implements DecisionObserver {
  readonly registry = new Registry();
  private readonly decisions: Counter<'family' | 'outcome' | 'reason'>;
  private readonly latency: Histogram<'family' | 'outcome'>;
  private readonly watermark: Gauge<'chain_id' | 'key' | 'family' | 'component'>;
  readonly storeUp: Gauge;
  private readonly roleActive: Gauge<'role'>;
  private readonly roleEvents: Counter<'role' | 'event'>;
  private readiness: Readiness | undefined;

  constructor(defaultLabels: Record<string, string> = {}) {
    this.registry.setDefaultLabels(defaultLabels);
    collectDefaultMetrics({ register: this.registry });
    this.decisions = new Counter({
      name: 'vigil_guard_decisions_total',
      help: 'Guard decisions by duty family, outcome (granted, replayed, refused) and refusal reason.',
      labelNames: ['family', 'outcome', 'reason'],
      registers: [this.registry],
    });
    this.latency = new Histogram({
      name: 'vigil_guard_decision_seconds',
      help: 'Time from a request reaching the guard to its decision, store commit included.',
      labelNames: ['family', 'outcome'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5],
      registers: [this.registry],
    });
    this.watermark = new Gauge({
      name: 'vigil_watermark',
      help: 'Current watermark per chain, key and family, one series per position component (height, round, step, slot, setId, stage).',
      labelNames: ['chain_id', 'key', 'family', 'component'],
      registers: [this.registry],
    });
    this.roleActive = new Gauge({
      name: 'vigil_role_active',
      help: '1 while this agent holds an exclusive role and has activated it, else 0.',
      labelNames: ['role'],
      registers: [this.registry],
    });
    this.roleEvents = new Counter({
      name: 'vigil_role_events_total',
      help: 'Exclusive-role events: acquired, activated, renewed, renewal-unconfirmed, deactivating, deactivated, action-failed.',
      labelNames: ['role', 'event'],
      registers: [this.registry],
    });
    this.storeUp = new Gauge({
      name: 'vigil_store_up',
      help: '1 when the last readiness check reached the watermark store, else 0.',
      registers: [this.registry],
    });
    const conditions = () => this.readiness?.snapshot().conditions ?? [];
    // Read from the readiness registry at each scrape, so it cannot disagree with /readyz.
    new Gauge({
      name: 'vigil_ready',
      help: 'Readiness by condition (store, local_watermark, …): 1 while it holds, else 0; the reason is in /readyz.',
      labelNames: ['condition'],
      registers: [this.registry],
      collect() {
        for (const c of conditions()) this.set({ condition: c.name }, c.ready ? 1 : 0);
      },
    });
  }

  /** Exports `readiness` as vigil_ready{condition}, read at each scrape. */
  watchReadiness(readiness: Readiness): void {
    this.readiness = readiness;
  }

  onRoleEvent(role: string, e: SupervisorEvent): void {
    this.roleEvents.inc({ role, event: e.type });
    if (e.type === 'activated') this.roleActive.set({ role }, 1);
    if (e.type === 'deactivating' || e.type === 'deactivated') this.roleActive.set({ role }, 0);
  }

  onDecision(e: Parameters<DecisionObserver['onDecision']>[0]): void {
    const family = e.family ?? 'unknown';
    this.decisions.inc({ family, outcome: e.outcome, reason: e.reason ?? '' });
    this.latency.observe({ family, outcome: e.outcome }, e.seconds);
    // Only granted and replayed decisions carry a chain label: those chains are configured, so
    // a caller cannot grow the label set by inventing chain ids.
    if (e.family && e.watermark && e.outcome !== 'refused') {
      const position = e.watermark.position;
      positionComponents(e.family).forEach((component, i) => {
        // Gauges are float64: exact up to 2^53, which covers any real height or slot.
        if (position[i] !== undefined) {
          this.watermark.set(
            { chain_id: e.chainId, key: e.keyId, family: e.family, component },
            Number(position[i]),
          );
        }
      });
    }
  }
}
