/**
 * `vigil watch`: runs the configured chain watchers and serves their metrics (GET /metrics,
 * Prometheus text) and liveness (GET /healthz, JSON) on one plain node:http listener.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { CardanoWatcher } from './cardano.js';
import { CometbftWatcher, type CometbftWatcherOptions } from './cometbft.js';
import { DecredWatcher } from './decred.js';
import { PolkadotWatcher } from './polkadot.js';
import { watchChainName, type WatchConfig } from './config.js';

export { CardanoWatcher, cardanoWatchMetrics } from './cardano.js';
export { CometbftWatcher, ProbeError, cometbftWatchMetrics } from './cometbft.js';
export { DecredWatcher, decredWatchMetrics } from './decred.js';
export { PolkadotWatcher, polkadotWatchMetrics } from './polkadot.js';
export { loadWatchConfig, WatchConfigSchema, type WatchConfig } from './config.js';

export type ChainWatcher = CometbftWatcher | CardanoWatcher | DecredWatcher | PolkadotWatcher;

export interface RunningWatch {
  readonly url: string;
  readonly registry: Registry;
  readonly watchers: readonly ChainWatcher[];
  stop(): Promise<void>;
}

export function watchServer(registry: Registry, watchers: readonly ChainWatcher[]): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    } else if (path === '/healthz') {
      const body = {
        status: 'ok',
        chains: watchers.map((w) =>
          w.config.kind === 'cometbft'
            ? { kind: w.config.kind, chainId: w.config.chainId }
            : { kind: w.config.kind, name: watchChainName(w.config) },
        ),
      };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /metrics, /healthz\n');
    }
  });
}

export async function runWatch(
  config: WatchConfig,
  options: CometbftWatcherOptions = {},
): Promise<RunningWatch> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Made before anything listens: a watcher refusing its files (Decred) stops here.
  const watchers = config.chains.map((c): ChainWatcher =>
    c.kind === 'cometbft'
      ? new CometbftWatcher(c, registry, options)
      : c.kind === 'cardano'
        ? new CardanoWatcher(c, registry, options)
        : c.kind === 'decred'
          ? new DecredWatcher(c, registry, options)
          : new PolkadotWatcher(c, registry, options),
  );
  const server = watchServer(registry, watchers);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  for (const w of watchers) w.start();
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`,
    registry,
    watchers,
    async stop() {
      await Promise.all(watchers.map((w) => w.stop()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
