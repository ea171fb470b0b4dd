/**
 * The signing API's listeners: a unix socket guarded by its file mode, and optionally TCP
 * guarded by a bearer token and/or mutual TLS. Callers are authenticated here, before a byte
 * of the body is read; the routes themselves (http.ts) never see an unauthenticated request.
 */
import { execFileSync } from 'node:child_process';
import { createHash, timingSafeEqual } from 'node:crypto';
import { chmodSync, chownSync, lstatSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP, connect, type Server } from 'node:net';
import { VigilError, InputError, errorMessage } from '../errors.js';
import type { ListenConfig } from './config.js';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface ApiListeners {
  /** The unix socket the API serves on, if any. */
  readonly socketPath?: string;
  /** Base URL of the TCP listener, if any, e.g. https://127.0.0.1:7710 */
  readonly url?: string;
  close(): Promise<void>;
}

/** The longest unix socket path Linux accepts (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH_BYTES = 107;
/** A bearer token must carry at least this many bytes once decoded. */
export const MIN_TOKEN_BYTES = 32;

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

function decodedTokenBytes(token: string): number {
  if (/^[0-9a-fA-F]+$/.test(token) && token.length % 2 === 0) return token.length / 2;
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(token)) return Buffer.from(token, 'base64').length;
  return 0;
}

/**
 * Reads the bearer token: the file must be mode 0600 (or stricter) and hold hex or base64 of
 * at least 32 bytes. What is compared later is the token's SHA-256, so the comparison takes
 * the same time whatever the length of what a client sends.
 */
export function readTokenFile(file: string): Buffer {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (err) {
    throw new InputError(
      `cannot read the API token file ${file}: ${errorMessage(err)}`,
      'create it with `openssl rand -hex 32 > FILE && chmod 600 FILE`',
    );
  }
  if ((mode & 0o077) !== 0) {
    throw new InputError(
      `the API token file ${file} is accessible by group or others (mode ${(mode & 0o777).toString(8)})`,
      `run \`chmod 600 ${file}\``,
      'API_TOKEN_FILE_MODE',
    );
  }
  const token = readFileSync(file, 'utf8').trim();
  if (decodedTokenBytes(token) < MIN_TOKEN_BYTES) {
    throw new InputError(
      `the API token in ${file} is too short or not hex/base64: it needs at least ${MIN_TOKEN_BYTES} random bytes`,
      'generate one with `openssl rand -hex 32`',
      'API_TOKEN_WEAK',
    );
  }
  return createHash('sha256').update(token).digest();
}

function tokenMatches(header: string | undefined, expectedDigest: Buffer): boolean {
  const m = header === undefined ? null : /^Bearer +(\S+) *$/i.exec(header);
  if (!m) return false;
  return timingSafeEqual(createHash('sha256').update(m[1]!).digest(), expectedDigest);
}

/** A gid from a numeric id or a group name (through NSS, so LDAP/sssd groups resolve too). */
export function resolveGroup(group: string): number {
  if (/^[0-9]+$/.test(group)) return Number(group);
  let line = '';
  try {
    line = execFileSync('getent', ['group', group], { encoding: 'utf8', timeout: 5000 });
  } catch {
    // getent exits 2 for an unknown group; handled below like an empty answer
  }
  const gid = Number(line.split(':')[2]);
  if (!line || !Number.isInteger(gid)) {
    throw new InputError(
      `listen.socket.group: no group named ${JSON.stringify(group)} on this host`,
      'create it (`groupadd`) or name an existing group; `getent group NAME` shows it',
      'API_SOCKET_GROUP',
    );
  }
  return gid;
}

/** Whether something accepts connections on the socket at `path`. */
function socketAnswers(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    const done = (answer: boolean) => {
      s.destroy();
      resolve(answer);
    };
    s.setTimeout(timeoutMs, () => done(true)); // a frozen agent still owns its socket
    s.once('connect', () => done(true));
    // Only a refused connection proves nobody listens; EAGAIN (a full backlog) means a busy
    // agent, and any other error is no proof either: never unlink on a guess.
    s.once('error', (err: NodeJS.ErrnoException) =>
      done(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT'),
    );
  });
}

/**
 * Clears the way for a socket at `path`: a stale socket left by a crashed agent is removed; a
 * live agent's socket, or anything that is not a socket, is never touched.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new InputError(
      `the API socket path ${path} is ${Buffer.byteLength(path)} bytes; unix sockets allow ${MAX_SOCKET_PATH_BYTES}`,
      'set listen.socket.path to a shorter path, e.g. /run/vigil/api.sock',
      'API_SOCKET_PATH',
    );
  }
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) {
    throw new VigilError(
      'API_SOCKET_PATH',
      `${path} exists and is not a socket`,
      'move it away or set listen.socket.path elsewhere',
    );
  }
  if (await socketAnswers(path)) {
    throw new VigilError(
      'API_SOCKET_IN_USE',
      `another agent is serving on ${path}`,
      'stop it first, or give this agent its own agent.dataDir or listen.socket.path',
    );
  }
  unlinkSync(path);
}

function listenOn(server: Server, target: { path: string } | { host: string; port: number }) {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(target, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Keep-alive connections would hold close() open until their idle timeout.
    (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
  });
}

/** Keep-alive is what makes a local call cheap; the timeouts bound a client that stalls. */
function tune(server: ReturnType<typeof createHttpServer>): void {
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
}

function refuse(res: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...(status === 401 ? { 'www-authenticate': 'Bearer' } : {}),
  });
  res.end(body);
}

