/**
 * The one client for an agent's API, over its unix socket or TCP (bearer token, client
 * certificate). Connections are kept alive: a fresh connection per request costs more than
 * the guarded decision itself. Answers with any status are returned as they are (a 409
 * refusal is an answer); only a transport failure or a non-JSON answer throws.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { VigilError, errorMessage } from '../errors.js';

export type AgentEndpoint =
  | { readonly socketPath: string }
  | {
      readonly url: string;
      /** Sent as `Authorization: Bearer <token>`. */
      readonly token?: string;
      /** For an https:// URL: the CA that issued the agent's certificate, and ours (PEM). */
      readonly tls?: {
        readonly ca: string | Buffer;
        readonly cert: string | Buffer;
        readonly key: string | Buffer;
      };
    };

export interface AgentAnswer<T = unknown> {
  readonly status: number;
  readonly body: T;
}

/** The agent could not be reached or did not answer in time: nothing is known to be signed. */
export class AgentUnreachableError extends VigilError {
  constructor(where: string, cause: unknown) {
    super(
      'AGENT_UNREACHABLE',
      `no answer from the agent at ${where}: ${errorMessage(cause)}`,
      'is the agent running, and is this the socket or URL it logged in "agent ready"?',
      { cause },
    );
  }
}

/** The agent answered something that is not our JSON. */
export class AgentProtocolError extends VigilError {
  constructor(where: string, status: number, text: string) {
    super(
      'AGENT_PROTOCOL',
      `the agent at ${where} answered ${status} with a body that is not JSON: ${text.slice(0, 200)}`,
    );
  }
}

export interface AgentClientOptions {
  /** Per request, from sending to the end of the answer (default 10 s). */
  readonly timeoutMs?: number;
}

export class AgentClient {
  private readonly where: string;
  private readonly agent: HttpAgent;
  private readonly base: {
    socketPath?: string;
    protocol?: string;
    hostname?: string;
    port?: string;
  };
  private readonly https: boolean;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;

  constructor(endpoint: AgentEndpoint, opts: AgentClientOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    if ('socketPath' in endpoint) {
      this.where = endpoint.socketPath;
      this.https = false;
      this.agent = new HttpAgent({ keepAlive: true });
      this.base = { socketPath: endpoint.socketPath };
      this.headers = {};
    } else {
      const url = new URL(endpoint.url);
      this.where = url.origin;
      this.https = url.protocol === 'https:';
      this.agent = this.https
        ? new HttpsAgent({ keepAlive: true, ...(endpoint.tls ?? {}) })
        : new HttpAgent({ keepAlive: true });
      this.base = {
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port,
      };
      this.headers = endpoint.token ? { authorization: `Bearer ${endpoint.token}` } : {};
    }
  }

  /** A client for a started agent: its socket when it has one, else its TCP URL. */
  static for(
    agent: { readonly socketPath?: string; readonly url?: string },
    extra: { token?: string } & AgentClientOptions = {},
  ): AgentClient {
    if (agent.socketPath !== undefined)
      return new AgentClient({ socketPath: agent.socketPath }, extra);
    if (agent.url !== undefined)
      return new AgentClient(
        { url: agent.url, ...(extra.token !== undefined ? { token: extra.token } : {}) },
        extra,
      );
    throw new VigilError('AGENT_NO_LISTENER', 'the agent serves its API on no socket or URL');
  }

  post<T = unknown>(path: string, body: unknown, timeoutMs?: number): Promise<AgentAnswer<T>> {
    return this.request<T>('POST', path, JSON.stringify(body), timeoutMs);
  }

  get<T = unknown>(path: string, timeoutMs?: number): Promise<AgentAnswer<T>> {
    return this.request<T>('GET', path, undefined, timeoutMs);
  }

  /** Like post(), for a body already serialized (or deliberately malformed, in tests). */
  request<T = unknown>(
    method: 'GET' | 'POST',
    path: string,
    body?: string,
    timeoutMs = this.timeoutMs,
    contentType = 'application/json',
  ): Promise<AgentAnswer<T>> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { ...this.headers };
      if (body !== undefined) {
        headers['content-type'] = contentType;
        headers['content-length'] = Buffer.byteLength(body);
      }
      const send = this.https ? httpsRequest : httpRequest;
      const req = send(
        { ...this.base, agent: this.agent, method, path, headers },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => {
            clearTimeout(timer);
            reject(new AgentUnreachableError(this.where, err));
          });
          res.on('end', () => {
            clearTimeout(timer);
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            const type = res.headers['content-type'] ?? '';
            // Our answers are JSON, except /metrics (Prometheus text), returned as a string.
            if (type.startsWith('text/plain')) return resolve({ status, body: text as T });
            if (!type.startsWith('application/json'))
              return reject(new AgentProtocolError(this.where, status, text));
            try {
              resolve({ status, body: JSON.parse(text) as T });
            } catch {
              reject(new AgentProtocolError(this.where, status, text));
            }
          });
        },
      );
      const timer = setTimeout(
        () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)),
        timeoutMs,
      );
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(new AgentUnreachableError(this.where, err));
      });
      req.end(body);
    });
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }
}
