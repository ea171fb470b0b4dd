/**
 * Vigil's Grafana dashboards: the fleet overview, the signer, and one per chain watcher. Each
 * panel reads only metrics Vigil itself exports — the agent's (src/agent/metrics.ts, with the
 * `agent` label it sets on every series) and the chain watchers' (src/watch/*.ts, label
 * `chain_id`) — plus Prometheus' own `up` and `ALERTS`; test/grafana/dashboards.test.ts
 * holds every expression to that and parses it with promtool. Pure: no I/O.
 */
import {
  buildDashboard,
  type DashboardSpec,
  type GrafanaDashboard,
  type PanelSpec,
  type Steps,
} from './model.js';

/** The dashboards' fixed uids: links and bookmarks to them survive a re-provisioning. */
export const DASHBOARD_UIDS = [
  'vigil-fleet',
  'vigil-signer',
  'vigil-cometbft',
  'vigil-cardano',
  'vigil-decred',
  'vigil-polkadot',
] as const;
export type DashboardUid = (typeof DASHBOARD_UIDS)[number];

const UP_DOWN = { '0': ['down', 'red'], '1': ['up', 'green'] } as const;
const YES_NO_BAD = { '0': ['no', 'green'], '1': ['yes', 'red'] } as const;
const YES_NO_GOOD = { '0': ['no', 'red'], '1': ['yes', 'green'] } as const;
/** Red at 1 and above: a count that should be zero. */
const ZERO_IS_GOOD: Steps = [
  [null, 'green'],
  [1, 'red'],
];

/** `{agent=~"$agent"}` and friends: multi-value variables match as regexes. */
const AGENT = 'agent=~"$agent"';
const CHAIN = 'chain_id=~"$chain_id"';

const DAY = 86_400;
/** The Cardano KES alert bands (src/render/alert-rules.ts): 10 d, 5 d, 1 d. */
const KES_STEPS: Steps = [
  [null, 'red'],
  [DAY, 'orange'],
  [5 * DAY, 'yellow'],
  [10 * DAY, 'green'],
];

function stat(
  title: string,
  description: string,
  expr: string,
  extra: Partial<PanelSpec> = {},
): PanelSpec {
  return {
    title,
    kind: 'stat',
    description,
    queries: [{ expr, instant: true, legend: extra.queries?.[0]?.legend ?? '__auto' }],
    w: 4,
    h: 4,
    ...extra,
  };
}

function graph(
  title: string,
  description: string,
  queries: PanelSpec['queries'],
  extra: Partial<PanelSpec> = {},
): PanelSpec {
  return { title, kind: 'timeseries', description, queries, w: 12, h: 8, ...extra };
}

function table(
  title: string,
  description: string,
  expr: string,
  extra: Partial<PanelSpec> = {},
): PanelSpec {
  return {
    title,
    kind: 'table',
    description,
    queries: [{ expr, instant: true }],
    w: 12,
    h: 8,
    ...extra,
  };
}

/** Seconds since a unix-time gauge, only where it is set (0 means "not yet"). */
const ageOf = (selector: string) => `time() - (${selector} > 0)`;