/** Host header values that name this listener: its own address, localhost forms, extras. */
export function allowedHostHeaders(
  host: string,
  port: number,
  extra: readonly string[] = [],
): Set<string> {
  const bracket = (h: string) => (isIP(h) === 6 ? `[${h}]` : h);
  const names = [bracket(host.replace(/^\[|\]$/g, ''))];
  if (isLoopbackHost(host)) names.push('localhost', '127.0.0.1', '[::1]');
  names.push(...extra);
  const out = new Set<string>();
  for (const n of names) {
    const name = n.toLowerCase();
    out.add(/:[0-9]+$/.test(name) && !name.endsWith(']') ? name : `${name}:${port}`);
  }
  return out;
}

type TcpConfig = NonNullable<ListenConfig['tcp']>;

function checkTcpConfig(tcp: TcpConfig): void {
  if (tcp.tls === undefined && !isLoopbackHost(tcp.host)) {
    throw new VigilError(
      'API_TCP_NOT_LOOPBACK',
      `refusing to serve the signing API on ${tcp.host} without mutual TLS: a bearer token alone would cross the network in the clear`,
      'bind listen.tcp.host to 127.0.0.1, add listen.tcp.tls: { ca, cert, key }, or use listen.socket',
    );
  }
}

function readTlsFiles(tls: NonNullable<TcpConfig['tls']>) {
  const mode = statSync(tls.key).mode;
  if ((mode & 0o077) !== 0) {
    throw new InputError(
      `the API TLS key ${tls.key} is accessible by group or others (mode ${(mode & 0o777).toString(8)})`,
      `run \`chmod 600 ${tls.key}\``,
      'API_TLS_KEY_MODE',
    );
  }
  return {
    ca: readFileSync(tls.ca),
    cert: readFileSync(tls.cert),
    key: readFileSync(tls.key),
  };
}

/**
 * Starts every configured listener in front of `handler`. All checks that can fail (token
 * file, TLS files, loopback rule, group, stale socket) run before anything is bound.
 */
export async function startApiListeners(
  listen: ListenConfig,
  handler: RequestHandler,
): Promise<ApiListeners> {
  const tcp = listen.tcp;
  if (tcp) checkTcpConfig(tcp);
  const tokenDigest = tcp?.tokenFile ? readTokenFile(tcp.tokenFile) : undefined;
  const tlsFiles = tcp?.tls ? readTlsFiles(tcp.tls) : undefined;
  const gid = listen.socket?.group !== undefined ? resolveGroup(listen.socket.group) : undefined;
  if (listen.socket) await prepareSocketPath(listen.socket.path);

  const servers: Server[] = [];
  let ownSocket = false;
  const close = async () => {
    await Promise.all(servers.map(closeServer));
    if (listen.socket && ownSocket) {
      try {
        unlinkSync(listen.socket.path);
      } catch {
        // already gone
      }
    }
  };
  try {
    let socketPath: string | undefined;
    if (listen.socket) {
      const { path } = listen.socket;
      const server = createHttpServer(handler);
      tune(server);
      servers.push(server);
      // The socket is created by bind(2) with the umask's mode: make it 0600 from the start so
      // no other user can connect in the moment before the chmod below.
      const umask = process.umask(0o177);
      try {
        await listenOn(server, { path });
        ownSocket = true;
      } finally {
        process.umask(umask);
      }
      if (gid !== undefined) {
        try {
          chownSync(path, -1, gid);
        } catch (err) {
          throw new InputError(
            `cannot give the API socket ${path} to group ${listen.socket.group}: ${errorMessage(err)}`,
            `the agent's user must be a member of group ${listen.socket.group}`,
            'API_SOCKET_GROUP',
          );
        }
        chmodSync(path, 0o660);
      } else {
        chmodSync(path, 0o600);
      }
      socketPath = path;
    }

    let url: string | undefined;
    if (tcp) {
      let hosts = new Set<string>();
      const gate: RequestHandler = (req, res) => {
        const host = req.headers.host?.toLowerCase();
        if (host === undefined) {
          return refuse(res, 400, 'HOST_MISSING', 'a Host header is required');
        }
        if (!hosts.has(host)) {
          return refuse(
            res,
            421,
            'HOST_NOT_ALLOWED',
            `Host ${JSON.stringify(host)} does not name this listener (expected one of ${[...hosts].join(', ')})`,
          );
        }
        if (tokenDigest && !tokenMatches(req.headers.authorization, tokenDigest)) {
          return refuse(
            res,
            401,
            'UNAUTHORIZED',
            req.headers.authorization === undefined
              ? 'this listener needs `Authorization: Bearer <token>`'
              : 'wrong bearer token',
          );
        }
        handler(req, res);
      };
      const server = tlsFiles
        ? createHttpsServer(
            { ...tlsFiles, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
            gate,
          )
        : createHttpServer(gate);
      tune(server);
      servers.push(server);
      await listenOn(server, { host: tcp.host, port: tcp.port });
      const port = (server.address() as { port: number }).port;
      hosts = allowedHostHeaders(tcp.host, port, tcp.allowedHosts);
      const shown = isIP(tcp.host) === 6 ? `[${tcp.host}]` : tcp.host;
      url = `${tlsFiles ? 'https' : 'http'}://${shown}:${port}`;
    }
    return {
      ...(socketPath !== undefined ? { socketPath } : {}),
      ...(url !== undefined ? { url } : {}),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
