/** The simulated node process's config file and status file (see node-main.ts). */
import { z } from 'zod';

export const NodeProcessConfigSchema = z.strictObject({
  name: z.string().min(1),
  chainId: z.string().min(1),
  configToml: z.string().min(1),
  statusFile: z.string().min(1),
  validatorPublicKeyHex: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  blockTimeMs: z.number().int().min(0).default(200),
  /**
   * Where every answer the node gets from a signer is appended (JSON lines, see
   * EvidenceLine): what `vigil chaos --local` counts signatures and equivocations from.
   */
  evidenceFile: z.string().min(1).optional(),
  /**
   * The node's rendered app.toml (a Cosmos SDK chain): where its REST API listens, which
   * serves the app's telemetry the monitor scrapes (`cosmos-sdk` job).
   */
  appToml: z.string().min(1).optional(),
});
export type NodeProcessConfig = z.input<typeof NodeProcessConfigSchema>;

export const RenderedNodeConfigSchema = z.object({
  priv_validator_laddr: z.string().optional(),
  p2p: z.object({ laddr: z.string(), persistent_peers: z.string().default('') }),
  instrumentation: z
    .object({ prometheus_listen_addr: z.string().default('') })
    .default({ prometheus_listen_addr: '' }),
});

/** The part of a rendered app.toml the simulated node serves: the API and its telemetry. */
export const RenderedAppConfigSchema = z.object({
  telemetry: z.object({ enabled: z.boolean() }),
  api: z.object({ enable: z.boolean(), address: z.string().regex(/^tcp:\/\/.+:\d+$/) }),
});

export interface NodeStatus {
  readonly name: string;
  readonly privval: boolean;
  readonly completedHeight: string;
  readonly signed: number;
  readonly verified: number;
  readonly refused: number;
  readonly connectedSigners: number;
  /** Persistent peers (host:port) this node has an open p2p connection to. */
  readonly peersConnected: readonly string[];
  readonly inboundPeers: number;
}

/**
 * One answer a simulated validator node got, as it saw it: the bytes it had signed (hex),
 * the signature and the key the chain knows the validator by (from the node's config, not
 * from the signer). `at` is this machine's wall clock in ms when the answer arrived.
 */
export interface EvidenceLine {
  readonly at: number;
  readonly node: string;
  readonly chainId: string;
  readonly publicKey: string;
  readonly step: 'proposal' | 'prevote' | 'precommit';
  readonly height: string;
  readonly round: string;
  /** Set for a signature. */
  readonly signBytes?: string;
  readonly signature?: string;
  /** Set for a refusal: the signer's error message. */
  readonly refused?: string;
}

/** `tcp://host:port` or `host:port` → [host, port]. */
export function hostPort(addr: string): [string, number] {
  const bare = addr.replace(/^tcp:\/\//, '').replace(/^[0-9a-f]+@/, '');
  const i = bare.lastIndexOf(':');
  return [bare.slice(0, i), Number(bare.slice(i + 1))];
}
