/**
 * The one internal plan model every renderer reads: machines expanded from counts, their VPN
 * addresses and keys, and the ports each one opens, to whom.
 */
import type {
  PlanState,
  CometbftNodeKey,
  SubstrateNodeKey,
  WireguardKeys,
} from '../render/state.js';
import { expandHosts, signingKey } from './expand.js';
import { diskPlan, type DiskPlan } from './disks.js';
import { readSshPorts, recordSshPorts, sshPortsFor } from '../render/ssh-ports.js';
import type { Chain, Provider, Role, Topology } from './schema.js';

export const NODE_EXPORTER_PORT = 9100;
export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
export const ETCD_METRICS_PORT = 2381;
export const PROMETHEUS_PORT = 9090;
export const DCRD_RPC_PORT = 9109;
export const DCRWALLET_RPC_PORT = 9110;
/** `vigil watch` metrics (its default port, src/watch/config.ts). */
export const WATCH_PORT = 9478;

export interface PortRule {
  readonly proto: 'tcp' | 'udp';
  readonly port: number;
  /** `any` = the internet; `ssh` = the configured SSH sources; otherwise VPN addresses. */
  readonly from: 'any' | 'ssh' | readonly string[];
  /** True when the rule only applies on the WireGuard interface. */
  readonly vpnOnly: boolean;
  readonly purpose: string;
}

export interface PlannedHost {
  readonly name: string;
  readonly index: number;
  readonly role: Role;
  readonly provider: Provider;
  readonly region: string;
  readonly size: string;
  readonly image?: string;
  readonly chain?: Chain;
  readonly key?: string;
  readonly active: boolean;
  readonly vpnAddress: string;
  readonly wireguard: WireguardKeys;
  readonly cometbftNodeKey?: CometbftNodeKey;
  readonly substrateNodeKey?: SubstrateNodeKey;
  /**
   * The ports sshd listens on: the topology's, plus while a port change is under way the ones
   * the host is recorded as listening on (src/render/ssh-ports.ts).
   */
  readonly sshPorts: readonly number[];
  /** Root disk size, the size's fixed disk, the chain data volume (src/topology/disks.ts). */
  readonly disk: DiskPlan;
  readonly ports: readonly PortRule[];
}

export interface Plan {
  readonly topology: Topology;
  readonly hosts: readonly PlannedHost[];
}

type Draft = Omit<PlannedHost, 'ports'>;

export function buildPlan(topology: Topology, state: PlanState): Plan {
  const expanded = expandHosts(topology);
  // Allocated once and kept in the state directory: adding or removing a host moves no one.
  const addresses = state.vpnAddresses(
    topology.vpn.cidr,
    expanded.map((e) => e.name),
  );
  // A host planned for the first time boots with the topology's port (its user data).
  const recorded = readSshPorts(state.dir);
  recordSshPorts(
    state.dir,
    new Map(
      expanded.filter((e) => !recorded.has(e.name)).map((e) => [e.name, [topology.ssh.port]]),
    ),
  );
  const drafts: Draft[] = expanded.map((e) => ({
    name: e.name,
    index: e.index,
    role: e.host.role,
    provider: e.host.provider,
    region: e.host.region,
    size: e.host.size,
    ...(e.host.image !== undefined ? { image: e.host.image } : {}),
    ...(e.chain ? { chain: e.chain } : {}),
    ...(e.host.role === 'validator' || e.host.role === 'producer'
      ? { key: signingKey(e.host) }
      : {}),
    active: e.host.active,
    sshPorts: sshPortsFor(topology.ssh.port, recorded.get(e.name)),
    disk: diskPlan(e.host, e.chain),
    vpnAddress: addresses.get(e.name)!,
    wireguard: state.wireguard(e.name),
    ...(e.chain?.kind === 'cometbft' ? { cometbftNodeKey: state.cometbftNodeKey(e.name) } : {}),
    ...(e.chain?.kind === 'substrate' ? { substrateNodeKey: state.substrateNodeKey(e.name) } : {}),
  }));
  // A host reaching its own VPN address goes over loopback, which is always accepted.
  const hosts = drafts.map((d) => ({
    ...d,
    ports: portsFor(topology, d, drafts).map((r) =>
      typeof r.from === 'string' ? r : { ...r, from: r.from.filter((a) => a !== d.vpnAddress) },
    ),
  }));
  return { topology, hosts };
}

