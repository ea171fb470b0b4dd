/**
 * The dashboard on an agent's read-only listener: GET /dashboard (the page) and GET
 * /v1/overview (what it polls). The overview is built from this agent's own answers — its
 * /healthz, /readyz and /metrics, asked in-process, read by `vigil status`'s report — plus the
 * store's watermarks for its keys and its recent refusals. Nothing secret is in any of them:
 * key ids, public keys, positions and times; never a signature, payload or token.
 */
import type { FastifyInstance } from 'fastify';
import { describePosition } from '../guard/describe.js';
import { errorMessage } from '../errors.js';
import type { WatermarkStore } from '../store/types.js';
import type { AgentProbe } from '../status/report.js';
import { buildOverview, type Overview, type StoreWatermark } from './overview.js';
import { DASHBOARD_HEADERS, DASHBOARD_HTML } from './page.js';
import type { RefusalRing } from './refusals.js';

export interface AgentDashboardOptions {
  /** The agent's id (its config's `agent.id`). */
  readonly name: string;
  readonly store: WatermarkStore;
  /** The agent's keys: their configured id and public key (the store's scope). */
  readonly keys: ReadonlyArray<{ readonly id: string; readonly scopeKeyId: string }>;
  readonly refusals: RefusalRing;
  /** Longest wait for the store's list of watermarks. */
  readonly storeTimeoutMs?: number;
  /** Answers given within this many ms of each other are shared (several open pages). */
  readonly cacheMs?: number;
}

/** The store's watermarks for these keys, sorted by chain, key and family. */
export async function storeWatermarks(
  store: WatermarkStore,
  keys: AgentDashboardOptions['keys'],
  timeoutMs: number,
): Promise<StoreWatermark[]> {
  const byPublicKey = new Map(keys.map((k) => [k.scopeKeyId, k.id]));
  let timer: NodeJS.Timeout | undefined;
  try {
    const all = await Promise.race([
      store.list(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`the store did not answer within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
    return all
      .filter(({ scope }) => byPublicKey.has(scope.keyId))
      .map(({ scope, watermark: w }) => ({
        chainId: scope.chainId,
        key: byPublicKey.get(scope.keyId)!,
        publicKey: scope.keyId,
        family: scope.family,
        position: describePosition(w.family, w.position),
        ...(w.writer !== undefined ? { writer: w.writer } : {}),
        ...(w.updatedAtMs ? { updatedAt: new Date(w.updatedAtMs).toISOString() } : {}),
      }))
      .sort(
        (a, b) =>
          a.chainId.localeCompare(b.chainId) ||
          a.key.localeCompare(b.key) ||
          a.family.localeCompare(b.family),
      );
  } finally {
    clearTimeout(timer);
  }
}

export function registerAgentDashboard(app: FastifyInstance, opts: AgentDashboardOptions): void {
  const timeoutMs = opts.storeTimeoutMs ?? 2000;
  const cacheMs = opts.cacheMs ?? 250;
  let last: { atMs: number; overview: Promise<Overview> } | undefined;

  const build = async (): Promise<Overview> => {
    // /readyz first: it sets vigil_store_up, which /metrics then reports (in parallel, a
    // fresh agent's page said its store was down).
    const [[readyz, metrics], watermarks] = await Promise.all([
      app
        .inject({ method: 'GET', url: '/readyz' })
        .then(async (r) => [r, await app.inject({ method: 'GET', url: '/metrics' })] as const),
      storeWatermarks(opts.store, opts.keys, timeoutMs).then(
        (list) => ({ list }),
        (err: unknown) => ({ error: errorMessage(err) }),
      ),
    ]);
    let readyBody: unknown;
    try {
      readyBody = readyz.json();
    } catch {
      readyBody = readyz.body;
    }
    const probe: AgentProbe = {
      name: opts.name,
      endpoint: 'this agent',
      healthz: { status: 200, body: { status: 'ok' } },
      readyz: { status: readyz.statusCode, body: readyBody },
      metrics:
        metrics.statusCode === 200
          ? metrics.body
          : { error: `answered ${metrics.statusCode} without Prometheus text` },
    };
    return buildOverview(
      'agent',
      [
        {
          probe,
          extras: {
            ...('list' in watermarks
              ? { watermarks: watermarks.list }
              : { watermarksError: watermarks.error }),
            recentRefusals: opts.refusals.recent(),
          },
        },
      ],
      Date.now(),
    );
  };

  app.get('/dashboard', { schema: { hide: true } }, async (_req, res) =>
    res.headers(DASHBOARD_HEADERS).send(DASHBOARD_HTML),
  );
  app.get(
    '/v1/overview',
    { schema: { summary: 'What the dashboard shows: this agent, its watermarks, refusals' } },
    async (_req, res) => {
      const now = Date.now();
      if (last === undefined || now - last.atMs >= cacheMs) {
        last = { atMs: now, overview: build() };
        // A failed build is not kept for the next page.
        last.overview.catch(() => (last = undefined));
      }
      res.header('cache-control', 'no-store');
      return last.overview;
    },
  );
}