const fleet: DashboardSpec = {
  uid: 'vigil-fleet',
  title: 'Vigil / Fleet',
  description:
    'Every agent and chain at a glance: agents up and ready, role holders, last signatures, refusals, chain watchers and firing alerts.',
  variables: [],
  sections: [
    {
      title: 'Agents',
      panels: [
        stat(
          'Agents up',
          'Agents Prometheus scraped successfully (job vigil).',
          'sum(up{job="vigil"})',
          {
            steps: [
              [null, 'red'],
              [1, 'green'],
            ],
          },
        ),
        stat(
          'Agents down',
          'Agents Prometheus could not scrape (alert VigilAgentDown).',
          'count(up{job="vigil"} == 0) or vector(0)',
          { steps: ZERO_IS_GOOD },
        ),
        stat(
          'Not-ready conditions',
          'Readiness conditions not holding across the fleet; such an agent refuses to sign (alert VigilAgentNotReady).',
          'count(vigil_ready == 0) or vector(0)',
          { steps: ZERO_IS_GOOD },
        ),
        stat(
          'Stores unreachable',
          'Agents whose last readiness check could not reach the watermark store.',
          'count(vigil_store_up == 0) or vector(0)',
          { steps: ZERO_IS_GOOD },
        ),
        stat(
          'Privval links down',
          'CometBFT privval links not connected (alert VigilPrivvalLinkDown).',
          'count(vigil_privval_link_up == 0) or vector(0)',
          { steps: ZERO_IS_GOOD },
        ),
        stat(
          'Safety refusals (1h)',
          'Refusals that stopped a double sign or distrust the store: conflict, store_behind_local, store_identity.',
          'sum(increase(vigil_guard_decisions_total{outcome="refused",reason=~"conflict|store_behind_local|store_identity"}[1h])) or vector(0)',
          { steps: ZERO_IS_GOOD },
        ),
      ],
    },
    {
      title: 'Roles and signatures',
      panels: [
        table(
          'Role holders',
          'Agents holding each exclusive role. Exactly one per role is healthy; 0 or 2 is alert VigilRoleHolders.',
          'sum by (role) (vigil_role_active)',
          {
            w: 8,
            steps: [
              [null, 'red'],
              [1, 'green'],
              [2, 'red'],
            ],
          },
        ),
        table(
          'Since the last signature',
          'Seconds since any agent last signed for each chain and family (chains whose agents signed since they started).',
          `min by (chain_id, family) (${ageOf('vigil_last_signed_timestamp_seconds')})`,
          { w: 8, unit: 's' },
        ),
        table(
          'Firing alerts',
          "Prometheus' firing alerts (the rules vigil plan renders) by name and severity.",
          'sum by (alertname, severity) (ALERTS{alertstate="firing"})',
          { w: 8 },
        ),
        graph(
          'Guard decisions',
          'Decisions per second across the fleet by outcome.',
          [
            {
              expr: 'sum by (outcome) (rate(vigil_guard_decisions_total[$__rate_interval]))',
              legend: '{{outcome}}',
            },
          ],
          { unit: 'ops', w: 12 },
        ),
        graph(
          'Refusals by reason',
          'Refused requests per second by reason.',
          [
            {
              expr: 'sum by (reason) (rate(vigil_guard_decisions_total{outcome="refused"}[$__rate_interval])) > 0',
              legend: '{{reason}}',
            },
          ],
          { unit: 'ops', w: 12 },
        ),
      ],
    },
    {
      title: 'Chain watchers',
      panels: [
        table(
          'CometBFT',
          'Per chain: the last /status answer was valid and of the right chain (up).',
          'min by (chain_id) (vigil_watch_cometbft_up)',
          { w: 6, mappings: UP_DOWN },
        ),
        table(
          'Cardano',
          'Per chain: the node metrics were readable (up).',
          'min by (chain_id) (vigil_watch_cardano_up)',
          { w: 6, mappings: UP_DOWN },
        ),
        table(
          'Decred wallets',
          'Per chain: 1 when every probe of every voting wallet answered (the lowest wallet up).',
          'min by (chain_id) (vigil_watch_decred_up)',
          { w: 6, mappings: UP_DOWN },
        ),
        table(
          'Polkadot',
          'Per chain: the node answered its RPC (up).',
          'min by (chain_id) (vigil_watch_polkadot_up)',
          { w: 6, mappings: UP_DOWN },
        ),
        stat(
          'CometBFT stalled',
          'Chains whose height has not advanced for the configured stallSeconds.',
          'sum(vigil_watch_cometbft_stalled) or vector(0)',
          { w: 6, steps: ZERO_IS_GOOD },
        ),
        stat(
          'Cardano KES left (min)',
          'Shortest time until a hot KES key expires; alerts at 10 d, 5 d, 1 d and 4 h.',
          'min(vigil_watch_cardano_kes_remaining_seconds)',
          { w: 6, unit: 'dtdurations', steps: KES_STEPS },
        ),
        stat(
          'Decred wallets not voting',
          'Voting wallets that are not voting, locked or disconnected from their dcrd.',
          'count(vigil_watch_decred_voting == 0 or vigil_watch_decred_unlocked == 0 or vigil_watch_decred_daemon_connected == 0) or vector(0)',
          { w: 6, steps: ZERO_IS_GOOD },
        ),
        stat(
          'Polkadot session keys off-chain',
          "Nodes whose session keys are not the chain's (author_hasSessionKeys false).",
          'count(vigil_watch_polkadot_session_keys_onchain == 0) or vector(0)',
          { w: 6, steps: ZERO_IS_GOOD },
        ),
      ],
    },
  ],
};

