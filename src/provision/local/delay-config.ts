/** The delaying relay's config file and ready file (see delay-relay-main.ts and delay.ts). */
import { z } from 'zod';

const Endpoint = z.strictObject({
  address: z.ipv4(),
  port: z.number().int().min(1).max(65535),
});

export const RelayConfigSchema = z.strictObject({
  /** The internet namespace's bridge address, where both hosts reach the relay. */
  bindAddress: z.ipv4(),
  /** Host A's real WireGuard endpoint (public address, listen port), and B's. */
  a: Endpoint,
  b: Endpoint,
  /** Added to each datagram, each way: half the link's round trip. */
  oneWayMs: z.number().min(0).max(30_000),
  /** Datagrams held per direction before the newest is dropped. */
  maxQueue: z.number().int().min(1).default(50_000),
  readyFile: z.string().min(1),
});
export type RelayConfig = z.input<typeof RelayConfigSchema>;

export const RelayReadySchema = z.strictObject({
  pid: z.number().int().positive(),
  /** The port host A's endpoint for B points at (and B's for A). */
  portForA: z.number().int().min(1).max(65535),
  portForB: z.number().int().min(1).max(65535),
});
export type RelayReady = z.infer<typeof RelayReadySchema>;