/**
 * Whether `vigil watch` runs on this host, and for which chain. It runs on the signing host
 * because what it reads there is loopback-bound (CometBFT's RPC is rendered on 127.0.0.1) or
 * best read next to the key (a Cardano producer's KES and forging metrics), and it needs the
 * Vigil binary, which only signing hosts install. A CometBFT validator is watched once the
 * topology gives its consensus address (`monitoring.watch`); a Cardano producer always.
 * Nothing is watched in a fleet without a monitor to scrape it.
 */
export function watchedChain(
  topology: Topology,
  host: { role: Role; chain?: Chain; key?: string },
  all: ReadonlyArray<{ role: Role }>,
): Chain | undefined {
  const chain = host.chain;
  if (!chain || !all.some((h) => h.role === 'monitor')) return undefined;
  // Each voting wallet is watched on its own host, over loopback: its RPC password never leaves
  // the host (an unlocked voting wallet's RPC can spend).
  if (chain.kind === 'decred' && host.role === 'voting-wallet') return chain;
  if (host.key === undefined) return undefined;
  if (chain.kind === 'cardano' && host.role === 'producer') return chain;
  // Both the active validator and its standby: a standby that is not synced cannot take over.
  if (chain.kind === 'substrate' && host.role === 'validator') return chain;
  if (chain.kind === 'cometbft' && host.role === 'validator') {
    const entry = topology.monitoring.watch.find((w) => w.chain === chain.name);
    return entry?.validatorAddress !== undefined ? chain : undefined;
  }
  return undefined;
}

/** Hosts of the same chain with the given role. */
export function peersOf<T extends { chain?: Chain; role: Role }>(
  hosts: readonly T[],
  host: { chain?: Chain },
  role: Role,
): T[] {
  return hosts.filter((h) => h.role === role && h.chain?.name === host.chain?.name);
}

/**
 * Who speaks etcd's client protocol to the guard cluster: the agents whose store is etcd (they
 * run where a validator key is used, see render/cloud-init.ts) and the members themselves.
 * Sentries, relays, voting wallets and monitors never do (the monitor scrapes the separate
 * metrics port), so they must not reach the client port.
 */
export function etcdClients<T extends { role: Role; key?: string }>(
  topology: Topology,
  all: readonly T[],
): T[] {
  const agentsUseEtcd = topology.vigil.store === 'etcd';
  return all.filter((x) => x.role === 'guard-member' || (agentsUseEtcd && x.key !== undefined));
}

/** A port reachable from the internet (not only over WireGuard), with its source CIDRs. */
export interface PublicInbound {
  readonly proto: 'tcp' | 'udp';
  readonly port: number;
  readonly purpose: string;
  readonly cidrs: readonly string[];
}

/**
 * The inbound set a cloud firewall in front of the host must allow: exactly the host's rules
 * that are not confined to the WireGuard interface (everything else arrives inside the
 * WireGuard UDP port, which is itself one of these rules). Every cloud firewall renderer reads
 * this one list, so the cloud layer and nftables cannot drift apart.
 */
export function publicInbound(topology: Topology, host: PlannedHost): PublicInbound[] {
  return host.ports
    .filter((r) => !r.vpnOnly && (r.from === 'any' || r.from === 'ssh'))
    .map((r) => ({
      proto: r.proto,
      port: r.port,
      purpose: r.purpose,
      cidrs: r.from === 'ssh' ? [...topology.ssh.allowFrom] : ['0.0.0.0/0', '::/0'],
    }));
}