const signer: DashboardSpec = {
  uid: 'vigil-signer',
  title: 'Vigil / Signer',
  description:
    "The agents' guard: decisions and refusals, latency, last signatures per chain and key, watermarks, privval links, readiness and roles.",
  variables: [
    { name: 'agent', label: 'Agent', metric: 'vigil_ready', labelName: 'agent' },
    {
      name: 'chain_id',
      label: 'Chain',
      metric: `vigil_last_signed_timestamp_seconds{${AGENT}}`,
      labelName: 'chain_id',
    },
  ],
  sections: [
    {
      title: 'Health',
      panels: [
        table(
          'Readiness',
          'Each readiness condition per agent: 1 holds, 0 does not (the reason is in /readyz).',
          `vigil_ready{${AGENT}}`,
          { w: 8, mappings: { '0': ['not ready', 'red'], '1': ['ready', 'green'] } },
        ),
        table(
          'Store reachable',
          'Whether the last readiness check reached the watermark store.',
          `vigil_store_up{${AGENT}}`,
          { w: 4, mappings: UP_DOWN },
        ),
        table(
          'Privval links',
          'CometBFT privval links per node: connected (SecretConnection up, node identity checked) or not.',
          `vigil_privval_link_up{${AGENT},${CHAIN}}`,
          { w: 6, mappings: UP_DOWN },
        ),
        table(
          'Privval reconnects (1h)',
          'Connections to each node established again in the last hour.',
          `increase(vigil_privval_reconnects_total{${AGENT},${CHAIN}}[1h])`,
          { w: 6 },
        ),
      ],
    },
    {
      title: 'Signatures',
      panels: [
        table(
          'Since the last signature',
          'Seconds since each agent last granted a signature per chain, key and family (0 = none since start, left out).',
          ageOf(`vigil_last_signed_timestamp_seconds{${AGENT},${CHAIN}}`),
          { unit: 's' },
        ),
        table(
          'Since the last signature, per step',
          'Seconds since the last signature per step (CometBFT proposal/prevote/precommit, GRANDPA propose/prevote/precommit).',
          ageOf(`vigil_last_signed_step_timestamp_seconds{${AGENT},${CHAIN}}`),
          { unit: 's' },
        ),
        graph(
          'Last signed height / slot',
          'Height (CometBFT), slot (BABE/Aura/Cardano) or round (GRANDPA) of the last signature each agent granted.',
          [
            {
              expr: `vigil_last_signed_position{${AGENT},${CHAIN},component=~"height|slot|round"}`,
              legend: '{{agent}} {{chain_id}} {{key}} {{component}}',
            },
          ],
          { unit: 'none' },
        ),
        graph(
          'Watermark',
          'The stored watermark per chain, key and component as this agent last saw it.',
          [
            {
              expr: `vigil_watermark{${AGENT},${CHAIN},component=~"height|slot|setId|round"}`,
              legend: '{{agent}} {{chain_id}} {{key}} {{component}}',
            },
          ],
          { unit: 'none' },
        ),
      ],
    },
    {
      title: 'Decisions',
      panels: [
        graph(
          'Decisions by outcome',
          'Guard decisions per second by family and outcome (granted, replayed, refused).',
          [
            {
              expr: `sum by (family, outcome) (rate(vigil_guard_decisions_total{${AGENT}}[$__rate_interval]))`,
              legend: '{{family}} {{outcome}}',
            },
          ],
          { unit: 'ops' },
        ),
        graph(
          'Refusals by reason',
          'Refused requests per second by reason; conflict, store_behind_local and store_identity page.',
          [
            {
              expr: `sum by (reason) (rate(vigil_guard_decisions_total{${AGENT},outcome="refused"}[$__rate_interval])) > 0`,
              legend: '{{reason}}',
            },
          ],
          { unit: 'ops' },
        ),
        graph(
          'Decision latency',
          'p50 and p99 time from a request reaching the guard to its decision, store commit included.',
          [
            {
              expr: `histogram_quantile(0.5, sum by (le, family) (rate(vigil_guard_decision_seconds_bucket{${AGENT}}[$__rate_interval])))`,
              legend: 'p50 {{family}}',
            },
            {
              expr: `histogram_quantile(0.99, sum by (le, family) (rate(vigil_guard_decision_seconds_bucket{${AGENT}}[$__rate_interval])))`,
              legend: 'p99 {{family}}',
            },
          ],
          { unit: 's' },
        ),
        graph(
          'Store update latency',
          'p50 and p99 of the watermark store update per engine (group commit queueing, transaction, durable commit).',
          [
            {
              expr: `histogram_quantile(0.5, sum by (le, engine) (rate(vigil_store_update_seconds_bucket{${AGENT}}[$__rate_interval])))`,
              legend: 'p50 {{engine}}',
            },
            {
              expr: `histogram_quantile(0.99, sum by (le, engine) (rate(vigil_store_update_seconds_bucket{${AGENT}}[$__rate_interval])))`,
              legend: 'p99 {{engine}}',
            },
          ],
          { unit: 's' },
        ),
      ],
    },
    {
      title: 'Roles',
      panels: [
        graph(
          'Role active',
          'Which agent holds and has activated each exclusive role.',
          [{ expr: `vigil_role_active{${AGENT}}`, legend: '{{role}} {{agent}}' }],
          { unit: 'none', min: 0, max: 1 },
        ),
        graph(
          'Role events',
          'Role events per interval: acquired, activated, renewed, renewal-unconfirmed, deactivating, deactivated, action-failed.',
          [
            {
              expr: `sum by (role, event) (increase(vigil_role_events_total{${AGENT},event!="renewed"}[$__rate_interval])) > 0`,
              legend: '{{role}} {{event}}',
            },
          ],
          { unit: 'short' },
        ),
      ],
    },
    {
      title: 'Process',
      panels: [
        graph(
          'Resident memory',
          "The agent process' resident set size.",
          [{ expr: `process_resident_memory_bytes{${AGENT}}`, legend: '{{agent}}' }],
          { unit: 'bytes' },
        ),
        graph(
          'Event loop lag p99',
          "Node.js event loop lag (prom-client's default metrics): a blocked loop delays every decision.",
          [{ expr: `nodejs_eventloop_lag_p99_seconds{${AGENT}}`, legend: '{{agent}}' }],
          { unit: 's' },
        ),
      ],
    },
  ],
};

