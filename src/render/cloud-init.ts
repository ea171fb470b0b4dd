/**
 * Per host, two things. The #cloud-config user data is a small bootstrap that depends only on
 * the host's own stable facts (name, the operator's user, keys and SSH policy): providers
 * replace a machine when its user data changes, so nothing about other hosts and no secret may
 * be in it. Everything else (fleet-wide config, secrets, units, chain configs, the commands
 * that install and start them) is the host's setup, delivered after boot by `vigil apply`
 * over SSH as a bundle (src/render/bundle.ts, src/provision/push.ts).
 */
import { stringify as toYaml } from 'yaml';
import type { Plan, PlannedHost } from '../topology/plan.js';
import type { Artifact, Topology } from '../topology/schema.js';
import { InputError } from '../errors.js';
import { DCRWALLET_SETUP_UNIT } from './decred.js';
import {
  SERVICE_USER,
  NODE_USER,
  CARDANO_CONFIG_COMMAND,
  CARDANO_CONFIG_SCRIPT,
  cardanoConfigPaths,
  artifactBinary,
  binaryName,
  chainDataDir,
  chainDir,
  chainFiles,
  chainUnits,
  renderUnit,
  supervisedByVigil,
  WATCHDOG_UNIT,
  type RenderedFile,
  type UnitSpec,
} from './chains.js';
import { SIGNER_RULES_PATH, signerAlertRules } from './alert-rules.js';
import {
  NODE_UID,
  WG_ENDPOINTS_SCRIPT,
  nftablesInputHead,
  renderNftables,
  renderWireguard,
  ruleLinesFor,
} from './network.js';
import {
  agentConfig,
  agentUnit,
  etcdConfig,
  guardMembers,
  prometheusConfig,
  watchdogConfig,
  watchdogUnit,
} from './services.js';
import type { PlanState } from './state.js';
import {
  AUTHORIZED_KEYS_DIR,
  SSHD_CONFIG_PATH,
  SSHD_RELOAD_COMMAND,
  SSHD_RELOAD_SCRIPT,
  sshdConfig,
} from './ssh.js';
import { dataVolumeDevices } from './terraform.js';
import {
  DATA_VOLUME_COMMAND,
  DATA_VOLUME_LABEL,
  DATA_VOLUME_SCRIPT,
  dataMountPoint,
  requiresMountDropIn,
} from './volume.js';
import {
  ALERTMANAGER_ASSEMBLE_COMMAND,
  ALERTMANAGER_ASSEMBLE_SCRIPT,
  ALERTMANAGER_CONFIG_PATH,
  ALERTMANAGER_DEFAULTS_PATH,
  ALERTMANAGER_DROP_IN_PATH,
  ALERTMANAGER_TEMPLATE_PATH,
  alertmanagerDropIn,
  needsInlineSecrets,
  alertmanagerConfig,
  alertmanagerDefaults,
} from './alertmanager.js';
import {
  GRAFANA_ADMIN_PASSWORD_COMMAND,
  GRAFANA_INI_PATH,
  GRAFANA_INSTALL_DIR,
  GRAFANA_USER,
  GRAFANA_DASHBOARDS_ARGS,
  grafanaIni,
  grafanaUnit,
} from './grafana.js';
import {
  WATCH_CONFIG_PATH,
  WATCH_UNIT,
  WATCH_USER,
  WATCH_DCRWALLET_PASSWORD_PATH,
  watchConfig,
  watchConfigText,
  watchUnit,
} from './watch.js';

