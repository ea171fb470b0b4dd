/**
 * The node side of privval, as a CometBFT validator node with `priv_validator_laddr` behaves:
 * it listens, runs the SecretConnection handshake with whichever signer dials in, asks for the
 * public key, then for each height sends a proposal (when it is the proposer), a prevote and a
 * precommit (with a vote extension on a precommit for a block, when enabled), one block time
 * apart. Every returned signature is verified against the validator key, and every signed
 * message is recorded, so tests, the devnet's equivocation checker and benchmarks can inspect
 * exactly what left the signer.
 *
 * Unlike a real node, which holds one signer connection, it keeps every signer that dials in
 * and fails over to the next when the current one drops, so a request is never lost with a
 * signer (a real node would move on to the next round instead).
 */
import { createHash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { VigilError, errorMessage } from '../errors.js';
import { Ed25519Key, verifyEd25519 } from '../keys/ed25519.js';
import {
  decodePrivvalMessage,
  emptyVote,
  encodePrivvalMessage,
  extensionSignBytesOfVote,
  signBytesOfProposal,
  signBytesOfVote,
  MAX_PRIVVAL_MESSAGE_BYTES,
  type PrivvalMessage,
  type PrivvalProtocol,
  type Proposal,
  type RemoteSignerError,
  type Vote,
} from '../protocols/cometbft/privval.js';
import { SecretConnection } from '../chains/cometbft/secret-connection.js';
import { nodeIdOf } from '../chains/cometbft/node-id.js';
import { SignedMsgType, type BlockId, type Timestamp } from '../protocols/cometbft/sign-bytes.js';

export type SimulatedStep = 'proposal' | 'prevote' | 'precommit';

export interface SimulatorOptions {
  readonly chainId: string;
  readonly protocol: PrivvalProtocol;
  /** When set, the signer's PubKey answer must be this key; otherwise the answer is trusted. */
  readonly validatorPublicKey?: Uint8Array;
  readonly host?: string;
  /**
   * The node's SecretConnection key; a fresh one by default, as stock CometBFT makes at every
   * start. A devnet passes its own so that it can pin the node in agent configs.
   */
  readonly nodeKey?: Ed25519Key;
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** Pause between heights. */
  readonly blockTimeMs?: number;
  readonly startHeight?: bigint;
  /** The last height to sign; the simulator then idles (answering nothing, pinging links). */
  readonly lastHeight?: bigint;
  readonly isProposer?: (height: bigint) => boolean;
  readonly voteExtensions?: boolean;
  /** Propose a block no other simulator proposes at the same height (to provoke a conflict). */
  readonly conflictingProposals?: boolean;
  /** A name for records and for the conflicting block's hash. */
  readonly name?: string;
  /** Timestamps per message; deterministic by default so two nodes send identical requests. */
  readonly timestampOf?: (height: bigint, round: bigint, step: SimulatedStep) => Timestamp;
  /**
   * Awaited before each step; lets several simulated nodes move in lockstep, as nodes of one
   * network do (a node does not prevote before it has seen the proposal).
   */
  readonly beforeStep?: (height: bigint, step: SimulatedStep) => Promise<void>;
  /** Called with every answer as it arrives (an evidence collector can stream them). */
  readonly onRecord?: (record: SignedRecord | RefusedRecord) => void;
  readonly requestTimeoutMs?: number;
  readonly pingIntervalMs?: number;
  readonly handshakeTimeoutMs?: number;
}

export interface SignedRecord {
  readonly node: string;
  readonly step: SimulatedStep;
  readonly height: bigint;
  readonly round: bigint;
  /** The canonical bytes the returned signature covers (with the returned timestamp). */
  readonly signBytes: Uint8Array;
  readonly signature: Uint8Array;
  readonly timestamp: Timestamp;
  /** Whether the signer answered with a different (stored) timestamp than requested. */
  readonly timestampReplaced: boolean;
  readonly blockHash: Uint8Array;
  readonly extension?: Uint8Array;
  readonly extensionSignature?: Uint8Array;
  /** Signature(s) verified against the validator key. */
  readonly verified: boolean;
  /** The signer's connection key that answered. */
  readonly signerKey: string;
}

export interface RefusedRecord {
  readonly node: string;
  readonly step: SimulatedStep;
  readonly height: bigint;
  readonly round: bigint;
  readonly error: RemoteSignerError;
}

class SimulatorError extends VigilError {
  constructor(message: string) {
    super('SIMULATOR', message);
  }
}

interface Link {
  readonly conn: SecretConnection;
  queue: Promise<unknown>;
  alive: boolean;
  checkedKey: boolean;
}

const GENESIS_SECONDS = 1_700_000_000n;

const sha256 = (...parts: string[]) =>
  new Uint8Array(createHash('sha256').update(parts.join('\0')).digest());

export class CometbftNodeSimulator {
  readonly signed: SignedRecord[] = [];
  readonly refused: RefusedRecord[] = [];
  /** Connection-level problems seen (bad handshakes, dropped links). */
  readonly incidents: string[] = [];
  /** The highest height whose every step got an answer (signature or refusal). */
  completedHeight = 0n;
  validatorPublicKey: Uint8Array | undefined;
  readonly nodeKey: Ed25519Key;
  readonly name: string;

  private readonly links: Link[] = [];
  private readonly events = new EventEmitter();
  private stopped = false;
  private driver: Promise<void> | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private readonly sockets = new Set<Socket>();
  /** Round-trip time of every answered sign request, in milliseconds (for benchmarks). */
  readonly latenciesMs: number[] = [];

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly opts: SimulatorOptions,
  ) {
    this.name = opts.name ?? `node:${port}`;
    this.nodeKey = opts.nodeKey ?? Ed25519Key.fromSeed(randomBytes(32));
    this.validatorPublicKey = opts.validatorPublicKey;
    this.events.setMaxListeners(100);
  }

  /** `tcp://host:port`, what the signer dials (the node's priv_validator_laddr). */
  get address(): string {
    return `tcp://${this.opts.host ?? '127.0.0.1'}:${this.port}`;
  }

  /** The node id of its SecretConnection key, what a signer pins. */
  get nodeId(): string {
    return nodeIdOf(this.nodeKey.publicKey);
  }

  /** `tcp://<node id>@host:port`: the address with the node pinned. */
  get pinnedAddress(): string {
    return `tcp://${this.nodeId}@${this.opts.host ?? '127.0.0.1'}:${this.port}`;
  }

  get connectedSigners(): number {
    return this.links.filter((l) => l.alive).length;
  }

  static async start(opts: SimulatorOptions): Promise<CometbftNodeSimulator> {
    const server = createServer();
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1');
    await once(server, 'listening');
    const sim = new CometbftNodeSimulator(
      server,
      (server.address() as { port: number }).port,
      opts,
    );
    server.on('connection', (s: Socket) => sim.accept(s));
    sim.driver = sim.drive();
    sim.pinger = setInterval(() => sim.pingIdle(), opts.pingIntervalMs ?? 1000);
    return sim;
  }

  private accept(socket: Socket): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.setNoDelay(true);
    SecretConnection.establish(socket, this.nodeKey, {
      handshakeTimeoutMs: this.opts.handshakeTimeoutMs ?? 3000,
    }).then(
      (conn) => {
        if (this.stopped) return conn.close();
        const link: Link = { conn, queue: Promise.resolve(), alive: true, checkedKey: false };
        socket.on('close', () => {
          link.alive = false;
        });
        this.links.push(link);
        this.events.emit('link');
      },
      (err: unknown) => {
        this.incidents.push(`handshake: ${errorMessage(err)}`);
      },
    );
  }

  /** One request/response on a link, serialised with any other use of that link. */
  private exchange(link: Link, msg: PrivvalMessage): Promise<PrivvalMessage> {
    const run = async () => {
      if (!link.alive) throw new SimulatorError('link closed');
      link.conn.writeDelimited(encodePrivvalMessage(msg, this.opts.protocol));
      const bytes = await link.conn.readMessage(
        MAX_PRIVVAL_MESSAGE_BYTES,
        this.opts.requestTimeoutMs ?? 3000,
      );
      return decodePrivvalMessage(bytes, this.opts.protocol);
    };
    const p = link.queue.then(run, run);
    link.queue = p.catch(() => undefined);
    return p.catch((err: unknown) => {
      link.alive = false;
      link.conn.close();
      throw err;
    });
  }

  private pingIdle(): void {
    for (const link of this.links) {
      if (!link.alive) continue;
      this.exchange(link, { kind: 'pingRequest' }).catch((err: unknown) =>
        this.incidents.push(`ping: ${errorMessage(err)}`),
      );
    }
  }

  private async activeLink(): Promise<Link> {
    for (;;) {
      if (this.stopped) throw new SimulatorError('stopped');
      for (let i = this.links.length - 1; i >= 0; i--)
        if (!this.links[i]!.alive) this.links.splice(i, 1);
      const link = this.links[0];
      if (link) {
        if (!link.checkedKey) {
          const r = await this.exchange(link, {
            kind: 'pubKeyRequest',
            chainId: this.opts.chainId,
          }).catch(() => undefined);
          if (!r) continue;
          if (r.kind !== 'pubKeyResponse' || r.error || r.pubKey?.type !== 'ed25519') {
            this.incidents.push(
              `pubkey: ${JSON.stringify(r.kind === 'pubKeyResponse' ? r.error : r.kind)}`,
            );
            link.alive = false;
            link.conn.close();
            continue;
          }
          if (this.validatorPublicKey === undefined) this.validatorPublicKey = r.pubKey!.bytes;
          else if (
            Buffer.compare(Buffer.from(this.validatorPublicKey), Buffer.from(r.pubKey!.bytes)) !== 0
          ) {
            this.incidents.push('pubkey: the signer answered with another validator key');
            link.alive = false;
            link.conn.close();
            continue;
          }
          link.checkedKey = true;
        }
        return link;
      }
      await this.nextEvent('link', 1000);
    }
  }

  /** Sends `msg` to the current signer, failing over until one answers. */
  private async request(msg: PrivvalMessage): Promise<{ response: PrivvalMessage; link: Link }> {
    for (;;) {
      const link = await this.activeLink();
      try {
        const started = performance.now();
        const response = await this.exchange(link, msg);
        this.latenciesMs.push(performance.now() - started);
        return { response, link };
      } catch (err) {
        this.incidents.push(`request: ${errorMessage(err)}`);
      }
    }
  }

  private record<T extends SignedRecord | RefusedRecord>(list: T[], r: T): void {
    list.push(r);
    this.opts.onRecord?.(r);
  }

  private timestamp(height: bigint, round: bigint, step: SimulatedStep): Timestamp {
    if (this.opts.timestampOf) return this.opts.timestampOf(height, round, step);
    const offset = { proposal: 0, prevote: 1, precommit: 2 }[step];
    return { seconds: GENESIS_SECONDS + height * 10n, nanos: offset * 1000 };
  }

  private blockId(height: bigint, salt: string): BlockId {
    return {
      hash: sha256(this.opts.chainId, String(height), 'block', salt),
      partSetHeader: { total: 1, hash: sha256(this.opts.chainId, String(height), 'parts', salt) },
    };
  }

  private verify(bytes: Uint8Array, signature: Uint8Array): boolean {
    return (
      this.validatorPublicKey !== undefined &&
      signature.length === 64 &&
      verifyEd25519(this.validatorPublicKey, bytes, signature)
    );
  }

  private async signProposal(height: bigint, round: bigint): Promise<void> {
    const proposal: Proposal = {
      type: SignedMsgType.Proposal,
      height,
      round,
      polRound: -1n,
      blockId: this.blockId(height, this.opts.conflictingProposals ? this.name : ''),
      timestamp: this.timestamp(height, round, 'proposal'),
      signature: new Uint8Array(),
    };
    const { response, link } = await this.request({
      kind: 'signProposalRequest',
      proposal,
      chainId: this.opts.chainId,
    });
    if (response.kind !== 'signedProposalResponse')
      throw new SimulatorError(`expected a signed proposal, got ${response.kind}`);
    if (response.error) {
      this.record(this.refused, {
        node: this.name,
        step: 'proposal',
        height,
        round,
        error: response.error,
      });
      return;
    }
    const p = response.proposal;
    const signBytes = signBytesOfProposal(p, this.opts.chainId);
    const same =
      Buffer.compare(
        Buffer.from(
          signBytesOfProposal({ ...p, timestamp: proposal.timestamp }, this.opts.chainId),
        ),
        Buffer.from(signBytesOfProposal(proposal, this.opts.chainId)),
      ) === 0;
    this.record(this.signed, {
      node: this.name,
      step: 'proposal',
      height,
      round,
      signBytes,
      signature: p.signature,
      timestamp: p.timestamp,
      timestampReplaced:
        p.timestamp.seconds !== proposal.timestamp.seconds ||
        p.timestamp.nanos !== proposal.timestamp.nanos,
      blockHash: p.blockId.hash,
      verified: same && this.verify(signBytes, p.signature),
      signerKey: Buffer.from(link.conn.remotePublicKey).toString('hex'),
    });
  }

  private async signVote(
    height: bigint,
    round: bigint,
    step: 'prevote' | 'precommit',
  ): Promise<void> {
    const withExtension = step === 'precommit' && (this.opts.voteExtensions ?? false);
    const vote: Vote = {
      ...emptyVote(),
      type: step === 'prevote' ? SignedMsgType.Prevote : SignedMsgType.Precommit,
      height,
      round,
      blockId: this.blockId(height, ''),
      timestamp: this.timestamp(height, round, step),
      validatorAddress: sha256('validator').subarray(0, 20),
      validatorIndex: 0,
      extension: withExtension ? new TextEncoder().encode(`extension ${height}`) : new Uint8Array(),
    };
    const { response, link } = await this.request({
      kind: 'signVoteRequest',
      vote,
      chainId: this.opts.chainId,
      ...(this.opts.protocol === 'v1' && step === 'precommit' && !withExtension
        ? { skipExtensionSigning: true }
        : {}),
    });
    if (response.kind !== 'signedVoteResponse')
      throw new SimulatorError(`expected a signed vote, got ${response.kind}`);
    if (response.error) {
      this.record(this.refused, { node: this.name, step, height, round, error: response.error });
      return;
    }
    const v = response.vote;
    const signBytes = signBytesOfVote(v, this.opts.chainId);
    const unchanged =
      Buffer.compare(
        Buffer.from(signBytesOfVote({ ...v, timestamp: vote.timestamp }, this.opts.chainId)),
        Buffer.from(signBytesOfVote(vote, this.opts.chainId)),
      ) === 0;
    let verified = unchanged && this.verify(signBytes, v.signature);
    if (withExtension) {
      verified &&= this.verify(
        extensionSignBytesOfVote(v, this.opts.chainId),
        v.extensionSignature,
      );
    }
    this.record(this.signed, {
      node: this.name,
      step,
      height,
      round,
      signBytes,
      signature: v.signature,
      timestamp: v.timestamp,
      timestampReplaced:
        v.timestamp.seconds !== vote.timestamp.seconds ||
        v.timestamp.nanos !== vote.timestamp.nanos,
      blockHash: v.blockId.hash,
      ...(withExtension
        ? { extension: v.extension, extensionSignature: v.extensionSignature }
        : {}),
      verified,
      signerKey: Buffer.from(link.conn.remotePublicKey).toString('hex'),
    });
  }

  private async drive(): Promise<void> {
    const round = 0n;
    let height = this.opts.startHeight ?? 1n;
    const isProposer = this.opts.isProposer ?? (() => true);
    try {
      while (
        !this.stopped &&
        (this.opts.lastHeight === undefined || height <= this.opts.lastHeight)
      ) {
        const gate = this.opts.beforeStep ?? (async () => undefined);
        if (isProposer(height)) {
          await gate(height, 'proposal');
          await this.signProposal(height, round);
        }
        await gate(height, 'prevote');
        await this.signVote(height, round, 'prevote');
        await gate(height, 'precommit');
        await this.signVote(height, round, 'precommit');
        this.completedHeight = height;
        this.events.emit('height', height);
        height++;
        const blockTime = this.opts.blockTimeMs ?? 50;
        if (blockTime > 0) await this.nextEvent('stop', blockTime);
      }
    } catch (err) {
      if (!this.stopped) this.incidents.push(`driver: ${errorMessage(err)}`);
    }
  }

  /** Resolves once `height` is complete; rejects after `timeoutMs`. */
  async waitForHeight(height: bigint, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.completedHeight < height) {
      const left = deadline - Date.now();
      if (left <= 0 || this.stopped)
        throw new SimulatorError(
          `${this.name}: height ${height} not reached (at ${this.completedHeight}); incidents: ${this.incidents.slice(-3).join(' | ')}`,
        );
      await this.nextEvent('height', Math.min(left, 200));
    }
  }

  /** Waits for one `event` or `ms`, whichever comes first, leaving no listener behind. */
  private nextEvent(event: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.events.off(event, done);
        this.events.off('stop', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.events.on(event, done);
      this.events.on('stop', done);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.events.emit('stop');
    if (this.pinger) clearInterval(this.pinger);
    for (const l of this.links) l.conn.close();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    await this.driver;
  }
}
