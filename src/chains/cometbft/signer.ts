/**
 * Vigil as a CometBFT remote signer. A validator node with `priv_validator_laddr` set listens
 * for its signer; this agent dials every configured node, authenticates with SecretConnection
 * and answers the node's privval requests:
 *
 *   socket → SecretConnection frame → privval Message → canonical sign bytes
 *          → GuardedSigner.sign (store transaction, durable) → signed response → node
 *
 * Nothing is signed here: every vote and proposal goes through the guard, which refuses what
 * would conflict with the watermark. A refusal reaches the node as RemoteSignerError. Each
 * node link reconnects on its own with bounded exponential backoff, so one bad or dead node
 * never affects the others.
 *
 * Before anything is served on a link, the node's SecretConnection key is checked: it must
 * derive the node id pinned in the address (`tcp://<id>@host:port`), and it must never be the
 * validator key. An unpinned link is served with a warning at every connect.
 */
import { connect, type Socket } from 'node:net';
import { VigilError, errorMessage } from '../../errors.js';
import type { GuardedSigner, GuardResult } from '../../signer/guarded-signer.js';
import {
  parseNodeAddress,
  pinnedNodeAddress,
  type CometbftChainConfig,
  type CometbftSignerConfig,
} from './config.js';
import { loadOrCreateConnectionKey } from './connection-key.js';
import { nodeIdOf } from './node-id.js';
import { proposalProblem, voteProblem } from './request-rules.js';
import {
  decodePrivvalMessage,
  emptyProposal,
  emptyVote,
  encodePrivvalMessage,
  signBytesOfProposal,
  signBytesOfVote,
  type PrivvalMessage,
  type RemoteSignerError,
} from '../../protocols/cometbft/privval.js';
import { ProtoError, ProtoReader, WIRE_BYTES } from '../../protocols/cometbft/proto.js';
import { SecretConnection, SecretConnectionError } from './secret-connection.js';
import { isZeroBlockId, SignedMsgType } from '../../protocols/cometbft/sign-bytes.js';
import type { Ed25519Key } from '../../keys/ed25519.js';

/**
 * RemoteSignerError codes Vigil sends. CometBFT logs the description and treats any error as
 * "no signature"; the codes are for operators and tools reading node logs.
 */
export const RemoteSignerErrorCode = {
  /** The request is malformed or for another chain. */
  invalidRequest: 1,
  /** The guard refused: signing would go back or conflict with what was already signed. */
  doubleSignRefused: 2,
  /** The watermark store cannot confirm the write (or is behind, or this agent is fenced). */
  storeUnavailable: 3,
  /** The configured key is not on this agent. */
  unknownKey: 4,
  /** An unexpected failure inside the agent. */
  internal: 5,
  /** A request Vigil never answers (arbitrary SignBytes). */
  unsupported: 6,
} as const;

export interface SignerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const silentLogger: SignerLogger = { info() {}, warn() {}, error() {} };

export interface CometbftSignerOptions {
  readonly config: CometbftSignerConfig;
  readonly guard: GuardedSigner;
  /** The validator public key for a configured key id (answers PubKey requests). */
  readonly publicKeyOf: (keyId: string) => Uint8Array | undefined;
  readonly logger?: SignerLogger;
}

export interface NodeLinkStatus {
  readonly chainId: string;
  readonly node: string;
  readonly connected: boolean;
  /** The node's SecretConnection key, hex, while connected. */
  readonly remoteKey?: string;
  /** The node id the address pins; absent on an unpinned link. */
  readonly pinnedNodeId?: string;
  /** The node id of the last key the node authenticated with (kept after a refusal). */
  readonly remoteNodeId?: string;
  readonly requestsServed: number;
  /** Connections established (node identity checked) since the agent started. */
  readonly connects: number;
  readonly lastError?: string;
  /** The VigilError code of the last error, e.g. COMETBFT_NODE_ID_MISMATCH. */
  readonly lastErrorCode?: string;
}

