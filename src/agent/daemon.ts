/**
 * Wires one agent together: config → keys, store, local watermarks → guarded signer → HTTP API.
 * `startAgent` returns once the API listens; `stop` releases everything in reverse order.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { StoreUnavailableError, errorMessage } from '../errors.js';
import { startCometbftSigner } from '../chains/cometbft/signer.js';
import { openElection } from '../lease/index.js';
import { GuardedSigner, type DecisionObserver } from '../signer/guarded-signer.js';
import { startSupervisor, type Supervisor } from '../supervisor/index.js';
import { LocalWatermarks } from '../signer/local-watermark.js';
import type { WatermarkStore } from '../store/types.js';
import { defaultListen, type AgentConfig } from './config.js';
import { buildHttpApi } from './http.js';
import { createAgentLogger } from './log-format.js';
import { startApiListeners } from './listen.js';
import { loadKeyRing } from './keys.js';
import { describePosition } from '../guard/describe.js';
import { AgentMetrics } from './metrics.js';
import { SignedLogLimiter } from './sign-log.js';
import {
  LOCAL_WATERMARK_CONDITION,
  STORE_IDENTITY_CONDITION,
  Readiness,
  defineStoreCondition,
  type ConditionStatus,
} from './readiness.js';
import { openStore } from './store.js';
import { RefusalRing } from '../dashboard/refusals.js';
import { bindLocalWatermarks } from './store-binding.js';

/** How long a readiness probe (a store ping) may take before it counts as a failure. */
const READINESS_TIMEOUT_MS = 2000;
/** Probing in the background too, so a cause that clears is logged even if nobody asks. */
const READINESS_CHECK_EVERY_MS = 5000;
/** At most one 'signed' info line per chain in this interval; the rest are counted. */
const SIGNED_LOG_INTERVAL_MS = 1000;

