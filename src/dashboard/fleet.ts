/**
 * `vigil dashboard` for a fleet: every agent is asked as `vigil status` asks it (its /healthz,
 * /readyz and /metrics, src/status/fetch.ts), plus its /v1/overview on the metrics listener
 * for what metrics cannot carry (the store's watermarks, recent refusals), validated here; an
 * agent without it (an older Vigil, or a listener other than metricsListen) still shows.
 * The page and its overview are served on one plain node:http listener.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { AgentClient } from '../agent/client.js';
import { errorMessage } from '../errors.js';
import { fetchAlerts, probeAgent, type AgentTarget } from '../status/fetch.js';
import { buildOverview, type AgentExtras, type Overview } from './overview.js';
import { DASHBOARD_HEADERS, DASHBOARD_HTML } from './page.js';
import { MAX_FIELD_CHARS } from './refusals.js';

const text = (max = MAX_FIELD_CHARS * 2) => z.string().max(max);

/** The part of an agent's /v1/overview the fleet takes: bounded in count and length. */
const AgentOverviewSchema = z.object({
  source: z.literal('agent'),
  agents: z
    .array(
      z.object({
        watermarks: z
          .array(
            z.object({
              chainId: text(),
              key: text(),
              publicKey: text(),
              family: text(32),
              position: z.record(text(32), text(64)),
              writer: text().optional(),
              updatedAt: text(64).optional(),
            }),
          )
          .max(1000),
        watermarksError: text(1000).optional(),
        recentRefusals: z
          .array(
            z.object({
              at: text(64),
              chainId: text(),
              key: text(),
              family: text(32),
              reason: text(64),
              message: text(),
            }),
          )
          .max(1000),
      }),
    )
    .length(1),
});

/** What an agent's /v1/overview adds, or nothing (and why, kept as a problem-free absence). */
export async function fetchExtras(target: AgentTarget, timeoutMs: number): Promise<AgentExtras> {
  const listener = target.listeners.find((l) => l.via === 'metricsListen');
  if (listener === undefined) return {};
  let client: AgentClient;
  try {
    client = new AgentClient(listener.endpoint(), { timeoutMs });
  } catch {
    return {};
  }
  try {
    const answer = await client.get('/v1/overview');
    if (answer.status !== 200) return {};
    const parsed = AgentOverviewSchema.safeParse(answer.body);
    if (!parsed.success)
      return { watermarksError: `unreadable /v1/overview: ${parsed.error.issues[0]?.message}` };
    const a = parsed.data.agents[0]!;
    return {
      watermarks: a.watermarks,
      ...(a.watermarksError !== undefined ? { watermarksError: a.watermarksError } : {}),
      recentRefusals: a.recentRefusals,
    };
  } catch (err) {
    // /healthz decides reachability (probeAgent); this is only the extra part.
    return { watermarksError: errorMessage(err) };
  } finally {
    client.close();
  }
}

export interface FleetOptions {
  readonly targets: readonly AgentTarget[];
  readonly timeoutMs: number;
  /** Prometheus base URL whose firing alerts are shown. */
  readonly prometheus?: string;
}

export async function fleetOverview(opts: FleetOptions, now = Date.now): Promise<Overview> {
  const [probes, alerts] = await Promise.all([
    Promise.all(
      opts.targets.map(async (t) => {
        const [probe, extras] = await Promise.all([
          probeAgent(t, opts.timeoutMs),
          fetchExtras(t, opts.timeoutMs),
        ]);
        return { probe, extras: probe.unreachable !== undefined ? {} : extras };
      }),
    ),
    opts.prometheus !== undefined ? fetchAlerts(opts.prometheus, opts.timeoutMs) : undefined,
  ]);
  return buildOverview('fleet', probes, now(), alerts);
}

export interface RunningDashboard {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/**
 * Serves GET /dashboard (and / redirecting to it) and GET /v1/overview; answers computed
 * within `cacheMs` of each other are shared, so several open pages ask each agent once.
 */
export async function serveDashboard(
  overview: () => Promise<Overview>,
  listen: { host: string; port: number },
  cacheMs = 500,
): Promise<RunningDashboard> {
  let last: { atMs: number; answer: Promise<Overview> } | undefined;
  const current = () => {
    const now = Date.now();
    if (last === undefined || now - last.atMs >= cacheMs) {
      const entry = { atMs: now, answer: overview() };
      entry.answer.catch(() => {
        if (last === entry) last = undefined;
      });
      last = entry;
    }
    return last.answer;
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/') {
      res.writeHead(302, { location: '/dashboard' }).end();
    } else if (path === '/dashboard') {
      res.writeHead(200, DASHBOARD_HEADERS).end(DASHBOARD_HTML);
    } else if (path === '/v1/overview') {
      current().then(
        (o) =>
          res
            .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
            .end(JSON.stringify(o)),
        (err: unknown) =>
          res
            .writeHead(500, { 'content-type': 'application/json' })
            .end(JSON.stringify({ error: { code: 'INTERNAL', message: errorMessage(err) } })),
      );
    } else {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { code: 'NOT_FOUND', message: `no route ${path}` } }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return {
    url: `http://${host}:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
