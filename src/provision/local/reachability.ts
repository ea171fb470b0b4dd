/**
 * Reachability proven from the plan. `deriveFlows` (pure) lists, for every service the local
 * fleet runs (read from the host's rendered configs: the chain node's config.toml, the
 * agent's agent.yaml, etcd's config), every source (each other host, and the internet
 * namespace) and address it could be dialled on, and whether the plan's port rules say that
 * flow must work or must not. `probeFlows` then tries each one with a TCP connect from inside
 * the source's namespace, one probe process per namespace.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { parse as parseToml } from 'smol-toml';
import type { Plan, PortRule } from '../../topology/plan.js';
import { chainDataDir } from '../../render/chains.js';
import { RenderedNodeConfigSchema, hostPort } from './node-config.js';
import type { RunRecord } from './run-record.js';
import { renderedPath } from './fleet.js';
import { simUnitsOf } from './sim-services.js';
import type { ProbeResult, ProbeTarget } from './probe-main.js';

const PROBE_MAIN = fileURLToPath(new URL('./probe-main.js', import.meta.url));

/** A TCP service a host of the local fleet serves, where it is bound. */
export interface Service {
  readonly host: string;
  readonly purpose: string;
  readonly bind: string;
  readonly port: number;
  /**
   * Served only while the host's node runs: a supervised producer (its watchdog starts the
   * node while it holds the role), a standby the operator starts, or a unit that takes turns
   * with a conflicting one on its host. Elsewhere it is refused, which still proves the
   * firewall let the flow through.
   */
  readonly whileActive?: boolean;
}

export interface Flow {
  /** A host name, or `internet` for the internet namespace. */
  readonly from: string;
  readonly to: string;
  readonly address: string;
  readonly port: number;
  readonly purpose: string;
  readonly via: 'vpn' | 'public';
  readonly expect: 'open' | 'blocked';
  readonly whileActive?: boolean;
}

export const INTERNET = 'internet';

/** Pure: the services each host runs locally, from its rendered files. */
export function servicesOf(plan: Plan, files: ReadonlyMap<string, string>): Service[] {
  const out: Service[] = [];
  for (const host of plan.hosts) {
    const chain = host.chain;
    if (chain?.kind === 'cometbft') {
      const toml = files.get(renderedPath(host.name, `${chainDataDir(chain)}/config/config.toml`));
      if (toml !== undefined) {
        const c = RenderedNodeConfigSchema.parse(parseToml(toml));
        const add = (purpose: string, addr: string) => {
          const [bind, port] = hostPort(addr);
          out.push({ host: host.name, purpose, bind, port });
        };
        add('cometbft p2p', c.p2p.laddr);
        if (c.instrumentation.prometheus_listen_addr !== '')
          add('cometbft metrics', c.instrumentation.prometheus_listen_addr);
        if (c.priv_validator_laddr) add('privval (signing)', c.priv_validator_laddr);
      }
    }
    const units = simUnitsOf(plan, host, files);
    // Units in conflict take turns (a supervised Polkadot host's sync node gives way to its
    // validator node on the same port): either may be down when probed, mid-handover included.
    const takesTurns = (u: (typeof units)[number]) =>
      u.conflicts.length > 0 || units.some((o) => o.conflicts.includes(u.unit));
    for (const u of units)
      for (const l of u.listeners)
        out.push({
          host: host.name,
          purpose: l.purpose,
          bind: l.bind,
          port: l.port,
          ...(u.startedBy === 'boot' && !takesTurns(u) ? {} : { whileActive: true }),
        });
    const etcdYaml = files.get(renderedPath(host.name, '/etc/vigil/etcd.yaml'));
    if (etcdYaml !== undefined) {
      const e = parseYaml(etcdYaml) as Record<string, unknown>;
      const urls: [string, string][] = [
        ['listen-client-urls', 'etcd client (mutual TLS)'],
        ['listen-peer-urls', 'etcd peer (mutual TLS)'],
        ['listen-metrics-urls', 'etcd metrics'],
      ];
      for (const [key, purpose] of urls)
        for (const u of String(e[key] ?? '')
          .split(',')
          .filter((x) => x !== '')) {
          const url = new URL(u);
          out.push({ host: host.name, purpose, bind: url.hostname, port: Number(url.port) });
        }
    }
    const agentYaml = files.get(renderedPath(host.name, '/etc/vigil/agent.yaml'));
    if (agentYaml !== undefined) {
      const a = parseYaml(agentYaml) as {
        metricsListen?: { host?: string; port?: number };
        listen?: { tcp?: { host?: string; port?: number } };
      };
      if (a.metricsListen?.host && a.metricsListen.port)
        out.push({
          host: host.name,
          purpose: 'vigil agent metrics',
          bind: a.metricsListen.host,
          port: a.metricsListen.port,
        });
      if (a.listen?.tcp?.host && a.listen.tcp.port)
        out.push({
          host: host.name,
          purpose: 'vigil signing API',
          bind: a.listen.tcp.host,
          port: a.listen.tcp.port,
        });
    }
  }
  return out;
}

