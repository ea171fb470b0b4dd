/**
 * A CometBFT-like chain in the devnet: one simulated validator node per member, each
 * listening on its `priv_validator_laddr` the way CometBFT does, and each member's agent
 * dialling it through a loopback TCP proxy (so the agent → node link can be cut). Nodes move
 * in lockstep on wall-clock time: height H starts at H × blockMs, prevote a third of a block
 * later, precommit two thirds later, each node reading its own (possibly jumped) clock.
 *
 * All nodes ask for the same votes (differing only in their timestamp, which the guard
 * answers with the stored one), so several nodes legitimately get the same signature. With
 * `conflictingProposals` every node proposes its own block: the guard must sign only one.
 */
import {
  CometbftNodeSimulator,
  type RefusedRecord,
  type SignedRecord,
  type SimulatedStep,
} from './cometbft-node.js';
import type { Timestamp } from '../protocols/cometbft/sign-bytes.js';
import type { CometbftChainSpec } from './devnet-file.js';
import type { DutyNode, TickOutcome } from './duty-network.js';
import type { EvidenceCollector } from './evidence.js';
import { WallClockTicker } from './ticker.js';
import { TcpProxy } from './tcp-proxy.js';

/** Where in its block a step is asked for, as a fraction of the block time. */
const STEP_OFFSET: Record<SimulatedStep, number> = {
  proposal: 0,
  prevote: 1 / 3,
  precommit: 2 / 3,
};

interface HeightSeen {
  precommitSigners: string[];
  proposalBy: string | undefined;
  refused: number;
  answered: Set<string>;
}

export interface CometbftNetworkOptions {
  readonly spec: CometbftChainSpec;
  readonly publicKey: Uint8Array;
  /** One per simulated node; their clocks (skew) are shared with the member's other chains. */
  readonly nodes: readonly DutyNode[];
  readonly evidence: EvidenceCollector;
  readonly onTick: (o: TickOutcome) => void;
}

export class CometbftNetwork {
  readonly chainId: string;
  readonly tickMs: number;
  readonly protocol: CometbftChainSpec['protocol'];
  private readonly ticker: WallClockTicker;
  private stopped = false;
  private releaseStart: (() => void) | undefined;
  private readonly started = new Promise<void>((resolve) => (this.releaseStart = resolve));
  private readonly heights = new Map<bigint, HeightSeen>();
  /** Heights up to this one have been reported; later answers for them count nowhere. */
  private reportedUpTo = 0n;
  /** The first height that begins after `start()`; earlier ones are catch-up, not reported. */
  private firstHeight = 0n;

  private constructor(
    private readonly opts: CometbftNetworkOptions,
    readonly simulators: CometbftNodeSimulator[],
    /** Per node: the proxy its agent dials instead of the node itself. */
    readonly links: TcpProxy[],
  ) {
    this.chainId = opts.spec.chainId;
    this.tickMs = opts.spec.blockMs;
    this.protocol = opts.spec.protocol;
    // At the end of each block, report that block: it is signed once a precommit got signed.
    this.ticker = new WallClockTicker(this.tickMs, (tick) => this.report(tick - 1n));
  }

