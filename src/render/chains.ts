/** Chain node configuration: CometBFT, Cardano, Decred and Substrate (Polkadot). */
import { isIP } from 'node:net';
import { stringify as toToml } from 'smol-toml';
import { peersOf, DCRD_RPC_PORT, DCRWALLET_RPC_PORT } from '../topology/plan.js';
import type { Plan, PlannedHost } from '../topology/plan.js';
import type { Artifact, CardanoChain, Chain, CometbftChain } from '../topology/schema.js';
import type { PlanState } from './state.js';
import { cardanoNonProducingFlag } from '../chains/cardano/node-version.js';
import {
  DCRWALLET_SETUP_COMMAND,
  DCRWALLET_SETUP_CONFIG,
  DCRWALLET_SETUP_SCRIPT,
  DCRWALLET_SETUP_UNIT,
  dcrwalletSetup,
  dcrwalletSetupUnit,
} from './decred.js';
import { cosmosAppToml, cosmosSdkApp } from './cosmos-app.js';

export interface RenderedFile {
  /** Absolute path on the host. */
  readonly path: string;
  readonly content: string;
  readonly permissions: string;
  readonly owner: string;
  /** Packaged units that read this file and must restart when it changes (units Vigil
   * renders are found from their own text, see src/render/bundle.ts). */
  readonly restarts?: readonly string[];
}

export const SERVICE_USER = 'vigild';
/**
 * The chain node's own user. Never the agent's: a node compromised through its p2p or RPC
 * surface must not read the validator key, the agent's config or the watermark store
 * (all `vigild`, 0600/0640, in directories the node's user cannot enter).
 */
export const NODE_USER = 'chainnode';

export function chainDir(chain: Chain): string {
  return `/opt/${chain.name}`;
}
export function chainDataDir(chain: Chain): string {
  return `/var/lib/${chain.name}`;
}

/** The executable inside an artifact: its `binary`, else the URL's file name without archive suffix. */
export function artifactBinary(a: Artifact): string {
  if (a.binary) return a.binary;
  const base = new URL(a.url).pathname.split('/').pop() ?? 'node';
  return base.replace(/\.(tar\.gz|tgz|tar\.xz|zip)$/, '');
}

/** The installed command name: archives are linked into <dir>/bin by their base name. */
export function binaryName(a: Artifact): string {
  return artifactBinary(a).split('/').pop()!;
}

/** The extra public peers the topology lists for this host (`hosts[].peers`). */
export function topologyPeers(
  plan: Plan,
  host: PlannedHost,
): ReadonlyArray<{ address: string; port: number; id?: string | undefined }> {
  return plan.topology.hosts[host.index]?.peers ?? [];
}

