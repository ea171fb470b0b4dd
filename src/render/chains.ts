/** Chain node configuration: CometBFT, Cardano, Decred and Substrate (Polkadot). */
import { isIP } from 'node:net';
import { stringify as toToml } from 'smol-toml';
import { peersOf, DCRD_RPC_PORT, DCRWALLET_RPC_PORT } from '../topology/plan.js';
import type { Plan, PlannedHost } from '../topology/plan.js';
import type { Artifact, CardanoChain, Chain, CometbftChain } from '../topology/schema.js';
import type { PlanState } from './state.js';
import {
  DCRWALLET_SETUP_COMMAND,
  DCRWALLET_SETUP_CONFIG,
  DCRWALLET_SETUP_SCRIPT,
  DCRWALLET_SETUP_UNIT,
  dcrwalletSetup,
  dcrwalletSetupUnit,
} from './decred.js';

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
    ...(u.bindsTo ? [u.bindsTo] : []),
  ];
  return [
    '[Unit]',
    `Description=${u.description}`,
    `Wants=network-online.target`,
    // With After=, BindsTo= means this unit can only be active while the other one is.
    ...(u.bindsTo ? [`BindsTo=${u.bindsTo}`] : []),
    `After=${after.join(' ')}`,
    '',
    '[Service]',
    `User=${u.user}`,
    `ExecStart=${u.execStart}`,
    'Restart=on-failure',
    'RestartSec=5',
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
      return [
        {
          name: `${chain.name}-node.service`,
          description: `Substrate node for ${chain.chainSpec}`,
          execStart: `${dir}/bin/${binaryName(chain.binary)} ${flags.join(' ')}`,
          user: NODE_USER,
          enable,
          ...bound,
        },
      ];
    }
    case 'cardano': {
      const listen = host.role === 'producer' ? host.vpnAddress : '0.0.0.0';
      const keys =
        host.role === 'producer'
          ? ' --shelley-kes-key /etc/cardano/keys/kes.skey --shelley-vrf-key /etc/cardano/keys/vrf.skey --shelley-operational-certificate /etc/cardano/keys/node.cert'
          : '';
      return [
        {
          name: `${chain.name}-node.service`,
          description: `Cardano ${host.role} (${chain.network})`,
          execStart:
            `${dir}/bin/${binaryName(chain.binary)} run --config ${cardanoConfigPaths(chain).rendered}` +
            ` --topology /etc/cardano/topology.json --database-path ${data}/db --socket-path ${data}/node.socket` +
            ` --host-addr ${listen} --port ${chain.p2pPort}${keys}`,
          user: NODE_USER,
          enable,
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
    case 'cometbft':
      return [
        f(`${chainDataDir(chain)}/config/config.toml`, cometbftConfig(plan, host, chain)),
        f(`${chainDataDir(chain)}/config/node_key.json`, host.cometbftNodeKey!.json, '0600'),
      ];
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