function portsFor(topology: Topology, h: Draft, all: readonly Draft[]): PortRule[] {
  const monitors = all.filter((x) => x.role === 'monitor').map((x) => x.vpnAddress);
  const rules: PortRule[] = [
    ...h.sshPorts.map((port, i) => ({
      proto: 'tcp' as const,
      port,
      from: 'ssh' as const,
      vpnOnly: false,
      purpose: i === 0 ? 'ssh' : 'ssh (previous port, until vigil apply has moved sshd)',
    })),
    { proto: 'udp', port: topology.vpn.port, from: 'any', vpnOnly: false, purpose: 'wireguard' },
    {
      proto: 'tcp',
      port: NODE_EXPORTER_PORT,
      from: monitors,
      vpnOnly: true,
      purpose: 'node_exporter',
    },
  ];
  // The agent's signing API stays on loopback; only its metrics listener is on the VPN.
  if (h.key !== undefined)
    rules.push({
      proto: 'tcp',
      port: topology.vigil.apiPort,
      from: monitors,
      vpnOnly: true,
      purpose: 'vigil agent metrics',
    });
  if (watchedChain(topology, h, all))
    rules.push({
      proto: 'tcp',
      port: WATCH_PORT,
      from: monitors,
      vpnOnly: true,
      purpose: 'vigil watch metrics',
    });
  const chain = h.chain;
  if (chain && chain.kind !== 'decred') {
    rules.push({
      proto: 'tcp',
      port: chain.metricsPort,
      from: monitors,
      vpnOnly: true,
      purpose: `${chain.kind} metrics`,
    });
  }
  // A Cosmos SDK app serves its telemetry on its REST API (src/render/cosmos-app.ts).
  if (chain?.kind === 'cometbft' && chain.app.kind === 'cosmos-sdk')
    rules.push({
      proto: 'tcp',
      port: chain.app.apiPort,
      from: monitors,
      vpnOnly: true,
      purpose: 'cosmos-sdk api (app telemetry)',
    });
  switch (h.role) {
    case 'validator':
      if (chain?.kind === 'cometbft') {
        rules.push({
          proto: 'tcp',
          port: chain.p2pPort,
          from: peersOf(all, h, 'sentry').map((s) => s.vpnAddress),
          vpnOnly: true,
          purpose: 'cometbft p2p from its sentries',
        });
        rules.push({
          proto: 'tcp',
          port: chain.privvalPort,
          from: peersOf(all, h, 'validator').map((v) => v.vpnAddress),
          vpnOnly: true,
          purpose: 'privval: Vigil signers dial the node',
        });
      } else if (chain?.kind === 'substrate') {
        rules.push({
          proto: 'tcp',
          port: chain.p2pPort,
          from: 'any',
          vpnOnly: false,
          purpose: 'substrate p2p',
        });
      }
      break;
    case 'sentry':
      if (chain?.kind === 'cometbft')
        rules.push({
          proto: 'tcp',
          port: chain.p2pPort,
          from: 'any',
          vpnOnly: false,
          purpose: 'cometbft p2p (public)',
        });
      break;
    case 'producer':
      if (chain?.kind === 'cardano')
        rules.push({
          proto: 'tcp',
          port: chain.p2pPort,
          from: peersOf(all, h, 'relay').map((r) => r.vpnAddress),
          vpnOnly: true,
          purpose: 'cardano node-to-node from its relays',
        });
      break;
    case 'relay':
      if (chain?.kind === 'cardano')
        rules.push({
          proto: 'tcp',
          port: chain.p2pPort,
          from: 'any',
          vpnOnly: false,
          purpose: 'cardano node-to-node (public)',
        });
      break;
    case 'voting-wallet':
      if (chain?.kind === 'decred')
        rules.push({
          proto: 'tcp',
          port: chain.p2pPort,
          from: 'any',
          vpnOnly: false,
          purpose: 'dcrd p2p',
        });
      break;
    case 'guard-member': {
      rules.push(
        {
          proto: 'tcp',
          port: ETCD_CLIENT_PORT,
          from: etcdClients(topology, all)
            .filter((x) => x.name !== h.name)
            .map((x) => x.vpnAddress),
          vpnOnly: true,
          purpose: 'etcd clients (mutual TLS)',
        },
        {
          proto: 'tcp',
          port: ETCD_PEER_PORT,
          from: all
            .filter((x) => x.role === 'guard-member' && x.name !== h.name)
            .map((x) => x.vpnAddress),
          vpnOnly: true,
          purpose: 'etcd peers (mutual TLS)',
        },
        {
          proto: 'tcp',
          port: ETCD_METRICS_PORT,
          from: monitors,
          vpnOnly: true,
          purpose: 'etcd metrics',
        },
      );
      break;
    }
    case 'monitor':
      break;
  }
  return rules;
}