function allows(rule: PortRule | undefined, fromVpn: string | undefined, via: 'vpn' | 'public') {
  if (!rule) return false;
  if (rule.from === 'any') return via === 'vpn' || !rule.vpnOnly;
  if (rule.from === 'ssh') return false;
  return via === 'vpn' && fromVpn !== undefined && rule.from.includes(fromVpn);
}

/** Pure: every flow to every service, and whether the plan's rules let it through. */
export function deriveFlows(
  plan: Plan,
  services: readonly Service[],
  publicAddress: ReadonlyMap<string, string>,
): Flow[] {
  const flows: Flow[] = [];
  for (const s of services) {
    const target = plan.hosts.find((h) => h.name === s.host)!;
    const rule = target.ports.find((r) => r.proto === 'tcp' && r.port === s.port);
    const wildcard = s.bind === '0.0.0.0';
    const addresses: { address: string; via: 'vpn' | 'public' }[] = [];
    if (wildcard || s.bind === target.vpnAddress)
      addresses.push({ address: target.vpnAddress, via: 'vpn' });
    // A service bound to the VPN address only is still dialled on the public one: the
    // firewall, not the bind, must be what stops it (the drop policy answers nothing).
    addresses.push({ address: publicAddress.get(target.name)!, via: 'public' });
    const sources = [
      ...plan.hosts.filter((h) => h.name !== target.name),
      { name: INTERNET, vpnAddress: undefined },
    ];
    for (const src of sources)
      for (const a of addresses) {
        // The internet has no route into the VPN; nothing to prove there.
        if (src.name === INTERNET && a.via === 'vpn') continue;
        const boundThere = wildcard || s.bind === a.address;
        flows.push({
          from: src.name,
          to: target.name,
          address: a.address,
          port: s.port,
          purpose: s.purpose,
          via: a.via,
          expect: boundThere && allows(rule, src.vpnAddress, a.via) ? 'open' : 'blocked',
          ...(s.whileActive ? { whileActive: true } : {}),
        });
      }
  }
  return flows;
}

export interface FlowResult extends Flow {
  readonly result: ProbeResult;
  readonly ok: boolean;
}

async function probeFrom(netns: string, targets: ProbeTarget[], timeoutMs: number) {
  return new Promise<ProbeResult[]>((resolve, reject) => {
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        netns,
        process.execPath,
        PROBE_MAIN,
        JSON.stringify({ targets, timeoutMs }),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`probe in ${netns} exited ${code}: ${err.trim()}`));
      else resolve(JSON.parse(out) as ProbeResult[]);
    });
  });
}

/** Probes every flow from its source's namespace; all namespaces at once. */
export async function probeFlows(
  record: RunRecord,
  flows: readonly Flow[],
  timeoutMs = 1500,
): Promise<FlowResult[]> {
  const netnsOf = new Map(record.hosts.map((h) => [h.name, h.netns]));
  netnsOf.set(INTERNET, record.internetNetns);
  const bySource = new Map<string, Flow[]>();
  for (const f of flows) bySource.set(f.from, [...(bySource.get(f.from) ?? []), f]);
  const results = await Promise.all(
    [...bySource].map(async ([from, fs]) => {
      const r = await probeFrom(
        netnsOf.get(from)!,
        fs.map((f) => ({ host: f.address, port: f.port })),
        timeoutMs,
      );
      return fs.map((f, i) => ({
        ...f,
        result: r[i]!,
        ok: flowOk(f, r[i]!),
      }));
    }),
  );
  return results.flat();
}

/**
 * Open means connected; blocked means not (a drop times out). A node that runs only while
 * its host is active refuses when it is not: past the firewall, so as good as open for an
 * allowed flow.
 */
export function flowOk(f: Flow, r: ProbeResult): boolean {
  if (f.expect === 'open') return r === 'open' || (f.whileActive === true && r === 'refused');
  return r !== 'open';
}

export function formatFlow(r: FlowResult): string {
  const mark = r.ok ? 'ok  ' : 'FAIL';
  const when = r.whileActive ? ', while active' : '';
  return `${mark} ${r.from} → ${r.to} ${r.address}:${r.port} (${r.purpose}, ${r.via}${when}): expected ${r.expect}, got ${r.result}`;
}