  /** Starts every node and its link proxy; nodes sign nothing before `start()`. */
  static async create(opts: CometbftNetworkOptions): Promise<CometbftNetwork> {
    const { spec } = opts;
    const simulators: CometbftNodeSimulator[] = [];
    const links: TcpProxy[] = [];
    // The network is created before the simulators so their hooks can reach it.
    const net = new CometbftNetwork(opts, simulators, links);
    // Heights follow wall-clock time, so a devnet restarted on the same store never asks for
    // a height its watermark has already passed.
    const startHeight = BigInt(Math.floor(Date.now() / spec.blockMs)) + 1n;
    try {
      for (const node of opts.nodes) {
        const sim = await CometbftNodeSimulator.start({
          chainId: spec.chainId,
          protocol: spec.protocol,
          validatorPublicKey: opts.publicKey,
          name: node.name,
          startHeight,
          blockTimeMs: 0,
          conflictingProposals: spec.conflictingProposals,
          timestampOf: () => net.timestampOf(node),
          beforeStep: (height, step) => net.gate(node, height, step),
          onRecord: (r) => net.onRecord(r),
          // A paused agent holds the request: give up on that link within the block.
          requestTimeoutMs: Math.max(300, spec.blockMs),
          pingIntervalMs: Math.max(200, Math.min(1000, spec.blockMs)),
          handshakeTimeoutMs: 2000,
        });
        simulators.push(sim);
        const link = new TcpProxy(sim.port);
        links.push(link);
        await link.start();
      }
    } catch (err) {
      await net.stop();
      throw err;
    }
    return net;
  }

  /**
   * The address an agent puts in its config for node `i`: the proxy in front of it, pinned to
   * the node's own SecretConnection key (the proxy only forwards bytes, so the handshake is
   * the node's), so every devnet run exercises pinning.
   */
  nodeAddress(i: number): string {
    return `tcp://${this.simulators[i]!.nodeId}@127.0.0.1:${this.links[i]!.port}`;
  }

  start(): void {
    this.firstHeight = BigInt(Math.floor(Date.now() / this.tickMs)) + 1n;
    this.releaseStart?.();
    this.ticker.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ticker.stop();
    this.releaseStart?.();
    await Promise.all(this.simulators.map((s) => s.stop()));
    await Promise.all(this.links.map((l) => l.stop()));
  }

  private nowOf(node: DutyNode): number {
    return Date.now() + Number(node.clockSkewTicks ?? 0n) * this.tickMs;
  }

  private timestampOf(node: DutyNode): Timestamp {
    const ms = this.nowOf(node);
    return { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
  }

  /** Holds a node until its own clock reaches the step's time in the block. */
  private async gate(node: DutyNode, height: bigint, step: SimulatedStep): Promise<void> {
    await this.started;
    const due = Number(height) * this.tickMs + Math.round(STEP_OFFSET[step] * this.tickMs);
    // Polled in short sleeps: the node's clock may jump while it waits.
    while (!this.stopped) {
      const wait = due - this.nowOf(node);
      if (wait <= 0) return;
      await new Promise((r) => setTimeout(r, Math.min(wait, 100)));
    }
  }

  private onRecord(r: SignedRecord | RefusedRecord): void {
    if ('signature' in r) {
      this.opts.evidence.record({
        chainId: this.chainId,
        protocol: 'cometbft',
        publicKey: this.opts.publicKey,
        payload: r.signBytes,
        signature: r.signature,
        node: r.node,
      });
    }
    if (r.height <= this.reportedUpTo) return;
    let seen = this.heights.get(r.height);
    if (!seen) {
      seen = { precommitSigners: [], proposalBy: undefined, refused: 0, answered: new Set() };
      this.heights.set(r.height, seen);
    }
    seen.answered.add(r.node);
    if (!('signature' in r)) seen.refused++;
    else if (r.step === 'precommit') seen.precommitSigners.push(r.node);
    else if (r.step === 'proposal') seen.proposalBy ??= r.node;
  }

  private report(height: bigint): void {
    if (height < this.firstHeight) return;
    const seen = this.heights.get(height);
    for (const h of this.heights.keys()) if (h <= height) this.heights.delete(h);
    this.reportedUpTo = height;
    const signers = seen?.precommitSigners ?? [];
    const author = signers[0];
    this.opts.onTick({
      chainId: this.chainId,
      tick: height,
      label: `height ${height}`,
      ...(author !== undefined ? { author } : {}),
      signers,
      ...(seen?.proposalBy !== undefined ? { proposer: seen.proposalBy } : {}),
      refused: seen?.refused ?? 0,
      unreachable: this.opts.nodes.filter((n) => !seen?.answered.has(n.name)).length,
    });
  }
}