/** Downloads an artifact, refuses it unless its sha256 matches, and installs it. */
const FETCH_SCRIPT = `#!/bin/sh
# vigil-fetch URL SHA256 DEST BINARY: verified download; archives are unpacked into DEST.
set -eu
# Programs are for every service user: install.sh runs this under its umask 077 (for secrets),
# which would leave DEST 0700 and the binary out of the agent's and the node's reach.
umask 022
url="$1"; sum="$2"; dest="$3"; bin="$4"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
curl --fail --silent --show-error --location --retry 5 --output "$tmp/artifact" "$url"
echo "$sum  $tmp/artifact" | sha256sum --check --strict --quiet -
mkdir -p "$dest/bin"
case "$url" in
  *.tar.gz|*.tgz) tar -xzf "$tmp/artifact" -C "$dest" ;;
  *.tar.xz) tar -xJf "$tmp/artifact" -C "$dest" ;;
  *) install -m 0755 "$tmp/artifact" "$dest/bin/$bin" ;;
esac
name="$(basename "$bin")"
if [ ! -x "$dest/bin/$name" ] && [ -x "$dest/$bin" ]; then ln -sf "$dest/$bin" "$dest/bin/$name"; fi
`;

/** A system user the bundle creates before installing files (users the packages bring are not listed). */
export interface SetupUser {
  readonly name: string;
  readonly homedir?: string;
  /** Fixed where a firewall rule names the user by uid before the user exists (NODE_UID). */
  readonly uid?: number;
  readonly createHome: boolean;
}

/** What the bundle does on the host besides installing files, in order. */
export interface HostSetup {
  readonly users: readonly SetupUser[];
  readonly packages: readonly string[];
  /** Each runs once per distinct command line (re-run when, e.g., an artifact's sha256 changes). */
  readonly commands: ReadonlyArray<readonly string[]>;
}

export interface HostRender {
  /** The bootstrap user data: identical whatever the rest of the fleet looks like. */
  readonly cloudInit: string;
  /** Every file the bundle installs on the host. */
  readonly files: readonly RenderedFile[];
  readonly setup: HostSetup;
}

function fetchCommand(a: Artifact, dest: string, what: string): string[] {
  if (!a.sha256) throw new InputError(`${what}: ${a.url} has no sha256; refusing to render`);
  return ['/usr/local/sbin/vigil-fetch', a.url, a.sha256, dest, artifactBinary(a)];
}

