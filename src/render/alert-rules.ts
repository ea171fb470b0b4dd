/**
 * Prometheus alerting rules for the signer and the Cardano, Decred and Polkadot chain watchers
 * (src/watch/cardano.ts, src/watch/decred.ts, src/watch/polkadot.ts),
 * rendered onto the monitor host next to prometheus.yml, one rule group each. Each rule has `promtool test rules` cases (test/render/alert-rule-cases.ts)
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

const DAY = 86_400;
const KES = 'vigil_watch_cardano_kes_remaining_seconds';
/** KES expiry warnings: name, band (seconds, upper inclusive, lower exclusive), severity. */
export const KES_EXPIRY_BANDS = [
  { within: '10d', upper: 10 * DAY, lower: 5 * DAY, severity: 'warning' },
  { within: '5d', upper: 5 * DAY, lower: DAY, severity: 'warning' },
  { within: '1d', upper: DAY, lower: 4 * 3600, severity: 'page' },
  { within: '4h', upper: 4 * 3600, lower: undefined, severity: 'page' },
] as const;
/** The large-pool guidelines' block-delay rule, on the node's nearest CDF point above 4 s. */
export const BLOCK_DELAY_CDF_MIN = 0.9;

export const CARDANO_ALERT_RULES: readonly AlertRule[] = [
  // Each fires only in its band, so one KES alert speaks at a time.
  ...KES_EXPIRY_BANDS.map(({ within, upper, lower, severity }): AlertRule => ({
    alert: `VigilCardanoKESExpiring${within}`,
    expr: lower === undefined ? `${KES} <= ${upper}` : `${KES} <= ${upper} and ${KES} > ${lower}`,
    labels: { severity },
    annotations: {
      summary: `The KES key on {{ $labels.chain_id }} expires in {{ $value | humanizeDuration }} (within ${within}): issue a new operational certificate`,
    },
  })),
  {
    alert: 'VigilCardanoBlockNotAdopted',
    expr: 'increase(vigil_watch_cardano_didnt_adopt_blocks[15m]) > 0',
    labels: { severity: 'page' },
    annotations: {
      summary: 'The node of {{ $labels.chain_id }} forged a block it did not adopt',
    },
  },
  {
    alert: 'VigilCardanoBlockDelay',
    expr: `vigil_watch_cardano_block_delay_cdf{within="5s"} < ${BLOCK_DELAY_CDF_MIN}`,
    for: '1h',
    labels: { severity: 'warning' },
    annotations: {
      summary:
        'Only {{ $value | humanizePercentage }} of blocks reached the node of {{ $labels.chain_id }} within 5 s of their slot for an hour (the guidelines want > 90 % within 4 s)',
    },
  },
];

/** How long a drift between the voting wallets lasts before it is one (a block between two reads is not). */
export const DECRED_DRIFT_FOR = '15m';
const wallet = 'Voting wallet {{ $labels.wallet }} of {{ $labels.chain_id }}';

