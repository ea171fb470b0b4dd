/** etcd (guard cluster, mutual TLS), the Vigil agent's settings and Prometheus. */
import { COSMOS_TELEMETRY_PARAMS, COSMOS_TELEMETRY_PATH } from './cosmos-app.js';
import { stringify as toYaml } from 'yaml';
import { SIGNER_RULES_PATH } from './alert-rules.js';
import { ALERTMANAGER_LISTEN } from './alertmanager.js';
import {
  SERVICE_USER,
  cardanoKeyPaths,
  chainDataDir,
  substrateSyncUnit,
  supervisedByVigil,
  type UnitSpec,
} from './chains.js';
import type { CardanoChain } from '../topology/schema.js';
import {
  ETCD_CLIENT_PORT,
  ETCD_METRICS_PORT,
  ETCD_PEER_PORT,
  NODE_EXPORTER_PORT,
  WATCH_PORT,
  watchedChain,
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

/** Where an operator puts a validator key on its host; keys never travel in user data. */
export function validatorKeyPath(key: string): string {
  return `/etc/vigil/keys/${key}.json`;
}

/** The exclusive role a guarded Substrate/Cardano producer pair competes for. */
export function roleName(host: PlannedHost): string {
  return `${host.chain!.name}/${host.key}`;
}

/** The systemd unit the watchdog starts and stops. */
export function supervisedUnit(host: PlannedHost): string {
  return `${host.chain!.name}-node.service`;
}

/**
 * The agent's configuration (`vigil agent --config /etc/vigil/agent.yaml`), in the agent's
 * own schema: the signing API on a unix socket (mode 0600: the nodes run as the agent's own
 * user and none calls the API), metrics on the VPN for the monitor, the store,
 * the CometBFT signer dialing every validator node of its key, and for guarded producers
 * the supervisor that starts the node only while this host holds the role.
 */
export function agentConfig(plan: Plan, host: PlannedHost): string {
  const t = plan.topology;
  const pki = pkiPaths(host.name);
  const chain = host.chain;
  const members = guardMembers(plan);
  const store =
    t.vigil.store === 'etcd' && members.length > 0
      ? {
          engine: 'etcd',
          endpoints: members.map((m) => `https://${m.vpnAddress}:${ETCD_CLIENT_PORT}`),
          tls: { ca: pki.ca, cert: pki.cert, key: pki.key },
        }
      : { engine: 'sqlite', path: '/var/lib/vigil/watermarks.db' };
  const signsCometbft = chain?.kind === 'cometbft' && host.key !== undefined;
  const peers = plan.hosts.filter(
    (h) => h.chain?.name === chain?.name && h.key === host.key && h.key !== undefined,
  );
  const config = {
    agent: { id: host.name, dataDir: '/var/lib/vigil/agent' },
    listen: { socket: { path: '/var/lib/vigil/agent/api.sock' } },
    metricsListen: { host: host.vpnAddress, port: t.vigil.apiPort },
    store,
    ...(signsCometbft
      ? {
          // Bound to CometBFT and this chain alone: no other door can use the key.
          keys: [
            {
              id: host.key,
              file: validatorKeyPath(host.key!),
              protocol: 'cometbft',
              chains: [chain.chainId],
            },
          ],
        }
      : {}),
    ...(signsCometbft && chain?.kind === 'cometbft'
      ? {
          cometbft: {
            chains: [
              {
                chainId: chain.chainId,
                keyId: host.key,
                // Unpinned on purpose: stock CometBFT (v0.38, v1) makes the key of its
                // privval listener anew at every start (privval.NewSignerListener;
                // tendermint/tendermint#3105), so no plan can know the id, and a pin would lock
                // the agent out at the first node restart. The nftables rule admits only the
                // validator hosts to the privval port, over WireGuard, and the agent warns at
                // every unpinned connect with the id it saw.
                nodes: peers.map((p) => `tcp://${p.vpnAddress}:${chain.privvalPort}`),
                connectionKeyFile: '/var/lib/vigil/cometbft-connection.key',
              },
            ],
          },
        }
      : {}),
    ...(supervisedByVigil(host)
      ? {
          supervisors: [
            {
              role: roleName(host),
              // The node is started and stopped by the watchdog, not by the agent.
              watchdog: { socket: WATCHDOG_SOCKET },
            },
          ],
        }
      : {}),
  };
  return toYaml(config);
}

/** Where `vigil plan` installs the agent's binary when the topology names it `vigil`. */
export const DEFAULT_AGENT_EXEC = '/opt/vigil/bin/vigil';

/**
 * The agent's unit, as rendered for every planned host that uses a key. The package ships the
 * default rendering (examples/systemd/vigil-agent.service, `vigil systemd-unit`); a test keeps
 * the two byte-equal.
 */
export function agentUnit(execPath: string = DEFAULT_AGENT_EXEC): UnitSpec {
  return {
    name: 'vigil-agent.service',
    description: 'Vigil agent',
    execStart: `${execPath} agent --config /etc/vigil/agent.yaml`,
    user: SERVICE_USER,
    enable: true,
  };
}

export const WATCHDOG_SOCKET = '/run/vigil-watchdog/watchdog.sock';

/**
 * The watchdog's configuration (`vigil watchdog --config /etc/vigil/watchdog.yaml`): it starts
 * the node's unit when the agent activates the role, stops it when asked or at the lease
 * deadline, confirms the stop by the unit being inactive, and SIGKILLs the unit if it is still
 * active at the deadline.
 */
export function watchdogConfig(host: PlannedHost): string {
  const unit = supervisedUnit(host);
  if (host.chain?.kind === 'cardano') return toYaml(cardanoHotStandby(host, host.chain));
  const resync = [{ run: ['systemctl', 'start', '--no-block', substrateSyncUnit(host.chain!)] }];
  return toYaml({
    role: roleName(host),
    socket: WATCHDOG_SOCKET,
    // root:vigild, so the agent (group vigild) may connect and nobody else.
    socketMode: '0660',
    // Starting the validator stops its sync node first (Conflicts=); after a demotion the
    // sync node runs again, so the standby stays synced.
    activate: [{ run: ['systemctl', 'start', unit] }],
    deactivate: [{ run: ['systemctl', 'stop', unit] }, ...resync],
    confirm: { run: ['sh', '-c', unitStopped(unit)], pollMs: 100 },
    // The unit has RestartPreventExitStatus=SIGKILL: killed here, it stays down.
    kill: [{ signal: 'SIGKILL', systemdUnit: unit }, ...resync],
  });
}

/**
 * A shell test that passes only when systemd says the unit is stopped. Not `! systemctl
 * is-active`: that is also true when systemctl itself fails (no bus, a typo), which would
 * confirm a stop that never happened and hand the lease over early.
 */
function unitStopped(unit: string): string {
  return `s=$(systemctl show --property=ActiveState --value ${unit}) && { [ "$s" = inactive ] || [ "$s" = failed ]; }`;
}

/**
 * When cardano-node reacts to SIGHUP, from cardano-node/src/Cardano/Node/Run.hs
 * (IntersectMBO/cardano-node at 0006e063): until `handleSimpleNode` installs its first handler, a
 * SIGHUP ends the process (the default action); that first handler rereads the topology only
 * and logs `BlockForgingUpdate NotEffective`; the handler that reloads the forging keys
 * (`installP2PSigHUPHandler`) is installed in the node-kernel hook, after the ChainDB is
 * opened and before diffusion opens the local socket. So a SIGHUP counts only once the node
 * accepts on its socket: promotion waits for that (within the lease), and demotion skips the
 * signal for a node not up yet — started non-producing and never signalled since, it is not
 * forging, and the keys it would read are already out.
 */
export function cardanoSighup(unit: string, socket: string, when: 'wait' | 'if-serving'): string {
  // curl exits 7 when it cannot connect (no socket, or nobody accepting on it).
  const serving = `curl --silent --max-time 1 --unix-socket ${socket} http://localhost/ >/dev/null 2>&1; [ $? -ne 7 ]`;
  const hup = `systemctl kill --signal=SIGHUP ${unit}`;
  return when === 'wait'
    ? `until ${serving}; do sleep 0.2; done; ${hup}`
    : `if ${serving}; then ${hup}; fi`;
}

/**
 * A guarded Cardano producer pair runs both nodes synced, started without forging. Promotion
 * moves the forging credentials from `standby/` to `forging/` and sends the node SIGHUP, which
 * makes cardano-node re-read them and forge; demotion moves them back and sends SIGHUP again.
 * Demotion counts as done when the node is down or its own metric says forging is off
 * (`forging_enabled`, an IntM of the BlockForgingUpdate trace; `_int` with the new tracing's
 * suffix mode). At the lease deadline the watchdog SIGKILLs the node first (systemd restarts it
 * without forging: it is started non-producing) and then moves the keys out, so a later SIGHUP
 * cannot turn forging back on.
 */
function cardanoHotStandby(host: PlannedHost, chain: CardanoChain): object {
  const unit = supervisedUnit(host);
  const forging = cardanoKeyPaths('forging');
  const standby = cardanoKeyPaths('standby');
  const files = ['kes', 'vrf', 'cert'] as const;
  const keysIn = files.map((f) => ({ moveFile: { from: standby[f], to: forging[f] } }));
  const keysOut = files.map((f) => ({ moveFile: { from: forging[f], to: standby[f] } }));
  const metrics = `http://${host.vpnAddress}:${chain.metricsPort}/metrics`;
  const socket = `${chainDataDir(chain)}/node.socket`;
  return {
    role: roleName(host),
    socket: WATCHDOG_SOCKET,
    socketMode: '0660',
    // The node normally runs already; starting it again is a no-op.
    activate: [
      { run: ['systemctl', 'start', unit] },
      ...keysIn,
      { run: ['sh', '-c', cardanoSighup(unit, socket, 'wait')] },
    ],
    deactivate: [...keysOut, { run: ['sh', '-c', cardanoSighup(unit, socket, 'if-serving')] }],
    confirm: {
      run: [
        'sh',
        '-c',
        `curl --silent --fail --max-time 2 ${metrics} | grep -Eq '^cardano_node_metrics_forging_enabled(_int)? 0$' || { ${unitStopped(unit)}; }`,
      ],
      pollMs: 200,
    },
    kill: [{ signal: 'SIGKILL', systemdUnit: unit }, ...keysOut],
  };
}

/**
 * The watchdog's unit: root (it starts and stops a system unit) in the agent's group (for the
 * socket), restarted at once if it dies; the node's unit is bound to it.
 */
export function watchdogUnit(host: PlannedHost, execPath: string): string {
  return [
    '[Unit]',
    `Description=Vigil watchdog: stops ${supervisedUnit(host)} at the lease deadline`,
    '',
    '[Service]',
    'User=root',
    `Group=${SERVICE_USER}`,
    `ExecStart=${execPath} watchdog --config /etc/vigil/watchdog.yaml`,
    'Restart=always',
    'RestartSec=1',
    'RuntimeDirectory=vigil-watchdog',
    'RuntimeDirectoryMode=0750',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
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
  const jobs: Array<{
    job_name: string;
    static_configs: ReturnType<typeof targets>;
    metrics_path?: string;
    params?: Record<string, readonly string[]>;
  }> = [
    { job_name: 'node', static_configs: targets(plan.hosts, () => NODE_EXPORTER_PORT) },
    {
      job_name: 'vigil',
      static_configs: targets(
        plan.hosts.filter((h) => h.key !== undefined),
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
  // The Cosmos SDK app's own telemetry (gas, txs, module metrics), on its REST API.
  const cosmosApps = plan.hosts.filter(
    (h) => h.chain?.kind === 'cometbft' && h.chain.app.kind === 'cosmos-sdk',
  );
  if (cosmosApps.length > 0)
    jobs.push({
      job_name: 'cosmos-sdk',
      metrics_path: COSMOS_TELEMETRY_PATH,
      params: COSMOS_TELEMETRY_PARAMS,
      static_configs: targets(cosmosApps, (h) =>
        h.chain?.kind === 'cometbft' && h.chain.app.kind === 'cosmos-sdk' ? h.chain.app.apiPort : 0,
      ),
    });
  const guards = guardMembers(plan);
  if (guards.length > 0)
    jobs.push({ job_name: 'etcd', static_configs: targets(guards, () => ETCD_METRICS_PORT) });
  const watched = plan.hosts.filter((h) => watchedChain(plan.topology, h, plan.hosts));
  if (watched.length > 0)
    jobs.push({ job_name: 'vigil-watch', static_configs: targets(watched, () => WATCH_PORT) });
  return (
    `# Prometheus on the monitor: every target is scraped over the WireGuard VPN.\n` +
    toYaml({
      global: { scrape_interval: '15s', evaluation_interval: '15s' },
      // Alertmanager runs beside Prometheus on the monitor, on loopback.
      alerting: { alertmanagers: [{ static_configs: [{ targets: [ALERTMANAGER_LISTEN] }] }] },
      rule_files: [SIGNER_RULES_PATH],
      scrape_configs: jobs,
    })
  );
}
