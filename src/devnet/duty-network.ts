/**
 * A simulated Substrate chain that drives one duty through the agents' real API, in the real
 * formats: an unsealed header with a BABE pre-runtime digest for a slot, the SCALE
 * (message, round, set_id) payload for a GRANDPA vote. One validator key, several nodes: at
 * every tick each node builds its own message and asks its agent to sign it. Messages from
 * different nodes differ, so the guard must let exactly one through per position; a tick where
 * no node got a signature is missed.
 */
import { createHash } from 'node:crypto';
import type { AgentClient } from '../agent/client.js';
import { encodeGrandpaSignPayload } from '../protocols/substrate/grandpa.js';
import { encodeBabePreDigest, encodeHeader, headerHash } from '../protocols/substrate/header.js';
import type { EvidenceCollector, EvidenceProtocol } from './evidence.js';
import { WallClockTicker } from './ticker.js';

export interface DutyNode {
  readonly name: string;
  /** The client for the node's link to its agent; undefined while it has none. */
  agent: AgentClient | undefined;
  /** A node whose clock is off works on the wrong tick: this many ahead (or behind). */
  clockSkewTicks?: bigint;
}

/** What a node builds a message on: the last block it saw. */
export interface ChainView {
  readonly parentHash: Uint8Array;
  readonly number: bigint;
}

/** Where a tick sits in a family's order, as the API takes it and as evidence names it. */
export interface DutyPosition {
  readonly family: 'slot' | 'grandpa';
  readonly protocol: Extract<EvidenceProtocol, 'babe' | 'grandpa'>;
  /** Sent as the request's claimed position: the agent checks it against the bytes. */
  readonly position: Record<string, string>;
  readonly label: string;
  /** The message `node` builds for this duty on `view`: nodes never build the same one. */
  build(view: ChainView, node: string): Uint8Array;
  /** The view after `signed` (a message `build` made) was signed. */
  next(view: ChainView, signed: Uint8Array): ChainView;
}

/** Ticks follow wall-clock time, so a restarted devnet never reuses a position. */
export type DutySchedule = (tick: bigint) => DutyPosition;

const digest = (text: string) => new Uint8Array(createHash('sha256').update(text).digest());

export const slotSchedule: DutySchedule = (tick) => ({
  family: 'slot',
  protocol: 'babe',
  position: { slot: String(tick) },
  label: `slot ${tick}`,
  build: (view, node) =>
    encodeHeader({
      parentHash: view.parentHash,
      number: view.number + 1n,
      // Each node's block holds its own extrinsics: two nodes' headers always differ.
      stateRoot: digest(`state|${node}|${tick}`),
      extrinsicsRoot: digest(`extrinsics|${node}|${tick}`),
      digest: [
        {
          kind: 'preRuntime',
          engine: 'BABE',
          data: encodeBabePreDigest({ type: 'secondaryPlain', authorityIndex: 0, slot: tick }),
        },
      ],
    }),
  // The sealed header is the new best block.
  next: (view, signed) => ({ parentHash: headerHash(signed), number: view.number + 1n }),
});

/** Two ticks a round (prevote, precommit); the authority set changes every `roundsPerSet` rounds. */
export function grandpaSchedule(roundsPerSet: number): DutySchedule {
  const perSet = BigInt(roundsPerSet) * 2n;
  return (tick) => {
    const setId = tick / perSet;
    const round = (tick % perSet) / 2n + 1n;
    const stage = tick % 2n === 0n ? 'prevote' : 'precommit';
    return {
      family: 'grandpa',
      protocol: 'grandpa',
      position: { setId: String(setId), round: String(round), stage },
      label: `set ${setId} round ${round} ${stage}`,
      // Each node votes for the block it sees, which names the node: votes from two nodes differ.
      build: (view, node) =>
        encodeGrandpaSignPayload({
          stage,
          targetHash: digest(`${Buffer.from(view.parentHash).toString('hex')}|${node}`),
          targetNumber: view.number,
          round,
          setId,
        }),
      // A vote is not a block (decoding it as a header fails, or worse, succeeds by chance):
      // the next votes target a block that follows from it.
      next: (view, signed) => ({
        parentHash: digest(Buffer.from(signed).toString('hex')),
        number: view.number + 1n,
      }),
    };
  };
}