export function renderHost(plan: Plan, host: PlannedHost, state: PlanState): HostRender {
  const t = plan.topology;
  const root = 'root:root';
  const files: RenderedFile[] = [
    {
      path: '/etc/nftables.conf',
      content: renderNftables(plan, host),
      permissions: '0755',
      owner: root,
      restarts: ['nftables.service'],
    },
    {
      path: '/etc/wireguard/wg0.conf',
      content: renderWireguard(plan, host),
      permissions: '0600',
      owner: root,
      restarts: ['wg-quick@wg0.service'],
    },
    // SSH access as the topology has it now (the user data only seeded the first boot). The
    // keys file comes first: the sshd configuration that points at it is applied after both.
    {
      path: `${AUTHORIZED_KEYS_DIR}/${t.ssh.user}`,
      content: t.ssh.keys.map((k) => `${k}\n`).join(''),
      permissions: '0644',
      owner: root,
    },
    {
      path: SSHD_CONFIG_PATH,
      content: sshdConfig(host.sshPorts, t.ssh.user, { authorizedKeysDir: AUTHORIZED_KEYS_DIR }),
      permissions: '0644',
      owner: root,
    },
    {
      path: SSHD_RELOAD_COMMAND,
      content: SSHD_RELOAD_SCRIPT,
      permissions: '0755',
      owner: root,
    },
    {
      path: '/usr/local/sbin/vigil-fetch',
      content: FETCH_SCRIPT,
      permissions: '0755',
      owner: root,
    },
    {
      path: '/usr/local/sbin/vigil-wg-endpoints',
      content: WG_ENDPOINTS_SCRIPT,
      permissions: '0755',
      owner: root,
    },
    {
      // The packaged unit knows nothing of the VPN it now listens on.
      path: '/etc/systemd/system/prometheus-node-exporter.service.d/10-vigil.conf',
      content:
        '[Unit]\nWants=wg-quick@wg0.service\nAfter=wg-quick@wg0.service\n\n[Service]\nRestart=always\nRestartSec=5\n',
      permissions: '0644',
      owner: root,
      restarts: ['prometheus-node-exporter.service'],
    },
    {
      path: '/etc/default/prometheus-node-exporter',
      content: `ARGS="--web.listen-address=${host.vpnAddress}:9100"\n`,
      permissions: '0644',
      owner: root,
      restarts: ['prometheus-node-exporter.service'],
    },
  ];
  const packages = ['ca-certificates', 'curl', 'nftables', 'wireguard', 'prometheus-node-exporter'];
  const units: UnitSpec[] = [];
  const fetches: string[][] = [];
  const packagedServices: string[] = ['nftables', 'wg-quick@wg0', 'prometheus-node-exporter'];
  let etcdDataOwner: string | undefined;
  /** First boot only (runcmd runs once per instance): the operator's act that creates the
   * agent's store. Never in the unit: a store deleted later must not be re-created by a restart. */
  const storeInit: string[][] = [];
  /** Grafana's admin password and data directory, made on the host after its user exists. */
  const grafanaSetup: string[][] = [];
  const etcdStore = t.vigil.store === 'etcd' && guardMembers(plan).length > 0;

  // Agents run where a validator key is used: they guard its signatures or its role.
  if (host.key !== undefined) {
    if (supervisedByVigil(host)) {
      files.push(
        {
          path: '/etc/vigil/watchdog.yaml',
          content: watchdogConfig(host),
          // Read by the watchdog (root) only; nothing in /etc/vigil is for the node's user.
          permissions: '0600',
          owner: root,
        },
        {
          path: `/etc/systemd/system/${WATCHDOG_UNIT}`,
          content: watchdogUnit(host, `/opt/vigil/bin/${binaryName(t.vigil.agent)}`),
          permissions: '0644',
          owner: root,
        },
      );
    }
    files.push({
      path: '/etc/vigil/agent.yaml',
      content: agentConfig(plan, host),
      // The agent's own, and nobody else's (the chain node's user least of all).
      permissions: '0600',
      owner: `${SERVICE_USER}:${SERVICE_USER}`,
    });
    fetches.push(fetchCommand(t.vigil.agent, '/opt/vigil', 'vigil.agent'));
    units.push(agentUnit(`/opt/vigil/bin/${binaryName(t.vigil.agent)}`));
    const init = `/opt/vigil/bin/${binaryName(t.vigil.agent)} state init --config /etc/vigil/agent.yaml`;
    // The local SQLite file is created before the agent starts. An etcd store needs a quorum,
    // which may still be booting (perhaps on this very host, started below): that init runs
    // after the units, retrying for up to 10 minutes, while the agent refuses to start and
    // systemd restarts it. A create-only transaction, so racing agent hosts agree on one id.
    storeInit.push(
      etcdStore
        ? [
            'sh',
            '-c',
            `for i in $(seq 1 120); do runuser -u ${SERVICE_USER} -- ${init} && exit 0; sleep 5; done; exit 1`,
          ]
        : ['runuser', '-u', SERVICE_USER, '--', ...init.split(' ')],
    );
  }
  if (host.role === 'guard-member') {
    // Debian's etcd-server package brings an etcd user; a pinned artifact runs as ours.
    const etcdUser = t.vigil.etcd ? SERVICE_USER : 'etcd';
    files.push({
      path: '/etc/vigil/etcd.yaml',
      content: etcdConfig(plan, host, state.clusterToken(t.name)),
      permissions: '0640',
      owner: `root:${etcdUser}`,
    });
    let etcdBin = '/usr/bin/etcd';
    etcdDataOwner = `${etcdUser}:${etcdUser}`;
    if (t.vigil.etcd) {
      fetches.push(fetchCommand(t.vigil.etcd, '/opt/etcd', 'vigil.etcd'));
      etcdBin = `/opt/etcd/bin/${binaryName(t.vigil.etcd)}`;
    } else packages.push('etcd-server');
    units.push({
      name: 'vigil-etcd.service',
      description: 'etcd member of the Vigil guard cluster (mutual TLS)',
      execStart: `${etcdBin} --config-file /etc/vigil/etcd.yaml`,
      user: etcdUser,
      enable: true,
    });
  }
  if (host.role === 'monitor') {
    packages.push('prometheus');
    files.push({
      path: '/etc/prometheus/prometheus.yml',
      content: prometheusConfig(plan),
      permissions: '0644',
      owner: root,
      restarts: ['prometheus.service'],
    });
    files.push({
      path: SIGNER_RULES_PATH,
      content: signerAlertRules(),
      permissions: '0644',
      owner: root,
      restarts: ['prometheus.service'],
    });
    // Alertmanager reads the operator's secret files (root:prometheus 0640) itself.
    packages.push('prometheus-alertmanager');
    files.push(
      {
        // With Telegram or Discord, a template the host completes from the secret files.
        path: needsInlineSecrets(t.monitoring)
          ? ALERTMANAGER_TEMPLATE_PATH
          : ALERTMANAGER_CONFIG_PATH,
        content: alertmanagerConfig(t.monitoring),
        permissions: '0640',
        owner: 'root:prometheus',
        restarts: ['prometheus-alertmanager.service'],
      },
      ...(needsInlineSecrets(t.monitoring)
        ? [
            {
              path: ALERTMANAGER_ASSEMBLE_COMMAND,
              content: ALERTMANAGER_ASSEMBLE_SCRIPT,
              permissions: '0755',
              owner: root,
            },
            {
              path: ALERTMANAGER_DROP_IN_PATH,
              content: alertmanagerDropIn(),
              permissions: '0644',
              owner: root,
              restarts: ['prometheus-alertmanager.service'],
            },
          ]
        : []),
      {
        path: ALERTMANAGER_DEFAULTS_PATH,
        content: alertmanagerDefaults(t.monitoring),
        permissions: '0644',
        owner: root,
        restarts: ['prometheus-alertmanager.service'],
      },
    );
    packagedServices.push('prometheus', 'prometheus-alertmanager');
    if (t.monitoring.grafana) {
      files.push({
        path: GRAFANA_INI_PATH,
        content: grafanaIni(),
        permissions: '0640',
        owner: `root:${GRAFANA_USER}`,
      });
      fetches.push(fetchCommand(t.monitoring.grafana, GRAFANA_INSTALL_DIR, 'monitoring.grafana'));
      // The dashboards (hundreds of KiB of JSON) would not fit in user data: the pinned Vigil
      // release writes them on the host, so they always match the Vigil version of the fleet.
      if (host.key === undefined)
        fetches.push(fetchCommand(t.vigil.agent, '/opt/vigil', 'vigil.agent'));
      grafanaSetup.push(GRAFANA_ADMIN_PASSWORD_COMMAND, [
        `/opt/vigil/bin/${binaryName(t.vigil.agent)}`,
        ...GRAFANA_DASHBOARDS_ARGS,
      ]);
      units.push(grafanaUnit(t.monitoring.grafana));
    }
  }
  const watch = watchConfig(plan, host);
  // Voting wallets use no key, so nothing else installed Vigil there; the watcher needs it.
  if (watch && host.key === undefined && host.role !== 'monitor')
    fetches.push(fetchCommand(t.vigil.agent, '/opt/vigil', 'vigil.agent'));
  if (watch && host.chain?.kind === 'decred')
    files.push({
      path: WATCH_DCRWALLET_PASSWORD_PATH,
      // The same secret dcrwallet.conf's `password=` carries (render/chains.ts decredConfigs).
      content: `${state.secret(`${host.name}.dcrwallet-rpc`)}\n`,
      permissions: '0600',
      owner: `${WATCH_USER}:${WATCH_USER}`,
    });
  if (watch) {
    files.push(
      {
        path: WATCH_CONFIG_PATH,
        content: watchConfigText(watch),
        permissions: '0640',
        owner: `root:${WATCH_USER}`,
      },
      {
        path: `/etc/systemd/system/${WATCH_UNIT}`,
        content: watchUnit(`/opt/vigil/bin/${binaryName(t.vigil.agent)}`),
        permissions: '0644',
        owner: root,
      },
    );
  }
  const chain = host.chain;
  if (chain) {
    files.push(...chainFiles(plan, host, state));
    if (chain.kind === 'decred') {
      packages.push('jq');
      fetches.push(fetchCommand(chain.dcrd, chainDir(chain), `${chain.name}.dcrd`));
      fetches.push(fetchCommand(chain.dcrwallet, chainDir(chain), `${chain.name}.dcrwallet`));
    } else {
      fetches.push(fetchCommand(chain.binary, chainDir(chain), `${chain.name}.binary`));
      if (chain.kind === 'cardano') {
        // The release binds metrics to 127.0.0.1; the monitor scrapes the VPN address.
        const { upstream, rendered } = cardanoConfigPaths(chain);
        files.push({
          path: CARDANO_CONFIG_COMMAND,
          content: CARDANO_CONFIG_SCRIPT,
          permissions: '0755',
          owner: root,
        });
        packages.push('jq');
        fetches.push([
          CARDANO_CONFIG_COMMAND,
          upstream,
          rendered,
          host.vpnAddress,
          String(chain.metricsPort),
        ]);
      }
      // The Polkadot PVF workers sit beside the node binary, where it looks for them first.
      if (chain.kind === 'substrate')
        chain.workers.forEach((w, i) =>
          fetches.push(fetchCommand(w, chainDir(chain), `${chain.name}.workers[${i}]`)),
        );
    }
    units.push(...chainUnits(plan, host));
  }
  // The chain's data volume is mounted before the chain's directories are made (below) and
  // every chain unit requires the mount.
  const volume: string[][] = [];
  if (chain && host.disk.volumeGB !== undefined) {
    const mnt = dataMountPoint(chain);
    files.push({
      path: DATA_VOLUME_COMMAND,
      content: DATA_VOLUME_SCRIPT,
      permissions: '0755',
      owner: root,
    });
    for (const u of chainUnits(plan, host))
      files.push({
        path: `/etc/systemd/system/${u.name}.d/10-vigil-data.conf`,
        content: requiresMountDropIn(mnt),
        permissions: '0644',
        owner: root,
      });
    // A volume added to a running host migrates the data: the node's units (the watchdog
    // first, so that it restarts none of them) are stopped for the copy and started again.
    const stop = [
      ...(host.key !== undefined && supervisedByVigil(host) ? [WATCHDOG_UNIT] : []),
      ...chainUnits(plan, host).map((u) => u.name),
    ];
    volume.push([
      DATA_VOLUME_COMMAND,
      '--units',
      stop.join(' '),
      DATA_VOLUME_LABEL,
      mnt,
      ...dataVolumeDevices(t.name, host),
    ]);
  }
  for (const u of units)
    files.push({
      path: `/etc/systemd/system/${u.name}`,
      content: renderUnit(u),
      permissions: '0644',
      owner: root,
    });

  const nodeDirs = chain ? [chainDataDir(chain)] : [];
  if (chain?.kind === 'decred') nodeDirs.push('/var/lib/dcrd', '/var/lib/dcrwallet');
  const commands: string[][] = [
    // The agent's directory (store, local watermark) is closed to every other user.
    ['install', '-d', '-m', '0700', '-o', SERVICE_USER, '-g', SERVICE_USER, '/var/lib/vigil'],
    ...volume,
    ...(nodeDirs.length > 0
      ? [
          ['mkdir', '-p', ...nodeDirs],
          ['chown', '-R', `${NODE_USER}:${NODE_USER}`, ...nodeDirs],
        ]
      : []),
    ...(etcdDataOwner
      ? [
          ['mkdir', '-p', '-m', '0700', '/var/lib/vigil-etcd'],
          ['chown', etcdDataOwner, '/var/lib/vigil-etcd'],
        ]
      : []),
    // Fleet firewall and VPN come up before anything is downloaded or started.
    ['systemctl', 'enable', '--now', ...packagedServices],
    ['systemctl', 'restart', 'prometheus-node-exporter'],
    ...(host.role === 'guard-member' && !t.vigil.etcd
      ? [['systemctl', 'disable', '--now', 'etcd']]
      : []),
    ...fetches,
    ...grafanaSetup,
    ...(etcdStore ? [] : storeInit),
    ...units.filter((u) => u.enable).map((u) => ['systemctl', 'enable', '--now', u.name]),
    // Unlocks the voting wallet and applies its choices, now and after every wallet start.
    ...(chain?.kind === 'decred' ? [['systemctl', 'enable', '--now', DCRWALLET_SETUP_UNIT]] : []),
    ...(etcdStore ? storeInit : []),
    // After the fetch: it runs the Vigil binary.
    ...(watch ? [['systemctl', 'enable', '--now', WATCH_UNIT]] : []),
    // After the fetch: it runs the binary the agent runs.
    ...(host.key !== undefined && supervisedByVigil(host)
      ? [['systemctl', 'enable', '--now', WATCHDOG_UNIT]]
      : []),
  ];

  const users: SetupUser[] = [
    { name: SERVICE_USER, homedir: '/var/lib/vigil', createHome: true },
    ...(grafanaSetup.length > 0 ? [{ name: GRAFANA_USER, createHome: false }] : []),
    ...(watch ? [{ name: WATCH_USER, createHome: false }] : []),
    ...(chain
      ? [{ name: NODE_USER, uid: NODE_UID, homedir: chainDataDir(chain), createHome: false }]
      : []),
  ];
  return {
    cloudInit: renderBootstrap(t, host),
    files,
    setup: { users, packages, commands },
  };
}