/** The Decred watcher's rules (src/watch/decred.ts): the solo voter's voting wallets. */
export const DECRED_ALERT_RULES: readonly AlertRule[] = [
  {
    alert: 'VigilDecredWalletNotVoting',
    expr: 'vigil_watch_decred_voting == 0',
    for: '5m',
    labels: { severity: 'page' },
    annotations: {
      summary: `${wallet} is not voting (started without enablevoting): tickets it is called for are missed`,
    },
  },
  {
    alert: 'VigilDecredWalletLocked',
    expr: 'vigil_watch_decred_unlocked == 0',
    for: '5m',
    labels: { severity: 'page' },
    annotations: { summary: `${wallet} is locked: it cannot sign votes` },
  },
  {
    alert: 'VigilDecredWalletDisconnected',
    expr: 'vigil_watch_decred_daemon_connected == 0',
    for: '5m',
    labels: { severity: 'page' },
    annotations: {
      summary: `${wallet} has lost its dcrd: it does not see its tickets called`,
    },
  },
  {
    // Every wallet counts the same missed tickets: one alert per chain.
    alert: 'VigilDecredMissedVotes',
    expr: 'max by (chain_id) (increase(vigil_watch_decred_tickets{status="missed"}[1h])) > 0',
    labels: { severity: 'page' },
    annotations: {
      summary: 'The voting wallets of {{ $labels.chain_id }} count a missed vote in the last hour',
    },
  },
  {
    alert: 'VigilDecredLiveTicketParity',
    expr: 'vigil_watch_decred_live_tickets_drift == 1',
    for: DECRED_DRIFT_FOR,
    labels: { severity: 'warning' },
    annotations: {
      summary: `${wallet} does not hold the same live tickets as the other voting wallets`,
    },
  },
  {
    alert: 'VigilDecredVoteChoiceDrift',
    expr: 'vigil_watch_decred_vote_choice_drift == 1',
    for: DECRED_DRIFT_FOR,
    labels: { severity: 'warning' },
    annotations: {
      summary: `${wallet} votes otherwise than the other voting wallets on agenda {{ $labels.agenda }}`,
    },
  },
  {
    alert: 'VigilDecredTreasuryPolicyDrift',
    expr: 'vigil_watch_decred_treasury_policy_drift == 1',
    for: DECRED_DRIFT_FOR,
    labels: { severity: 'warning' },
    annotations: {
      summary: `${wallet} has another treasury policy than the other voting wallets for key {{ $labels.key }}`,
    },
  },
  {
    alert: 'VigilDecredTSpendPolicyDrift',
    expr: 'vigil_watch_decred_tspend_policy_drift == 1',
    for: DECRED_DRIFT_FOR,
    labels: { severity: 'warning' },
    annotations: {
      summary: `${wallet} has another policy than the other voting wallets for treasury spend {{ $labels.tspend }}`,
    },
  },
  // Fleet-wide comparisons from every wallet's own series, for wallets watched one per host
  // (as `vigil plan` renders them) where no single watcher sees two wallets to compare.
  {
    alert: 'VigilDecredVoteChoiceSplit',
    expr: 'count by (chain_id, agenda) (count by (chain_id, agenda, choice) (vigil_watch_decred_vote_choice == 1)) > 1',
    for: DECRED_DRIFT_FOR,
    labels: { severity: 'warning' },
    annotations: {
      summary:
        'The voting wallets of {{ $labels.chain_id }} do not all vote the same on agenda {{ $labels.agenda }}',
    },
  },
  {
    alert: 'VigilDecredLiveTicketSplit',
    expr: 'max by (chain_id) (vigil_watch_decred_tickets{status="live"}) - min by (chain_id) (vigil_watch_decred_tickets{status="live"}) > 0',
    for: DECRED_DRIFT_FOR,
    labels: { severity: 'warning' },
    annotations: {
      summary:
        'The voting wallets of {{ $labels.chain_id }} do not hold the same number of live tickets',
    },
  },
  {
    alert: 'VigilDecredWalletProbeFailing',
    expr: 'vigil_watch_decred_up == 0',
    for: '5m',
    labels: { severity: 'warning' },
    annotations: {
      summary: `${wallet} cannot be fully read by the watcher (see vigil_watch_decred_probe_errors_total)`,
    },
  },
];

/**
 * Best minus finalized beyond which GRANDPA is behind: it finalizes within 2–3 blocks of the
 * best when its voters are online (a 6 s block, so 20 blocks are 2 minutes).
 */
export const POLKADOT_FINALITY_LAG_BLOCKS = 20;
/**
 * The node's para-validation lag beyond which its GRANDPA vote is held back: upstream's own
 * network tests expect it at 0–2 blocks (approval coalescing adds a few); the node's safeguard
 * overrides it at 500 (MAX_FINALITY_LAG, polkadot/node/service/src/relay_chain_selection.rs).
 */
export const POLKADOT_PARA_FINALITY_LAG_BLOCKS = 10;
const dotNode = 'The Polkadot node of {{ $labels.chain_id }}';
/** The watcher's values stay at their last reading while the node is down: ask only an up node. */
const dotUp = 'vigil_watch_polkadot_up == 1';

