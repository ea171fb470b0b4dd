/**
 * The agent's Prometheus metrics. Each agent owns its registry, so several agents (tests, the
 * devnet) can live in one process without sharing counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { REFUSAL_REASONS } from '../guard/decision.js';
import { describePosition, positionComponents } from '../guard/describe.js';
import { familyOf } from '../keys/binding.js';
import type { KnownKey } from '../keys/keyring.js';
import type { DecisionObserver } from '../signer/guarded-signer.js';
import type { SupervisorEvent } from '../supervisor/index.js';
import type { Readiness } from './readiness.js';

/** What the metrics read of a privval link at each scrape (CometBFT signer's `status()`). */
export interface LinkState {
  readonly chainId: string;
  readonly node: string;
  readonly connected: boolean;
  /** Connections established since the agent started. */
  readonly connects: number;
}

type DecisionEvent = Parameters<DecisionObserver['onDecision']>[0];

export class AgentMetrics implements DecisionObserver {
  readonly registry = new Registry();
  private readonly decisions: Counter<'family' | 'outcome' | 'reason'>;
  private readonly latency: Histogram<'family' | 'outcome'>;
  private readonly watermark: Gauge<'chain_id' | 'key' | 'family' | 'component'>;
  readonly storeUp: Gauge;
  private readonly roleActive: Gauge<'role'>;
  private readonly roleEvents: Counter<'role' | 'event'>;
  private readonly lastSigned: Gauge<'chain_id' | 'key' | 'family' | 'component'>;
  private readonly lastSignedAt: Gauge<'chain_id' | 'key' | 'family'>;
  private readonly lastStepAt: Gauge<'chain_id' | 'key' | 'family' | 'step'>;
  private readonly storeLatency: Histogram<'engine'>;
  private readiness: Readiness | undefined;
  private links: (() => readonly LinkState[]) | undefined;

  constructor(
    defaultLabels: Record<string, string> = {},
    /** Unix time in ms; a test may pass its own clock. */
    private readonly now: () => number = Date.now,
  ) {
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
    this.lastSigned = new Gauge({
      name: 'vigil_last_signed_position',
      help: 'Position of the last signature (or duty authorization) this agent granted, per chain, key and family, one series per component (height, round, step; slot; setId, round, stage), as numbers (CometBFT step: 1 proposal, 2 prevote, 3 precommit; GRANDPA stage: 1 propose, 2 prevote, 3 precommit).',
      labelNames: ['chain_id', 'key', 'family', 'component'],
      registers: [this.registry],
    });
    this.lastSignedAt = new Gauge({
      name: 'vigil_last_signed_timestamp_seconds',
      help: 'Unix time of the last signature (or duty authorization) this agent granted per chain, key and family; 0 until the first one since the agent started.',
      labelNames: ['chain_id', 'key', 'family'],
      registers: [this.registry],
    });
    this.lastStepAt = new Gauge({
      name: 'vigil_last_signed_step_timestamp_seconds',
      help: 'Unix time of the last signature this agent granted per chain, key, family and step (CometBFT proposal, prevote, precommit; GRANDPA propose, prevote, precommit).',
      labelNames: ['chain_id', 'key', 'family', 'step'],
      registers: [this.registry],
    });
    this.storeLatency = new Histogram({
      name: 'vigil_store_update_seconds',
      help: 'Duration of the watermark store update of each guarded request (queueing for the group commit, transaction, durable commit), failed calls included.',
      labelNames: ['engine'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5],
      registers: [this.registry],
    });
    const links = () => this.links?.() ?? [];
    // Read from the signer's links at each scrape, so they cannot disagree with /readyz.
    new Gauge({
      name: 'vigil_privval_link_up',
      help: '1 while the CometBFT privval link to a node is connected (SecretConnection established and the node identity checked), else 0.',
      labelNames: ['chain_id', 'node'],
      registers: [this.registry],
      collect() {
        for (const l of links())
          this.set({ chain_id: l.chainId, node: l.node }, l.connected ? 1 : 0);
      },
    });
    new Counter({
      name: 'vigil_privval_reconnects_total',
      help: 'Connections to a CometBFT node established again after the first one since the agent started.',
      labelNames: ['chain_id', 'node'],
      registers: [this.registry],
      collect() {
        // The link counts its connections; a counter cannot be set, so it is rebuilt.
        this.reset();
        for (const l of links())
          this.inc({ chain_id: l.chainId, node: l.node }, Math.max(0, l.connects - 1));
      },
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

  /** Exports the privval links as vigil_privval_link_up / _reconnects_total, read at each scrape. */
  watchLinks(links: () => readonly LinkState[]): void {
    this.links = links;
  }

  /**
   * Creates vigil_last_signed_timestamp_seconds at 0 for every configured key and chain, so
   * that an agent that never signs is visible (and alerted on) instead of absent. These are
   * the only chain and key labels the signature metrics can ever carry. Decisions of the
   * configured families start at 0 too: `increase()` cannot see a counter's first step from
   * absent to 1, so the first conflict ever would not alert.
   */
  declareKeys(keys: readonly KnownKey[]): void {
    for (const key of keys) {
      const family = familyOf(key.binding);
      for (const chainId of key.binding.chains)
        this.lastSignedAt.set({ chain_id: chainId, key: key.id, family }, 0);
      for (const outcome of ['granted', 'replayed'] as const)
        this.decisions.inc({ family, outcome, reason: '' }, 0);
      for (const reason of REFUSAL_REASONS)
        this.decisions.inc({ family, outcome: 'refused', reason }, 0);
    }
  }

  /**
   * vigil_role_active at 0 for every role this agent may hold, so that a role nobody holds
   * sums to 0 instead of vanishing.
   */
  declareRoles(roles: readonly string[]): void {
    for (const role of roles) this.roleActive.set({ role }, 0);
  }

  onRoleEvent(role: string, e: SupervisorEvent): void {
    this.roleEvents.inc({ role, event: e.type });
    if (e.type === 'activated') this.roleActive.set({ role }, 1);
    if (e.type === 'deactivating' || e.type === 'deactivated') this.roleActive.set({ role }, 0);
  }

  onDecision(e: DecisionEvent): void {
    const family = e.family ?? 'unknown';
    this.decisions.inc({ family, outcome: e.outcome, reason: e.reason ?? '' });
    this.latency.observe({ family, outcome: e.outcome }, e.seconds);
    if (e.store) this.storeLatency.observe({ engine: e.store.engine }, e.store.seconds);
    if (e.outcome === 'granted') this.signed(e);
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

  /** A granted decision passed the key's binding: its chain and key are configured ones. */
  private signed(e: DecisionEvent): void {
    if (!e.family || !e.watermark || e.watermark.family !== e.family) return;
    const labels = { chain_id: e.chainId, key: e.keyId, family: e.family };
    const position = e.watermark.position;
    positionComponents(e.family).forEach((component, i) => {
      if (position[i] !== undefined)
        this.lastSigned.set({ ...labels, component }, Number(position[i]));
    });
    const at = this.now() / 1000;
    this.lastSignedAt.set(labels, at);
    const named = describePosition(e.family, position);
    const step = named.step ?? named.stage;
    if (step !== undefined) this.lastStepAt.set({ ...labels, step }, at);
  }
}