export interface RunningAgent {
  /** The unix socket the signing API serves on, when `listen.socket` is configured (default). */
  readonly socketPath?: string;
  /** Base URL of the TCP listener, when `listen.tcp` is configured, e.g. http://127.0.0.1:7710 */
  readonly url?: string;
  readonly guard: GuardedSigner;
  readonly store: WatermarkStore;
  readonly logger: Logger;
  readonly readiness: Readiness;
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

export interface AgentOptions {
  /** Wall clock in ms (metrics' timestamps); tests pass their own. */
  readonly now?: () => number;
  /** Clock for the per-chain cap on 'signed' log lines, in ms; tests pass their own. */
  readonly logClock?: () => number;
}

export async function startAgent(
  config: AgentConfig,
  logger?: Logger,
  options: AgentOptions = {},
): Promise<RunningAgent> {
  const log =
    logger ??
    createAgentLogger({
      level: config.log.level,
      format: config.log.format,
      base: { agent: config.agent.id },
    });
  const keys = loadKeyRing(config);
  // Logged once per change between ready and not ready, never per request.
  const readiness = new Readiness((c: ConditionStatus) => {
    if (c.ready) log.info({ condition: c.name }, `ready again: ${c.name}`);
    else log.warn({ condition: c.name, reason: c.reason }, `not ready: ${c.name}`);
  });
  const local = new LocalWatermarks(join(config.agent.dataDir, 'local-watermarks.db'), {
    onStateChange: (state) =>
      readiness.report(LOCAL_WATERMARK_CONDITION, state.writable ? undefined : state.reason),
  });
  readiness.define(LOCAL_WATERMARK_CONDITION, () => {
    const state = local.probe();
    return state.writable ? undefined : state.reason;
  });
  let store: WatermarkStore | undefined;
  // Undone in reverse order on stop, or when startup fails half-way.
  const stoppers: Array<() => unknown> = [];
  const unwind = async () => {
    for (const stop of stoppers.reverse()) await stop();
    stoppers.length = 0;
  };
  try {
    store = await openStore(config.store, { identityLater: true });
    // Records the store's identity the first time; after that a different store is refused
    // (every decision, and /readyz) until an operator acknowledges it. An etcd store reached
    // without a quorum at start has no identity yet: bound once it is read.
    const openedStore = store;
    const bindIdentity = () => {
      const identity = openedStore.identity;
      local.bindStore(identity);
      local.checkStore(identity);
    };
    // Binding only: a store other than the bound one is not a reason to exit; the agent
    // starts, refuses and says why on /readyz (store_identity) until the operator settles it.
    bindLocalWatermarks(local, openedStore);
    readiness.define(STORE_IDENTITY_CONDITION, () => {
      try {
        bindIdentity();
        return undefined;
      } catch (err) {
        // An identity not read yet is the `store` condition's failure (no quorum), not this one.
        return err instanceof StoreUnavailableError ? undefined : errorMessage(err);
      }
    });
    const storeDecision = defineStoreCondition(readiness, store);
    const metrics = new AgentMetrics({ agent: config.agent.id }, options.now);
    metrics.watchReadiness(readiness);
    metrics.declareKeys(keys.all());
    metrics.declareRoles(config.supervisors.map((r) => r.role));
    const signedLines = new SignedLogLimiter(SIGNED_LOG_INTERVAL_MS, options.logClock);
    // The last refusals, for the dashboard on the metrics listener.
    const refusals = new RefusalRing();
    const observer: DecisionObserver = {
      onDecision(e) {
        metrics.onDecision(e);
        storeDecision(e);
        if (e.outcome === 'refused') {
          refusals.add(e);
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
        } else if (e.outcome === 'granted' && e.family && e.watermark) {
          // A healthy agent says so: one line per signature, at most one per chain per second.
          const admitted = signedLines.admit(e.chainId);
          if (admitted.log)
            log.info(
              {
                family: e.family,
                chainId: e.chainId,
                key: e.keyId,
                position: describePosition(e.family, e.watermark.position),
                ...(admitted.suppressed > 0 ? { suppressed: admitted.suppressed } : {}),
              },
              // An authorization grants a duty its node signs itself: nothing signed here.
              e.watermark.signature ? 'signed' : 'authorized',
            );
        } else {
          log.debug(
            { family: e.family, chainId: e.chainId, key: e.keyId, outcome: e.outcome },
            e.outcome,
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
    if (cometbft) metrics.watchLinks(() => cometbft.status());
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
      readiness,
      readinessTimeoutMs: READINESS_TIMEOUT_MS,
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
        readiness,
        readinessTimeoutMs: READINESS_TIMEOUT_MS,
        logger: log,
        routes: 'observability',
        dashboard: {
          name: config.agent.id,
          store,
          keys: keys.all().map((k) => ({ id: k.id, scopeKeyId: k.scopeKeyId })),
          refusals,
        },
      });
      stoppers.push(() => observability.close());
      await observability.listen({
        host: config.metricsListen.host,
        port: config.metricsListen.port,
      });
      metricsUrl = urlOf(observability, config.metricsListen);
    }
    const { socketPath, url } = listeners;
    const started = await readiness.check(READINESS_TIMEOUT_MS);
    const startFields = {
      ...(socketPath !== undefined ? { socketPath } : {}),
      ...(url !== undefined ? { url } : {}),
      ...(metricsUrl ? { metricsUrl } : {}),
      store: store.engine,
      storeId: local.boundStore ?? '(not read yet)',
      keys: keys.all().map((k) => ({ id: k.id, publicKey: k.scopeKeyId, signs: !!k.signer })),
    };
    // An unreachable store or a full data dir is not a reason to exit: the agent refuses,
    // serves /healthz and /readyz, and becomes ready when the cause clears.
    if (started.ready) log.info(startFields, 'agent ready');
    else
      log.warn(
        { ...startFields, notReady: started.conditions.filter((c) => !c.ready) },
        `agent started, not ready: ${Readiness.describe(started)}`,
      );
    const recheck = setInterval(
      () => void readiness.check(READINESS_TIMEOUT_MS),
      READINESS_CHECK_EVERY_MS,
    );
    recheck.unref();
    stoppers.push(() => clearInterval(recheck));
    return {
      ...(socketPath !== undefined ? { socketPath } : {}),
      ...(url !== undefined ? { url } : {}),
      guard,
      store: openedStore,
      logger: log,
      readiness,
      async stop() {
        await unwind();
        await openedStore.close();
        local.close();
        const last = local.state;
        if (!last.writable && last.reason !== 'closed')
          log.error(
            { reason: last.reason },
            'local watermark positions raised in memory could not be written before stopping',
          );
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
