/**
 * A Decred voting wallet that votes as the topology says, after every start: dcrwallet starts
 * locked and with default vote choices, so a oneshot unit bound to it unlocks it with the
 * operator's private passphrase (a root-only file, never in user data) and applies the vote
 * choices, treasury and tspend policies over the wallet's JSON-RPC, then checks them back.
 *
 * Methods and positional parameters as dcrwallet defines them (decred/dcrwallet
 * rpc/jsonrpc/types/methods.go at release-v2.0.6, recorded with the result fields and policy
 * words in test/render/upstream-node-flags.json and checked there): walletpassphrase
 * [passphrase, timeout] (0: until locked again), setvotechoice [agendaid, choiceid],
 * settreasurypolicy [key, policy], settspendpolicy [hash, policy]; getvotechoices answers
 * {version, choices: [{agendaid, choiceid, ...}]}; walletinfo {unlocked, voting, ...}.
 */
import { DCRWALLET_RPC_PORT } from '../topology/plan.js';
import type { DecredChain } from '../topology/schema.js';

export const DCRWALLET_SETUP_COMMAND = '/usr/local/sbin/vigil-dcrwallet-setup';
export const DCRWALLET_SETUP_CONFIG = '/etc/decred/dcrwallet-setup.json';
export const DCRWALLET_SETUP_UNIT = 'dcrwallet-setup.service';
/** The wallet's private passphrase: put there by the operator (root, 0600), never rendered. */
export const WALLET_PASSPHRASE_FILE = '/etc/decred/wallet-passphrase';

/** The dcrwallet JSON-RPC method that applies each kind of setting, one call per entry. */
export const DCRWALLET_SETTING_METHODS = {
  voteChoices: 'setvotechoice',
  treasuryPolicies: 'settreasurypolicy',
  tspendPolicies: 'settspendpolicy',
} as const;

export interface DcrwalletSetup {
  readonly url: string;
  readonly caFile: string;
  readonly username: string;
  /** dcrwallet.conf: the RPC password is read from its `password=` line. */
  readonly walletConf: string;
  readonly passphraseFile: string;
  readonly waitSeconds: number;
  readonly voteChoices: Record<string, string>;
  readonly treasuryPolicies: Record<string, string>;
  readonly tspendPolicies: Record<string, string>;
}

export function dcrwalletSetup(chain: DecredChain): DcrwalletSetup {
  const sorted = (r: Record<string, string>) =>
    Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    url: `https://127.0.0.1:${DCRWALLET_RPC_PORT}`,
    caFile: '/var/lib/dcrwallet/rpc.cert',
    username: 'vigil',
    walletConf: '/etc/decred/dcrwallet.conf',
    passphraseFile: WALLET_PASSPHRASE_FILE,
    waitSeconds: 600,
    voteChoices: sorted(chain.voteChoices),
    treasuryPolicies: sorted(chain.treasuryPolicies),
    tspendPolicies: sorted(chain.tspendPolicies),
  };
}

/**
 * `vigil-dcrwallet-setup CONFIG`: POSIX sh, curl and jq. Every JSON body is built by jq, so no
 * value is ever spliced into JSON or a command line by the shell; the password goes to curl
 * through a config file on stdin, not argv.
 */
export const DCRWALLET_SETUP_SCRIPT = `#!/bin/sh
set -eu
cfg="$1"
get() { jq -r "$1" "$cfg"; }
url="$(get .url)"; ca="$(get .caFile)"; user="$(get .username)"
pass="$(sed -n 's/^password=//p' "$(get .walletConf)" | head -n 1)"
phrasefile="$(get .passphraseFile)"
if [ ! -s "$phrasefile" ]; then
  echo "vigil-dcrwallet-setup: $phrasefile is missing: put the wallet's private passphrase there (root, 0600)" >&2
  exit 1
fi
rpc() {
  # rpc METHOD PARAMS_JSON: the result, or exit 1 with the wallet's error.
  body="$(jq -cn --arg m "$1" --argjson p "$2" '{jsonrpc: "1.0", id: "vigil", method: $m, params: $p}')"
  answer="$(printf 'user = "%s:%s"\\n' "$user" "$pass" | curl --config - --silent --show-error --fail-with-body \\
    --cacert "$ca" --max-time 30 -H 'Content-Type: application/json' --data-binary "$body" "$url")" || {
    echo "vigil-dcrwallet-setup: $1 failed: $answer" >&2; return 1; }
  if [ "$(printf '%s' "$answer" | jq -r '.error == null')" != true ]; then
    echo "vigil-dcrwallet-setup: $1: $(printf '%s' "$answer" | jq -c .error)" >&2; return 1
  fi
  printf '%s' "$answer" | jq -c .result
}
waited=0
until rpc walletinfo '[]' >/dev/null 2>&1; do
  waited=$((waited + 2))
  if [ "$waited" -gt "$(get .waitSeconds)" ]; then echo "vigil-dcrwallet-setup: the wallet's RPC did not answer" >&2; exit 1; fi
  sleep 2
done
rpc walletpassphrase "$(jq -cn --rawfile p "$phrasefile" '[($p | rtrimstr("\\n")), 0]')" >/dev/null
for kind in ${Object.entries(DCRWALLET_SETTING_METHODS)
  .map(([setting, method]) => `${setting}:${method}`)
  .join(' ')}; do
  key="\${kind%%:*}"; method="\${kind#*:}"
  jq -c --arg k "$key" '.[$k] | to_entries[] | [.key, .value]' "$cfg" | while read -r params; do
    rpc "$method" "$params" >/dev/null
  done
done
info="$(rpc walletinfo '[]')"
[ "$(printf '%s' "$info" | jq -r '.unlocked and .voting')" = true ] || {
  echo "vigil-dcrwallet-setup: the wallet is not unlocked and voting: $info" >&2; exit 1; }
have="$(rpc getvotechoices '[]')"
jq -e --argjson have "$have" '.voteChoices | to_entries | all(.key as $a | .value as $c
  | any($have.choices[]; .agendaid == $a and .choiceid == $c))' "$cfg" >/dev/null || {
  echo "vigil-dcrwallet-setup: vote choices did not take: $have" >&2; exit 1; }
echo "vigil-dcrwallet-setup: unlocked, voting, $(jq '.voteChoices | length' "$cfg") choice(s) applied"
`;

/** Runs after each start of dcrwallet (PartOf + WantedBy), as root for the passphrase file. */
export function dcrwalletSetupUnit(): string {
  return [
    '[Unit]',
    'Description=Unlock the Decred voting wallet and apply its vote choices and policies',
    'After=dcrwallet.service',
    'Requires=dcrwallet.service',
    'PartOf=dcrwallet.service',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    `ExecStart=${DCRWALLET_SETUP_COMMAND} ${DCRWALLET_SETUP_CONFIG}`,
    'Restart=on-failure',
    'RestartSec=30',
    '',
    '[Install]',
    'WantedBy=dcrwallet.service',
    '',
  ].join('\n');
}
