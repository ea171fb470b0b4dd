/**
 * What `vigil up` shows of each agent's signer metrics: signatures granted, the last signed
 * position per chain and how long ago, and refusals by reason — read from the agent's real
 * /metrics exposition with `vigil status`'s strict reader. Pure: the text in, the summary out.
 */
import { describePosition, positionComponents } from '../guard/describe.js';
import { DUTY_FAMILIES, type DutyFamily } from '../guard/watermark.js';
import { parsePrometheusText } from '../status/prometheus-text.js';

export interface SignerMetrics {
  /** vigil_guard_decisions_total{outcome="granted"}, every family summed. */
  readonly granted: number;
  readonly lastSigned: ReadonlyArray<{
    readonly chainId: string;
    readonly key: string;
    readonly family: string;
    /** e.g. "slot 42", "height 7 round 0 precommit". */
    readonly position: string;
    readonly secondsAgo: number;
  }>;
  /** Refusals since the agent started, by reason (families summed); reasons never seen absent. */
  readonly refusals: Readonly<Record<string, number>>;
}

const isFamily = (f: string): f is DutyFamily => (DUTY_FAMILIES as readonly string[]).includes(f);

export function formatPosition(p: Readonly<Record<string, string>>): string {
  return Object.entries(p)
    .map(([k, v]) => (k === 'step' || k === 'stage' ? v : `${k} ${v}`))
    .join(' ');
}

export function signerMetricsOf(text: string, where: string, nowMs: number): SignerMetrics {
  const samples = parsePrometheusText(text, where);
  let granted = 0;
  const refusals: Record<string, number> = {};
  for (const s of samples) {
    if (s.name !== 'vigil_guard_decisions_total') continue;
    if (s.labels.outcome === 'granted') granted += s.value;
    if (s.labels.outcome === 'refused' && s.value > 0) {
      const reason = s.labels.reason ?? '';
      refusals[reason] = (refusals[reason] ?? 0) + s.value;
    }
  }
  const scope = (l: Readonly<Record<string, string>>) =>
    JSON.stringify([l.chain_id, l.key, l.family]);
  const components = new Map<string, Map<string, number>>();
  for (const s of samples) {
    if (s.name !== 'vigil_last_signed_position') continue;
    const k = scope(s.labels);
    const m = components.get(k) ?? new Map<string, number>();
    m.set(s.labels.component ?? '', s.value);
    components.set(k, m);
  }
  const lastSigned = samples
    .filter((s) => s.name === 'vigil_last_signed_timestamp_seconds' && s.value > 0)
    .map((s) => {
      const family = s.labels.family ?? '';
      const byComponent = components.get(scope(s.labels)) ?? new Map<string, number>();
      let position: string;
      if (isFamily(family)) {
        const values: bigint[] = [];
        for (const c of positionComponents(family)) {
          const v = byComponent.get(c);
          if (v === undefined || !Number.isSafeInteger(v) || v < 0) break;
          values.push(BigInt(v));
        }
        position = formatPosition(describePosition(family, values));
      } else position = [...byComponent].map(([k, v]) => `${k} ${v}`).join(' ');
      return {
        chainId: s.labels.chain_id ?? '',
        key: s.labels.key ?? '',
        family,
        position,
        secondsAgo: Math.max(0, Math.round(nowMs / 1000 - s.value)),
      };
    })
    .sort((a, b) => a.chainId.localeCompare(b.chainId) || a.key.localeCompare(b.key));
  return { granted, lastSigned, refusals };
}

/** "granted 12 · devnet-slot slot 40 (1 s ago) · refused regression 3" */
export function formatSignerMetrics(m: SignerMetrics): string {
  const parts = [`granted ${m.granted}`];
  for (const l of m.lastSigned) parts.push(`${l.chainId} ${l.position} (${l.secondsAgo} s ago)`);
  const refused = Object.entries(m.refusals).sort(([a], [b]) => a.localeCompare(b));
  parts.push(
    refused.length ? `refused ${refused.map(([r, n]) => `${r} ${n}`).join(', ')}` : 'refused 0',
  );
  return parts.join(' · ');
}
