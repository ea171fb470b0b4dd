/**
 * The agent's `cometbft` configuration section: which chains this agent signs for, with which
 * configured key, and which validator nodes it dials (each node's `priv_validator_laddr`).
 */
import { z } from 'zod';
import { parseNodeId } from './node-id.js';

/**
 * `tcp://[<node id>@]host:port`. The node id (as tmkms writes validator addresses) pins the
 * SecretConnection key the node must present; without it any process that can listen on
 * host:port is served.
 */
const NODE_ADDRESS = /^tcp:\/\/(?:([^@/]*)@)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

export interface NodeAddress {
  readonly host: string;
  readonly port: number;
  /** Lowercase hex, when the address pins the node's SecretConnection key. */
  readonly nodeId?: string;
}

export const CometbftNodeAddressSchema = z.string().transform((s, ctx) => {
  const m = NODE_ADDRESS.exec(s);
  if (!m) {
    ctx.addIssue({
      code: 'custom',
      message:
        'expected tcp://<node id>@host:port or tcp://host:port (the node’s priv_validator_laddr)',
    });
    return z.NEVER;
  }
  const port = Number(m[3]);
  if (port < 1 || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `the port must be 1..65535, got ${port}` });
    return z.NEVER;
  }
  if (m[1] === undefined) return s;
  const id = parseNodeId(m[1]);
  if ('error' in id) {
    ctx.addIssue({ code: 'custom', message: id.error });
    return z.NEVER;
  }
  return `tcp://${id.id}@${m[2]}:${m[3]}`;
});

export const CometbftChainSchema = z
  .object({
    chainId: z.string().min(1).max(50),
    /** A key id configured in the agent's key ring (or its public key in hex). */
    keyId: z.string().min(1),
    protocol: z.enum(['v0.38', 'v1']).default('v0.38'),
    nodes: z.array(CometbftNodeAddressSchema).min(1),
    /** This agent's Ed25519 SecretConnection key; created (mode 0600) when missing. */
    connectionKeyFile: z.string().min(1),
    timeouts: z
      .object({
        dialMs: z.number().int().positive().default(3000),
        handshakeMs: z.number().int().positive().default(5000),
        /** A node pings every few seconds; silence this long means the link is dead. */
        idleMs: z.number().int().positive().default(15000),
      })
      .strict()
      .prefault({}),
    backoff: z
      .object({
        initialMs: z.number().int().positive().default(100),
        maxMs: z.number().int().positive().default(5000),
        multiplier: z.number().min(1).default(2),
      })
      .strict()
      .prefault({}),
    maxMessageBytes: z
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024)
      .default(10 * 1024),
  })
  .strict();

export const CometbftSignerConfigSchema = z
  .object({
    chains: z.array(CometbftChainSchema).min(1),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const seen = new Set<string>();
    cfg.chains.forEach((c, i) => {
      if (seen.has(c.chainId))
        ctx.addIssue({
          code: 'custom',
          path: ['chains', i, 'chainId'],
          message: `chain ${c.chainId} is configured twice`,
        });
      seen.add(c.chainId);
      // The same listener twice (say once pinned, once not) would be served on two links.
      const endpoints = new Set<string>();
      c.nodes.forEach((node, j) => {
        const { host, port } = parseNodeAddress(node);
        const endpoint = `${host.toLowerCase()}:${port}`;
        if (endpoints.has(endpoint))
          ctx.addIssue({
            code: 'custom',
            path: ['chains', i, 'nodes', j],
            message: `node ${endpoint} is listed twice for chain ${c.chainId}`,
          });
        endpoints.add(endpoint);
      });
    });
  });

export type CometbftChainConfig = z.infer<typeof CometbftChainSchema>;
export type CometbftSignerConfig = z.infer<typeof CometbftSignerConfigSchema>;

/** Splits an address the schema has accepted (and normalised). */
export function parseNodeAddress(address: string): NodeAddress {
  const m = NODE_ADDRESS.exec(address);
  if (!m) throw new Error(`not a tcp://[<node id>@]host:port address: ${address}`);
  const host = m[2]!.replace(/^\[|\]$/g, '');
  const port = Number(m[3]);
  if (m[1] === undefined) return { host, port };
  const id = parseNodeId(m[1]);
  if ('error' in id) throw new Error(`${address}: ${id.error}`);
  return { host, port, nodeId: id.id };
}

/** The pinned form of an address, for messages that tell the operator what to write. */
export function pinnedNodeAddress(address: string, nodeId: string): string {
  const { host, port } = parseNodeAddress(address);
  return `tcp://${nodeId}@${host.includes(':') ? `[${host}]` : host}:${port}`;
}