/** The Polkadot watcher's rules (src/watch/polkadot.ts): a relay-chain validator's node. */
export const POLKADOT_ALERT_RULES: readonly AlertRule[] = [
  {
    alert: 'VigilPolkadotNodeDown',
    expr: 'vigil_watch_polkadot_up == 0',
    for: '2m',
    labels: { severity: 'page' },
    annotations: {
      summary: `${dotNode} does not answer system_health or chain_getHeader`,
    },
  },
  {
    alert: 'VigilPolkadotFinalityLag',
    expr: `vigil_watch_polkadot_finality_lag_blocks > ${POLKADOT_FINALITY_LAG_BLOCKS} and vigil_watch_polkadot_is_syncing == 0 and ${dotUp}`,
    for: '5m',
    labels: { severity: 'page' },
    annotations: {
      summary: `${dotNode} is {{ $value }} blocks between best and finalized: GRANDPA is not finalizing`,
    },
  },
  {
    alert: 'VigilPolkadotNoPeers',
    expr: `vigil_watch_polkadot_peers == 0 and ${dotUp}`,
    for: '2m',
    labels: { severity: 'page' },
    annotations: { summary: `${dotNode} has no peers` },
  },
  {
    alert: 'VigilPolkadotSyncingTooLong',
    expr: `vigil_watch_polkadot_is_syncing == 1 and ${dotUp}`,
    for: '30m',
    labels: { severity: 'warning' },
    annotations: {
      summary: `${dotNode} has been in a major sync for 30 minutes: it does not author or vote`,
    },
  },
  {
    alert: 'VigilPolkadotSessionKeysNotOnChain',
    expr: 'vigil_watch_polkadot_session_keys_onchain == 0',
    for: '5m',
    labels: { severity: 'page' },
    annotations: {
      summary: `${dotNode} lacks the private keys of the validator's on-chain session keys (author_hasSessionKeys false): it cannot author or vote`,
    },
  },
  {
    alert: 'VigilPolkadotParaFinalityLag',
    expr: `vigil_watch_polkadot_para_finality_lag_blocks > ${POLKADOT_PARA_FINALITY_LAG_BLOCKS}`,
    for: '5m',
    labels: { severity: 'warning' },
    annotations: {
      summary: `${dotNode} holds its finality vote {{ $value }} blocks back for approval checking or disputes`,
    },
  },
  {
    alert: 'VigilPolkadotBestHeightStalled',
    expr: `changes(vigil_watch_polkadot_best_height[5m]) == 0 and ${dotUp}`,
    for: '1m',
    labels: { severity: 'page' },
    annotations: {
      summary: `${dotNode} has imported no new best block for 5 minutes`,
    },
  },
  {
    // Errors while the node is up: a denied unsafe method, an unreadable metrics endpoint, a
    // malformed answer (a node that is down is VigilPolkadotNodeDown's).
    alert: 'VigilPolkadotProbeFailing',
    expr: `sum by (job, instance, chain_id, probe) (increase(vigil_watch_polkadot_probe_errors_total[5m])) > 0 and on (job, instance, chain_id) ${dotUp}`,
    for: '10m',
    labels: { severity: 'warning' },
    annotations: {
      summary: `The watcher cannot read {{ $labels.probe }} from the Polkadot node of {{ $labels.chain_id }} (see vigil_watch_polkadot_probe_errors_total)`,
    },
  },
];

/** Misses in a row that page: tenderduty's default `consecutive_missed` threshold. */
export const COMETBFT_CONSECUTIVE_MISSED = 5;
/** The share of the watcher's window missed that warns: tenderduty's `percentage_missed` 10 %. */
export const COMETBFT_WINDOW_MISSED_RATIO = 0.1;

const cmtNode = 'The CometBFT node of {{ $labels.chain_id }}';
const cmtValidator = 'The validator watched on {{ $labels.chain_id }}';
const cmtUp = 'vigil_watch_cometbft_up == 1';

