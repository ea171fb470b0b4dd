/**
 * The agent's `cometbft` configuration section: which chains this agent signs for, with which
 * configured key, and which validator nodes it dials (each node's `priv_validator_laddr`).
 */
import { z } from 'zod';

const NODE_ADDRESS = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

export const CometbftNodeAddressSchema = z
  .string()
  .regex(NODE_ADDRESS, 'expected tcp://host:port (the node’s priv_validator_laddr)')
  .refine((s) => {
    const port = Number(NODE_ADDRESS.exec(s)?.[2] ?? 0);
    return port > 0 && port < 65536;
  }, 'the port must be 1..65535');

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
    });
  });

export type CometbftChainConfig = z.infer<typeof CometbftChainSchema>;
export type CometbftSignerConfig = z.infer<typeof CometbftSignerConfigSchema>;

export function parseNodeAddress(address: string): { host: string; port: number } {
  const m = NODE_ADDRESS.exec(address);
  if (!m) throw new Error(`not a tcp://host:port address: ${address}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}
