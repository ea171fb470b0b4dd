/** The simulated chain unit's process config and status file (see sim-unit-main.ts). */
import { z } from 'zod';

export interface SimUnitStatus {
  readonly name: string;
  readonly unit: string;
  readonly pid: number;
  readonly listening: readonly string[];
  readonly peersConnected: readonly string[];
  readonly inbound: number;
}

/**
 * What a simulated producer does at each slot (sim-unit-main.ts):
 * - `substrate-author`: a Polkadot validator node started by the Vigil watchdog; before each
 *   slot it asks its agent (GET /v1/roles on the agent's socket) whether this host holds the
 *   role, and authors the slot's block only when it does (a refusal is recorded otherwise);
 * - `cardano-forger`: a Cardano producer; it forges while its forging credentials are in place,
 *   read at start (unless started non-producing) and again on every SIGHUP, as cardano-node does;
 * - `decred-voter`: a Decred voting wallet; it votes each slot's ticket with its vote choices.
 */
export const ProducerConfigSchema = z.strictObject({
  kind: z.enum(['substrate-author', 'cardano-forger', 'decred-voter']),
  /** The chain's name in the plan, as evidence names it. */
  chain: z.string().min(1),
  /** Who produces, as the chain knows it (see ProducedLine.key). */
  key: z.string().min(1),
  /** Milliseconds per slot (ticket): slot N starts at N × slotMs on the wall clock. */
  slotMs: z.number().int().min(1),
  evidenceFile: z.string().min(1),
  /** substrate-author: the agent's socket and the role it supervises. */
  agentSocket: z.string().min(1).optional(),
  role: z.string().min(1).optional(),
  /** cardano-forger: the forging credential files (host paths): forging needs them all. */
  forgingKeys: z.array(z.string().min(1)).optional(),
  /**
   * cardano-forger: its local socket (host path), opened once it has started up, after its
   * SIGHUP handler is installed, as cardano-node does (before that a SIGHUP ends it).
   */
  socketPath: z.string().min(1).optional(),
  /** cardano-forger: started with the non-producing flag (forges only after a SIGHUP). */
  startsNonProducing: z.boolean().optional(),
  /** decred-voter: the vote choices it applies, as rendered (`agenda=choice`, sorted). */
  voteChoices: z.string().optional(),
});
export type ProducerConfig = z.input<typeof ProducerConfigSchema>;

/**
 * One line of a simulated producer's evidence file (`<unit>.evidence.jsonl`): a block it
 * authored or forged, a vote it cast, or a duty it was refused. The one schema for what
 * Polkadot, Cardano and Decred producers write and `vigil chaos --local` reads.
 */
export const ProducedLineSchema = z.strictObject({
  /** This machine's wall clock in ms when it was produced. */
  at: z.number(),
  /** Host name. */
  node: z.string().min(1),
  unit: z.string().min(1),
  chain: z.string().min(1),
  /** The key the chain knows the producer by: the same on every host that serves it. */
  key: z.string().min(1),
  duty: z.enum(['block', 'vote']),
  /** Slot (a block) or ticket (a vote), as a decimal string. */
  slot: z.string().regex(/^\d+$/),
  /** sha256 (hex) of what was produced: two different ones at one slot are an equivocation. */
  produced: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  /** Set instead of `produced` when the duty was refused (e.g. the agent does not hold the role). */
  refused: z.string().optional(),
});
export type ProducedLine = z.infer<typeof ProducedLineSchema>;

export const SimUnitProcessConfigSchema = z.strictObject({
  name: z.string().min(1),
  unit: z.string().min(1),
  statusFile: z.string().min(1),
  listeners: z.array(
    z.strictObject({
      purpose: z.string(),
      bind: z.string().min(1),
      port: z.number().int().min(1).max(65535),
      http: z.boolean().optional(),
    }),
  ),
  peers: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/)),
  /** Set for a unit that produces blocks or votes (see ProducerConfigSchema). */
  producer: ProducerConfigSchema.optional(),
});
export type SimUnitProcessConfig = z.input<typeof SimUnitProcessConfigSchema>;
