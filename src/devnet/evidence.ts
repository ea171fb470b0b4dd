/**
 * Sees every signature any simulated node receives and reports what the chain would punish:
 * one key signing two different messages at one position (double authoring, double vote).
 * Like a real chain, it reads the position from the signed message itself and checks the
 * signature with the protocol's scheme; it never trusts a label the node attached.
 */
import { createHash } from 'node:crypto';
import { verifyEd25519 } from '../keys/ed25519.js';
import { verifySr25519 } from '../keys/sr25519.js';
import { SignedMsgType, parseSignBytes } from '../protocols/cometbft/sign-bytes.js';
import { decodeGrandpaSignPayload } from '../protocols/substrate/grandpa.js';
import { decodeHeader, headerHash, slotOfUnsealedHeader } from '../protocols/substrate/header.js';

/** The devnet's signing protocols: what was signed and how to read it. */
export type EvidenceProtocol = 'cometbft' | 'grandpa' | 'babe';

export interface SignedMessage {
  readonly chainId: string;
  readonly protocol: EvidenceProtocol;
  readonly publicKey: Uint8Array;
  /** What the node asked to have signed: sign bytes, a GRANDPA vote payload, an unsealed header. */
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
  readonly node: string;
}

export interface Equivocation {
  readonly chainId: string;
  readonly publicKey: string;
  readonly position: string;
  readonly nodes: readonly string[];
}

/** The position a message is at, read from its bytes, and the bytes the key signed. */
function readMessage(m: SignedMessage): { position: string; signed: Uint8Array } {
  switch (m.protocol) {
    case 'cometbft': {
      const p = parseSignBytes(m.payload);
      const step =
        Object.entries(SignedMsgType)
          .find(([, code]) => code === p.type)?.[0]
          .toLowerCase() ?? `type ${p.type}`;
      return { position: `height ${p.height} round ${p.round} ${step}`, signed: m.payload };
    }
    case 'grandpa': {
      const v = decodeGrandpaSignPayload(m.payload);
      return { position: `set ${v.setId} round ${v.round} ${v.stage}`, signed: m.payload };
    }
    case 'babe':
      return {
        position: `slot ${slotOfUnsealedHeader(decodeHeader(m.payload), 'babe')}`,
        signed: headerHash(m.payload),
      };
  }
}

export class EvidenceCollector {
  private readonly seen = new Map<string, { payloadHash: string; node: string }>();
  readonly equivocations: Equivocation[] = [];
  /** Signatures that do not verify, or over bytes that are no message of their protocol. */
  readonly invalidSignatures: SignedMessage[] = [];
  signatures = 0;
  private readonly perChain = new Map<string, number>();

  signaturesOf(chainId: string): number {
    return this.perChain.get(chainId) ?? 0;
  }

  record(m: SignedMessage): void {
    this.signatures++;
    this.perChain.set(m.chainId, this.signaturesOf(m.chainId) + 1);
    let read: { position: string; signed: Uint8Array };
    try {
      read = readMessage(m);
    } catch {
      this.invalidSignatures.push(m);
      return;
    }
    const valid =
      m.protocol === 'babe'
        ? verifySr25519(m.publicKey, read.signed, m.signature)
        : verifyEd25519(m.publicKey, read.signed, m.signature);
    if (!valid) this.invalidSignatures.push(m);
    const key = `${m.chainId}\0${Buffer.from(m.publicKey).toString('hex')}\0${read.position}`;
    const payloadHash = createHash('sha256').update(m.payload).digest('hex');
    const earlier = this.seen.get(key);
    if (earlier === undefined) this.seen.set(key, { payloadHash, node: m.node });
    else if (earlier.payloadHash !== payloadHash) {
      this.equivocations.push({
        chainId: m.chainId,
        publicKey: Buffer.from(m.publicKey).toString('hex'),
        position: read.position,
        nodes: [earlier.node, m.node],
      });
    }
  }
}
