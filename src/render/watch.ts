/**
 * `vigil watch` on a signing host (where it runs and why: topology/plan.ts watchedChain). Its
 * config is built in the watcher's own schema (src/watch/config.ts) and parsed with it, so a
 * plan can never render a config the watcher refuses. Metrics listen on the host's VPN
 * address, where nftables admits only the monitor.
 */
import { stringify as toYaml } from 'yaml';
import { WATCH_PORT, watchedChain, type Plan, type PlannedHost } from '../topology/plan.js';
import { WatchConfigSchema, type WatchConfig } from '../watch/config.js';
import { InputError } from '../errors.js';
import { dcrwalletSetup } from './decred.js';

/** The watcher's own user: it reads no key, no store and no node file. */
export const WATCH_USER = 'vigil-watch';
export const WATCH_CONFIG_PATH = '/etc/vigil/watch.yaml';
export const WATCH_UNIT = 'vigil-watch.service';
/** dcrwallet's RPC password for the watcher on a voting-wallet host (vigil-watch, 0600). */
export const WATCH_DCRWALLET_PASSWORD_PATH = '/etc/vigil/watch-dcrwallet.pass';
/** CometBFT's RPC as rendered for every node (render/chains.ts cometbftConfig). */
const COMETBFT_RPC = 'http://127.0.0.1:26657';
/** A Substrate node's RPC as rendered (render/chains.ts: --rpc-port 9944, loopback by default). */
const SUBSTRATE_RPC = 'http://127.0.0.1:9944';

/** The watcher's config for this host, or undefined when nothing is watched here. */
export function watchConfig(plan: Plan, host: PlannedHost): WatchConfig | undefined {
  const chain = watchedChain(plan.topology, host, plan.hosts);
  if (!chain) return undefined;
  const listen = { host: host.vpnAddress, port: WATCH_PORT };
  let input: unknown;
  if (chain.kind === 'cometbft') {
    const entry = plan.topology.monitoring.watch.find((w) => w.chain === chain.name)!;
    input = {
      listen,
      chains: [
        {
          kind: 'cometbft',
          chainId: chain.chainId,
          rpc: COMETBFT_RPC,
          validatorAddress: entry.validatorAddress,
          ...(entry.valoper !== undefined ? { valoper: entry.valoper } : {}),
          ...(entry.rest !== undefined ? { rest: entry.rest } : {}),
        },
      ],
    };
  } else if (chain.kind === 'cardano') {
    input = {
      listen,
      // The node's metrics are moved onto the VPN address by vigil-cardano-config.
      chains: [
        {
          kind: 'cardano',
          name: chain.name,
          metricsUrl: `http://${host.vpnAddress}:${chain.metricsPort}/metrics`,
        },
      ],
    };
  } else if (chain.kind === 'substrate') {
    input = {
      listen,
      chains: [
        {
          kind: 'polkadot',
          name: chain.name,
          // The node's RPC on loopback (its default listen address; --rpc-methods Safe, so the
          // session-keys check, an unsafe method, is not configured here).
          rpc: SUBSTRATE_RPC,
          // --prometheus-external binds all interfaces; nftables admits the monitor and this host.
          metricsUrl: `http://${host.vpnAddress}:${chain.metricsPort}/metrics`,
        },
      ],
    };
  } else if (chain.kind === 'decred') {
    const setup = dcrwalletSetup(chain);
    input = {
      listen,
      chains: [
        {
          kind: 'decred',
          name: chain.name,
          // This host's wallet only, as the setup unit reaches it; the cross-wallet checks are
          // the monitor's fleet rules over every wallet's series (render/alert-rules.ts).
          wallets: [
            {
              name: host.name,
              url: setup.url,
              caFile: setup.caFile,
              username: setup.username,
              passwordFile: WATCH_DCRWALLET_PASSWORD_PATH,
            },
          ],
        },
      ],
    };
  } else return undefined;
  const parsed = WatchConfigSchema.safeParse(input);
  if (!parsed.success)
    throw new InputError(
      `monitoring.watch for ${chain.name} on ${host.name}: ${parsed.error.issues
        .map((i) => `${i.path.join('.')}: ${i.message}`)
        .join('; ')}`,
    );
  return parsed.data;
}

/** The rendered file: the parsed config, defaults spelled out, so review shows what runs. */
export function watchConfigText(config: WatchConfig): string {
  return (
    '# vigil watch on this host; the monitor scrapes its metrics over the VPN.\n' + toYaml(config)
  );
}

/**
 * The watcher's unit: its own user, no capabilities, a read-only system, network only.
 * Ordered after the VPN, whose address it listens on.
 */
export function watchUnit(execPath: string): string {
  return [
    '[Unit]',
    'Description=Vigil chain watcher (metrics for the monitor)',
    'Wants=network-online.target',
    'After=network-online.target wg-quick@wg0.service',
    '',
    '[Service]',
    `User=${WATCH_USER}`,
    `Group=${WATCH_USER}`,
    `ExecStart=${execPath} watch --config ${WATCH_CONFIG_PATH}`,
    'Restart=on-failure',
    'RestartSec=5',
    'NoNewPrivileges=true',
    'CapabilityBoundingSet=',
    'AmbientCapabilities=',
    'ProtectSystem=strict',
    'ProtectHome=true',
    'PrivateTmp=true',
    'PrivateDevices=true',
    'ProtectKernelTunables=true',
    'ProtectKernelModules=true',
    'ProtectControlGroups=true',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
    'RestrictSUIDSGID=true',
    'LockPersonality=true',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}