const cometbft: DashboardSpec = {
  uid: 'vigil-cometbft',
  title: 'Vigil / CometBFT',
  description:
    "CometBFT chains as the watcher sees them (tenderduty's conditions): height and stalls, peers, missed blocks, jailed and tombstoned, and the signer's last CometBFT signatures.",
  variables: [
    { name: 'chain_id', label: 'Chain', metric: 'vigil_watch_cometbft_up', labelName: 'chain_id' },
  ],
  sections: [
    {
      title: 'Node',
      panels: [
        stat(
          'Up',
          'The last /status answer was valid and of the right chain.',
          `min(vigil_watch_cometbft_up{${CHAIN}})`,
          {
            mappings: UP_DOWN,
          },
        ),
        stat(
          'Height',
          'latest_block_height the node reported last.',
          `max(vigil_watch_cometbft_height{${CHAIN}})`,
          {
            unit: 'none',
          },
        ),
        stat(
          'Height age',
          "Seconds since the node's height last advanced.",
          `max(vigil_watch_cometbft_height_age_seconds{${CHAIN}})`,
          {
            unit: 's',
            steps: [
              [null, 'green'],
              [30, 'orange'],
              [120, 'red'],
            ],
          },
        ),
        stat(
          'Stalled',
          'Height age above the configured stallSeconds.',
          `max(vigil_watch_cometbft_stalled{${CHAIN}})`,
          {
            mappings: YES_NO_BAD,
          },
        ),
        stat(
          'Catching up',
          'sync_info.catching_up of the node.',
          `max(vigil_watch_cometbft_catching_up{${CHAIN}})`,
          {
            mappings: YES_NO_BAD,
          },
        ),
        stat(
          'Peers',
          'n_peers of /net_info; red while below the configured peersMin.',
          `min(vigil_watch_cometbft_peers{${CHAIN}})`,
          {
            steps: [
              [null, 'red'],
              [1, 'orange'],
              [3, 'green'],
            ],
          },
        ),
        graph(
          'Height',
          'latest_block_height per chain.',
          [{ expr: `vigil_watch_cometbft_height{${CHAIN}}`, legend: '{{chain_id}}' }],
          { unit: 'none' },
        ),
        graph(
          'Block time lag',
          "Seconds between now and the node's latest block time.",
          [
            {
              expr: `time() - vigil_watch_cometbft_latest_block_time_seconds{${CHAIN}}`,
              legend: '{{chain_id}}',
            },
          ],
          { unit: 's' },
        ),
      ],
    },
    {
      title: 'Validator',
      panels: [
        stat(
          'Node is the validator',
          "The node's validator_info.address is the watched validator.",
          `max(vigil_watch_cometbft_node_is_validator{${CHAIN}})`,
          { mappings: YES_NO_GOOD },
        ),
        stat(
          'Bonded',
          'Staking status BOND_STATUS_BONDED.',
          `min(vigil_watch_cometbft_bonded{${CHAIN}})`,
          {
            mappings: YES_NO_GOOD,
          },
        ),
        stat('Jailed', 'Staking validator.jailed.', `max(vigil_watch_cometbft_jailed{${CHAIN}})`, {
          mappings: YES_NO_BAD,
        }),
        stat(
          'Tombstoned',
          'Slashing signing info tombstoned.',
          `max(vigil_watch_cometbft_tombstoned{${CHAIN}})`,
          {
            mappings: YES_NO_BAD,
          },
        ),
        stat(
          'Missed in window',
          'Misses among the last missedWindow commits checked, out of the window.',
          `max(vigil_watch_cometbft_missed_blocks_window{${CHAIN}})`,
          { steps: ZERO_IS_GOOD },
        ),
        stat(
          'Missed in a row',
          'Misses in a row up to the last commit checked.',
          `max(vigil_watch_cometbft_consecutive_missed{${CHAIN}})`,
          {
            steps: [
              [null, 'green'],
              [1, 'orange'],
              [5, 'red'],
            ],
          },
        ),
        graph(
          'Signed and missed blocks',
          'Commits checked per interval in which the validator signed, or whose signature is absent.',
          [
            {
              expr: `sum by (chain_id) (increase(vigil_watch_cometbft_signed_blocks_total{${CHAIN}}[$__rate_interval]))`,
              legend: 'signed {{chain_id}}',
            },
            {
              expr: `sum by (chain_id) (increase(vigil_watch_cometbft_missed_blocks_total{${CHAIN}}[$__rate_interval]))`,
              legend: 'missed {{chain_id}}',
            },
          ],
          { unit: 'short' },
        ),
        graph(
          'Missed blocks: watcher window and the chain',
          "The watcher's window misses and the chain's own missed_blocks_counter (slashing signing info).",
          [
            {
              expr: `vigil_watch_cometbft_missed_blocks_window{${CHAIN}}`,
              legend: 'window {{chain_id}}',
            },
            {
              expr: `vigil_watch_cometbft_sdk_missed_blocks_counter{${CHAIN}}`,
              legend: 'chain counter {{chain_id}}',
            },
          ],
          { unit: 'short' },
        ),
      ],
    },
    {
      title: 'Signer and probes',
      panels: [
        table(
          'Since the last CometBFT signature',
          'Seconds since an agent last signed for the chain, per step.',
          `min by (chain_id, step) (${ageOf(`vigil_last_signed_step_timestamp_seconds{family="cometbft",${CHAIN}}`)})`,
          { unit: 's' },
        ),
        graph(
          'Probe errors',
          'Probes without a usable answer per interval, by probe and kind.',
          [
            {
              expr: `sum by (chain_id, probe, kind) (increase(vigil_watch_cometbft_probe_errors_total{${CHAIN}}[$__rate_interval])) > 0`,
              legend: '{{chain_id}} {{probe}} {{kind}}',
            },
          ],
          { unit: 'short' },
        ),
      ],
    },
  ],
};

