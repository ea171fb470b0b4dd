/**
 * Prometheus alerting rules for the signer, rendered onto the monitor host next to
 * prometheus.yml. Each rule has `promtool test rules` cases (test/render/alert-rule-cases.ts)
 * that fire it and keep it quiet; `.ci/run` runs them (scripts/promtool-rules.mjs).
 */
import { stringify as toYaml } from 'yaml';

/** Where the monitor's Prometheus reads the rules (`rule_files` in prometheus.yml). */
export const SIGNER_RULES_PATH = '/etc/prometheus/vigil-signer.rules.yml';

/** Families that sign every few seconds while their chain runs; slot keys sign only when they win a slot. */
const STEADY_FAMILIES = 'cometbft|grandpa';
/** Seconds without a signature for a chain (CometBFT, GRANDPA) before paging. */
export const NO_SIGNATURE_SECONDS = 300;
/** Refusals that mean a double sign was stopped or the store cannot be trusted. */
export const SAFETY_REFUSALS = ['conflict', 'store_behind_local', 'store_identity'] as const;

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels: { readonly severity: 'page' | 'warning' };
  readonly annotations: { readonly summary: string };
}

const lastSigned = `max by (chain_id, family) (vigil_last_signed_timestamp_seconds{family=~"${STEADY_FAMILIES}"})`;

export const SIGNER_ALERT_RULES: readonly AlertRule[] = [
  {
    alert: 'VigilAgentDown',
    expr: 'up{job="vigil"} == 0',
    for: '1m',
    labels: { severity: 'page' },
    annotations: { summary: 'Vigil agent on {{ $labels.host }} cannot be scraped' },
  },
  {
    alert: 'VigilAgentNotReady',
    expr: 'vigil_ready == 0',
    for: '2m',
    labels: { severity: 'page' },
    annotations: {
      summary:
        'Vigil agent on {{ $labels.host }} is not ready ({{ $labels.condition }}); it refuses to sign, see /readyz',
    },
  },
  {
    alert: 'VigilNoRecentSignature',
    expr: `time() - ${lastSigned} > ${NO_SIGNATURE_SECONDS} and ${lastSigned} > 0`,
    labels: { severity: 'page' },
    annotations: {
      summary: `No agent has signed for {{ $labels.chain_id }} ({{ $labels.family }}) for {{ $value | humanizeDuration }}`,
    },
  },
  {
    alert: 'VigilNoSignatureSinceStart',
    expr: `${lastSigned} == 0`,
    for: `${NO_SIGNATURE_SECONDS / 60}m`,
    labels: { severity: 'page' },
    annotations: {
      summary:
        'No agent has signed for {{ $labels.chain_id }} ({{ $labels.family }}) since the agents started',
    },
  },
  {
    alert: 'VigilSafetyRefusal',
    expr: `increase(vigil_guard_decisions_total{outcome="refused",reason=~"${SAFETY_REFUSALS.join('|')}"}[5m]) > 0`,
    labels: { severity: 'page' },
    annotations: {
      summary:
        'Vigil agent on {{ $labels.host }} refused {{ $labels.family }} requests ({{ $labels.reason }}): a double sign was stopped or the store cannot be trusted',
    },
  },
  {
    alert: 'VigilRoleHolders',
    expr: 'sum by (role) (vigil_role_active) != 1',
    for: '1m',
    labels: { severity: 'page' },
    annotations: {
      summary: 'Role {{ $labels.role }} is active on {{ $value }} agents, not exactly one',
    },
  },
  {
    alert: 'VigilPrivvalLinkDown',
    expr: 'vigil_privval_link_up == 0',
    for: '1m',
    labels: { severity: 'warning' },
    annotations: {
      summary:
        'Vigil agent on {{ $labels.host }} has no privval link to {{ $labels.node }} ({{ $labels.chain_id }})',
    },
  },
];

/** The rules file, with `rules` replacing the default set (tests break rules on purpose). */
export function signerAlertRules(rules: readonly AlertRule[] = SIGNER_ALERT_RULES): string {
  return (
    '# Vigil signer alerts; each has promtool unit tests in the Vigil repository.\n' +
    toYaml({ groups: [{ name: 'vigil-signer', rules }] }, { lineWidth: 0 })
  );
}