export interface TickOutcome {
  readonly chainId: string;
  readonly tick: bigint;
  readonly label: string;
  /** The node whose message was signed, if any. */
  readonly author?: string;
  /** CometBFT: every node that got the (identical) precommit signed. */
  readonly signers?: readonly string[];
  /** CometBFT: the node whose proposal was signed. */
  readonly proposer?: string;
  readonly refused: number;
  readonly unreachable: number;
}

interface SignReply {
  signature?: string;
}

export class DutyNetwork {
  private readonly ticker: WallClockTicker;
  private view: ChainView = { parentHash: digest('genesis'), number: 0n };
  /** Who got each not yet reported position signed (the first one, if several did). */
  private readonly signedAt = new Map<bigint, string>();

  constructor(
    readonly chainId: string,
    readonly tickMs: number,
    private readonly schedule: DutySchedule,
    readonly keyId: string,
    readonly publicKey: Uint8Array,
    readonly nodes: DutyNode[],
    private readonly evidence: EvidenceCollector,
    private readonly onTick: (o: TickOutcome) => void,
  ) {
    this.ticker = new WallClockTicker(tickMs, (tick) => void this.runTick(tick));
  }

  start(): void {
    this.ticker.start();
  }

  stop(): void {
    this.ticker.stop();
  }

  private async runTick(tick: bigint): Promise<void> {
    const attempts = await Promise.all(this.nodes.map((node) => this.attempt(node, tick)));
    const signed = attempts.find((a) => a.signed);
    if (signed) this.view = this.schedule(tick).next(this.view, signed.payload);
    // A position counts as signed whoever signed it and when: a node whose clock ran ahead
    // may have filled it ticks ago (the chain holds such a block until its slot). A
    // signature for another position does not fill this one.
    const author = this.signedAt.get(tick);
    for (const t of this.signedAt.keys()) if (t <= tick) this.signedAt.delete(t);
    const outcome: TickOutcome = {
      chainId: this.chainId,
      tick,
      label: this.schedule(tick).label,
      ...(author !== undefined ? { author } : {}),
      refused: attempts.filter((a) => a.refused).length,
      unreachable: attempts.filter((a) => a.unreachable).length,
    };
    this.onTick(outcome);
  }

  private async attempt(node: DutyNode, chainTick: bigint) {
    const ownTick = chainTick + (node.clockSkewTicks ?? 0n);
    const duty = this.schedule(ownTick);
    // Each node builds on what it saw, and names itself: two nodes never build the same message.
    const payload = Buffer.from(duty.build(this.view, node.name));
    const result = { node: node.name, payload, signed: false, refused: false, unreachable: false };
    if (node.agent === undefined) return { ...result, unreachable: true };
    try {
      const res = await node.agent.post<SignReply>(
        '/v1/sign',
        {
          family: duty.family,
          chainId: this.chainId,
          keyId: this.keyId,
          position: duty.position,
          payload: payload.toString('hex'),
        },
        Math.max(100, this.tickMs / 2),
      );
      const reply = res.body;
      if (res.status === 200 && reply.signature) {
        this.evidence.record({
          chainId: this.chainId,
          protocol: duty.protocol,
          publicKey: this.publicKey,
          payload,
          signature: Buffer.from(reply.signature, 'hex'),
          node: node.name,
        });
        if (!this.signedAt.has(ownTick)) this.signedAt.set(ownTick, node.name);
        return { ...result, signed: true };
      }
      return { ...result, refused: true };
    } catch {
      // Down, or too slow for this tick: either way the node cannot sign it.
      return { ...result, unreachable: true };
    }
  }
}