const cardano: DashboardSpec = {
  uid: 'vigil-cardano',
  title: 'Vigil / Cardano',
  description:
    "Cardano block producers as the watcher reads the node's metrics (gLiveView's view): KES expiry, forged/adopted/not adopted, missed slot checks, and the 4,000 ms block delay rule.",
  variables: [
    { name: 'chain_id', label: 'Chain', metric: 'vigil_watch_cardano_up', labelName: 'chain_id' },
  ],
  sections: [
    {
      title: 'Node and KES',
      panels: [
        stat(
          'Up',
          "The last scrape of the node's metrics was usable.",
          `min(vigil_watch_cardano_up{${CHAIN}})`,
          {
            mappings: UP_DOWN,
          },
        ),
        stat('Tip slot', "The node's tip slot.", `max(vigil_watch_cardano_slot{${CHAIN}})`, {
          unit: 'none',
        }),
        stat(
          'KES periods left',
          'remainingKESPeriods: periods until the operational certificate expires.',
          `min(vigil_watch_cardano_kes_periods_remaining{${CHAIN}})`,
          { unit: 'none' },
        ),
        stat(
          'KES expires in',
          'Estimated time until the hot KES key expires (alerts at 10 d, 5 d, 1 d, 4 h).',
          `min(vigil_watch_cardano_kes_remaining_seconds{${CHAIN}})`,
          { w: 6, unit: 'dtdurations', steps: KES_STEPS },
        ),
        table(
          'Metric naming',
          'Which naming scheme the node exports (new, new_nosuffix, legacy).',
          `vigil_watch_cardano_node_metric_names{${CHAIN}} == 1`,
          { w: 6, h: 4 },
        ),
        graph(
          'KES time left',
          'Estimated seconds until the hot KES key expires.',
          [{ expr: `vigil_watch_cardano_kes_remaining_seconds{${CHAIN}}`, legend: '{{chain_id}}' }],
          { unit: 'dtdurations', steps: KES_STEPS },
        ),
        graph(
          'Tip slot',
          "The node's tip slot.",
          [{ expr: `vigil_watch_cardano_slot{${CHAIN}}`, legend: '{{chain_id}}' }],
          { unit: 'none' },
        ),
      ],
    },
    {
      title: 'Block production',
      panels: [
        stat(
          'Forged (24h)',
          'Blocks forged in the last day (the node counters restart with it; increase() sees through that).',
          `sum(increase(vigil_watch_cardano_forged_blocks{${CHAIN}}[1d]))`,
          { w: 6 },
        ),
        stat(
          'Adopted (24h)',
          'Forged blocks the node adopted in the last day.',
          `sum(increase(vigil_watch_cardano_adopted_blocks{${CHAIN}}[1d]))`,
          { w: 6 },
        ),
        stat(
          'Not adopted (24h)',
          'Forged blocks the node did not adopt in the last day (alert VigilCardanoBlockNotAdopted).',
          `sum(increase(vigil_watch_cardano_didnt_adopt_blocks{${CHAIN}}[1d]))`,
          { w: 6, steps: ZERO_IS_GOOD },
        ),
        stat(
          'Missed slot checks (24h)',
          'Slots whose leadership check the node missed in the last day.',
          `sum(increase(vigil_watch_cardano_missed_slots{${CHAIN}}[1d]))`,
          { w: 6, steps: ZERO_IS_GOOD },
        ),
        graph(
          'Forged, adopted, not adopted',
          'Per interval.',
          [
            {
              expr: `sum by (chain_id) (increase(vigil_watch_cardano_forged_blocks{${CHAIN}}[$__rate_interval]))`,
              legend: 'forged {{chain_id}}',
            },
            {
              expr: `sum by (chain_id) (increase(vigil_watch_cardano_adopted_blocks{${CHAIN}}[$__rate_interval]))`,
              legend: 'adopted {{chain_id}}',
            },
            {
              expr: `sum by (chain_id) (increase(vigil_watch_cardano_didnt_adopt_blocks{${CHAIN}}[$__rate_interval]))`,
              legend: 'not adopted {{chain_id}}',
            },
          ],
          { unit: 'short' },
        ),
        graph(
          'Block delay CDF',
          'Fraction of recent blocks fetched within 1 s, 3 s and 5 s of their slot; the large-pool guideline wants >90 % within 4 s (between the 3 s and 5 s lines).',
          [
            {
              expr: `vigil_watch_cardano_block_delay_cdf{${CHAIN}}`,
              legend: '{{chain_id}} within {{within}}',
            },
          ],
          { unit: 'percentunit', min: 0, max: 1 },
        ),
      ],
    },
    {
      title: 'Signer and probes',
      panels: [
        table(
          'Since the last slot signature',
          'Seconds since an agent last authorized a slot per chain (slot keys sign only when they lead a slot).',
          `min by (chain_id) (${ageOf(`vigil_last_signed_timestamp_seconds{family="slot",${CHAIN}}`)})`,
          { unit: 's' },
        ),
        graph(
          'Probe errors',
          'Scrapes of the node without a usable answer per interval, by kind.',
          [
            {
              expr: `sum by (chain_id, kind) (increase(vigil_watch_cardano_probe_errors_total{${CHAIN}}[$__rate_interval])) > 0`,
              legend: '{{chain_id}} {{kind}}',
            },
          ],
          { unit: 'short' },
        ),
      ],
    },
  ],
};

