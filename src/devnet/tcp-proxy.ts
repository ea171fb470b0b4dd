/**
 * A loopback TCP proxy standing on a link (node → agent, agent → etcd) so fault injection can
 * cut it: while cut, existing connections are destroyed and new ones closed at once, exactly
 * what a node sees when a network path fails. A node → agent link runs between unix sockets
 * (`{ path }` target, `listenPath`): the agent's API is not on TCP.
 *
 * It can also stand for distance (this kernel has no netem): a one-way delay per direction,
 * applied to every chunk. Each chunk is forwarded at its arrival time plus the delay of its
 * direction, in arrival order (never reordered, even when the delay is lowered while chunks
 * are queued), and the sender is paused while the receiver is not draining or too much is
 * queued, as `pipe()` would.
 */
import { rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/** One-way delays in milliseconds; `upstream` is client → target, `downstream` the reverse. */
export interface LinkDelay {
  readonly upstreamMs: number;
  readonly downstreamMs: number;
}

export interface TcpProxyOptions {
  /** Delay every chunk by this much in each direction (default none). */
  readonly delay?: LinkDelay;
}

/** Bytes queued in one direction before the sender is paused. */
const QUEUE_HIGH_WATER = 1 << 20;

function checkDelay(d: LinkDelay): LinkDelay {
  for (const v of [d.upstreamMs, d.downstreamMs])
    if (!Number.isFinite(v) || v < 0)
      throw new RangeError(`a link delay must be a finite number of ms ≥ 0, got ${v}`);
  return { upstreamMs: d.upstreamMs, downstreamMs: d.downstreamMs };
}

/**
 * Forwards `from` to `to`, each chunk no earlier than its arrival plus `delayMs()` (read per
 * chunk, so a change applies to chunks arriving after it), in order. The end of `from` is
 * passed on after the last chunk.
 */
function delayedPipe(
  from: Socket,
  to: Socket,
  delayMs: () => number,
  /** Read per chunk: while true, chunks are discarded instead of forwarded. */
  dropping: () => boolean = () => false,
): void {
  const queue: Array<{ due: number; chunk: Buffer | null }> = [];
  let queuedBytes = 0;
  let timer: NodeJS.Timeout | undefined;
  let waitingDrain = false;
  const maybeResume = () => {
    if (!waitingDrain && queuedBytes <= QUEUE_HIGH_WATER / 2 && from.isPaused()) from.resume();
  };
  const flush = () => {
    timer = undefined;
    while (queue.length > 0 && !waitingDrain) {
      const head = queue[0]!;
      const wait = head.due - performance.now();
      if (wait > 0) {
        // setTimeout may fire up to a millisecond early against performance.now(): recheck.
        timer = setTimeout(flush, Math.ceil(wait));
        maybeResume();
        return;
      }
      queue.shift();
      if (head.chunk === null) {
        to.end();
        return;
      }
      queuedBytes -= head.chunk.length;
      if (!to.write(head.chunk)) {
        waitingDrain = true;
        to.once('drain', () => {
          waitingDrain = false;
          flush();
        });
      }
    }
    maybeResume();
  };
  const enqueue = (chunk: Buffer | null) => {
    if (to.destroyed) return;
    queue.push({ due: performance.now() + delayMs(), chunk });
    if (chunk) queuedBytes += chunk.length;
    if (chunk && (queuedBytes > QUEUE_HIGH_WATER || waitingDrain)) from.pause();
    if (timer === undefined && !waitingDrain) flush();
  };
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    enqueue(null);
  };
  from.on('data', (chunk: Buffer) => {
    if (!dropping()) enqueue(chunk);
  });
  // A closed sender ends the receiver after what is still queued for it, not before.
  from.on('end', end).on('close', end);
  to.on('close', () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    queue.length = 0;
    queuedBytes = 0;
  });
}

/** An armed `dropResponses()`. */
interface LostAnswers {
  readonly resetAfterMs: number;
  /** The client bytes that start it; undefined: any. */
  readonly when: Buffer | undefined;
  /** Set once they passed: from then on answers are discarded, and the reset is due. */
  timer: NodeJS.Timeout | undefined;
  readonly done: () => void;
}

