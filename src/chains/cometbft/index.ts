/**
 * `vigil-ha/cometbft`: a TypeScript implementation of CometBFT's remote signer protocol.
 *
 * - **privval codec** for `tendermint.privval` (CometBFT v0.38) and `cometbft.privval.v1`
 *   (CometBFT v1.0): {@link encodePrivvalMessage}, {@link decodePrivvalMessage} (strict),
 *   {@link encodePrivvalFrame} / {@link takeDelimited} for the uvarint length framing.
 * - **canonical sign bytes** for votes, proposals and vote extensions
 *   ({@link signBytesOfVote}, {@link signBytesOfProposal}, {@link extensionSignBytesOfVote},
 *   and the lower-level {@link voteSignBytes} family), and {@link parseSignBytes} to read them.
 * - **SecretConnection** ({@link SecretConnection.establish}), the authenticated encrypted
 *   transport between a node and its signer, with its Merlin transcript.
 * - **the signer** ({@link startCometbftSigner}) that dials nodes (pinned by {@link nodeIdOf}
 *   in `tcp://<id>@host:port`) and signs through Vigil's guard, and the **node simulator**
 *   ({@link CometbftNodeSimulator}) for tests.
 *
 * @example Decode what a node sent:
 * ```ts
 * import { decodePrivvalMessage } from 'vigil-ha/cometbft';
 * const msg = decodePrivvalMessage(bytes, 'v0.38');
 * if (msg.kind === 'signVoteRequest') console.log(msg.vote?.height);
 * ```
 */

export {
  /** Encodes a privval Message (the oneof wrapper), without the length prefix. */
  encodePrivvalMessage,
  /** Encodes a privval Message with its uvarint length prefix, as sent on the wire. */
  encodePrivvalFrame,
  /** Decodes one privval Message strictly; throws ProtoError on anything malformed. */
  decodePrivvalMessage,
  /** Decodes hex with or without the length prefix. */
  decodePrivvalHex,
  /** Splits one length-prefixed message off a buffer, refusing oversized ones. */
  takeDelimited,
  /** A JSON-friendly view of a decoded message. */
  privvalMessageToJson,
  encodeVote,
  decodeVote,
  encodeProposal,
  decodeProposal,
  emptyVote,
  emptyProposal,
  signBytesOfVote,
  signBytesOfProposal,
  extensionSignBytesOfVote,
  MAX_PRIVVAL_MESSAGE_BYTES,
  EMPTY_BLOCK_ID,
  type PrivvalProtocol,
  type PrivvalMessage,
  type PrivvalMessageKind,
  type Vote,
  type Proposal,
  type PublicKey,
  type RemoteSignerError,
} from '../../protocols/cometbft/privval.js';

export {
  voteSignBytes,
  proposalSignBytes,
  voteExtensionSignBytes,
  parseSignBytes,
  signBytesWithoutTimestamp,
  formatTimestamp,
  parseTimestamp,
  isZeroBlockId,
  SignedMsgType,
  GO_ZERO_TIME,
  type Timestamp,
  type BlockId,
  type PartSetHeader,
  type CanonicalVote,
  type CanonicalProposal,
  type CanonicalVoteExtension,
  type ParsedSignBytes,
} from '../../protocols/cometbft/sign-bytes.js';

export { ProtoError } from '../../protocols/cometbft/proto.js';

export {
  SecretConnection,
  SecretConnectionError,
  deriveSecrets,
  isLowOrderPoint,
  DATA_MAX_SIZE,
  SEALED_FRAME_SIZE,
  type SecretConnectionOptions,
  type SecretConnectionFailure,
} from './secret-connection.js';

export { MerlinTranscript } from '../../protocols/cometbft/merlin.js';

export {
  CometbftSignerConfigSchema,
  CometbftChainSchema,
  CometbftNodeAddressSchema,
  parseNodeAddress,
  pinnedNodeAddress,
  type NodeAddress,
  type CometbftSignerConfig,
  type CometbftChainConfig,
} from './config.js';

export {
  /** hex(sha256(ed25519 public key)[0..20]): the id a `tcp://<id>@host:port` address pins. */
  nodeIdOf,
  parseNodeId,
} from './node-id.js';

export {
  /** What a sign request may carry before the guard is asked (int32 rounds, Go time range). */
  voteProblem,
  proposalProblem,
  MAX_ROUND,
  MAX_HEIGHT,
  MIN_TIMESTAMP_SECONDS,
  MAX_TIMESTAMP_SECONDS,
} from './request-rules.js';

export {
  startCometbftSigner,
  RemoteSignerErrorCode,
  NodeIdentityError,
  type CometbftSignerOptions,
  type CometbftSignerHandle,
  type NodeLinkStatus,
  type SignerLogger,
} from './signer.js';

export { loadOrCreateConnectionKey } from './connection-key.js';

export {
  CometbftNodeSimulator,
  type SimulatorOptions,
  type SignedRecord,
  type RefusedRecord,
  type SimulatedStep,
} from '../../devnet/cometbft-node.js';
