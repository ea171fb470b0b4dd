/**
 * The I/O of `vigil status`: where each agent listens (its own config, or a rendered plan),
 * what it answers on /healthz, /readyz and /metrics, and Prometheus' alerts. What is done with
 * the answers is in report.ts.
 */
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';
import {
  AgentClient,
  AgentProtocolError,
  AgentUnreachableError,
  type AgentEndpoint,
} from '../agent/client.js';
import type { AgentConfig } from '../agent/config.js';
import { loadYamlFile } from '../config/yaml-file.js';
import { InputError, errorMessage } from '../errors.js';
import { DEFAULT_CONFIG_PATH } from '../cli/config-location.js';
import { readAlerts, type AgentProbe, type AlertsReport } from './report.js';

/** One way to reach an agent; `endpoint` may throw (an unreadable token file). */
export interface Listener {
  readonly via: 'socket' | 'tcp' | 'metricsListen';
  readonly where: string;
  readonly endpoint: () => AgentEndpoint;
}

/** An agent to ask, and its listeners in the order to try them. */
export interface AgentTarget {
  readonly name: string;
  readonly listeners: readonly Listener[];
  /** Why there is no listener to try (a plan's agent without metricsListen). */
  readonly noListener?: string;
}

/** A URL for a listener's host: a wildcard bind is reached on loopback; IPv6 in brackets. */
export function listenerUrl(scheme: 'http' | 'https', host: string, port: number): string {
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' || host === '[::]' ? '::1' : host;
  return `${scheme}://${isIP(h) === 6 ? `[${h}]` : h}:${port}`;
}

/**
 * The agent's own listeners, as its config declares them: the API socket, the API over TCP
 * (with its bearer token, or its TLS files as the client certificate), then the read-only
 * metrics listener. The first that answers is used: an operator who may not open the socket
 * (mode 0600, the agent's user) still sees the agent through `metricsListen`.
 */
export function configListeners(config: AgentConfig): Listener[] {
  const out: Listener[] = [];
  const listen = config.listen;
  if (listen?.socket) {
    const path = listen.socket.path;
    out.push({ via: 'socket', where: path, endpoint: () => ({ socketPath: path }) });
  }
  if (listen?.tcp) {
    const tcp = listen.tcp;
    const url = listenerUrl(tcp.tls ? 'https' : 'http', tcp.host, tcp.port);
    out.push({
      via: 'tcp',
      where: url,
      endpoint: () => ({
        url,
        ...(tcp.tokenFile ? { token: readFileSync(tcp.tokenFile, 'utf8').trim() } : {}),
        ...(tcp.tls
          ? {
              tls: {
                ca: readFileSync(tcp.tls.ca),
                cert: readFileSync(tcp.tls.cert),
                key: readFileSync(tcp.tls.key),
              },
            }
          : {}),
      }),
    });
  }
  if (config.metricsListen) {
    const url = listenerUrl('http', config.metricsListen.host, config.metricsListen.port);
    out.push({ via: 'metricsListen', where: url, endpoint: () => ({ url }) });
  }
  return out;
}

/** Where `vigil plan` puts each host's copy of /etc/vigil/agent.yaml (render/index.ts names
 * a host file by its path, slashes as `__`). */