export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private lostAnswers: LostAnswers | undefined;
  private cutUntil = 0;
  private refusing = false;
  private linkDelay: LinkDelay = { upstreamMs: 0, downstreamMs: 0 };
  port = 0;

  constructor(
    private targetPort: number | { readonly path: string },
    private readonly targetHost = '127.0.0.1',
    /** Listen on this unix socket (mode 0600) instead of a loopback port. */
    readonly listenPath?: string,
    options: TcpProxyOptions = {},
  ) {
    if (options.delay) this.linkDelay = checkDelay(options.delay);
  }

  /** The one-way delays applied now. */
  get delay(): LinkDelay {
    return this.linkDelay;
  }

  /**
   * Changes the delays at run time, for open connections too: chunks arriving from now on get
   * the new delay; chunks already queued keep their time and stay ahead (no reordering).
   */
  setDelay(delay: LinkDelay): void {
    this.linkDelay = checkDelay(delay);
  }

  async start(): Promise<number> {
    await this.listen(0);
    return this.port;
  }

  private async listen(port: number): Promise<void> {
    this.server = createServer((client) => this.accept(client));
    const path = this.listenPath;
    if (path !== undefined) rmSync(path, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      if (path === undefined) this.server!.listen(port, '127.0.0.1', () => resolve());
      else {
        const umask = process.umask(0o177);
        try {
          this.server!.listen(path, () => resolve());
        } finally {
          process.umask(umask);
        }
      }
    });
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
  }

  /**
   * Stops listening until `acceptAgain()`, so dials are refused (ECONNREFUSED) as they are
   * when the process behind the port is dead but its host is up. A cut link, by contrast,
   * accepts and drops.
   */
  async refuse(): Promise<void> {
    if (this.refusing || !this.server) return;
    this.refusing = true;
    const server = this.server;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens again on the same port after `refuse()`. */
  async acceptAgain(): Promise<void> {
    if (!this.refusing) return;
    this.refusing = false;
    await this.listen(this.port);
  }

  get isCut(): boolean {
    return Date.now() < this.cutUntil;
  }

  setTarget(port: number | { readonly path: string }): void {
    this.targetPort = port;
  }

  /** Cuts the link for `ms` milliseconds. */
  cut(ms: number): void {
    this.cutUntil = Date.now() + ms;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /**
   * Loses the answer of a request, the way a link that fails right after the request went out
   * does: once client bytes pass (with `when`, a chunk containing those bytes, so one chosen
   * request is hit and not a read before it), every byte target → client is discarded while
   * client → target bytes still pass, and after `resetAfterMs` more (time for the target to act
   * on the request) every connection is reset (TCP RST) and the proxy forwards normally again.
   * The client saw its request leave and never saw the answer. Resolves at the reset.
   */
  dropResponses(options: { resetAfterMs?: number; when?: Uint8Array } = {}): Promise<void> {
    if (this.lostAnswers) throw new Error('dropResponses() is already armed');
    return new Promise<void>((resolve) => {
      this.lostAnswers = {
        resetAfterMs: options.resetAfterMs ?? 300,
        when: options.when ? Buffer.from(options.when) : undefined,
        timer: undefined,
        done: resolve,
      };
    });
  }

  /** Disarms a `dropResponses()` whose bytes never passed (its promise resolves); one that
   * started losing answers runs to its reset. True if it disarmed one. */
  cancelDropResponses(): boolean {
    const lost = this.lostAnswers;
    if (!lost || lost.timer) return false;
    this.lostAnswers = undefined;
    lost.done();
    return true;
  }

  /** True while answers are being lost. */
  private get droppingAnswers(): boolean {
    return this.lostAnswers?.timer !== undefined;
  }

  /** Client bytes are about to pass (`recent`: this chunk after the tail of the one before). */
  private clientBytesPassing(recent: Buffer): void {
    const lost = this.lostAnswers;
    if (!lost || lost.timer) return;
    if (lost.when && !recent.includes(lost.when)) return;
    lost.timer = setTimeout(() => {
      this.lostAnswers = undefined;
      for (const s of this.sockets) {
        try {
          s.resetAndDestroy();
        } catch {
          s.destroy(); // not a TCP socket (a unix socket link): a plain close
        }
      }
      this.sockets.clear();
      lost.done();
    }, lost.resetAfterMs);
  }

  private accept(client: Socket): void {
    if (this.isCut) {
      client.destroy();
      return;
    }
    const upstream =
      typeof this.targetPort === 'number'
        ? connect(this.targetPort, this.targetHost)
        : connect({ path: this.targetPort.path });
    this.sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    // An error drops both sides at once; a close ends the other side once its queue is sent.
    client.on('error', drop).on('close', () => this.sockets.delete(client));
    upstream.on('error', drop).on('close', () => this.sockets.delete(upstream));
    // Registered before the pipe's listener: a chunk that starts losing answers is seen
    // before it is forwarded, so the target's answer to it is already dropped.
    let tail = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      const recent = Buffer.concat([tail, chunk]);
      this.clientBytesPassing(recent);
      tail = recent.subarray(Math.max(0, recent.length - 256));
    });
    delayedPipe(client, upstream, () => this.linkDelay.upstreamMs);
    delayedPipe(
      upstream,
      client,
      () => this.linkDelay.downstreamMs,
      () => this.droppingAnswers,
    );
  }

  async stop(): Promise<void> {
    if (this.lostAnswers) {
      clearTimeout(this.lostAnswers.timer);
      this.lostAnswers.done();
      this.lostAnswers = undefined;
    }
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = undefined;
    if (this.refusing || !server) return;
    this.refusing = true;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
