/**
 * Sees every signature any simulated node receives and reports what the chain would punish:
 * one key signing two different payloads at one position (double authoring, double vote).
 */
import { createHash } from 'node:crypto';
import { verifyEd25519 } from '../keys/ed25519.js';

export interface SignedMessage {
  readonly chainId: string;
  readonly publicKey: Uint8Array;
  /** e.g. "slot 42" or "height 7 round 0 prevote". */
  readonly position: string;
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

export class EvidenceCollector {
  private readonly seen = new Map<string, { payloadHash: string; node: string }>();
  readonly equivocations: Equivocation[] = [];
  readonly invalidSignatures: SignedMessage[] = [];
  signatures = 0;
  private readonly perChain = new Map<string, number>();

  signaturesOf(chainId: string): number {
    return this.perChain.get(chainId) ?? 0;
  }

  record(m: SignedMessage): void {
    this.signatures++;
    this.perChain.set(m.chainId, this.signaturesOf(m.chainId) + 1);
    if (!verifyEd25519(m.publicKey, m.payload, m.signature)) this.invalidSignatures.push(m);
    const key = `${m.chainId}\0${Buffer.from(m.publicKey).toString('hex')}\0${m.position}`;
    const payloadHash = createHash('sha256').update(m.payload).digest('hex');
    const earlier = this.seen.get(key);
    if (earlier === undefined) this.seen.set(key, { payloadHash, node: m.node });
    else if (earlier.payloadHash !== payloadHash) {
      this.equivocations.push({
        chainId: m.chainId,
        publicKey: Buffer.from(m.publicKey).toString('hex'),
        position: m.position,
        nodes: [earlier.node, m.node],
      });
    }
  }
}