const WALLET = 'wallet=~"$wallet"';

const decred: DashboardSpec = {
  uid: 'vigil-decred',
  title: 'Vigil / Decred',
  description:
    'Decred solo-voting wallets: connected, unlocked, voting, ticket counts, and drift of live tickets, vote choices and treasury/tspend policies across the voting wallets.',
  variables: [
    { name: 'chain_id', label: 'Chain', metric: 'vigil_watch_decred_up', labelName: 'chain_id' },
    {
      name: 'wallet',
      label: 'Wallet',
      metric: `vigil_watch_decred_up{${CHAIN}}`,
      labelName: 'wallet',
    },
  ],
  sections: [
    {
      title: 'Wallets',
      panels: [
        table(
          'Up',
          'Every probe of the wallet answered usably.',
          `vigil_watch_decred_up{${CHAIN},${WALLET}}`,
          {
            w: 6,
            mappings: UP_DOWN,
          },
        ),
        table(
          'Connected to dcrd',
          "walletinfo daemonconnected: the wallet's dcrd answered its ping.",
          `vigil_watch_decred_daemon_connected{${CHAIN},${WALLET}}`,
          { w: 6, mappings: YES_NO_GOOD },
        ),
        table(
          'Unlocked',
          'walletinfo unlocked: the wallet can sign votes.',
          `vigil_watch_decred_unlocked{${CHAIN},${WALLET}}`,
          { w: 6, mappings: YES_NO_GOOD },
        ),
        table(
          'Voting',
          'walletinfo voting: started with enablevoting.',
          `vigil_watch_decred_voting{${CHAIN},${WALLET}}`,
          { w: 6, mappings: YES_NO_GOOD },
        ),
        table(
          'SPV',
          'walletinfo spv: an SPV wallet cannot vote.',
          `vigil_watch_decred_spv{${CHAIN},${WALLET}}`,
          { w: 6, mappings: YES_NO_BAD },
        ),
        table(
          'Vote version and bits',
          'walletinfo voteversion and votebits per wallet.',
          `vigil_watch_decred_vote_version{${CHAIN},${WALLET}} or vigil_watch_decred_vote_bits{${CHAIN},${WALLET}}`,
          { w: 9 },
        ),
        table(
          'Block height',
          "getstakeinfo blockheight: the wallet's tip.",
          `vigil_watch_decred_block_height{${CHAIN},${WALLET}}`,
          { w: 9 },
        ),
      ],
    },
    {
      title: 'Tickets',
      panels: [
        graph(
          'Live tickets',
          'Live tickets per wallet; the voting wallets should hold the same.',
          [
            {
              expr: `vigil_watch_decred_tickets{${CHAIN},${WALLET},status="live"}`,
              legend: '{{wallet}}',
            },
          ],
          { unit: 'none' },
        ),
        graph(
          'Missed and expired tickets',
          'Missed tickets only grow; any increase is alert VigilDecredTicketsMissed.',
          [
            {
              expr: `vigil_watch_decred_tickets{${CHAIN},${WALLET},status=~"missed|expired"}`,
              legend: '{{wallet}} {{status}}',
            },
          ],
          { unit: 'none' },
        ),
        table(
          'Tickets by status',
          "getstakeinfo's counts by status per wallet.",
          `vigil_watch_decred_tickets{${CHAIN},${WALLET}}`,
          { w: 24 },
        ),
      ],
    },
    {
      title: 'Drift across voting wallets',
      panels: [
        stat(
          'Live-ticket drift',
          "Wallets whose live-ticket count differs from the others'.",
          `sum(vigil_watch_decred_live_tickets_drift{${CHAIN}}) or vector(0)`,
          { w: 6, steps: ZERO_IS_GOOD },
        ),
        stat(
          'Vote-choice drift',
          "Wallet × agenda pairs whose choice differs from the others'.",
          `sum(vigil_watch_decred_vote_choice_drift{${CHAIN}}) or vector(0)`,
          { w: 6, steps: ZERO_IS_GOOD },
        ),
        stat(
          'Treasury policy drift',
          "Wallet × treasury key pairs whose policy differs from the others'.",
          `sum(vigil_watch_decred_treasury_policy_drift{${CHAIN}}) or vector(0)`,
          { w: 6, steps: ZERO_IS_GOOD },
        ),
        stat(
          'Tspend policy drift',
          "Wallet × tspend pairs whose policy differs from the others'.",
          `sum(vigil_watch_decred_tspend_policy_drift{${CHAIN}}) or vector(0)`,
          { w: 6, steps: ZERO_IS_GOOD },
        ),
        table(
          'Vote choices',
          "Each wallet's choice per agenda (getvotechoices).",
          `vigil_watch_decred_vote_choice{${CHAIN},${WALLET}} == 1`,
        ),
        graph(
          'Probe errors',
          'Wallet calls without a usable answer per interval, by method and kind.',
          [
            {
              expr: `sum by (wallet, probe, kind) (increase(vigil_watch_decred_probe_errors_total{${CHAIN},${WALLET}}[$__rate_interval])) > 0`,
              legend: '{{wallet}} {{probe}} {{kind}}',
            },
          ],
          { unit: 'short' },
        ),
      ],
    },
  ],
};