/** The CometBFT watcher's rules (src/watch/cometbft.ts): tenderduty's conditions. */
export const COMETBFT_ALERT_RULES: readonly AlertRule[] = [
  {
    alert: 'VigilCometbftNodeDown',
    expr: 'vigil_watch_cometbft_up == 0',
    for: '2m',
    labels: { severity: 'page' },
    annotations: { summary: `${cmtNode} does not answer /status (or answers for another chain)` },
  },
  {
    alert: 'VigilCometbftChainStalled',
    expr: `vigil_watch_cometbft_stalled == 1 and ${cmtUp}`,
    for: '1m',
    labels: { severity: 'page' },
    annotations: {
      summary: `${cmtNode} has seen no new block for longer than the watcher's stallSeconds`,
    },
  },
  {
    alert: 'VigilCometbftMissedInARow',
    expr: `vigil_watch_cometbft_consecutive_missed >= ${COMETBFT_CONSECUTIVE_MISSED}`,
    labels: { severity: 'page' },
    annotations: {
      summary: `${cmtValidator} missed the last {{ $value }} blocks in a row`,
    },
  },
  {
    alert: 'VigilCometbftMissedBlocks',
    expr: `vigil_watch_cometbft_missed_blocks_window / (vigil_watch_cometbft_window_blocks > 0) > ${COMETBFT_WINDOW_MISSED_RATIO}`,
    for: '5m',
    labels: { severity: 'warning' },
    annotations: {
      summary: `${cmtValidator} missed more than ${COMETBFT_WINDOW_MISSED_RATIO * 100} % of the blocks in its window`,
    },
  },
  {
    alert: 'VigilCometbftJailed',
    expr: 'vigil_watch_cometbft_jailed == 1',
    labels: { severity: 'page' },
    annotations: { summary: `${cmtValidator} is jailed` },
  },
  {
    alert: 'VigilCometbftTombstoned',
    expr: 'vigil_watch_cometbft_tombstoned == 1',
    labels: { severity: 'page' },
    annotations: { summary: `${cmtValidator} is tombstoned: it was slashed for double signing` },
  },
  {
    alert: 'VigilCometbftPeersLow',
    expr: `vigil_watch_cometbft_peers_low == 1 and ${cmtUp}`,
    for: '5m',
    labels: { severity: 'warning' },
    annotations: { summary: `${cmtNode} has fewer peers than the watcher's peersMin` },
  },
];

/** Every rule of the rules file, signer first. */
export const ALERT_RULES: readonly AlertRule[] = [
  ...SIGNER_ALERT_RULES,
  ...CARDANO_ALERT_RULES,
  ...DECRED_ALERT_RULES,
  ...POLKADOT_ALERT_RULES,
  ...COMETBFT_ALERT_RULES,
];

/**
 * The rules file, with `rules` replacing the default set (tests break rules on purpose); a rule
 * goes to the group of the set its alert name belongs to.
 */
export function signerAlertRules(rules: readonly AlertRule[] = ALERT_RULES): string {
  const cardano = new Set(CARDANO_ALERT_RULES.map((r) => r.alert));
  const decred = new Set(DECRED_ALERT_RULES.map((r) => r.alert));
  const polkadot = new Set(POLKADOT_ALERT_RULES.map((r) => r.alert));
  const cometbft = new Set(COMETBFT_ALERT_RULES.map((r) => r.alert));
  const groups = [
    {
      name: 'vigil-signer',
      rules: rules.filter(
        (r) =>
          !cardano.has(r.alert) &&
          !decred.has(r.alert) &&
          !polkadot.has(r.alert) &&
          !cometbft.has(r.alert),
      ),
    },
    { name: 'vigil-cardano', rules: rules.filter((r) => cardano.has(r.alert)) },
    { name: 'vigil-decred', rules: rules.filter((r) => decred.has(r.alert)) },
    { name: 'vigil-polkadot', rules: rules.filter((r) => polkadot.has(r.alert)) },
    { name: 'vigil-cometbft', rules: rules.filter((r) => cometbft.has(r.alert)) },
  ].filter((g) => g.rules.length > 0);
  return (
    '# Vigil signer and chain-watcher alerts; each has promtool unit tests in the Vigil repository.\n' +
    toYaml({ groups }, { lineWidth: 0 })
  );
}
