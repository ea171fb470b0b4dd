/**
 * A loopback TCP proxy standing on a link (node → agent, agent → etcd) so fault injection can
 * cut it: while cut, existing connections are destroyed and new ones closed at once, exactly
 * what a node sees when a network path fails. A node → agent link runs between unix sockets
 * (`{ path }` target, `listenPath`): the agent's API is not on TCP.
 */
import { rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private cutUntil = 0;
  private refusing = false;
  port = 0;

  constructor(
    private targetPort: number | { readonly path: string },
    private readonly targetHost = '127.0.0.1',
    /** Listen on this unix socket (mode 0600) instead of a loopback port. */
    readonly listenPath?: string,
  ) {}

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
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = undefined;
    if (this.refusing || !server) return;
    this.refusing = true;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