const polkadot: DashboardSpec = {
  uid: 'vigil-polkadot',
  title: 'Vigil / Polkadot',
  description:
    "Polkadot validators: best and finalized heights and their lag, peers, syncing, parachain finality lag, whether the node's session keys are the on-chain ones, and the signer's GRANDPA signatures.",
  variables: [
    { name: 'chain_id', label: 'Chain', metric: 'vigil_watch_polkadot_up', labelName: 'chain_id' },
  ],
  sections: [
    {
      title: 'Node',
      panels: [
        stat(
          'Up',
          'The node answered its RPC in the last poll.',
          `min(vigil_watch_polkadot_up{${CHAIN}})`,
          {
            mappings: UP_DOWN,
          },
        ),
        stat('Best', 'Best block height.', `max(vigil_watch_polkadot_best_height{${CHAIN}})`, {
          unit: 'none',
        }),
        stat(
          'Finalized',
          'Finalized block height.',
          `max(vigil_watch_polkadot_finalized_height{${CHAIN}})`,
          {
            unit: 'none',
          },
        ),
        stat(
          'Finality lag',
          'Blocks between best and finalized.',
          `max(vigil_watch_polkadot_finality_lag_blocks{${CHAIN}})`,
          {
            unit: 'none',
            steps: [
              [null, 'green'],
              [5, 'orange'],
              [20, 'red'],
            ],
          },
        ),
        stat('Peers', 'Connected peers.', `min(vigil_watch_polkadot_peers{${CHAIN}})`, {
          steps: [
            [null, 'red'],
            [1, 'orange'],
            [5, 'green'],
          ],
        }),
        stat(
          'Syncing',
          'system_health isSyncing.',
          `max(vigil_watch_polkadot_is_syncing{${CHAIN}})`,
          {
            mappings: YES_NO_BAD,
          },
        ),
        stat(
          'Session keys on chain',
          'author_hasSessionKeys: the node holds the session keys the chain expects of the validator.',
          `min(vigil_watch_polkadot_session_keys_onchain{${CHAIN}})`,
          { w: 6, mappings: YES_NO_GOOD },
        ),
        stat(
          'Para finality lag',
          'Parachain-validation finality lag in blocks.',
          `max(vigil_watch_polkadot_para_finality_lag_blocks{${CHAIN}})`,
          {
            w: 6,
            unit: 'none',
            steps: [
              [null, 'green'],
              [5, 'orange'],
              [20, 'red'],
            ],
          },
        ),
        stat(
          'Last poll',
          'Seconds since the watcher last polled the node.',
          `max(time() - vigil_watch_polkadot_last_poll_timestamp_seconds{${CHAIN}})`,
          {
            w: 6,
            unit: 's',
            steps: [
              [null, 'green'],
              [60, 'orange'],
              [300, 'red'],
            ],
          },
        ),
        graph(
          'Best and finalized',
          'Best and finalized heights.',
          [
            { expr: `vigil_watch_polkadot_best_height{${CHAIN}}`, legend: 'best {{chain_id}}' },
            {
              expr: `vigil_watch_polkadot_finalized_height{${CHAIN}}`,
              legend: 'finalized {{chain_id}}',
            },
          ],
          { unit: 'none' },
        ),
        graph(
          'Finality lag',
          'Relay-chain and parachain-validation finality lag in blocks.',
          [
            {
              expr: `vigil_watch_polkadot_finality_lag_blocks{${CHAIN}}`,
              legend: 'relay {{chain_id}}',
            },
            {
              expr: `vigil_watch_polkadot_para_finality_lag_blocks{${CHAIN}}`,
              legend: 'para {{chain_id}}',
            },
          ],
          { unit: 'none' },
        ),
      ],
    },
    {
      title: 'Signer',
      panels: [
        table(
          'Since the last GRANDPA signature',
          'Seconds since an agent last signed a GRANDPA vote per chain and stage.',
          `min by (chain_id, step) (${ageOf(`vigil_last_signed_step_timestamp_seconds{family="grandpa",${CHAIN}}`)})`,
          { unit: 's' },
        ),
        graph(
          'GRANDPA round',
          'Round of the last GRANDPA vote each agent signed.',
          [
            {
              expr: `vigil_last_signed_position{family="grandpa",component="round",${CHAIN}}`,
              legend: '{{agent}} {{chain_id}}',
            },
          ],
          { unit: 'none' },
        ),
      ],
    },
  ],
};

const SPECS: Readonly<Record<DashboardUid, DashboardSpec>> = {
  'vigil-fleet': fleet,
  'vigil-signer': signer,
  'vigil-cometbft': cometbft,
  'vigil-cardano': cardano,
  'vigil-decred': decred,
  'vigil-polkadot': polkadot,
};

/** Every Vigil dashboard as Grafana JSON model objects, in DASHBOARD_UIDS order. */
export function vigilDashboards(): GrafanaDashboard[] {
  return DASHBOARD_UIDS.map((uid) => buildDashboard(SPECS[uid]));
}