export interface CometbftSignerHandle {
  /** Closes every node link and waits for them to finish. */
  stop(): Promise<void>;
  status(): NodeLinkStatus[];
}

class ProtocolViolation extends VigilError {
  constructor(message: string) {
    super(
      'PRIVVAL_PROTOCOL_VIOLATION',
      message,
      'the node sent something a CometBFT node never sends',
    );
  }
}

/**
 * The node on the other end is not the one this link may serve. Nothing is answered on it;
 * the link retries with backoff, since a restarted node may come back with the right key.
 */
export class NodeIdentityError extends VigilError {
  constructor(
    code: 'COMETBFT_NODE_ID_MISMATCH' | 'COMETBFT_NODE_HOLDS_VALIDATOR_KEY',
    message: string,
    hint: string,
  ) {
    super(code, message, hint);
  }
}

const sameKey = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** A validator key this agent signs with, and the chain it was configured for. */
interface ValidatorKey {
  readonly chain: CometbftChainConfig;
  readonly key: Uint8Array;
}

/** The privval Message oneof fields of the two sign requests (v0.38 and v1 agree). */
const SIGN_VOTE_REQUEST_FIELD = 3;
const SIGN_PROPOSAL_REQUEST_FIELD = 5;

/**
 * Which sign request an undecodable message claims to be, read from its first tag alone, so
 * that a request with a value no node can produce (a round beyond int32, a time past year
 * 9999) is answered with an error of the matching kind instead of silence.
 */
function claimedSignRequest(
  bytes: Uint8Array,
): 'signVoteRequest' | 'signProposalRequest' | undefined {
  try {
    const { field, wire } = new ProtoReader(bytes).tag();
    if (wire !== WIRE_BYTES) return undefined;
    if (field === SIGN_VOTE_REQUEST_FIELD) return 'signVoteRequest';
    if (field === SIGN_PROPOSAL_REQUEST_FIELD) return 'signProposalRequest';
  } catch (err) {
    if (!(err instanceof ProtoError)) throw err;
  }
  return undefined;
}

