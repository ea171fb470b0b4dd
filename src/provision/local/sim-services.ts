/**
 * What the simulated node of a Substrate, Cardano or Decred host serves, read (pure) from the
 * host's RENDERED files: the chain unit's ExecStart flags (Substrate, Cardano), Cardano's
 * topology.json (the peers it dials), dcrd.conf and dcrwallet.conf (Decred). The local fleet
 * starts one simulated process per rendered chain unit with these listeners, and reachability
 * probes the same list. CometBFT hosts keep their own path (config.toml, privval).
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Plan, PlannedHost } from '../../topology/plan.js';
import { chainUnits, supervisedByVigil } from '../../render/chains.js';
import { DCRWALLET_SETUP_CONFIG } from '../../render/decred.js';
import { renderedPath } from './fleet.js';

export interface SimListener {
  readonly purpose: string;
  readonly bind: string;
  readonly port: number;
  /** Answers GET /metrics (Prometheus text) rather than holding the connection open. */
  readonly http?: boolean;
}

export interface SimUnit {
  /** The rendered systemd unit this process stands in for, e.g. `polkadot-node.service`. */
  readonly unit: string;
  readonly listeners: readonly SimListener[];
  /** host:port this node keeps dialling (Cardano's local roots). */
  readonly peers: readonly string[];
  /**
   * `boot`: the unit is enabled, the fleet starts it; `watchdog`: the Vigil watchdog starts
   * it while this host holds the role; `operator`: not enabled (a standby waiting for a
   * manual failover), so nothing listens until someone starts it.
   */
  readonly startedBy: 'boot' | 'watchdog' | 'operator';
  /** The unit's Conflicts=: stopped before it starts, as systemd would. */
  readonly conflicts: readonly string[];
}

function execStartOf(unitText: string | undefined): string[] {
  const line = unitText?.split('\n').find((l) => l.startsWith('ExecStart='));
  return line ? line.slice('ExecStart='.length).trim().split(/\s+/) : [];
}

function flag(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i >= 0) return argv[i + 1];
  const eq = argv.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
}

/** `host:port` → [host, port]; `:port` binds every address, as the Go tools read it. */
function splitHostPort(value: string): [string, number] {
  const i = value.lastIndexOf(':');
  const host = value.slice(0, i).replace(/^\[|\]$/g, '');
  return [host === '' ? '0.0.0.0' : host, Number(value.slice(i + 1))];
}

/** The `key=value` lines of an INI-style Decred config (its one section is ignored). */
function iniValues(text: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of (text ?? '').split('\n')) {
    const m = /^\s*([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) out.set(m[1]!.toLowerCase(), m[2]!);
  }
  return out;
}

const CardanoTopologySchema = z.object({
  localRoots: z
    .array(z.object({ accessPoints: z.array(z.object({ address: z.string(), port: z.number() })) }))
    .default([]),
});

/** Pure: the simulated processes a non-CometBFT host runs, from its rendered files. */
export function simUnitsOf(
  plan: Plan,
  host: PlannedHost,
  files: ReadonlyMap<string, string>,
): SimUnit[] {
  const chain = host.chain;
  if (!chain || chain.kind === 'cometbft') return [];
  const file = (p: string) => files.get(renderedPath(host.name, p));
  const out: SimUnit[] = [];
  for (const spec of chainUnits(plan, host)) {
    const unitText = file(`/etc/systemd/system/${spec.name}`);
    if (unitText === undefined) continue;
    const argv = execStartOf(unitText);
    // A supervised host's enabled units (a Polkadot standby's sync node, a Cardano hot
    // standby) run from boot; its other chain unit only while the watchdog says so.
    const startedBy = spec.enable ? 'boot' : supervisedByVigil(host) ? 'watchdog' : 'operator';
    const conflicts =
      unitText
        .split('\n')
        .find((l) => l.startsWith('Conflicts='))
        ?.slice('Conflicts='.length)
        .trim()
        .split(/\s+/) ?? [];
    const listeners: SimListener[] = [];
    const peers: string[] = [];
    if (chain.kind === 'substrate') {
      const listen = flag(argv, '--listen-addr');
      const m = listen ? /^\/ip4\/([^/]+)\/tcp\/(\d+)$/.exec(listen) : null;
      if (m) listeners.push({ purpose: 'substrate p2p', bind: m[1]!, port: Number(m[2]) });
      const prom = flag(argv, '--prometheus-port');
      if (prom && !argv.includes('--no-prometheus'))
        listeners.push({
          purpose: 'substrate metrics',
          bind: argv.includes('--prometheus-external') ? '0.0.0.0' : '127.0.0.1',
          port: Number(prom),
          http: true,
        });
      const rpc = flag(argv, '--rpc-port');
      if (rpc)
        listeners.push({
          purpose: 'substrate RPC',
          bind: argv.includes('--rpc-external') ? '0.0.0.0' : '127.0.0.1',
          port: Number(rpc),
        });
    } else if (chain.kind === 'cardano') {
      const addr = flag(argv, '--host-addr');
      const port = flag(argv, '--port');
      if (addr && port)
        listeners.push({ purpose: 'cardano node-to-node', bind: addr, port: Number(port) });
      // The metrics endpoint is set in the node's JSON config by vigil-cardano-config at
      // boot, on the host's VPN address and the chain's metrics port.
      listeners.push({
        purpose: 'cardano metrics',
        bind: host.vpnAddress,
        port: chain.metricsPort,
        http: true,
      });
      const topo = flag(argv, '--topology');
      const topoText = topo ? file(topo) : undefined;
      if (topoText !== undefined) {
        const t = CardanoTopologySchema.parse(JSON.parse(topoText));
        for (const root of t.localRoots)
          for (const ap of root.accessPoints) peers.push(`${ap.address}:${ap.port}`);
      }
    } else {
      // Decred: the config file named by --configfile.
      const conf = iniValues(file(flag(argv, '--configfile') ?? ''));
      const purpose = spec.name.replace(/\.service$/, '');
      for (const [key, what] of [
        ['listen', 'p2p'],
        ['rpclisten', 'RPC'],
      ] as const) {
        const v = conf.get(key);
        if (v === undefined) continue;
        const [bind, port] = splitHostPort(v);
        listeners.push({ purpose: `${purpose} ${what}`, bind, port });
      }
    }
    // A oneshot helper unit (dcrwallet-setup) serves nothing: nothing to stand in for.
    if (listeners.length > 0 || peers.length > 0)
      out.push({ unit: spec.name, listeners, peers, startedBy, conflicts });
  }
  return out;
}

