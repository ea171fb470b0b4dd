/**
 * CometBFT's SecretConnection (the station-to-station handshake used by p2p and privval),
 * identical for the side that dialled and the side that accepted:
 *
 *   1. both send an ephemeral X25519 public key (a length-prefixed BytesValue);
 *   2. the Merlin transcript takes the two keys sorted, then the DH secret, and yields a
 *      32-byte challenge; HKDF-SHA256 of the DH secret yields the two ChaCha20-Poly1305 keys
 *      (the side with the lower ephemeral key receives with the first);
 *   3. inside the encrypted channel both send AuthSigMessage{pub_key, sig}, an Ed25519
 *      signature of the challenge by their long-term connection key, and verify the other's.
 *
 * Frames are 1028 bytes of plaintext (little-endian u32 length + up to 1024 data bytes),
 * sealed to 1044, with a 12-byte nonce whose last 8 bytes are a little-endian counter
 * starting at 0. Every read is bounded in size and time; any deviation ends the connection
 * with a SecretConnectionError.
 */
import { hkdfSync } from 'node:crypto';
import type { Socket } from 'node:net';
import { x25519 } from '@noble/curves/ed25519.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { VigilError } from '../../errors.js';
import { verifyEd25519, type Ed25519Key } from '../../keys/ed25519.js';
import { MerlinTranscript } from '../../protocols/cometbft/merlin.js';
import {
  ProtoError,
  ProtoReader,
  ProtoWriter,
  WIRE_BYTES,
} from '../../protocols/cometbft/proto.js';
import { takeDelimited } from '../../protocols/cometbft/privval.js';

export const DATA_LEN_SIZE = 4;
export const DATA_MAX_SIZE = 1024;
export const TOTAL_FRAME_SIZE = DATA_MAX_SIZE + DATA_LEN_SIZE;
export const SEALED_FRAME_SIZE = TOTAL_FRAME_SIZE + 16;
const NONCE_SIZE = 12;
const AUTH_MESSAGE_MAX = 1024;

const KEY_AND_CHALLENGE_INFO = 'TENDERMINT_SECRET_CONNECTION_KEY_AND_CHALLENGE_GEN';
const TRANSCRIPT_LABEL = 'TENDERMINT_SECRET_CONNECTION_TRANSCRIPT_HASH';

export type SecretConnectionFailure =
  'closed' | 'timeout' | 'handshake' | 'low_order_key' | 'auth' | 'frame' | 'too_large';

export class SecretConnectionError extends VigilError {
  constructor(
    readonly failure: SecretConnectionFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(
      `SECRET_CONNECTION_${failure.toUpperCase()}`,
      message,
      failure === 'auth' || failure === 'handshake' || failure === 'low_order_key'
        ? 'the peer is not speaking CometBFT SecretConnection, or is not who it claims to be'
        : undefined,
      options,
    );
  }
}

/**
 * The u-coordinates of small-order Curve25519 points (and their non-canonical encodings), as
 * libsodium lists them. X25519 ignores the top bit, so it is masked before comparing. The
 * all-zero shared secret check below catches these too; the list makes the refusal explicit.
 */
const LOW_ORDER_POINTS = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

export function isLowOrderPoint(u: Uint8Array): boolean {
  const masked = Uint8Array.from(u);
  masked[31]! &= 0x7f;
  const hex = Buffer.from(masked).toString('hex');
  return LOW_ORDER_POINTS.includes(hex);
}

/** HKDF-SHA256(dh, no salt, info) → (receive key, send key) for the given side. */
export function deriveSecrets(
  dhSecret: Uint8Array,
  localIsLeast: boolean,
): { recvKey: Uint8Array; sendKey: Uint8Array } {
  const out = new Uint8Array(
    hkdfSync('sha256', dhSecret, new Uint8Array(), KEY_AND_CHALLENGE_INFO, 96),
  );
  const first = out.slice(0, 32);
  const second = out.slice(32, 64);
  return localIsLeast ? { recvKey: first, sendKey: second } : { recvKey: second, sendKey: first };
}