function dial(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new VigilError(
          'NODE_UNREACHABLE',
          `no TCP connection to ${host}:${port} within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(
        new VigilError('NODE_UNREACHABLE', `cannot connect to ${host}:${port}: ${err.message}`),
      );
    });
  });
}

function refusalError(
  result: Extract<GuardResult, { outcome: 'refused' }>,
  what: string,
): RemoteSignerError {
  const code =
    result.reason === 'regression' || result.reason === 'conflict'
      ? RemoteSignerErrorCode.doubleSignRefused
      : result.reason === 'unknown_key'
        ? RemoteSignerErrorCode.unknownKey
        : result.reason === 'invalid_request'
          ? RemoteSignerErrorCode.invalidRequest
          : RemoteSignerErrorCode.storeUnavailable;
  return {
    code,
    description: `vigil refused to sign ${what} (${result.reason}): ${result.message}`,
  };
}

/** One configured node address, dialled and served until stopped. */
class NodeLink {
  private stopped = false;
  private conn: SecretConnection | undefined;
  private socket: Socket | undefined;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private served = 0;
  private connects = 0;
  private lastError: VigilError | undefined;
  private remoteNodeId: string | undefined;
  private readonly pinnedNodeId: string | undefined;

  constructor(
    private readonly chain: CometbftChainConfig,
    private readonly node: string,
    private readonly connectionKey: Ed25519Key,
    /** Every validator key of this agent: no node may authenticate with any of them. */
    private readonly validatorKeys: readonly ValidatorKey[],
    private readonly opts: CometbftSignerOptions,
    private readonly log: SignerLogger,
  ) {
    this.pinnedNodeId = parseNodeAddress(node).nodeId;
  }

  start(): void {
    this.running = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.conn?.close();
    this.socket?.destroy();
    this.wake?.();
    await this.running;
  }

  status(): NodeLinkStatus {
    return {
      chainId: this.chain.chainId,
      node: this.node,
      connected: this.conn !== undefined,
      ...(this.conn ? { remoteKey: Buffer.from(this.conn.remotePublicKey).toString('hex') } : {}),
      ...(this.pinnedNodeId ? { pinnedNodeId: this.pinnedNodeId } : {}),
      ...(this.remoteNodeId ? { remoteNodeId: this.remoteNodeId } : {}),
      requestsServed: this.served,
      connects: this.connects,
      ...(this.lastError
        ? { lastError: this.lastError.message, lastErrorCode: this.lastError.code }
        : {}),
    };
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    const { host, port } = parseNodeAddress(this.node);
    const { backoff, timeouts } = this.chain;
    let delay = backoff.initialMs;
    const ctx = { chainId: this.chain.chainId, node: this.node };
    while (!this.stopped) {
      const servedBefore = this.served;
      try {
        this.socket = await dial(host, port, timeouts.dialMs);
        if (this.stopped) break;
        const conn = await SecretConnection.establish(this.socket, this.connectionKey, {
          handshakeTimeoutMs: timeouts.handshakeMs,
        });
        this.checkIdentity(conn);
        this.conn = conn;
        this.connects++;
        this.log.info(
          {
            ...ctx,
            nodeKey: Buffer.from(conn.remotePublicKey).toString('hex'),
            nodeId: this.remoteNodeId,
            pinned: this.pinnedNodeId !== undefined,
          },
          'connected to CometBFT node',
        );
        await this.serve(conn);
      } catch (err) {
        if (!this.stopped) {
          this.lastError =
            err instanceof VigilError
              ? err
              : new VigilError('COMETBFT_LINK_FAILED', errorMessage(err), undefined, {
                  cause: err,
                });
          const { code, message, hint } = this.lastError;
          const level =
            err instanceof NodeIdentityError
              ? 'error'
              : err instanceof SecretConnectionError && err.failure === 'closed'
                ? 'info'
                : 'warn';
          this.log[level](
            { ...ctx, err: message, code, ...(hint ? { hint } : {}) },
            err instanceof NodeIdentityError
              ? 'node refused: not the node this link serves'
              : 'node link down',
          );
        }
      } finally {
        this.conn?.close();
        this.conn = undefined;
        this.socket?.destroy();
        this.socket = undefined;
      }
      if (this.stopped) break;
      // A link that did useful work starts its backoff over; a failing one slows down.
      if (this.served > servedBefore) delay = backoff.initialMs;
      await this.sleep(delay);
      delay = Math.min(backoff.maxMs, Math.ceil(delay * backoff.multiplier));
    }
  }

  /**
   * Throws unless the authenticated remote key may be served: never the validator key, and
   * the pinned node id when the address has one. Warns on every unpinned connect.
   */
  private checkIdentity(conn: SecretConnection): void {
    const remoteKey = conn.remotePublicKey;
    const remoteId = nodeIdOf(remoteKey);
    this.remoteNodeId = remoteId;
    const { host, port } = parseNodeAddress(this.node);
    const held = this.validatorKeys.find((v) => sameKey(v.key, remoteKey));
    if (held)
      throw new NodeIdentityError(
        'COMETBFT_NODE_HOLDS_VALIDATOR_KEY',
        `the node at ${host}:${port} authenticated with the validator key ${JSON.stringify(held.chain.keyId)} of chain ${held.chain.chainId}`,
        'the validator private key is on that host, where it can sign outside Vigil: remove it, and treat it as exposed',
      );
    if (this.pinnedNodeId === undefined) {
      this.log.warn(
        {
          chainId: this.chain.chainId,
          node: this.node,
          nodeId: remoteId,
          pinnedForm: pinnedNodeAddress(this.node, remoteId),
        },
        `unpinned: any process that can listen on ${host}:${port} can ask for signatures; pin this node as ${pinnedNodeAddress(this.node, remoteId)}`,
      );
      return;
    }
    if (remoteId !== this.pinnedNodeId)
      throw new NodeIdentityError(
        'COMETBFT_NODE_ID_MISMATCH',
        `the node at ${host}:${port} has node id ${remoteId}, not the pinned ${this.pinnedNodeId}`,
        `something other than the pinned node listens on ${host}:${port}, or the node has a new SecretConnection key (stock CometBFT makes one at every start): if it is your node, pin ${pinnedNodeAddress(this.node, remoteId)}`,
      );
  }

  private async serve(conn: SecretConnection): Promise<void> {
    const protocol = this.chain.protocol;
    for (;;) {
      const bytes = await conn.readMessage(this.chain.maxMessageBytes, this.chain.timeouts.idleMs);
      let request: PrivvalMessage;
      try {
        request = decodePrivvalMessage(bytes, protocol);
      } catch (err) {
        if (!(err instanceof ProtoError)) throw err;
        const claimed = claimedSignRequest(bytes);
        if (claimed === undefined)
          throw new ProtocolViolation(`undecodable privval ${protocol} message: ${err.message}`);
        const response = this.undecodableRequest(claimed, err);
        if (this.stopped) return;
        conn.writeDelimited(encodePrivvalMessage(response, protocol));
        this.served++;
        continue;
      }
      const response = await this.handle(request);
      if (this.stopped) return;
      conn.writeDelimited(encodePrivvalMessage(response, protocol));
      this.served++;
    }
  }

  /** The error answer to a sign request the codec refused; nothing reaches the guard. */
  private undecodableRequest(
    kind: 'signVoteRequest' | 'signProposalRequest',
    err: ProtoError,
  ): PrivvalMessage {
    this.log.warn(
      { chainId: this.chain.chainId, node: this.node, kind, err: err.message },
      'undecodable sign request refused',
    );
    const error: RemoteSignerError = {
      code: RemoteSignerErrorCode.invalidRequest,
      description: `vigil cannot read this ${kind === 'signVoteRequest' ? 'vote' : 'proposal'}: ${err.message}`,
    };
    return kind === 'signVoteRequest'
      ? { kind: 'signedVoteResponse', vote: emptyVote(), error }
      : { kind: 'signedProposalResponse', proposal: emptyProposal(), error };
  }

  private wrongChain(chainId: string): RemoteSignerError | undefined {
    if (chainId === this.chain.chainId) return undefined;
    return {
      code: RemoteSignerErrorCode.invalidRequest,
      description: `vigil signs for chain ${JSON.stringify(this.chain.chainId)} on this link, not ${JSON.stringify(chainId)}`,
    };
  }

  private async handle(req: PrivvalMessage): Promise<PrivvalMessage> {
    switch (req.kind) {
      case 'pingRequest':
        return { kind: 'pingResponse' };
      case 'pubKeyRequest': {
        const error = this.wrongChain(req.chainId);
        if (error) return { kind: 'pubKeyResponse', error };
        const bytes = this.opts.publicKeyOf(this.chain.keyId);
        if (!bytes)
          return {
            kind: 'pubKeyResponse',
            error: {
              code: RemoteSignerErrorCode.unknownKey,
              description: `vigil has no key ${JSON.stringify(this.chain.keyId)}`,
            },
          };
        return { kind: 'pubKeyResponse', pubKey: { type: 'ed25519', bytes } };
      }
      case 'signVoteRequest':
        return this.signVote(req);
      case 'signProposalRequest':
        return this.signProposal(req);
      case 'signBytesRequest':
        return {
          kind: 'signBytesResponse',
          signature: new Uint8Array(),
          error: {
            code: RemoteSignerErrorCode.unsupported,
            description:
              'vigil signs only votes and proposals, which it can check against double signing',
          },
        };
      default:
        throw new ProtocolViolation(`the node sent a ${req.kind}, which only a signer sends`);
    }
  }

  private async guarded(
    request: Parameters<GuardedSigner['sign']>[0],
    what: string,
  ): Promise<
    { ok: Extract<GuardResult, { outcome: 'granted' | 'replayed' }> } | { error: RemoteSignerError }
  > {
    let result: GuardResult;
    try {
      result = await this.opts.guard.sign(request);
    } catch (err) {
      this.log.error(
        { chainId: this.chain.chainId, node: this.node, err: errorMessage(err) },
        'guard failed',
      );
      return {
        error: {
          code: RemoteSignerErrorCode.internal,
          description: `vigil could not sign ${what}: ${errorMessage(err)}`,
        },
      };
    }
    if (result.outcome === 'refused') {
      this.log.warn(
        { chainId: this.chain.chainId, node: this.node, reason: result.reason, what },
        'signature refused',
      );
      return { error: refusalError(result, what) };
    }
    if (!result.signature)
      return {
        error: {
          code: RemoteSignerErrorCode.internal,
          description: `vigil produced no signature for ${what}`,
        },
      };
    return { ok: result };
  }

  private async signVote(
    req: Extract<PrivvalMessage, { kind: 'signVoteRequest' }>,
  ): Promise<PrivvalMessage> {
    const fail = (error: RemoteSignerError): PrivvalMessage => ({
      kind: 'signedVoteResponse',
      vote: emptyVote(),
      error,
    });
    const invalid = (description: string) =>
      fail({ code: RemoteSignerErrorCode.invalidRequest, description });
    const wrong = this.wrongChain(req.chainId);
    if (wrong) return fail(wrong);
    const vote = req.vote;
    if (!vote) return invalid('the sign vote request carries no vote');
    const problem = voteProblem(vote);
    if (problem) return invalid(`vigil cannot sign this vote: ${problem}`);
    const forBlock = vote.type === SignedMsgType.Precommit && !isZeroBlockId(vote.blockId);
    if (!forBlock && vote.extension.length > 0)
      return invalid('vote extensions are only allowed in precommits for a block');
    if ((vote.nonRpExtension?.length ?? 0) > 0)
      return fail({
        code: RemoteSignerErrorCode.unsupported,
        description: 'vigil does not sign non-replay-protected vote extensions',
      });
    // CometBFT signs the extension of every precommit for a block (v0.38 always; v1 unless
    // the node asks to skip it), even an empty extension.
    const signExtension = forBlock && !req.skipExtensionSigning;
    const step = vote.type === SignedMsgType.Prevote ? 'prevote' : 'precommit';
    const what = `${step} at height ${vote.height} round ${vote.round}`;
    const outcome = await this.guarded(
      {
        chainId: this.chain.chainId,
        keyId: this.chain.keyId,
        // The guard reads height, round and step back out of these bytes.
        payload: signBytesOfVote(vote, this.chain.chainId),
        claims: { family: 'cometbft' },
        ...(signExtension ? { extension: vote.extension } : {}),
      },
      what,
    );
    if ('error' in outcome) return fail(outcome.error);
    const r = outcome.ok;
    if (signExtension && !r.extensionSignature)
      return fail({
        code: RemoteSignerErrorCode.internal,
        description: `no extension signature for ${what}`,
      });
    return {
      kind: 'signedVoteResponse',
      vote: {
        ...vote,
        // FilePV semantics: a request that differs only in time gets the stored time back.
        timestamp: r.timestamp ?? vote.timestamp,
        signature: r.signature!,
        extensionSignature: signExtension ? r.extensionSignature! : new Uint8Array(),
      },
    };
  }

  private async signProposal(
    req: Extract<PrivvalMessage, { kind: 'signProposalRequest' }>,
  ): Promise<PrivvalMessage> {
    const fail = (error: RemoteSignerError): PrivvalMessage => ({
      kind: 'signedProposalResponse',
      proposal: emptyProposal(),
      error,
    });
    const invalid = (description: string) =>
      fail({ code: RemoteSignerErrorCode.invalidRequest, description });
    const wrong = this.wrongChain(req.chainId);
    if (wrong) return fail(wrong);
    const p = req.proposal;
    if (!p) return invalid('the sign proposal request carries no proposal');
    const problem = proposalProblem(p);
    if (problem) return invalid(`vigil cannot sign this proposal: ${problem}`);
    const what = `proposal at height ${p.height} round ${p.round}`;
    const outcome = await this.guarded(
      {
        chainId: this.chain.chainId,
        keyId: this.chain.keyId,
        payload: signBytesOfProposal(p, this.chain.chainId),
        claims: { family: 'cometbft' },
      },
      what,
    );
    if ('error' in outcome) return fail(outcome.error);
    return {
      kind: 'signedProposalResponse',
      proposal: {
        ...p,
        timestamp: outcome.ok.timestamp ?? p.timestamp,
        signature: outcome.ok.signature!,
      },
    };
  }
}

/**
 * Starts dialling every node of every configured chain. Resolves once the links are started
 * (not connected: nodes may come up later); fails fast on a missing key or connection key.
 */
export async function startCometbftSigner(
  options: CometbftSignerOptions,
): Promise<CometbftSignerHandle> {
  const log = options.logger ?? silentLogger;
  const links: NodeLink[] = [];
  const validatorKeys: ValidatorKey[] = options.config.chains.map((chain) => {
    const key = options.publicKeyOf(chain.keyId);
    if (!key) {
      throw new VigilError(
        'COMETBFT_KEY_UNKNOWN',
        `chain ${chain.chainId}: no key ${JSON.stringify(chain.keyId)} is configured on this agent`,
        'add the validator key (priv_validator_key.json) to the agent keys, or fix cometbft.chains[].keyId',
      );
    }
    return { chain, key };
  });
  const validatorNodeIds = new Map(validatorKeys.map((v) => [nodeIdOf(v.key), v]));
  for (const { chain } of validatorKeys) {
    const connectionKey = loadOrCreateConnectionKey(chain.connectionKeyFile);
    // The connection key is shown to every node that accepts the link; a validator key used
    // there would sign handshakes wherever this agent connects. Checked against every
    // validator key of this agent, not only this chain's.
    const clash = validatorKeys.find((v) => sameKey(v.key, connectionKey.publicKey));
    if (clash)
      throw new VigilError(
        'COMETBFT_CONNECTION_KEY_IS_VALIDATOR_KEY',
        `chain ${chain.chainId}: the connection key ${chain.connectionKeyFile} is the validator key ${JSON.stringify(clash.chain.keyId)}`,
        'the connection key only authenticates the link to the node and must be a key of its own: set connectionKeyFile to a path that does not exist, and the agent creates one (mode 0600)',
      );
    for (const node of chain.nodes) {
      const pinnedTo = validatorNodeIds.get(parseNodeAddress(node).nodeId ?? '');
      if (pinnedTo)
        throw new VigilError(
          'COMETBFT_NODE_PINNED_TO_VALIDATOR_KEY',
          `chain ${chain.chainId}: node ${node} is pinned to the node id of the validator key ${JSON.stringify(pinnedTo.chain.keyId)}`,
          'pin the id of the node’s own SecretConnection key (the agent logs it at every unpinned connect); a node must never hold the validator key',
        );
      links.push(new NodeLink(chain, node, connectionKey, validatorKeys, options, log));
    }
  }
  for (const l of links) l.start();
  log.info({ links: links.length }, 'CometBFT signer started');
  return {
    async stop() {
      await Promise.all(links.map((l) => l.stop()));
    },
    status: () => links.map((l) => l.status()),
  };
}