/**
 * What a simulated unit produces, read (pure) from the host's rendered files; paths are as on
 * the host (the fleet moves them under the host root). Undefined for a unit that produces
 * nothing (a sentry, a relay, a sync node, dcrd).
 */
export interface UnitProduction {
  readonly kind: 'substrate-author' | 'cardano-forger' | 'decred-voter';
  readonly chain: string;
  /** substrate-author on a supervised host: the role its agent holds, and the agent's socket. */
  readonly role?: string;
  readonly agentSocket?: string;
  /** cardano-forger: the forging credentials its flags name, and its local socket. */
  readonly forgingKeys?: readonly string[];
  readonly socketPath?: string;
  readonly startsNonProducing?: boolean;
  /** decred-voter: `agenda=choice` pairs, sorted, as the wallet setup applies them. */
  readonly voteChoices?: string;
}

const WatchdogRoleSchema = z.object({ role: z.string().min(1) });
const AgentSocketSchema = z.object({
  listen: z.object({ socket: z.object({ path: z.string().min(1) }).optional() }).optional(),
});
const WalletSetupSchema = z.object({ voteChoices: z.record(z.string(), z.string()) });

export function unitProduction(
  host: PlannedHost,
  unit: string,
  files: ReadonlyMap<string, string>,
): UnitProduction | undefined {
  const chain = host.chain;
  if (!chain || chain.kind === 'cometbft') return undefined;
  const file = (p: string) => files.get(renderedPath(host.name, p));
  const argv = execStartOf(file(`/etc/systemd/system/${unit}`));
  if (chain.kind === 'substrate') {
    if (host.role !== 'validator' || !argv.includes('--validator')) return undefined;
    if (!supervisedByVigil(host)) return { kind: 'substrate-author', chain: chain.name };
    const role = WatchdogRoleSchema.parse(parseYaml(file('/etc/vigil/watchdog.yaml') ?? '')).role;
    const socket = AgentSocketSchema.parse(parseYaml(file('/etc/vigil/agent.yaml') ?? '{}')).listen
      ?.socket?.path;
    return {
      kind: 'substrate-author',
      chain: chain.name,
      role,
      ...(socket !== undefined ? { agentSocket: socket } : {}),
    };
  }
  if (chain.kind === 'cardano') {
    if (host.role !== 'producer') return undefined;
    const keys = [
      '--shelley-kes-key',
      '--shelley-vrf-key',
      '--shelley-operational-certificate',
    ].flatMap((f) => flag(argv, f) ?? []);
    const socket = flag(argv, '--socket-path');
    return {
      kind: 'cardano-forger',
      chain: chain.name,
      forgingKeys: keys,
      ...(socket !== undefined ? { socketPath: socket } : {}),
      startsNonProducing: argv.some(
        (a) => a === '--start-as-non-producing-node' || a === '--non-producing-node',
      ),
    };
  }
  if (host.role !== 'voting-wallet' || unit !== 'dcrwallet.service') return undefined;
  const setup = file(DCRWALLET_SETUP_CONFIG);
  const choices = setup === undefined ? {} : WalletSetupSchema.parse(JSON.parse(setup)).voteChoices;
  return {
    kind: 'decred-voter',
    chain: chain.name,
    voteChoices: Object.entries(choices)
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join(','),
  };
}