/** `host:port`, with an IPv6 literal in brackets. */
function hostPort(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

/** A peer's libp2p multiaddr with its peer id, as `--reserved-nodes` takes it. */
export function peerMultiaddr(address: string, port: number, peerId: string): string {
  const kind = isIP(address);
  const proto = kind === 4 ? 'ip4' : kind === 6 ? 'ip6' : 'dns';
  return `/${proto}/${address}/tcp/${port}/p2p/${peerId}`;
}

function nodeAddr(h: PlannedHost, chain: CometbftChain): string {
  return `${h.cometbftNodeKey!.id}@${h.vpnAddress}:${chain.p2pPort}`;
}

/** Where the node reads its genesis: CometBFT's default `genesis_file`, under its home. */
export function genesisPath(chain: CometbftChain): string {
  return `${chainDataDir(chain)}/config/genesis.json`;
}

export function genesisUnitName(chain: CometbftChain): string {
  return `${chain.name}-genesis.service`;
}

export const GENESIS_COMMAND = '/usr/local/sbin/vigil-genesis';

/**
 * `vigil-genesis URL SHA256 DEST`: downloads a genesis file, refuses it unless the sha256 of
 * the download matches, unpacks gzip, and moves it into place in one rename, so the node never
 * sees a partial genesis and a refused download leaves nothing behind.
 */
export const GENESIS_SCRIPT = `#!/bin/sh
# vigil-genesis URL SHA256 DEST: verified genesis download (plain JSON or gzip).
set -eu
url="$1"; sum="$2"; dest="$3"
tmp="$(mktemp -d "$(dirname "$dest")/.genesis.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
curl --fail --silent --show-error --location --retry 5 --output "$tmp/download" "$url"
echo "$sum  $tmp/download" | sha256sum --check --strict --quiet -
if gzip -t "$tmp/download" 2>/dev/null; then
  gzip -dc "$tmp/download" >"$tmp/genesis.json"
else
  mv "$tmp/download" "$tmp/genesis.json"
fi
chmod 0644 "$tmp/genesis.json"
mv "$tmp/genesis.json" "$dest"
`;

/**
 * The oneshot the node's unit requires: it fetches the genesis once (skipped when the file is
 * there) as the node's user, which owns the node's home.
 */
export function genesisUnit(chain: CometbftChain): string {
  const dest = genesisPath(chain);
  return [
    '[Unit]',
    `Description=Fetch and verify the genesis of ${chain.chainId}`,
    'Wants=network-online.target',
    'After=network-online.target',
    `ConditionPathExists=!${dest}`,
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    `User=${NODE_USER}`,
    `ExecStart=${GENESIS_COMMAND} ${chain.genesis.url} ${chain.genesis.sha256} ${dest}`,
    'NoNewPrivileges=true',
    'ProtectSystem=full',
    'PrivateTmp=true',
    '',
  ].join('\n');
}

export function cometbftConfig(plan: Plan, host: PlannedHost, chain: CometbftChain): string {
  const validators = peersOf(plan.hosts, host, 'validator');
  const sentries = peersOf(plan.hosts, host, 'sentry');
  const isValidator = host.role === 'validator';
  const peers = isValidator ? sentries : validators;
  const config = {
    moniker: host.name,
    // The node listens for its signer; Vigil agents dial in over the VPN.
    ...(isValidator
      ? { priv_validator_laddr: `tcp://${host.vpnAddress}:${chain.privvalPort}` }
      : {}),
    rpc: { laddr: 'tcp://127.0.0.1:26657' },
    p2p: {
      laddr: isValidator
        ? `tcp://${host.vpnAddress}:${chain.p2pPort}`
        : `tcp://0.0.0.0:${chain.p2pPort}`,
      persistent_peers: [
        ...peers.map((p) => nodeAddr(p, chain)),
        // Lint keeps validators free of extra peers; these are a sentry's public ones.
        ...topologyPeers(plan, host).map((p) => `${p.id}@${hostPort(p.address, p.port)}`),
      ].join(','),
      // Validators dial only their sentries; the sentries find the rest of the network.
      ...(isValidator
        ? {}
        : { seeds: chain.seeds.map((p) => `${p.id}@${hostPort(p.address, p.port)}`).join(',') }),
      pex: !isValidator,
      // Validator peers are private VPN addresses, which strict address books reject.
      addr_book_strict: false,
      ...(isValidator
        ? {}
        : {
            private_peer_ids: validators.map((v) => v.cometbftNodeKey!.id).join(','),
            unconditional_peer_ids: validators.map((v) => v.cometbftNodeKey!.id).join(','),
          }),
    },
    consensus: { double_sign_check_height: chain.doubleSignCheckHeight },
    // Only an empty node state-syncs; one with blocks ignores the section.
    ...(chain.stateSync
      ? {
          statesync: {
            enable: true,
            rpc_servers: chain.stateSync.rpcServers.join(','),
            trust_height: chain.stateSync.trustHeight,
            trust_hash: chain.stateSync.trustHash,
            trust_period: chain.stateSync.trustPeriod,
          },
        }
      : {}),
    instrumentation: {
      prometheus: true,
      prometheus_listen_addr: `${host.vpnAddress}:${chain.metricsPort}`,
    },
  };
  return `# CometBFT config for ${host.name} (${host.role}) on ${chain.chainId}.\n${toToml(config)}\n`;
}

/**
 * `vigil-cardano-config IN OUT HOST PORT`: the release's config.json with the node's metrics
 * on HOST:PORT (the VPN address, where the monitor scrapes and nftables admits only it), for
 * both tracing systems: the new one's `PrometheusSimple [suffix|nosuffix] HOST PORT` backends
 * (cardano-node 10.x configs ship `PrometheusSimple suffix 127.0.0.1 12798`) and the legacy
 * `hasPrometheus: [HOST, PORT]`. OUT sits beside IN because the node resolves the genesis
 * files relative to its config's directory. Run at install and after every upgrade.
 */
export const CARDANO_CONFIG_SCRIPT = `#!/bin/sh
set -eu
in="$1"; out="$2"; host="$3"; port="$4"
jq --arg host "$host" --argjson port "$port" '
  .hasPrometheus = [$host, $port]
  | if ((.TraceOptions[""].backends? // null) | type) == "array" then
      .TraceOptions[""].backends |= map(
        if startswith("PrometheusSimple") then
          (split(" ") | map(select(. != ""))) as $w
          | ([$w[0]] + (if ($w[1] == "suffix" or $w[1] == "nosuffix") then [$w[1]] else [] end)
             + [$host, ($port | tostring)]) | join(" ")
        else . end)
    else . end
' "$in" > "$out.tmp"
chmod 0644 "$out.tmp"
mv "$out.tmp" "$out"
`;
export const CARDANO_CONFIG_COMMAND = '/usr/local/sbin/vigil-cardano-config';

export function cardanoConfigPaths(chain: CardanoChain): { upstream: string; rendered: string } {
  const base = `${chainDir(chain)}/share/${chain.network}`;
  return { upstream: `${base}/config.json`, rendered: `${base}/config.vigil.json` };
}

export function cardanoTopology(plan: Plan, host: PlannedHost, chain: CardanoChain): string {
  const producers = peersOf(plan.hosts, host, 'producer');
  const relays = peersOf(plan.hosts, host, 'relay').filter((r) => r.name !== host.name);
  const ap = (h: PlannedHost) => ({ address: h.vpnAddress, port: chain.p2pPort });
  if (host.role === 'producer') {
    return (
      JSON.stringify(
        {
          bootstrapPeers: null,
          localRoots: [
            {
              accessPoints: relays.map(ap),
              advertise: false,
              trustable: true,
              hotValency: relays.length,
            },
          ],
          publicRoots: [],
          useLedgerAfterSlot: -1,
        },
        null,
        2,
      ) + '\n'
    );
  }
  return (
    JSON.stringify(
      {
        bootstrapPeers: chain.bootstrapPeers,
        localRoots: [
          {
            accessPoints: [...producers, ...relays].map(ap),
            advertise: false,
            trustable: true,
            hotValency: producers.length + relays.length,
          },
        ],
        publicRoots: [
          {
            accessPoints: topologyPeers(plan, host).map((p) => ({
              address: p.address,
              port: p.port,
            })),
            advertise: false,
          },
        ],
        useLedgerAfterSlot: chain.useLedgerAfterSlot,
      },
      null,
      2,
    ) + '\n'
  );
}

function ini(section: string, entries: Array<[string, string | number]>): string {
  return `[${section}]\n${entries.map(([k, v]) => `${k}=${v}`).join('\n')}\n`;
}

export function decredConfigs(
  host: PlannedHost,
  chain: Extract<Chain, { kind: 'decred' }>,
  state: PlanState,
  peers: ReadonlyArray<{ address: string; port: number }> = [],
): { dcrd: string; dcrwallet: string } {
  const password = state.secret(`${host.name}.dcrd-rpc`);
  const walletPassword = state.secret(`${host.name}.dcrwallet-rpc`);
  const net: Array<[string, string | number]> = chain.network === 'testnet' ? [['testnet', 1]] : [];
  const dcrd = ini('Application Options', [
    ['datadir', '/var/lib/dcrd/data'],
    ['logdir', '/var/lib/dcrd/logs'],
    ...net,
    ['listen', `0.0.0.0:${chain.p2pPort}`],
    // dcrd's `addpeer` (config.go: "Add a peer to connect with at startup"), repeatable.
    ...peers.map((p): [string, string] => ['addpeer', hostPort(p.address, p.port)]),
    ['rpclisten', `127.0.0.1:${DCRD_RPC_PORT}`],
    ['rpcuser', 'vigil'],
    ['rpcpass', password],
    ['rpccert', '/var/lib/dcrd/rpc.cert'],
    ['rpckey', '/var/lib/dcrd/rpc.key'],
  ]);
  const dcrwallet = ini('Application Options', [
    ['appdata', '/var/lib/dcrwallet'],
    ...net,
    // A voting wallet needs its own full node: never SPV.
    ['rpcconnect', `127.0.0.1:${DCRD_RPC_PORT}`],
    ['cafile', '/var/lib/dcrd/rpc.cert'],
    ['dcrdusername', 'vigil'],
    ['dcrdpassword', password],
    ['enablevoting', 1],
    ['rpclisten', `127.0.0.1:${DCRWALLET_RPC_PORT}`],
    ['username', 'vigil'],
    ['password', walletPassword],
    ['nogrpc', 1],
  ]);
  return { dcrd, dcrwallet };
}

export interface UnitSpec {
  readonly name: string;
  readonly description: string;
  readonly execStart: string;
  readonly user: string;
  readonly after?: readonly string[];
  /** Run before ExecStart; a leading `+` runs it as root (systemd.service(5)). */
  readonly execStartPre?: readonly string[];
  /** Units stopped when this one starts (and ordered before it, so they are down first). */
  readonly conflicts?: readonly string[];
  /**
   * Deaths that must not restart the unit: a supervised validator SIGKILLed at the lease
   * deadline must stay down (Restart=on-failure would bring it back as a validator).
   */
  readonly restartPrevent?: readonly string[];
  /** Units that must have succeeded first (a oneshot such as the genesis download). */
  readonly requires?: readonly string[];
  /** Stopped by systemd whenever this unit is not active (the node's watchdog). */
  readonly bindsTo?: string;
  /** Started at boot; passive signers' nodes are left for Vigil to start on promotion. */
  readonly enable: boolean;
}

export function renderUnit(u: UnitSpec): string {
  const after = [
    'network-online.target',
    'wg-quick@wg0.service',
    ...(u.after ?? []),
    ...(u.requires ?? []),
    ...(u.conflicts ?? []),
    ...(u.bindsTo ? [u.bindsTo] : []),
  ];
  return [
    '[Unit]',
    `Description=${u.description}`,
    `Wants=network-online.target`,
    // With After=, BindsTo= means this unit can only be active while the other one is.
    ...(u.bindsTo ? [`BindsTo=${u.bindsTo}`] : []),
    ...(u.requires?.length ? [`Requires=${u.requires.join(' ')}`] : []),
    ...(u.conflicts?.length ? [`Conflicts=${u.conflicts.join(' ')}`] : []),
    `After=${after.join(' ')}`,
    '',
    '[Service]',
    `User=${u.user}`,
    ...(u.execStartPre ?? []).map((c) => `ExecStartPre=${c}`),
    `ExecStart=${u.execStart}`,
    'Restart=on-failure',
    'RestartSec=5',
    ...(u.restartPrevent?.length ? [`RestartPreventExitStatus=${u.restartPrevent.join(' ')}`] : []),
    'LimitNOFILE=65536',
    'NoNewPrivileges=true',
    'ProtectSystem=full',
    'PrivateTmp=true',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** The watchdog that starts and stops a supervised node (see src/watchdog). */
export const WATCHDOG_UNIT = 'vigil-watchdog.service';

/**
 * Block producers whose nodes hold the key themselves (Substrate, Cardano) can only be made
 * exclusive by starting at most one node at a time. On guarded chains the Vigil watchdog
 * starts the node once the agent holds the lease, so boot must not start it, and the node's
 * unit is bound to the watchdog's: if the watchdog dies, systemd stops the node.
 */
export function supervisedByVigil(host: PlannedHost): boolean {
  const c = host.chain;
  return (
    c !== undefined &&
    c.guarded &&
    (c.kind === 'substrate' || c.kind === 'cardano') &&
    (host.role === 'validator' || host.role === 'producer')
  );
}

/**
 * Where a Cardano producer's forging credentials live. A single producer reads them from
 * /etc/cardano/keys. A guarded pair keeps them in `standby/` and the node is pointed at
 * `forging/`: the watchdog renames them across (one filesystem, so each move is atomic).
 */
export function cardanoKeyPaths(where: 'single' | 'forging' | 'standby'): {
  kes: string;
  vrf: string;
  cert: string;
} {
  const dir = where === 'single' ? CARDANO_KEYS_DIR : `${CARDANO_KEYS_DIR}/${where}`;
  return { kes: `${dir}/kes.skey`, vrf: `${dir}/vrf.skey`, cert: `${dir}/node.cert` };
}

export const CARDANO_KEYS_DIR = '/etc/cardano/keys';

/** Creates the forging and standby key directories, owned by the node's user, 0700. */
export const CARDANO_KEY_DIRS_COMMAND = `/usr/bin/install -d -m 0700 -o ${NODE_USER} -g ${NODE_USER} ${CARDANO_KEYS_DIR}/forging ${CARDANO_KEYS_DIR}/standby`;

/** The unit that keeps a supervised Substrate validator's database synced while it waits. */
export function substrateSyncUnit(chain: Chain): string {
  return `${chain.name}-sync.service`;
}

/** The systemd unit(s) for a host's chain software, with the flags each chain needs. */
export function substrateNodeKeyPath(chain: Chain): string {
  return `${chainDataDir(chain)}/node-key`;
}

export function chainUnits(plan: Plan, host: PlannedHost): UnitSpec[] {
  const chain = host.chain;
  if (!chain) return [];
  const enable = host.active && !supervisedByVigil(host);
  const bound = supervisedByVigil(host) ? { bindsTo: WATCHDOG_UNIT } : {};
  const dir = chainDir(chain);
  const data = chainDataDir(chain);
  switch (chain.kind) {
    case 'cometbft':
      return [
        {
          name: `${chain.name}-node.service`,
          description: `CometBFT node for ${chain.chainId}`,
          execStart: `${dir}/bin/${binaryName(chain.binary)} start --home ${data}`,
          user: NODE_USER,
          requires: [genesisUnitName(chain)],
          enable,
        },
      ];
    case 'substrate': {
      const flags = [
        `--chain ${chain.chainSpec}`,
        `--name ${host.name}`,
        `--base-path ${data}`,
        host.role === 'validator' ? '--validator' : '',
        // `--port` conflicts with `--listen-addr` (clap refuses both); the address holds the port.
        `--listen-addr /ip4/0.0.0.0/tcp/${chain.p2pPort}`,
        // An authority refuses to start without an existing key file (NetworkKeyNotFound).
        `--node-key-file ${substrateNodeKeyPath(chain)}`,
        ...topologyPeers(plan, host).map(
          (p) => `--reserved-nodes ${peerMultiaddr(p.address, p.port, p.id!)}`,
        ),
        `--prometheus-port ${chain.metricsPort}`,
        // Bound on all interfaces; nftables lets only the monitor in, over the VPN.
        '--prometheus-external',
        '--rpc-methods Safe',
        '--rpc-port 9944',
        '--no-mdns',
      ].filter((f) => f !== '');
      const exe = `${dir}/bin/${binaryName(chain.binary)}`;
      const node: UnitSpec = {
        name: `${chain.name}-node.service`,
        description: `Substrate node for ${chain.chainSpec}`,
        execStart: `${exe} ${flags.join(' ')}`,
        user: NODE_USER,
        enable,
        ...bound,
      };
      if (!supervisedByVigil(host)) return [node];
      // A supervised validator's standby keeps the same base path synced as a plain full node
      // (no --validator: no BABE authoring, no GRANDPA voting), so promotion is a restart on
      // a synced database. Starting the validator stops the sync node first (Conflicts= plus
      // ordering); the watchdog starts the sync node again after every demotion.
      const sync = substrateSyncUnit(chain);
      return [
        { ...node, conflicts: [sync], restartPrevent: ['SIGKILL'] },
        {
          name: sync,
          description: `Substrate full node for ${chain.chainSpec} (standby: syncs until promoted)`,
          execStart: `${exe} ${flags.filter((f) => f !== '--validator').join(' ')}`,
          user: NODE_USER,
          enable: true,
        },
      ];
    }
    case 'cardano': {
      const listen = host.role === 'producer' ? host.vpnAddress : '0.0.0.0';
      const hot = supervisedByVigil(host);
      const k = cardanoKeyPaths(hot ? 'forging' : 'single');
      const keys =
        host.role === 'producer'
          ? ` --shelley-kes-key ${k.kes} --shelley-vrf-key ${k.vrf} --shelley-operational-certificate ${k.cert}`
          : '';
      // A guarded pair runs both nodes synced: each starts without forging and the watchdog
      // moves the keys in and sends SIGHUP on promotion (cardano-node re-reads its forging
      // credentials on SIGHUP and forges only if the files are there).
      const standby = hot ? ` ${cardanoNonProducingFlag(chain.binary.version)!}` : '';
      return [
        {
          name: `${chain.name}-node.service`,
          description: `Cardano ${host.role} (${chain.network})`,
          execStart:
            `${dir}/bin/${binaryName(chain.binary)} run --config ${cardanoConfigPaths(chain).rendered}` +
            ` --topology /etc/cardano/topology.json --database-path ${data}/db --socket-path ${data}/node.socket` +
            ` --host-addr ${listen} --port ${chain.p2pPort}${keys}${standby}`,
          user: NODE_USER,
          enable: hot || enable,
          ...(hot ? { execStartPre: [`+${CARDANO_KEY_DIRS_COMMAND}`] } : {}),
          ...bound,
        },
      ];
    }
    case 'decred':
      return [
        {
          name: 'dcrd.service',
          description: `dcrd full node (${chain.network})`,
          execStart: `${dir}/bin/${binaryName(chain.dcrd)} --configfile=/etc/decred/dcrd.conf`,
          user: NODE_USER,
          enable: true,
        },
        {
          name: 'dcrwallet.service',
          description: 'dcrwallet voting wallet',
          execStart: `${dir}/bin/${binaryName(chain.dcrwallet)} --configfile=/etc/decred/dcrwallet.conf`,
          user: NODE_USER,
          after: ['dcrd.service'],
          enable: true,
        },
      ];
  }
}

/** Chain config files for a host. */
export function chainFiles(plan: Plan, host: PlannedHost, state: PlanState): RenderedFile[] {
  const chain = host.chain;
  if (!chain) return [];
  const f = (path: string, content: string, permissions = '0644'): RenderedFile => ({
    path,
    content,
    permissions,
    owner: `${NODE_USER}:${NODE_USER}`,
  });
  switch (chain.kind) {
    case 'cometbft': {
      const app = cosmosSdkApp(chain);
      return [
        f(`${chainDataDir(chain)}/config/config.toml`, cometbftConfig(plan, host, chain)),
        // The Cosmos SDK reads app.toml from the same config directory under --home.
        ...(app
          ? [f(`${chainDataDir(chain)}/config/app.toml`, cosmosAppToml(host, chain, app))]
          : []),
        f(`${chainDataDir(chain)}/config/node_key.json`, host.cometbftNodeKey!.json, '0600'),
        {
          path: GENESIS_COMMAND,
          content: GENESIS_SCRIPT,
          permissions: '0755',
          owner: 'root:root',
        },
        {
          path: `/etc/systemd/system/${genesisUnitName(chain)}`,
          content: genesisUnit(chain),
          permissions: '0644',
          owner: 'root:root',
        },
      ];
    }
    case 'cardano':
      return [f('/etc/cardano/topology.json', cardanoTopology(plan, host, chain))];
    case 'decred': {
      const c = decredConfigs(host, chain, state, topologyPeers(plan, host));
      return [
        f('/etc/decred/dcrd.conf', c.dcrd, '0600'),
        f('/etc/decred/dcrwallet.conf', c.dcrwallet, '0600'),
        // Applied by dcrwallet-setup.service after every wallet start (src/render/decred.ts).
        {
          path: DCRWALLET_SETUP_CONFIG,
          content: JSON.stringify(dcrwalletSetup(chain), null, 2) + '\n',
          permissions: '0600',
          owner: 'root:root',
        },
        {
          path: DCRWALLET_SETUP_COMMAND,
          content: DCRWALLET_SETUP_SCRIPT,
          permissions: '0755',
          owner: 'root:root',
        },
        {
          path: `/etc/systemd/system/${DCRWALLET_SETUP_UNIT}`,
          content: dcrwalletSetupUnit(),
          permissions: '0644',
          owner: 'root:root',
        },
      ];
    }
    case 'substrate':
      return [f(substrateNodeKeyPath(chain), host.substrateNodeKey!.secretHex + '\n', '0600')];
  }
}
