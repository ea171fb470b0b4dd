/**
 * A simulated slot-based chain (BABE/Aura/Cardano-like). One validator key, several nodes:
 * at every slot each node builds its own block and asks its agent to sign it. Blocks from
 * different nodes differ, so the guard must let exactly one through per slot; a slot where no
 * node got a signature is missed.
 */
import { createHash } from 'node:crypto';
import type { EvidenceCollector } from './evidence.js';

export interface SlotNode {
  readonly name: string;
  /** The node's agent; undefined while it is down. */
  agentUrl: string | undefined;
  /** A node whose clock is off authors the wrong slot: this many slots ahead (or behind). */
  clockSkewSlots?: bigint;
}

export interface SlotOutcome {
  readonly chainId: string;
  readonly slot: bigint;
  /** The node whose block was signed, if any. */
  readonly author?: string;
  readonly refused: number;
  readonly unreachable: number;
}

interface SignReply {
  decision?: string;
  signature?: string;
  reason?: string;
}

export class SlotNetwork {
  private timer: NodeJS.Timeout | undefined;
  private parent = createHash('sha256').update('genesis').digest('hex');
  private running = false;
  readonly outcomes: SlotOutcome[] = [];

  constructor(
    readonly chainId: string,
    readonly slotMs: number,
    readonly keyId: string,
    readonly publicKey: Uint8Array,
    readonly nodes: SlotNode[],
    private readonly evidence: EvidenceCollector,
    private readonly onSlot: (o: SlotOutcome) => void,
  ) {}

  start(): void {
    this.running = true;
    this.schedule();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
  }

  /** Slots follow wall-clock time, so a restarted devnet never reuses a slot. */
  private schedule(): void {
    if (!this.running) return;
    const now = Date.now();
    const next = (Math.floor(now / this.slotMs) + 1) * this.slotMs;
    this.timer = setTimeout(() => {
      void this.runSlot(BigInt(Math.floor(next / this.slotMs)));
      this.schedule();
    }, next - now);
  }

  private async runSlot(slot: bigint): Promise<void> {
    const attempts = await Promise.all(this.nodes.map((node) => this.author(node, slot)));
    const signed = attempts.find((a) => a.signed);
    if (signed) this.parent = createHash('sha256').update(signed.payload).digest('hex');
    const outcome: SlotOutcome = {
      chainId: this.chainId,
      slot,
      ...(signed ? { author: signed.node } : {}),
      refused: attempts.filter((a) => a.refused).length,
      unreachable: attempts.filter((a) => a.unreachable).length,
    };
    this.outcomes.push(outcome);
    this.onSlot(outcome);
  }

  private async author(node: SlotNode, chainSlot: bigint) {
    const slot = chainSlot + (node.clockSkewSlots ?? 0n);
    const payload = Buffer.from(
      `${this.chainId}|slot=${slot}|parent=${this.parent}|author=${node.name}`,
    );
    const result = { node: node.name, payload, signed: false, refused: false, unreachable: false };
    if (node.agentUrl === undefined) return { ...result, unreachable: true };
    try {
      const res = await fetch(`${node.agentUrl}/v1/sign`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          family: 'slot',
          chainId: this.chainId,
          keyId: this.keyId,
          position: { slot: String(slot) },
          payload: payload.toString('hex'),
        }),
        signal: AbortSignal.timeout(Math.max(100, this.slotMs / 2)),
      });
      const reply = (await res.json()) as SignReply;
      if (res.ok && reply.signature) {
        this.evidence.record({
          chainId: this.chainId,
          publicKey: this.publicKey,
          position: `slot ${slot}`,
          payload,
          signature: Buffer.from(reply.signature, 'hex'),
          node: node.name,
        });
        return { ...result, signed: true };
      }
      return { ...result, refused: true };
    } catch {
      // Down, or too slow for this slot: either way the node cannot author it.
      return { ...result, unreachable: true };
    }
  }
}
