/** etcd (guard cluster, mutual TLS), the Vigil agent's settings and Prometheus. */
import { stringify as toYaml } from 'yaml';
import { supervisedByVigil } from './chains.js';
import {
  ETCD_CLIENT_PORT,
  ETCD_METRICS_PORT,
  ETCD_PEER_PORT,
  NODE_EXPORTER_PORT,
  type Plan,
  type PlannedHost,
} from '../topology/plan.js';

/** Certificates are issued by `vigil pki` into these conventional paths. */
export const PKI_DIR = '/etc/vigil/pki';
export function pkiPaths(host: string): { ca: string; cert: string; key: string } {
  return { ca: `${PKI_DIR}/ca.crt`, cert: `${PKI_DIR}/${host}.crt`, key: `${PKI_DIR}/${host}.key` };
}

export function guardMembers(plan: Plan): PlannedHost[] {
  return plan.hosts.filter((h) => h.role === 'guard-member');
}

export function etcdConfig(plan: Plan, host: PlannedHost, clusterToken: string): string {
  const pki = pkiPaths(host.name);
  const tls = {
    'cert-file': pki.cert,
    'key-file': pki.key,
    'client-cert-auth': true,
    'trusted-ca-file': pki.ca,
    'auto-tls': false,
  };
  const config = {
    name: host.name,
    'data-dir': '/var/lib/vigil-etcd',
    'listen-peer-urls': `https://${host.vpnAddress}:${ETCD_PEER_PORT}`,
    'listen-client-urls': `https://${host.vpnAddress}:${ETCD_CLIENT_PORT}`,
    'listen-metrics-urls': `http://${host.vpnAddress}:${ETCD_METRICS_PORT}`,
    'advertise-client-urls': `https://${host.vpnAddress}:${ETCD_CLIENT_PORT}`,
    'initial-advertise-peer-urls': `https://${host.vpnAddress}:${ETCD_PEER_PORT}`,
    'initial-cluster': guardMembers(plan)
      .map((m) => `${m.name}=https://${m.vpnAddress}:${ETCD_PEER_PORT}`)
      .join(','),
    'initial-cluster-token': clusterToken,
    'initial-cluster-state': 'new',
    'client-transport-security': tls,
    'peer-transport-security': { ...tls, 'peer-auto-tls': false },
    'strict-reconfig-check': true,
  };
  return toYaml(config);
}

/** The agent's view of its host; the agent's own schema owns validation. */
export function agentConfig(plan: Plan, host: PlannedHost): string {
  const t = plan.topology;
  const pki = pkiPaths(host.name);
  const config = {
    host: host.name,
    role: host.role,
    ...(host.chain ? { chain: host.chain.name, chainKind: host.chain.kind } : {}),
    ...(host.key ? { key: host.key, active: host.active } : {}),
    ...(host.chain && supervisedByVigil(host)
      ? { supervise: { unit: `${host.chain.name}-node.service` } }
      : {}),
    listen: `${host.vpnAddress}:${t.vigil.apiPort}`,
    store:
      t.vigil.store === 'etcd' && guardMembers(plan).length > 0
        ? {
            engine: 'etcd',
            endpoints: guardMembers(plan).map((m) => `https://${m.vpnAddress}:${ETCD_CLIENT_PORT}`),
            tls: { ca: pki.ca, cert: pki.cert, key: pki.key },
          }
        : { engine: 'sqlite', path: '/var/lib/vigil/watermarks.sqlite' },
  };
  return toYaml(config);
}

export function prometheusConfig(plan: Plan): string {
  const targets = (hosts: readonly PlannedHost[], port: (h: PlannedHost) => number) =>
    hosts.map((h) => ({
      targets: [`${h.vpnAddress}:${port(h)}`],
      labels: {
        host: h.name,
        role: h.role,
        provider: h.provider,
        region: h.region,
        ...(h.chain ? { chain: h.chain.name } : {}),
      },
    }));
  const jobs = [
    { job_name: 'node', static_configs: targets(plan.hosts, () => NODE_EXPORTER_PORT) },
    {
      job_name: 'vigil',
      static_configs: targets(
        plan.hosts.filter((h) => h.role !== 'monitor'),
        () => plan.topology.vigil.apiPort,
      ),
    },
  ];
  for (const kind of ['cometbft', 'substrate', 'cardano'] as const) {
    const hosts = plan.hosts.filter((h) => h.chain?.kind === kind);
    if (hosts.length > 0)
      jobs.push({
        job_name: kind,
        static_configs: targets(hosts, (h) => (h.chain as { metricsPort: number }).metricsPort),
      });
  }
  const guards = guardMembers(plan);
  if (guards.length > 0)
    jobs.push({ job_name: 'etcd', static_configs: targets(guards, () => ETCD_METRICS_PORT) });
  return (
    `# Prometheus on the monitor: every target is scraped over the WireGuard VPN.\n` +
    toYaml({
      global: { scrape_interval: '15s', evaluation_interval: '15s' },
      scrape_configs: jobs,
    })
  );
}
