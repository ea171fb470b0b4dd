/**
 * Wires one agent together: config → keys, store, local watermarks → guarded signer → HTTP API.
 * `startAgent` returns once the API listens; `stop` releases everything in reverse order.
 */
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { startCometbftSigner } from '../chains/cometbft/signer.js';
import { openElection } from '../lease/index.js';
import { GuardedSigner, type DecisionObserver } from '../signer/guarded-signer.js';
import { startSupervisor, type Supervisor } from '../supervisor/index.js';
import { LocalWatermarks } from '../signer/local-watermark.js';
import type { WatermarkStore } from '../store/types.js';
import { defaultListen, type AgentConfig } from './config.js';
import { buildHttpApi } from './http.js';
import { startApiListeners } from './listen.js';
import { loadKeyRing } from './keys.js';
import { AgentMetrics } from './metrics.js';
import { openStore } from './store.js';

export interface RunningAgent {
  /** The unix socket the signing API serves on, when `listen.socket` is configured (default). */
  readonly socketPath?: string;
  /** Base URL of the TCP listener, when `listen.tcp` is configured, e.g. http://127.0.0.1:7710 */
  readonly url?: string;
  readonly guard: GuardedSigner;
  readonly store: WatermarkStore;
  readonly logger: Logger;
  stop(): Promise<void>;
}

function urlOf(
  app: { server: { address(): unknown } },
  listen: { host: string; port: number },
): string {
  const addr = app.server.address() as { port: number } | null;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return `http://${host}:${addr?.port ?? listen.port}`;
}

export async function startAgent(config: AgentConfig, logger?: Logger): Promise<RunningAgent> {
  const log = logger ?? pino({ level: config.log.level, base: { agent: config.agent.id } });
  const keys = loadKeyRing(config);
  const local = new LocalWatermarks(join(config.agent.dataDir, 'local-watermarks.db'));
  let store: WatermarkStore | undefined;
  // Undone in reverse order on stop, or when startup fails half-way.
  const stoppers: Array<() => unknown> = [];
  const unwind = async () => {
    for (const stop of stoppers.reverse()) await stop();
    stoppers.length = 0;
  };
  try {
    store = await openStore(config.store);
    const metrics = new AgentMetrics({ agent: config.agent.id });
    const observer: DecisionObserver = {
      onDecision(e) {
        metrics.onDecision(e);
        if (e.outcome === 'refused') {
          log.warn(
            {
              family: e.family,
              chainId: e.chainId,
              key: e.keyId,
              reason: e.reason,
              message: e.message,
            },
            'refused',
          );
        } else {
          log.debug(
            { family: e.family, chainId: e.chainId, key: e.keyId, outcome: e.outcome },
            'signed',
          );
        }
      },
    };
    const guard = new GuardedSigner({ store, keys, local, agentId: config.agent.id, observer });
    const cometbft = config.cometbft
      ? await startCometbftSigner({
          config: config.cometbft,
          guard,
          publicKeyOf: (id) => keys.resolve(id)?.signer?.publicKey,
          logger: log.child({ component: 'cometbft' }),
        })
      : undefined;
    stoppers.push(() => cometbft?.stop());
    // Exclusive roles: only the lease holder is active; guarded requests naming the role carry
    // its fence, so a deposed holder's writes are refused by the store itself.
    const supervisors = new Map<string, Supervisor>();
    for (const role of config.supervisors) {
      const election = openElection(store, role.role, role.holderId ?? config.agent.id, role.lease);
      const supervisor = startSupervisor(role, election, (event) => {
        metrics.onRoleEvent(role.role, event);
        const fields = {
          role: role.role,
          ...event,
          ...('token' in event ? { token: String(event.token) } : {}),
        };
        if (event.type === 'action-failed' || event.type === 'renewal-unconfirmed')
          log.warn(fields, 'role');
        else log.info(fields, 'role');
      });
      supervisors.set(role.role, supervisor);
      stoppers.push(async () => {
        await supervisor.stop();
        await election.close();
      });
    }
    const app = await buildHttpApi({
      supervisors,
      guard,
      store,
      metrics,
      logger: log,
      ...(cometbft ? { links: () => cometbft.status() } : {}),
    });
    stoppers.push(() => app.close());
    await app.ready();
    const listeners = await startApiListeners(
      config.listen ?? defaultListen(config.agent.dataDir),
      (req, res) => app.routing(req, res),
    );
    stoppers.push(() => listeners.close());
    let metricsUrl: string | undefined;
    if (config.metricsListen) {
      const observability = await buildHttpApi({
        supervisors,
        guard,
        store,
        metrics,
        logger: log,
        routes: 'observability',
      });
      stoppers.push(() => observability.close());
      await observability.listen({
        host: config.metricsListen.host,
        port: config.metricsListen.port,
      });
      metricsUrl = urlOf(observability, config.metricsListen);
    }
    const { socketPath, url } = listeners;
    log.info(
      {
        ...(socketPath !== undefined ? { socketPath } : {}),
        ...(url !== undefined ? { url } : {}),
        ...(metricsUrl ? { metricsUrl } : {}),
        store: store.engine,
        keys: keys.all().map((k) => ({ id: k.id, publicKey: k.scopeKeyId, signs: !!k.signer })),
      },
      'agent ready',
    );
    const openedStore = store;
    return {
      ...(socketPath !== undefined ? { socketPath } : {}),
      ...(url !== undefined ? { url } : {}),
      guard,
      store: openedStore,
      logger: log,
      async stop() {
        await unwind();
        await openedStore.close();
        local.close();
        log.info('agent stopped');
      },
    };
  } catch (err) {
    await unwind();
    await store?.close();
    local.close();
    throw err;
  }
}