export const PLAN_AGENT_FILE = DEFAULT_CONFIG_PATH.replace(/^\//, '').replace(/\//g, '__');

const PlanAgentSchema = z.looseObject({
  agent: z.looseObject({ id: z.string().min(1) }),
  metricsListen: z
    .looseObject({ host: z.string().min(1), port: z.number().int().min(1).max(65535) })
    .optional(),
});

/**
 * Every agent of a plan directory written by `vigil plan`: each `hosts/<host>/files/` that
 * holds an agent config, reached on the metrics listener that config binds (the host's
 * WireGuard address: run this on the monitor or another VPN peer).
 */
export function planTargets(dir: string): AgentTarget[] {
  const hostsDir = join(dir, 'hosts');
  if (!existsSync(hostsDir) || !statSync(hostsDir).isDirectory())
    throw new InputError(
      `${dir} is not a plan directory: it has no hosts/ folder`,
      'give the --out directory of `vigil plan` (default .vigil/<fleet>/plan)',
      'PLAN_NOT_FOUND',
    );
  const targets: AgentTarget[] = [];
  for (const host of readdirSync(hostsDir).sort()) {
    const file = join(hostsDir, host, 'files', PLAN_AGENT_FILE);
    if (!existsSync(file)) continue;
    const config = loadYamlFile(file, PlanAgentSchema);
    const m = config.metricsListen;
    if (m === undefined) {
      targets.push({ name: host, listeners: [], noListener: `${file} has no metricsListen` });
      continue;
    }
    const url = listenerUrl('http', m.host, m.port);
    targets.push({
      name: host,
      listeners: [{ via: 'metricsListen', where: url, endpoint: () => ({ url }) }],
    });
  }
  if (targets.length === 0)
    throw new InputError(
      `the plan in ${dir} has no agent: no hosts/*/files/${PLAN_AGENT_FILE}`,
      'only hosts that use a key run an agent; check the topology',
      'PLAN_NO_AGENTS',
    );
  return targets;
}

const transportFailure = (err: unknown) =>
  err instanceof AgentUnreachableError || err instanceof AgentProtocolError;

/**
 * Asks one agent: the first listener whose /healthz answers, then its /readyz and /metrics.
 * Never throws: what failed is in the probe.
 */
export async function probeAgent(target: AgentTarget, timeoutMs: number): Promise<AgentProbe> {
  const failures: string[] = [];
  if (target.noListener !== undefined) failures.push(target.noListener);
  for (const listener of target.listeners) {
    let client: AgentClient;
    try {
      client = new AgentClient(listener.endpoint(), { timeoutMs });
    } catch (err) {
      failures.push(`${listener.via} ${listener.where}: ${errorMessage(err)}`);
      continue;
    }
    try {
      let healthz;
      try {
        healthz = await client.get('/healthz');
      } catch (err) {
        if (!transportFailure(err)) throw err;
        // The client's own message repeats the address and a hint per listener: the cause alone.
        const why = err instanceof AgentUnreachableError && err.cause ? err.cause : err;
        failures.push(`${listener.via} ${listener.where}: ${errorMessage(why)}`);
        continue;
      }
      const [readyz, metrics] = await Promise.all([
        client.get('/readyz').catch((err: unknown) => ({ error: errorMessage(err) })),
        client
          .get<unknown>('/metrics')
          .then((a) =>
            typeof a.body === 'string' && a.status === 200
              ? a.body
              : { error: `answered ${a.status} without Prometheus text` },
          )
          .catch((err: unknown) => ({ error: errorMessage(err) })),
      ]);
      return { name: target.name, endpoint: listener.where, healthz, readyz, metrics };
    } finally {
      client.close();
    }
  }
  return {
    name: target.name,
    endpoint: target.listeners.map((l) => l.where).join(', ') || '-',
    unreachable: failures.join('; ') || 'no listener to try',
  };
}

/** Prometheus' alerts (GET <url>/api/v1/alerts). Never throws: a failure is in `error`. */
export async function fetchAlerts(base: string, timeoutMs: number): Promise<AlertsReport> {
  const url = new URL('api/v1/alerts', base.endsWith('/') ? base : `${base}/`).href;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    if (!res.ok)
      return {
        source: base,
        firing: [],
        pending: 0,
        error: `${res.status}: ${text.slice(0, 200)}`,
      };
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return { source: base, firing: [], pending: 0, error: `not JSON: ${text.slice(0, 200)}` };
    }
    return readAlerts(base, body);
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    return {
      source: base,
      firing: [],
      pending: 0,
      error: cause ? `${errorMessage(err)}: ${errorMessage(cause)}` : errorMessage(err),
    };
  }
}