/**
 * The first-boot firewall: SSH from the operator's sources, replies, loopback, ICMP. Loaded
 * by bootcmd (before write_files, packages and runcmd) and kept in /etc/nftables.conf until
 * the bundle installs the fleet's rules, so the host is never open, not even while it
 * upgrades packages.
 */
export function bootstrapNftables(t: Topology): string {
  const ssh = ruleLinesFor(
    { port: t.ssh.port, proto: 'tcp', from: 'ssh', vpnOnly: false, purpose: 'ssh' },
    t,
  );
  return [
    ...nftablesInputHead(
      'Vigil bootstrap firewall: SSH only, until `vigil apply` installs the fleet rules.',
    ),
    ...ssh.map((l) => `    ${l}`),
    '  }',
    '',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The user data: the operator, SSH hardening and the bootstrap firewall; nothing else. */
export function renderBootstrap(t: Topology, host: PlannedHost): string {
  const nft = bootstrapNftables(t);
  const cloudConfig = {
    hostname: host.name,
    preserve_hostname: false,
    // bootcmd runs before write_files and long before package_upgrade: the firewall is up
    // first. cloud-init-per once: on later boots nftables.service loads /etc/nftables.conf
    // (by then the fleet's rules) and this must not replace them.
    bootcmd: [
      [
        'cloud-init-per',
        'once',
        'vigil-bootstrap-firewall',
        'sh',
        '-c',
        `nft -f - <<'VIGIL_NFT'\n${nft}VIGIL_NFT\n`,
      ],
    ],
    users: [
      {
        name: t.ssh.user,
        groups: ['sudo'],
        shell: '/bin/bash',
        sudo: 'ALL=(ALL) NOPASSWD:ALL',
        lock_passwd: true,
        ssh_authorized_keys: t.ssh.keys,
      },
    ],
    disable_root: true,
    ssh_pwauth: false,
    package_update: true,
    package_upgrade: true,
    write_files: [
      {
        path: SSHD_CONFIG_PATH,
        content: sshdConfig([t.ssh.port], t.ssh.user),
        permissions: '0644',
        owner: 'root:root',
      },
      { path: '/etc/nftables.conf', content: nft, permissions: '0755', owner: 'root:root' },
    ],
    runcmd: [
      ['systemctl', 'enable', 'nftables'],
      // Ubuntu 24.04 socket-activates sshd: restarting the socket applies the new port.
      ['sh', '-c', 'systemctl restart ssh.socket 2>/dev/null || true; systemctl restart ssh'],
    ],
  };
  return (
    '#cloud-config\n' +
    `# Vigil bootstrap for ${host.name}; its configuration arrives by \`vigil apply\` over SSH.\n` +
    toYaml(cloudConfig, { lineWidth: 0 })
  );
}
