/**
 * app.toml for the Cosmos SDK application of a CometBFT chain (gaiad and the like), written
 * beside config.toml under the node's --home.
 *
 * Keys and value kinds follow cosmos-sdk server/config/toml.go DefaultConfigTemplate at
 * v0.50.9-lsm, the SDK gaia v21 builds on (recorded in test/render/upstream-node-flags.json
 * and checked there). Every key of the template is written: the SDK reads app.toml through
 * viper, so a key missing from the file becomes its zero value rather than the SDK default
 * (no IAVL cache, no inter-block cache, all snapshots kept). Where Vigil has no reason to
 * differ, the value is the SDK's DefaultConfig (server/config/config.go, same tag). With
 * `app.wasm`, wasmd's [wasm] section follows (wasmd v0.53.0, the version gaia v21.0.1 pins).
 */
import { stringify as toToml } from 'smol-toml';
import type { PlannedHost } from '../topology/plan.js';
import type { CometbftChain, CosmosSdkApp } from '../topology/schema.js';

/** Where the app's Prometheus metrics are served: the API server, with telemetry enabled. */
export const COSMOS_TELEMETRY_PATH = '/metrics';
export const COSMOS_TELEMETRY_PARAMS = { format: ['prometheus'] } as const;

/**
 * How long the app keeps a metric it has not updated (telemetry prometheus-retention-time,
 * seconds; positive enables the Prometheus sink). Longer than a scrape interval.
 */
export const TELEMETRY_RETENTION_SECONDS = 60;

/** The Cosmos SDK app of a chain, if it runs one. */
export function cosmosSdkApp(chain: CometbftChain): CosmosSdkApp | undefined {
  return chain.app.kind === 'cosmos-sdk' ? chain.app : undefined;
}

/** Sentries take and serve state-sync snapshots; the validator never spends I/O on them. */
export function servesSnapshots(host: PlannedHost, app: CosmosSdkApp): boolean {
  return host.role === 'sentry' && app.snapshots !== undefined;
}

export function cosmosAppToml(host: PlannedHost, chain: CometbftChain, app: CosmosSdkApp): string {
  const custom = app.pruning.strategy === 'custom' ? app.pruning : undefined;
  const snapshots = servesSnapshots(host, app) ? app.snapshots : undefined;
  const config = {
    'minimum-gas-prices': app.minimumGasPrices,
    'query-gas-limit': '0',
    pruning: app.pruning.strategy,
    // Read only with pruning = "custom"; the template writes them as strings.
    'pruning-keep-recent': String(custom?.keepRecent ?? 0),
    'pruning-interval': String(custom?.interval ?? 0),
    'halt-height': 0,
    'halt-time': 0,
    'min-retain-blocks': 0,
    'inter-block-cache': true,
    'index-events': [],
    'iavl-cache-size': 781250,
    'iavl-disable-fastnode': false,
    'app-db-backend': '',
    telemetry: {
      'service-name': '',
      enabled: true,
      'enable-hostname': false,
      'enable-hostname-label': false,
      'enable-service-label': false,
      'prometheus-retention-time': TELEMETRY_RETENTION_SECONDS,
      'global-labels': [['chain_id', chain.chainId]],
      // Empty: the in-memory sink (telemetry.New's default), which Prometheus reads through.
      'metrics-sink': '',
      'statsd-addr': '',
      'datadog-hostname': '',
    },
    // The REST API serves the telemetry the monitor scrapes: bound to the VPN address, where
    // nftables admits only the monitor (never a public interface).
    api: {
      enable: true,
      swagger: false,
      address: `tcp://${host.vpnAddress}:${app.apiPort}`,
      'max-open-connections': 1000,
      'rpc-read-timeout': 10,
      'rpc-write-timeout': 0,
      'rpc-max-body-bytes': 1000000,
      'enabled-unsafe-cors': false,
    },
    // On loopback, for tools on the host itself.
    grpc: {
      enable: true,
      address: `127.0.0.1:${app.grpcPort}`,
      'max-recv-msg-size': '10485760',
      'max-send-msg-size': '2147483647',
    },
    // gRPC-web shares the API's address; nothing in a fleet needs it.
    'grpc-web': { enable: false },
    'state-sync': {
      'snapshot-interval': snapshots?.interval ?? 0,
      'snapshot-keep-recent': snapshots?.keepRecent ?? 2,
    },
    streaming: { abci: { keys: [], plugin: '', 'stop-node-on-err': true } },
    mempool: { 'max-txs': -1 },
    // wasmd's section (gaia v21 appends it to the SDK template): keys of x/wasm/types/types.go
    // ConfigTemplate at wasmd v0.53.0, recorded in test/render/upstream-node-flags.json.
    ...(app.wasm
      ? {
          wasm: {
            query_gas_limit: app.wasm.queryGasLimit,
            memory_cache_size: app.wasm.memoryCacheSizeMiB,
            ...(app.wasm.simulationGasLimit !== undefined
              ? { simulation_gas_limit: app.wasm.simulationGasLimit }
              : {}),
          },
        }
      : {}),
  };
  return `# Cosmos SDK app config for ${host.name} (${host.role}) on ${chain.chainId}.\n${toToml(config)}\n`;
}