/** Buffered, bounded reads of exact byte counts from a socket, each with a deadline. */
class SocketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended: SecretConnectionError | undefined;
  private waiter:
    { n: number; resolve: (b: Uint8Array) => void; reject: (e: unknown) => void } | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly highWater = 64 * 1024,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered > this.highWater) socket.pause();
      this.serve();
    });
    const end = (reason: string) => {
      if (!this.ended) this.ended = new SecretConnectionError('closed', reason);
      this.serve();
    };
    socket.on('end', () => end('the peer closed the connection'));
    socket.on('close', () => end('the connection closed'));
    socket.on('error', (err) => end(`connection error: ${err.message}`));
  }

  private serve(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.buffered >= w.n) {
      this.waiter = undefined;
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      const out = new Uint8Array(all.subarray(0, w.n));
      const rest = all.subarray(w.n);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      if (this.buffered <= this.highWater && this.socket.isPaused()) this.socket.resume();
      w.resolve(out);
    } else if (this.ended) {
      this.waiter = undefined;
      w.reject(this.ended);
    }
  }

  read(n: number, timeoutMs: number, what: string): Promise<Uint8Array> {
    if (this.waiter) return Promise.reject(new Error('SocketReader: concurrent reads'));
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new SecretConnectionError('timeout', `no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = {
        n,
        resolve: (b) => {
          clearTimeout(timer);
          resolve(b);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.serve();
    });
  }
}

class NonceCounter {
  readonly bytes = new Uint8Array(NONCE_SIZE);
  private readonly view = new DataView(this.bytes.buffer);
  private counter = 0n;

  next(): Uint8Array {
    const nonce = Uint8Array.from(this.bytes);
    if (this.counter === 0xffffffffffffffffn)
      throw new SecretConnectionError('frame', 'nonce counter exhausted');
    this.counter++;
    this.view.setBigUint64(4, this.counter, true);
    return nonce;
  }
}

export interface SecretConnectionOptions {
  /** Bound on the whole handshake. */
  readonly handshakeTimeoutMs?: number;
  /** Refuse any peer whose authenticated Ed25519 key is not this one. */
  readonly expectedRemoteKey?: Uint8Array;
  /** Tests only: a fixed ephemeral X25519 secret key. */
  readonly ephemeralSecretKey?: Uint8Array;
  /** Tests only (hostile peers): replaces the challenge signature that is sent. */
  readonly tamperAuthSignature?: (signature: Uint8Array) => Uint8Array;
}

function encodeAuthSig(publicKey: Uint8Array, signature: Uint8Array): Uint8Array {
  const pk = new ProtoWriter().bytesField(1, publicKey, true).finish();
  return new ProtoWriter().messageField(1, pk, true).bytesField(2, signature).finish();
}

function decodeAuthSig(buf: Uint8Array): { publicKey: Uint8Array; signature: Uint8Array } {
  const r = new ProtoReader(buf);
  let publicKey: Uint8Array | undefined;
  let signature: Uint8Array | undefined;
  while (!r.done) {
    const { field, wire } = r.tag();
    if (wire !== WIRE_BYTES || (field !== 1 && field !== 2))
      throw new ProtoError(`AuthSigMessage: unexpected field ${field}/${wire}`);
    if (field === 1) {
      if (publicKey) throw new ProtoError('AuthSigMessage: pub_key twice');
      const { start, end } = r.bytesRange();
      const pr = new ProtoReader(buf, start, end);
      while (!pr.done) {
        const t = pr.tag();
        if (t.field !== 1 || t.wire !== WIRE_BYTES || publicKey)
          throw new ProtoError('AuthSigMessage: the connection key must be a single Ed25519 key');
        publicKey = Uint8Array.from(pr.bytes());
      }
      if (!publicKey) throw new ProtoError('AuthSigMessage: no public key');
    } else {
      if (signature) throw new ProtoError('AuthSigMessage: sig twice');
      signature = Uint8Array.from(r.bytes());
    }
  }
  if (publicKey?.length !== 32)
    throw new ProtoError('AuthSigMessage: Ed25519 key must be 32 bytes');
  if (signature?.length !== 64) throw new ProtoError('AuthSigMessage: signature must be 64 bytes');
  return { publicKey, signature };
}

export class SecretConnection {
  private readonly sendNonce = new NonceCounter();
  private readonly recvNonce = new NonceCounter();
  private plain: Uint8Array = new Uint8Array();
  private closed = false;
  /** The peer's authenticated Ed25519 connection key (set once the handshake is done). */
  remotePublicKey: Uint8Array = new Uint8Array();

  private constructor(
    readonly socket: Socket,
    private readonly reader: SocketReader,
    private readonly sendKey: Uint8Array,
    private readonly recvKey: Uint8Array,
  ) {}

  /** Runs the handshake on a connected socket; both the dialling and the accepting side call it. */
  static async establish(
    socket: Socket,
    localKey: Ed25519Key,
    options: SecretConnectionOptions = {},
  ): Promise<SecretConnection> {
    const timeoutMs = options.handshakeTimeoutMs ?? 5000;
    const deadline = Date.now() + timeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    const reader = new SocketReader(socket);
    try {
      const ephSecret = options.ephemeralSecretKey ?? x25519.utils.randomSecretKey();
      const ephPublic = x25519.getPublicKey(ephSecret);
      // BytesValue{value = 1: 32 bytes}, length-prefixed: 0x22 0x0a 0x20 ‖ key.
      socket.write(Buffer.concat([Buffer.from([0x22, 0x0a, 0x20]), ephPublic]));
      const head = await reader.read(3, left(), 'ephemeral key');
      if (head[0] !== 0x22 || head[1] !== 0x0a || head[2] !== 0x20) {
        throw new SecretConnectionError(
          'handshake',
          `expected a 32-byte ephemeral key message, got bytes ${Buffer.from(head).toString('hex')}`,
        );
      }
      const remoteEph = await reader.read(32, left(), 'ephemeral key');
      if (isLowOrderPoint(remoteEph))
        throw new SecretConnectionError('low_order_key', 'the peer sent a low-order ephemeral key');
      let dh: Uint8Array;
      try {
        dh = x25519.getSharedSecret(ephSecret, remoteEph);
      } catch (err) {
        throw new SecretConnectionError('low_order_key', 'X25519 refused the peer ephemeral key', {
          cause: err,
        });
      }
      if (dh.every((b) => b === 0))
        throw new SecretConnectionError('low_order_key', 'the shared secret is all zero');

      const localIsLeast = Buffer.compare(Buffer.from(ephPublic), Buffer.from(remoteEph)) < 0;
      const [lo, hi] = localIsLeast ? [ephPublic, remoteEph] : [remoteEph, ephPublic];
      const transcript = new MerlinTranscript(TRANSCRIPT_LABEL);
      transcript.appendMessage('EPHEMERAL_LOWER_PUBLIC_KEY', lo);
      transcript.appendMessage('EPHEMERAL_UPPER_PUBLIC_KEY', hi);
      transcript.appendMessage('DH_SECRET', dh);
      const { recvKey, sendKey } = deriveSecrets(dh, localIsLeast);
      const challenge = transcript.challengeBytes('SECRET_CONNECTION_MAC', 32);

      const conn = new SecretConnection(socket, reader, sendKey, recvKey);
      const signature = localKey.sign(challenge);
      conn.writeDelimited(
        encodeAuthSig(localKey.publicKey, options.tamperAuthSignature?.(signature) ?? signature),
      );
      let auth: { publicKey: Uint8Array; signature: Uint8Array };
      try {
        auth = decodeAuthSig(await conn.readMessage(AUTH_MESSAGE_MAX, left()));
      } catch (err) {
        if (err instanceof ProtoError)
          throw new SecretConnectionError(
            'auth',
            `malformed authentication message: ${err.message}`,
          );
        throw err;
      }
      if (!verifyEd25519(auth.publicKey, challenge, auth.signature))
        throw new SecretConnectionError('auth', 'the peer signature over the challenge is invalid');
      if (
        options.expectedRemoteKey &&
        Buffer.compare(Buffer.from(options.expectedRemoteKey), Buffer.from(auth.publicKey)) !== 0
      ) {
        throw new SecretConnectionError(
          'auth',
          `the peer authenticated as ${Buffer.from(auth.publicKey).toString('hex')}, not the expected key`,
        );
      }
      conn.remotePublicKey = auth.publicKey;
      return conn;
    } catch (err) {
      socket.destroy();
      if (err instanceof SecretConnectionError) throw err;
      throw new SecretConnectionError('handshake', `handshake failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** Encrypts and sends `data` as one or more frames (synchronously, so frames stay in order). */
  write(data: Uint8Array): void {
    if (this.closed) throw new SecretConnectionError('closed', 'the connection is closed');
    const sealed: Uint8Array[] = [];
    for (let off = 0; off < data.length; off += DATA_MAX_SIZE) {
      const chunk = data.subarray(off, Math.min(off + DATA_MAX_SIZE, data.length));
      const frame = new Uint8Array(TOTAL_FRAME_SIZE);
      new DataView(frame.buffer).setUint32(0, chunk.length, true);
      frame.set(chunk, DATA_LEN_SIZE);
      sealed.push(chacha20poly1305(this.sendKey, this.sendNonce.next()).encrypt(frame));
    }
    this.socket.write(Buffer.concat(sealed));
  }

  /** Sends one length-prefixed message. */
  writeDelimited(message: Uint8Array): void {
    const prefix = new ProtoWriter().uvarint(message.length).finish();
    const out = new Uint8Array(prefix.length + message.length);
    out.set(prefix);
    out.set(message, prefix.length);
    this.write(out);
  }

  private async readFrame(timeoutMs: number): Promise<Uint8Array> {
    const sealed = await this.reader.read(SEALED_FRAME_SIZE, timeoutMs, 'frame');
    let frame: Uint8Array;
    try {
      frame = chacha20poly1305(this.recvKey, this.recvNonce.next()).decrypt(sealed);
    } catch (err) {
      throw new SecretConnectionError(
        'frame',
        'a frame failed authentication (corrupted, forged, replayed or out of order)',
        { cause: err },
      );
    }
    const len = new DataView(frame.buffer, frame.byteOffset, 4).getUint32(0, true);
    if (len > DATA_MAX_SIZE)
      throw new SecretConnectionError(
        'frame',
        `frame claims ${len} data bytes (max ${DATA_MAX_SIZE})`,
      );
    return frame.subarray(DATA_LEN_SIZE, DATA_LEN_SIZE + len);
  }

  /**
   * Reads one length-prefixed message of at most `maxBytes`, across as many frames as it spans.
   * Bytes after it stay buffered for the next call.
   */
  async readMessage(maxBytes: number, timeoutMs: number): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let taken;
      try {
        taken = takeDelimited(this.plain, maxBytes);
      } catch (err) {
        throw new SecretConnectionError('too_large', (err as Error).message);
      }
      if (taken) {
        const message = Uint8Array.from(taken.message);
        this.plain = this.plain.subarray(taken.consumed);
        return message;
      }
      const chunk = await this.readFrame(Math.max(1, deadline - Date.now()));
      const next = new Uint8Array(this.plain.length + chunk.length);
      next.set(this.plain);
      next.set(chunk, this.plain.length);
      this.plain = next;
    }
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}
