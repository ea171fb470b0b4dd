/**
 * `promtool test rules` cases for the signer's and the chain watchers' alert rules
 * (src/render/alert-rules.ts), one test group per rule (the four KES bands share one), each with times the alert fires and times it must not. Used by
 * test/render/alert-rules.test.ts and by scripts/promtool-rules.mjs (`.ci/run`).
 * In promtool tests `time()` starts at 0; values are per `interval`.
 */

interface ExpAlert {
  exp_labels: Record<string, string>;
  exp_annotations: Record<string, string>;
}
export interface RuleTestGroup {
  name: string;
  interval: string;
  input_series: Array<{ series: string; values: string }>;
  alert_rule_test: Array<{ eval_time: string; alertname: string; exp_alerts: ExpAlert[] }>;
  /**
   * promtool's rule evaluation step for this group (default 1m). Groups spanning days with
   * rules that have no `for:` evaluate per `interval`: 270 h at 1 m is 16,200 evaluations.
   */
  evaluation_interval?: string;
}

/** Target labels every vigil series carries on the monitor (scrape config + agent label). */
const target = (host: string) => ({
  job: 'vigil',
  instance: `10.77.0.${host === 'a' ? 1 : 2}:7700`,
  host,
  agent: host,
});
const sel = (name: string, labels: Record<string, string>) =>
  `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;

export const SIGNER_RULE_TESTS: RuleTestGroup[] = [
  {
    name: 'VigilAgentDown: an agent that cannot be scraped for 1m; other jobs do not count',
    interval: '1m',
    input_series: [
      { series: sel('up', target('a')), values: '1 1 0 0 0 0' },
      { series: sel('up', target('b')), values: '1 1 1 1 1 1' },
      { series: sel('up', { ...target('a'), job: 'node' }), values: '0 0 0 0 0 0' },
    ],
    alert_rule_test: [
      { eval_time: '1m', alertname: 'VigilAgentDown', exp_alerts: [] },
      // Down since 2m: pending at 2m, firing from 3m.
      { eval_time: '2m', alertname: 'VigilAgentDown', exp_alerts: [] },
      {
        eval_time: '4m',
        alertname: 'VigilAgentDown',
        exp_alerts: [
          {
            exp_labels: { ...target('a'), severity: 'page' },
            exp_annotations: { summary: 'Vigil agent on a cannot be scraped' },
          },
        ],
      },
    ],
  },
  {
    name: 'VigilAgentNotReady: a readiness condition failing for 2m',
    interval: '1m',
    input_series: [
      { series: sel('vigil_ready', { ...target('a'), condition: 'store' }), values: '1 0 0 0 0 1' },
      {
        series: sel('vigil_ready', { ...target('a'), condition: 'local_watermark' }),
        values: '1 1 1 1 1 1',
      },
      { series: sel('vigil_ready', { ...target('b'), condition: 'store' }), values: '1 0 1 0 1 0' },
    ],
    alert_rule_test: [
      { eval_time: '2m', alertname: 'VigilAgentNotReady', exp_alerts: [] },
      {
        eval_time: '4m',
        alertname: 'VigilAgentNotReady',
        exp_alerts: [
          {
            exp_labels: { ...target('a'), condition: 'store', severity: 'page' },
            exp_annotations: {
              summary: 'Vigil agent on a is not ready (store); it refuses to sign, see /readyz',
            },
          },
        ],
      },
      { eval_time: '5m', alertname: 'VigilAgentNotReady', exp_alerts: [] },
    ],
  },
  {
    name: 'VigilNoRecentSignature: no agent signed for a chain for 5m; slot keys and standbys do not count',
    interval: '1m',
    input_series: [
      // a signs hub every minute until 10m, then stops; b is the standby (never signed).
      {
        series: sel('vigil_last_signed_timestamp_seconds', {
          ...target('a'),
          chain_id: 'hub',
          key: 'val',
          family: 'cometbft',
        }),
        values: '0+60x10 600x10',
      },
      {
        series: sel('vigil_last_signed_timestamp_seconds', {
          ...target('b'),
          chain_id: 'hub',
          key: 'val',
          family: 'cometbft',
        }),
        values: '0x20',
      },
      // GRANDPA keeps signing on b.
      {
        series: sel('vigil_last_signed_timestamp_seconds', {
          ...target('b'),
          chain_id: 'dot',
          key: 'gran',
          family: 'grandpa',
        }),
        values: '0+60x20',
      },
      // A BABE key last sealed a block at 1m: slots are not steady, no alert.
      {
        series: sel('vigil_last_signed_timestamp_seconds', {
          ...target('b'),
          chain_id: 'dot',
          key: 'babe',
          family: 'slot',
        }),
        values: '0 60x19',
      },
    ],
    alert_rule_test: [
      { eval_time: '9m', alertname: 'VigilNoRecentSignature', exp_alerts: [] },
      // Last signature at 600 s: 240 s ago at 14m.
      { eval_time: '14m', alertname: 'VigilNoRecentSignature', exp_alerts: [] },
      {
        eval_time: '16m',
        alertname: 'VigilNoRecentSignature',
        exp_alerts: [
          {
            exp_labels: { chain_id: 'hub', family: 'cometbft', severity: 'page' },
            exp_annotations: {
              summary: 'No agent has signed for hub (cometbft) for 6m 0s',
            },
          },
        ],
      },
    ],
  },
  {
    name: 'VigilNoSignatureSinceStart: no agent has signed for a chain for 5m since they started',
    interval: '1m',
    input_series: [
      {
        series: sel('vigil_last_signed_timestamp_seconds', {
          ...target('a'),
          chain_id: 'hub',
          key: 'val',
          family: 'cometbft',
        }),
        values: '0x10',
      },
      {
        series: sel('vigil_last_signed_timestamp_seconds', {
          ...target('b'),
          chain_id: 'hub',
          key: 'val',
          family: 'cometbft',
        }),
        values: '0x10',
      },
      // On dot the standby a never signs, b does from 2m: no alert.
      {
        series: sel('vigil_last_signed_timestamp_seconds', {
          ...target('a'),
          chain_id: 'dot',
          key: 'gran',
          family: 'grandpa',
        }),
        values: '0x10',
      },
      {
        series: sel('vigil_last_signed_timestamp_seconds', {
          ...target('b'),
          chain_id: 'dot',
          key: 'gran',
          family: 'grandpa',
        }),
        values: '0 0 120+60x8',
      },
    ],
    alert_rule_test: [
      { eval_time: '4m', alertname: 'VigilNoSignatureSinceStart', exp_alerts: [] },
      {
        eval_time: '6m',
        alertname: 'VigilNoSignatureSinceStart',
        exp_alerts: [
          {
            exp_labels: { chain_id: 'hub', family: 'cometbft', severity: 'page' },
            exp_annotations: {
              summary: 'No agent has signed for hub (cometbft) since the agents started',
            },
          },
        ],
      },
    ],
  },
  {
    name: 'VigilSafetyRefusal: any conflict, store_behind_local or store_identity refusal; not a regression',
    interval: '1m',
    input_series: [
      {
        series: sel('vigil_guard_decisions_total', {
          ...target('a'),
          family: 'cometbft',
          outcome: 'refused',
          reason: 'conflict',
        }),
        values: '0 0 0 1x10',
      },
      {
        series: sel('vigil_guard_decisions_total', {
          ...target('b'),
          family: 'grandpa',
          outcome: 'refused',
          reason: 'store_identity',
        }),
        values: '0x5 3x7',
      },
      {
        series: sel('vigil_guard_decisions_total', {
          ...target('a'),
          family: 'cometbft',
          outcome: 'refused',
          reason: 'regression',
        }),
        values: '0+5x12',
      },
    ],
    alert_rule_test: [
      { eval_time: '2m', alertname: 'VigilSafetyRefusal', exp_alerts: [] },
      {
        eval_time: '4m',
        alertname: 'VigilSafetyRefusal',
        exp_alerts: [
          {
            exp_labels: {
              ...target('a'),
              family: 'cometbft',
              outcome: 'refused',
              reason: 'conflict',
              severity: 'page',
            },
            exp_annotations: {
              summary:
                'Vigil agent on a refused cometbft requests (conflict): a double sign was stopped or the store cannot be trusted',
            },
          },
        ],
      },
      {
        eval_time: '7m',
        alertname: 'VigilSafetyRefusal',
        exp_alerts: [
          {
            exp_labels: {
              ...target('a'),
              family: 'cometbft',
              outcome: 'refused',
              reason: 'conflict',
              severity: 'page',
            },
            exp_annotations: {
              summary:
                'Vigil agent on a refused cometbft requests (conflict): a double sign was stopped or the store cannot be trusted',
            },
          },
          {
            exp_labels: {
              ...target('b'),
              family: 'grandpa',
              outcome: 'refused',
              reason: 'store_identity',
              severity: 'page',
            },
            exp_annotations: {
              summary:
                'Vigil agent on b refused grandpa requests (store_identity): a double sign was stopped or the store cannot be trusted',
            },
          },
        ],
      },
      // Five minutes after the last one, quiet again.
      { eval_time: '12m', alertname: 'VigilSafetyRefusal', exp_alerts: [] },
    ],
  },
  {
    name: 'VigilRoleHolders: a role held by nobody, or by two agents, for 1m',
    interval: '1m',
    input_series: [
      // hub/validator: a holds it, lets go at 4m, b takes it at 6m.
      {
        series: sel('vigil_role_active', { ...target('a'), role: 'hub/validator' }),
        values: '1 1 1 1 0x8',
      },
      {
        series: sel('vigil_role_active', { ...target('b'), role: 'hub/validator' }),
        values: '0x5 1x6',
      },
      // dot/validator: a holds it throughout; b activates too from 8m.
      {
        series: sel('vigil_role_active', { ...target('a'), role: 'dot/validator' }),
        values: '1x11',
      },
      {
        series: sel('vigil_role_active', { ...target('b'), role: 'dot/validator' }),
        values: '0x7 1x4',
      },
    ],
    alert_rule_test: [
      { eval_time: '3m', alertname: 'VigilRoleHolders', exp_alerts: [] },
      {
        eval_time: '5m',
        alertname: 'VigilRoleHolders',
        exp_alerts: [
          {
            exp_labels: { role: 'hub/validator', severity: 'page' },
            exp_annotations: {
              summary: 'Role hub/validator is active on 0 agents, not exactly one',
            },
          },
        ],
      },
      { eval_time: '7m', alertname: 'VigilRoleHolders', exp_alerts: [] },
      {
        eval_time: '10m',
        alertname: 'VigilRoleHolders',
        exp_alerts: [
          {
            exp_labels: { role: 'dot/validator', severity: 'page' },
            exp_annotations: {
              summary: 'Role dot/validator is active on 2 agents, not exactly one',
            },
          },
        ],
      },
    ],
  },
  {
    name: 'VigilPrivvalLinkDown: a privval link down for 1m',
    interval: '1m',
    input_series: [
      {
        series: sel('vigil_privval_link_up', {
          ...target('a'),
          chain_id: 'hub',
          node: 'tcp://10.77.0.3:26659',
        }),
        values: '1 1 0 0 0 1 1',
      },
      {
        series: sel('vigil_privval_link_up', {
          ...target('a'),
          chain_id: 'hub',
          node: 'tcp://10.77.0.4:26659',
        }),
        values: '1x6',
      },
    ],
    alert_rule_test: [
      { eval_time: '2m', alertname: 'VigilPrivvalLinkDown', exp_alerts: [] },
      {
        eval_time: '4m',
        alertname: 'VigilPrivvalLinkDown',
        exp_alerts: [
          {
            exp_labels: {
              ...target('a'),
              chain_id: 'hub',
              node: 'tcp://10.77.0.3:26659',
              severity: 'warning',
            },
            exp_annotations: {
              summary: 'Vigil agent on a has no privval link to tcp://10.77.0.3:26659 (hub)',
            },
          },
        ],
      },
      { eval_time: '6m', alertname: 'VigilPrivvalLinkDown', exp_alerts: [] },
    ],
  },
];

/** Target labels of a `vigil watch` series on the monitor. */
const watchTarget = (chain: string) => ({
  job: 'vigil-watch',
  instance: '10.77.0.9:9478',
  chain_id: chain,
});
const kesSummary = (chain: string, left: string, within: string) =>
  `The KES key on ${chain} expires in ${left} (within ${within}): issue a new operational certificate`;
const kesAlert = (left: string, within: string, severity: string) => ({
  exp_labels: { ...watchTarget('cardano-mainnet'), severity },
  exp_annotations: { summary: kesSummary('cardano-mainnet', left, within) },
});

/** Cases for the Cardano watcher's rules (CARDANO_ALERT_RULES). */
export const CARDANO_RULE_TESTS: RuleTestGroup[] = [
  {
    // 11 days left at 0h, an hour less every hour: 10d at 24h, 5d at 144h, 1d at 240h,
    // 4h at 260h. A relay has no KES series; a fresh certificate stays quiet.
    name: 'VigilCardanoKESExpiring10d/5d/1d/4h: each in its band, one at a time',
    interval: '1h',
    // The KES rules have no `for:`: one evaluation per sample is exact.
    evaluation_interval: '1h',
    input_series: [
      {
        series: sel('vigil_watch_cardano_kes_remaining_seconds', watchTarget('cardano-mainnet')),
        values: '950400-3600x270',
      },
      {
        series: sel('vigil_watch_cardano_kes_remaining_seconds', watchTarget('cardano-preprod')),
        values: '7776000x270',
      },
    ],
    alert_rule_test: [
      { eval_time: '23h', alertname: 'VigilCardanoKESExpiring10d', exp_alerts: [] },
      {
        eval_time: '25h',
        alertname: 'VigilCardanoKESExpiring10d',
        exp_alerts: [kesAlert('9d 23h 0m 0s', '10d', 'warning')],
      },
      { eval_time: '25h', alertname: 'VigilCardanoKESExpiring5d', exp_alerts: [] },
      { eval_time: '140h', alertname: 'VigilCardanoKESExpiring5d', exp_alerts: [] },
      {
        eval_time: '150h',
        alertname: 'VigilCardanoKESExpiring5d',
        exp_alerts: [kesAlert('4d 18h 0m 0s', '5d', 'warning')],
      },
      { eval_time: '150h', alertname: 'VigilCardanoKESExpiring10d', exp_alerts: [] },
      { eval_time: '230h', alertname: 'VigilCardanoKESExpiring1d', exp_alerts: [] },
      {
        eval_time: '250h',
        alertname: 'VigilCardanoKESExpiring1d',
        exp_alerts: [kesAlert('14h 0m 0s', '1d', 'page')],
      },
      { eval_time: '250h', alertname: 'VigilCardanoKESExpiring4h', exp_alerts: [] },
      {
        eval_time: '262h',
        alertname: 'VigilCardanoKESExpiring4h',
        exp_alerts: [kesAlert('2h 0m 0s', '4h', 'page')],
      },
      { eval_time: '262h', alertname: 'VigilCardanoKESExpiring1d', exp_alerts: [] },
    ],
  },
  {
    name: 'VigilCardanoBlockNotAdopted: any increase of the not-adopted counter; not a node restart',
    interval: '1m',
    input_series: [
      {
        series: sel('vigil_watch_cardano_didnt_adopt_blocks', watchTarget('cardano-mainnet')),
        values: '0x5 1x30',
      },
      // Restarted: its counter starts again at 0.
      {
        series: sel('vigil_watch_cardano_didnt_adopt_blocks', watchTarget('cardano-preprod')),
        values: '2x5 0x30',
      },
    ],
    alert_rule_test: [
      { eval_time: '5m', alertname: 'VigilCardanoBlockNotAdopted', exp_alerts: [] },
      {
        eval_time: '8m',
        alertname: 'VigilCardanoBlockNotAdopted',
        exp_alerts: [
          {
            exp_labels: { ...watchTarget('cardano-mainnet'), severity: 'page' },
            exp_annotations: {
              summary: 'The node of cardano-mainnet forged a block it did not adopt',
            },
          },
        ],
      },
      // Fifteen minutes later the window holds no increase.
      { eval_time: '25m', alertname: 'VigilCardanoBlockNotAdopted', exp_alerts: [] },
    ],
  },
  {
    name: 'VigilCardanoBlockDelay: the 5 s CDF below 0.9 for an hour; a dip or the 3 s point do not count',
    interval: '5m',
    input_series: [
      {
        series: sel('vigil_watch_cardano_block_delay_cdf', {
          ...watchTarget('cardano-mainnet'),
          within: '5s',
        }),
        values: '0.95x3 0.85x25',
      },
      {
        series: sel('vigil_watch_cardano_block_delay_cdf', {
          ...watchTarget('cardano-mainnet'),
          within: '3s',
        }),
        values: '0.5x28',
      },
      // Thirty minutes below, then back.
      {
        series: sel('vigil_watch_cardano_block_delay_cdf', {
          ...watchTarget('cardano-preprod'),
          within: '5s',
        }),
        values: '0.95x3 0.8x6 0.95x18',
      },
    ],
    alert_rule_test: [
      { eval_time: '15m', alertname: 'VigilCardanoBlockDelay', exp_alerts: [] },
      // Below since 20m: pending until 80m.
      { eval_time: '75m', alertname: 'VigilCardanoBlockDelay', exp_alerts: [] },
      {
        eval_time: '85m',
        alertname: 'VigilCardanoBlockDelay',
        exp_alerts: [
          {
            exp_labels: { ...watchTarget('cardano-mainnet'), within: '5s', severity: 'warning' },
            exp_annotations: {
              summary:
                'Only 85% of blocks reached the node of cardano-mainnet within 5 s of their slot for an hour (the guidelines want > 90 % within 4 s)',
            },
          },
        ],
      },
    ],
  },
];

/** Target labels of a Decred wallet's series from `vigil watch`. */
const walletTarget = (wallet: string, chain = 'decred-mainnet') => ({
  ...watchTarget(chain),
  wallet,
});
const walletSummary = (wallet: string, rest: string) =>
  `Voting wallet ${wallet} of decred-mainnet ${rest}`;

/**
 * A wallet gauge that pages after 5m at 0: alpha at 0 from 2m to 9m, beta flapping (never 5m
 * in a row), gamma fine, a testnet wallet at 1.
 */
function walletGaugeCases(
  alert: string,
  metric: string,
  severity: string,
  rest: string,
): RuleTestGroup {
  return {
    name: `${alert}: ${metric} at 0 for 5m; flapping or recovered does not count`,
    interval: '1m',
    input_series: [
      { series: sel(metric, walletTarget('alpha')), values: '1 1 0x7 1x5' },
      { series: sel(metric, walletTarget('beta')), values: '1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0' },
      { series: sel(metric, walletTarget('gamma')), values: '1x15' },
      { series: sel(metric, walletTarget('alpha', 'decred-testnet')), values: '1x15' },
    ],
    alert_rule_test: [
      { eval_time: '1m', alertname: alert, exp_alerts: [] },
      // At 0 since 2m: pending at 6m, firing from 7m.
      { eval_time: '6m', alertname: alert, exp_alerts: [] },
      {
        eval_time: '8m',
        alertname: alert,
        exp_alerts: [
          {
            exp_labels: { ...walletTarget('alpha'), severity },
            exp_annotations: { summary: walletSummary('alpha', rest) },
          },
        ],
      },
      { eval_time: '11m', alertname: alert, exp_alerts: [] },
    ],
  };
}

/**
 * A drift gauge that warns after 15m at 1: alpha drifts from 5m on, beta for 10m only, gamma
 * never; `extra` is the drift's own label (agenda, key, tspend).
 */
function driftCases(
  alert: string,
  metric: string,
  extra: Record<string, string>,
  rest: string,
): RuleTestGroup {
  return {
    name: `${alert}: ${metric} at 1 for 15m; a shorter drift does not count`,
    interval: '1m',
    input_series: [
      { series: sel(metric, { ...walletTarget('alpha'), ...extra }), values: '0x4 1x30' },
      { series: sel(metric, { ...walletTarget('beta'), ...extra }), values: '0x4 1x9 0x20' },
      { series: sel(metric, { ...walletTarget('gamma'), ...extra }), values: '0x34' },
    ],
    alert_rule_test: [
      { eval_time: '4m', alertname: alert, exp_alerts: [] },
      // alpha and beta drift from 5m; beta stops at 15m; alpha fires from 20m.
      { eval_time: '18m', alertname: alert, exp_alerts: [] },
      {
        eval_time: '22m',
        alertname: alert,
        exp_alerts: [
          {
            exp_labels: { ...walletTarget('alpha'), ...extra, severity: 'warning' },
            exp_annotations: { summary: walletSummary('alpha', rest) },
          },
        ],
      },
    ],
  };
}

const AGENDA = 'blake3pow';
const PI_KEY = '03f6e7041f1cf51ee10e0a01cd2b0385ce3cd9debaabb2296f7e9dee9329da946c';
const TSPEND = 'a1c3e7b2f9d4c1e0a5b6c7d8e9f00112233445566778899aabbccddeeff00112';

const splitSummary = (rest: string) => `The voting wallets of decred-mainnet ${rest}`;

/** Cases for the Decred watcher's rules (DECRED_ALERT_RULES). */
export const DECRED_RULE_TESTS: RuleTestGroup[] = [
  {
    name: 'VigilDecredVoteChoiceSplit: wallets watched one per host disagree for 15m; agreement, a short split and another agenda do not count',
    interval: '1m',
    input_series: [
      // alpha says yes throughout; beta says yes, then no from 5m (its yes series ends).
      {
        series: sel('vigil_watch_decred_vote_choice', {
          ...walletTarget('alpha'),
          agenda: AGENDA,
          choice: 'yes',
        }),
        values: '1x40',
      },
      {
        series: sel('vigil_watch_decred_vote_choice', {
          ...walletTarget('beta'),
          agenda: AGENDA,
          choice: 'yes',
        }),
        values: '1x4',
      },
      {
        series: sel('vigil_watch_decred_vote_choice', {
          ...walletTarget('beta'),
          agenda: AGENDA,
          choice: 'no',
        }),
        values: '_x4 1x36',
      },
      // Another agenda: both abstain all along; a third wallet splits only for 10m.
      ...['alpha', 'beta'].map((w) => ({
        series: sel('vigil_watch_decred_vote_choice', {
          ...walletTarget(w),
          agenda: 'maxblocksize',
          choice: 'abstain',
        }),
        values: '1x40',
      })),
      {
        series: sel('vigil_watch_decred_vote_choice', {
          ...walletTarget('gamma'),
          agenda: 'maxblocksize',
          choice: 'yes',
        }),
        values: '_x4 1x9',
      },
    ],
    alert_rule_test: [
      { eval_time: '4m', alertname: 'VigilDecredVoteChoiceSplit', exp_alerts: [] },
      { eval_time: '18m', alertname: 'VigilDecredVoteChoiceSplit', exp_alerts: [] },
      {
        eval_time: '22m',
        alertname: 'VigilDecredVoteChoiceSplit',
        exp_alerts: [
          {
            exp_labels: { chain_id: 'decred-mainnet', agenda: AGENDA, severity: 'warning' },
            exp_annotations: {
              summary: splitSummary(`do not all vote the same on agenda ${AGENDA}`),
            },
          },
        ],
      },
    ],
  },
  {
    name: 'VigilDecredLiveTicketSplit: live-ticket counts differ for 15m; equal counts and a short difference do not count',
    interval: '1m',
    input_series: [
      {
        series: sel('vigil_watch_decred_tickets', { ...walletTarget('alpha'), status: 'live' }),
        values: '20x40',
      },
      // beta misses a ticket purchase for 10m (short), then for good from 20m.
      {
        series: sel('vigil_watch_decred_tickets', { ...walletTarget('beta'), status: 'live' }),
        values: '20x4 19x9 20x5 19x20',
      },
      // Immature counts differ all along: not live, not counted.
      {
        series: sel('vigil_watch_decred_tickets', { ...walletTarget('beta'), status: 'immature' }),
        values: '3x40',
      },
    ],
    alert_rule_test: [
      { eval_time: '16m', alertname: 'VigilDecredLiveTicketSplit', exp_alerts: [] },
      { eval_time: '30m', alertname: 'VigilDecredLiveTicketSplit', exp_alerts: [] },
      {
        eval_time: '37m',
        alertname: 'VigilDecredLiveTicketSplit',
        exp_alerts: [
          {
            exp_labels: { chain_id: 'decred-mainnet', severity: 'warning' },
            exp_annotations: {
              summary: splitSummary('do not hold the same number of live tickets'),
            },
          },
        ],
      },
    ],
  },
  walletGaugeCases(
    'VigilDecredWalletNotVoting',
    'vigil_watch_decred_voting',
    'page',
    'is not voting (started without enablevoting): tickets it is called for are missed',
  ),
  walletGaugeCases(
    'VigilDecredWalletLocked',
    'vigil_watch_decred_unlocked',
    'page',
    'is locked: it cannot sign votes',
  ),
  walletGaugeCases(
    'VigilDecredWalletDisconnected',
    'vigil_watch_decred_daemon_connected',
    'page',
    'has lost its dcrd: it does not see its tickets called',
  ),
  walletGaugeCases(
    'VigilDecredWalletProbeFailing',
    'vigil_watch_decred_up',
    'warning',
    'cannot be fully read by the watcher (see vigil_watch_decred_probe_errors_total)',
  ),
  {
    name: 'VigilDecredMissedVotes: the missed count rises on the wallets, one alert per chain; voted tickets, a new wallet and a steady count do not count',
    interval: '1m',
    input_series: [
      // Both mainnet wallets see the miss at 10m.
      {
        series: sel('vigil_watch_decred_tickets', { ...walletTarget('alpha'), status: 'missed' }),
        values: '2x9 3x80',
      },
      {
        series: sel('vigil_watch_decred_tickets', { ...walletTarget('beta'), status: 'missed' }),
        values: '2x9 3x80',
      },
      // Votes keep coming: not a miss.
      {
        series: sel('vigil_watch_decred_tickets', { ...walletTarget('alpha'), status: 'voted' }),
        values: '250+1x90',
      },
      // A testnet wallet first read at 30m with misses it had before.
      {
        series: sel('vigil_watch_decred_tickets', {
          ...walletTarget('alpha', 'decred-testnet'),
          status: 'missed',
        }),
        values: '_x29 7x60',
      },
    ],
    alert_rule_test: [
      { eval_time: '9m', alertname: 'VigilDecredMissedVotes', exp_alerts: [] },
      {
        eval_time: '15m',
        alertname: 'VigilDecredMissedVotes',
        exp_alerts: [
          {
            exp_labels: { chain_id: 'decred-mainnet', severity: 'page' },
            exp_annotations: {
              summary: 'The voting wallets of decred-mainnet count a missed vote in the last hour',
            },
          },
        ],
      },
      // An hour after the miss the window holds none.
      { eval_time: '75m', alertname: 'VigilDecredMissedVotes', exp_alerts: [] },
    ],
  },
  driftCases(
    'VigilDecredLiveTicketParity',
    'vigil_watch_decred_live_tickets_drift',
    {},
    'does not hold the same live tickets as the other voting wallets',
  ),
  driftCases(
    'VigilDecredVoteChoiceDrift',
    'vigil_watch_decred_vote_choice_drift',
    { agenda: AGENDA },
    `votes otherwise than the other voting wallets on agenda ${AGENDA}`,
  ),
  driftCases(
    'VigilDecredTreasuryPolicyDrift',
    'vigil_watch_decred_treasury_policy_drift',
    { key: PI_KEY },
    `has another treasury policy than the other voting wallets for key ${PI_KEY}`,
  ),
  driftCases(
    'VigilDecredTSpendPolicyDrift',
    'vigil_watch_decred_tspend_policy_drift',
    { tspend: TSPEND },
    `has another policy than the other voting wallets for treasury spend ${TSPEND}`,
  ),
];

const dot = (chain: string) => watchTarget(chain);
const dotSummary = (chain: string, rest: string) => `The Polkadot node of ${chain} ${rest}`;
const dotAlert = (chain: string, severity: string, rest: string, extra = {}) => ({
  exp_labels: { ...dot(chain), ...extra, severity },
  exp_annotations: { summary: dotSummary(chain, rest) },
});

/** Cases for the Polkadot watcher's rules (POLKADOT_ALERT_RULES). */
export const POLKADOT_RULE_TESTS: RuleTestGroup[] = [
  {
    name: 'VigilPolkadotNodeDown: up at 0 for 2m; a flapping node does not count',
    interval: '1m',
    input_series: [
      { series: sel('vigil_watch_polkadot_up', dot('polkadot')), values: '1 1 0x6 1x3' },
      { series: sel('vigil_watch_polkadot_up', dot('kusama')), values: '1 0 1 0 1 0 1 0 1 0 1 0' },
    ],
    alert_rule_test: [
      // Down since 2m: pending at 2m and 3m, firing from 4m.
      { eval_time: '3m', alertname: 'VigilPolkadotNodeDown', exp_alerts: [] },
      {
        eval_time: '5m',
        alertname: 'VigilPolkadotNodeDown',
        exp_alerts: [
          dotAlert('polkadot', 'page', 'does not answer system_health or chain_getHeader'),
        ],
      },
      { eval_time: '10m', alertname: 'VigilPolkadotNodeDown', exp_alerts: [] },
    ],
  },
  {
    name: 'VigilPolkadotFinalityLag: best − finalized above 20 for 5m; not while syncing or down',
    interval: '1m',
    input_series: [
      {
        series: sel('vigil_watch_polkadot_finality_lag_blocks', dot('polkadot')),
        values: '2x4 30x10 2x5',
      },
      { series: sel('vigil_watch_polkadot_is_syncing', dot('polkadot')), values: '0x20' },
      { series: sel('vigil_watch_polkadot_up', dot('polkadot')), values: '1x20' },
      // A syncing node is far behind by nature.
      { series: sel('vigil_watch_polkadot_finality_lag_blocks', dot('kusama')), values: '50x20' },
      { series: sel('vigil_watch_polkadot_is_syncing', dot('kusama')), values: '1x20' },
      { series: sel('vigil_watch_polkadot_up', dot('kusama')), values: '1x20' },
      // A node that is down keeps its last reading: VigilPolkadotNodeDown speaks.
      { series: sel('vigil_watch_polkadot_finality_lag_blocks', dot('westend')), values: '50x20' },
      { series: sel('vigil_watch_polkadot_is_syncing', dot('westend')), values: '0x20' },
      { series: sel('vigil_watch_polkadot_up', dot('westend')), values: '0x20' },
    ],
    alert_rule_test: [
      // Behind from 5m: pending until 10m.
      { eval_time: '8m', alertname: 'VigilPolkadotFinalityLag', exp_alerts: [] },
      {
        eval_time: '12m',
        alertname: 'VigilPolkadotFinalityLag',
        exp_alerts: [
          dotAlert(
            'polkadot',
            'page',
            'is 30 blocks between best and finalized: GRANDPA is not finalizing',
          ),
        ],
      },
      { eval_time: '18m', alertname: 'VigilPolkadotFinalityLag', exp_alerts: [] },
    ],
  },
  {
    name: 'VigilPolkadotNoPeers: no peers for 2m while the node answers',
    interval: '1m',
    input_series: [
      { series: sel('vigil_watch_polkadot_peers', dot('polkadot')), values: '5 5 0x6 5x5' },
      { series: sel('vigil_watch_polkadot_up', dot('polkadot')), values: '1x15' },
      { series: sel('vigil_watch_polkadot_peers', dot('kusama')), values: '0x15' },
      { series: sel('vigil_watch_polkadot_up', dot('kusama')), values: '0x15' },
    ],
    alert_rule_test: [
      { eval_time: '3m', alertname: 'VigilPolkadotNoPeers', exp_alerts: [] },
      {
        eval_time: '5m',
        alertname: 'VigilPolkadotNoPeers',
        exp_alerts: [dotAlert('polkadot', 'page', 'has no peers')],
      },
      { eval_time: '10m', alertname: 'VigilPolkadotNoPeers', exp_alerts: [] },
    ],
  },
  {
    name: 'VigilPolkadotSyncingTooLong: a major sync of 30m; a shorter one does not count',
    interval: '1m',
    input_series: [
      { series: sel('vigil_watch_polkadot_is_syncing', dot('polkadot')), values: '0 1x40 0x5' },
      { series: sel('vigil_watch_polkadot_up', dot('polkadot')), values: '1x50' },
      { series: sel('vigil_watch_polkadot_is_syncing', dot('kusama')), values: '1 0 1x20 0x30' },
      { series: sel('vigil_watch_polkadot_up', dot('kusama')), values: '1x50' },
    ],
    alert_rule_test: [
      { eval_time: '25m', alertname: 'VigilPolkadotSyncingTooLong', exp_alerts: [] },
      {
        eval_time: '35m',
        alertname: 'VigilPolkadotSyncingTooLong',
        exp_alerts: [
          dotAlert(
            'polkadot',
            'warning',
            'has been in a major sync for 30 minutes: it does not author or vote',
          ),
        ],
      },
      { eval_time: '45m', alertname: 'VigilPolkadotSyncingTooLong', exp_alerts: [] },
    ],
  },
  {
    name: 'VigilPolkadotSessionKeysNotOnChain: the keystore lacks the on-chain keys for 5m',
    interval: '1m',
    input_series: [
      {
        series: sel('vigil_watch_polkadot_session_keys_onchain', dot('polkadot')),
        values: '1 1 0x8 1x3',
      },
      { series: sel('vigil_watch_polkadot_session_keys_onchain', dot('kusama')), values: '1x13' },
    ],
    alert_rule_test: [
      { eval_time: '6m', alertname: 'VigilPolkadotSessionKeysNotOnChain', exp_alerts: [] },
      {
        eval_time: '8m',
        alertname: 'VigilPolkadotSessionKeysNotOnChain',
        exp_alerts: [
          dotAlert(
            'polkadot',
            'page',
            "lacks the private keys of the validator's on-chain session keys (author_hasSessionKeys false): it cannot author or vote",
          ),
        ],
      },
      { eval_time: '12m', alertname: 'VigilPolkadotSessionKeysNotOnChain', exp_alerts: [] },
    ],
  },
  {
    name: 'VigilPolkadotParaFinalityLag: above 10 blocks for 5m; flapping or at the threshold does not count',
    interval: '1m',
    input_series: [
      {
        series: sel('vigil_watch_polkadot_para_finality_lag_blocks', dot('polkadot')),
        values: '0 0 15x8 1x3',
      },
      {
        series: sel('vigil_watch_polkadot_para_finality_lag_blocks', dot('kusama')),
        values: '12 0 12 0 12 0 12 0 12 0 12 0 12 0',
      },
      {
        series: sel('vigil_watch_polkadot_para_finality_lag_blocks', dot('westend')),
        values: '10x13',
      },
    ],
    alert_rule_test: [
      { eval_time: '6m', alertname: 'VigilPolkadotParaFinalityLag', exp_alerts: [] },
      {
        eval_time: '8m',
        alertname: 'VigilPolkadotParaFinalityLag',
        exp_alerts: [
          dotAlert(
            'polkadot',
            'warning',
            'holds its finality vote 15 blocks back for approval checking or disputes',
          ),
        ],
      },
      { eval_time: '12m', alertname: 'VigilPolkadotParaFinalityLag', exp_alerts: [] },
    ],
  },
  {
    name: 'VigilPolkadotBestHeightStalled: no new best block for 5m while the node answers',
    interval: '1m',
    input_series: [
      // 100 … 150 until 5m, then stuck at 150 until 15m, moving again from 16m.
      {
        series: sel('vigil_watch_polkadot_best_height', dot('polkadot')),
        values: '100+10x5 150x10 160+10x5',
      },
      { series: sel('vigil_watch_polkadot_up', dot('polkadot')), values: '1x21' },
      { series: sel('vigil_watch_polkadot_best_height', dot('kusama')), values: '200+10x21' },
      { series: sel('vigil_watch_polkadot_up', dot('kusama')), values: '1x21' },
      // Down: the last reading stays, VigilPolkadotNodeDown speaks.
      { series: sel('vigil_watch_polkadot_best_height', dot('westend')), values: '300x21' },
      { series: sel('vigil_watch_polkadot_up', dot('westend')), values: '0x21' },
    ],
    alert_rule_test: [
      // A new series has one sample (no change yet) for less than the `for`.
      { eval_time: '1m', alertname: 'VigilPolkadotBestHeightStalled', exp_alerts: [] },
      { eval_time: '8m', alertname: 'VigilPolkadotBestHeightStalled', exp_alerts: [] },
      {
        eval_time: '13m',
        alertname: 'VigilPolkadotBestHeightStalled',
        exp_alerts: [dotAlert('polkadot', 'page', 'has imported no new best block for 5 minutes')],
      },
      { eval_time: '18m', alertname: 'VigilPolkadotBestHeightStalled', exp_alerts: [] },
    ],
  },
  {
    name: 'VigilPolkadotProbeFailing: a probe failing for 10m while the node is up; a blip or a down node do not count',
    interval: '1m',
    input_series: [
      {
        series: sel('vigil_watch_polkadot_probe_errors_total', {
          ...dot('polkadot'),
          probe: 'author_hasSessionKeys',
          kind: 'rpc',
        }),
        values: '0x3 0+10x20',
      },
      {
        series: sel('vigil_watch_polkadot_probe_errors_total', {
          ...dot('polkadot'),
          probe: 'metrics',
          kind: 'http',
        }),
        values: '0x5 1x20',
      },
      { series: sel('vigil_watch_polkadot_up', dot('polkadot')), values: '1x25' },
      {
        series: sel('vigil_watch_polkadot_probe_errors_total', {
          ...dot('kusama'),
          probe: 'system_health',
          kind: 'unreachable',
        }),
        values: '0+5x25',
      },
      { series: sel('vigil_watch_polkadot_up', dot('kusama')), values: '0x25' },
    ],
    alert_rule_test: [
      // Rising from 5m: pending until 15m.
      { eval_time: '12m', alertname: 'VigilPolkadotProbeFailing', exp_alerts: [] },
      {
        eval_time: '17m',
        alertname: 'VigilPolkadotProbeFailing',
        exp_alerts: [
          {
            exp_labels: { ...dot('polkadot'), probe: 'author_hasSessionKeys', severity: 'warning' },
            exp_annotations: {
              summary:
                'The watcher cannot read author_hasSessionKeys from the Polkadot node of polkadot (see vigil_watch_polkadot_probe_errors_total)',
            },
          },
        ],
      },
    ],
  },
];

/** Every rule test group, signer first: what `.ci/run` counts. */
const cmt = (chain: string) => watchTarget(chain);
const cmtAlert = (chain: string, severity: string, summary: string) => ({
  exp_labels: { ...cmt(chain), severity },
  exp_annotations: { summary },
});
const cmtNodeSays = (chain: string, rest: string) => `The CometBFT node of ${chain} ${rest}`;
const cmtValSays = (chain: string, rest: string) => `The validator watched on ${chain} ${rest}`;

/** Cases for the CometBFT watcher's rules (COMETBFT_ALERT_RULES). */
export const COMETBFT_RULE_TESTS: RuleTestGroup[] = [
  {
    name: 'VigilCometbftNodeDown: up at 0 for 2m; a flapping node does not count',
    interval: '1m',
    input_series: [
      { series: sel('vigil_watch_cometbft_up', cmt('hub-1')), values: '1 1 0x6 1x3' },
      { series: sel('vigil_watch_cometbft_up', cmt('osmo-1')), values: '1 0 1 0 1 0 1 0 1 0 1' },
    ],
    alert_rule_test: [
      { eval_time: '3m', alertname: 'VigilCometbftNodeDown', exp_alerts: [] },
      {
        eval_time: '5m',
        alertname: 'VigilCometbftNodeDown',
        exp_alerts: [
          cmtAlert(
            'hub-1',
            'page',
            cmtNodeSays('hub-1', 'does not answer /status (or answers for another chain)'),
          ),
        ],
      },
      { eval_time: '10m', alertname: 'VigilCometbftNodeDown', exp_alerts: [] },
    ],
  },
  {
    name: 'VigilCometbftChainStalled: stalled for 1m while the node answers; not while it is down',
    interval: '1m',
    input_series: [
      { series: sel('vigil_watch_cometbft_stalled', cmt('hub-1')), values: '0x3 1x5 0x3' },
      { series: sel('vigil_watch_cometbft_up', cmt('hub-1')), values: '1x12' },
      // Down and stalled: VigilCometbftNodeDown speaks, not this.
      { series: sel('vigil_watch_cometbft_stalled', cmt('osmo-1')), values: '1x12' },
      { series: sel('vigil_watch_cometbft_up', cmt('osmo-1')), values: '0x12' },
    ],
    alert_rule_test: [
      { eval_time: '3m', alertname: 'VigilCometbftChainStalled', exp_alerts: [] },
      {
        eval_time: '6m',
        alertname: 'VigilCometbftChainStalled',
        exp_alerts: [
          cmtAlert(
            'hub-1',
            'page',
            cmtNodeSays(
              'hub-1',
              "has seen no new block for longer than the watcher's stallSeconds",
            ),
          ),
        ],
      },
      { eval_time: '10m', alertname: 'VigilCometbftChainStalled', exp_alerts: [] },
    ],
  },
  {
    name: 'VigilCometbftMissedInARow: 5 misses in a row page at once; 4 do not',
    interval: '1m',
    input_series: [
      {
        series: sel('vigil_watch_cometbft_consecutive_missed', cmt('hub-1')),
        values: '0 2 4 5 7 0',
      },
      { series: sel('vigil_watch_cometbft_consecutive_missed', cmt('osmo-1')), values: '4x5' },
    ],
    alert_rule_test: [
      { eval_time: '2m', alertname: 'VigilCometbftMissedInARow', exp_alerts: [] },
      {
        eval_time: '4m',
        alertname: 'VigilCometbftMissedInARow',
        exp_alerts: [
          cmtAlert('hub-1', 'page', cmtValSays('hub-1', 'missed the last 7 blocks in a row')),
        ],
      },
      { eval_time: '5m', alertname: 'VigilCometbftMissedInARow', exp_alerts: [] },
    ],
  },
  {
    name: 'VigilCometbftMissedBlocks: over 10 % of the window for 5m; 10 % exactly, a short spell and an empty window do not count',
    interval: '1m',
    input_series: [
      {
        series: sel('vigil_watch_cometbft_missed_blocks_window', cmt('hub-1')),
        values: '2x3 15x8 2x3',
      },
      { series: sel('vigil_watch_cometbft_window_blocks', cmt('hub-1')), values: '100x15' },
      { series: sel('vigil_watch_cometbft_missed_blocks_window', cmt('osmo-1')), values: '10x15' },
      { series: sel('vigil_watch_cometbft_window_blocks', cmt('osmo-1')), values: '100x15' },
      { series: sel('vigil_watch_cometbft_missed_blocks_window', cmt('juno-1')), values: '0x15' },
      { series: sel('vigil_watch_cometbft_window_blocks', cmt('juno-1')), values: '0x15' },
    ],
    alert_rule_test: [
      { eval_time: '7m', alertname: 'VigilCometbftMissedBlocks', exp_alerts: [] },
      {
        eval_time: '9m',
        alertname: 'VigilCometbftMissedBlocks',
        exp_alerts: [
          cmtAlert(
            'hub-1',
            'warning',
            cmtValSays('hub-1', 'missed more than 10 % of the blocks in its window'),
          ),
        ],
      },
      { eval_time: '14m', alertname: 'VigilCometbftMissedBlocks', exp_alerts: [] },
    ],
  },
  {
    name: 'VigilCometbftJailed and VigilCometbftTombstoned: page as soon as the chain says so',
    interval: '1m',
    input_series: [
      { series: sel('vigil_watch_cometbft_jailed', cmt('hub-1')), values: '0 0 1 1' },
      { series: sel('vigil_watch_cometbft_tombstoned', cmt('hub-1')), values: '0 0 0 1' },
    ],
    alert_rule_test: [
      { eval_time: '1m', alertname: 'VigilCometbftJailed', exp_alerts: [] },
      {
        eval_time: '2m',
        alertname: 'VigilCometbftJailed',
        exp_alerts: [cmtAlert('hub-1', 'page', cmtValSays('hub-1', 'is jailed'))],
      },
      { eval_time: '2m', alertname: 'VigilCometbftTombstoned', exp_alerts: [] },
      {
        eval_time: '3m',
        alertname: 'VigilCometbftTombstoned',
        exp_alerts: [
          cmtAlert(
            'hub-1',
            'page',
            cmtValSays('hub-1', 'is tombstoned: it was slashed for double signing'),
          ),
        ],
      },
    ],
  },
  {
    name: 'VigilCometbftPeersLow: below peersMin for 5m while up; a blip does not count',
    interval: '1m',
    input_series: [
      { series: sel('vigil_watch_cometbft_peers_low', cmt('hub-1')), values: '0 1x7 0' },
      { series: sel('vigil_watch_cometbft_up', cmt('hub-1')), values: '1x9' },
      { series: sel('vigil_watch_cometbft_peers_low', cmt('osmo-1')), values: '0 1 1 0 1 1 0 1 1' },
      { series: sel('vigil_watch_cometbft_up', cmt('osmo-1')), values: '1x9' },
    ],
    alert_rule_test: [
      { eval_time: '5m', alertname: 'VigilCometbftPeersLow', exp_alerts: [] },
      {
        eval_time: '7m',
        alertname: 'VigilCometbftPeersLow',
        exp_alerts: [
          cmtAlert(
            'hub-1',
            'warning',
            cmtNodeSays('hub-1', "has fewer peers than the watcher's peersMin"),
          ),
        ],
      },
    ],
  },
];

export const RULE_TESTS: RuleTestGroup[] = [
  ...SIGNER_RULE_TESTS,
  ...CARDANO_RULE_TESTS,
  ...DECRED_RULE_TESTS,
  ...POLKADOT_RULE_TESTS,
  ...COMETBFT_RULE_TESTS,
];
