/**
 * The agent's end of the watchdog channel. Connects on demand; every request has a time
 * limit, and a lost connection fails the requests in flight (the watchdog keeps its deadline,
 * so nothing is left running longer than the agent last allowed).
 */
import { createConnection, type Socket } from 'node:net';
import {
  LineSplitter,
  decodeWatchdogMessage,
  encodeMessage,
  type AgentMessage,
  type WatchdogMessage,
} from './protocol.js';

type Reply = Exclude<WatchdogMessage, { type: 'stopped' }>;
type Request =
  | Omit<Extract<AgentMessage, { type: 'activate' }>, 'id'>
  | Omit<Extract<AgentMessage, { type: 'deactivate' }>, 'id'>;
type Stopped = Extract<WatchdogMessage, { type: 'stopped' }>;

export class WatchdogUnavailableError extends Error {}

export class WatchdogClient {
  private socket: Socket | undefined;
  private connecting: Promise<Socket> | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, (r: Reply | Error) => void>();

  constructor(
    readonly path: string,
    private readonly onStopped: (m: Stopped) => void,
    /** An established connection closed (the watchdog stopped or restarted). */
    private readonly onClosed: () => void = () => undefined,
  ) {}

  private connect(timeoutMs: number): Promise<Socket> {
    if (this.socket && !this.socket.destroyed) return Promise.resolve(this.socket);
    if (this.connecting) return this.connecting;
    this.connecting = new Promise<Socket>((resolve, reject) => {
      const socket = createConnection(this.path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new WatchdogUnavailableError(`no connection to ${this.path} in ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        this.socket = socket;
        resolve(socket);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new WatchdogUnavailableError(`watchdog at ${this.path}: ${err.message}`));
      });
      const lines = new LineSplitter();
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        try {
          for (const line of lines.push(chunk)) this.onMessage(decodeWatchdogMessage(line));
        } catch {
          socket.destroy();
        }
      });
      socket.on('close', () => {
        if (this.socket === socket) {
          this.socket = undefined;
          this.onClosed();
        }
        for (const [id, settle] of this.pending) {
          this.pending.delete(id);
          settle(new WatchdogUnavailableError('the watchdog closed the connection'));
        }
      });
    }).finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private onMessage(m: WatchdogMessage): void {
    if (m.type === 'stopped') return this.onStopped(m);
    const settle = this.pending.get(m.id);
    if (!settle) return;
    this.pending.delete(m.id);
    settle(m);
  }

  /** Sends a request and waits for its reply, at most `timeoutMs` in all. */
  async request(m: Request, timeoutMs: number): Promise<Reply> {
    const started = Date.now();
    const socket = await this.connect(timeoutMs);
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.pending.delete(id);
          reject(new WatchdogUnavailableError(`no answer to ${m.type} in ${timeoutMs} ms`));
        },
        Math.max(1, timeoutMs - (Date.now() - started)),
      );
      this.pending.set(id, (r) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      });
      socket.write(encodeMessage({ ...m, id } as AgentMessage));
    });
  }

  /** Fire and forget: a renewal that does not arrive just lets the current deadline stand. */
  renew(m: Extract<AgentMessage, { type: 'renew' }>): void {
    if (this.socket && !this.socket.destroyed) this.socket.write(encodeMessage(m));
  }

  close(): void {
    this.socket?.destroy();
  }
}
