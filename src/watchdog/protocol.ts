/**
 * The agent ↔ watchdog protocol: one JSON object per line over the watchdog's unix socket.
 *
 * Deadlines are ABSOLUTE instants on CLOCK_MONOTONIC in nanoseconds (process.hrtime.bigint(),
 * the same clock in every process of one Linux host), sent as decimal strings. A relative
 * duration would be stretched by however long the message sat in a buffer or in a frozen
 * sender; an absolute instant cannot be.
 *
 *   agent → watchdog   activate {id, token, deactivateAt, deadline}   reply: activated | refused
 *                      renew    {token, deactivateAt, deadline}       no reply (deadlines only grow)
 *                      deactivate {id, token}                         reply: deactivated
 *   watchdog → agent   stopped {token, confirmed, reason}             unsolicited: the watchdog
 *                                                                     deactivated on its own
 *
 * `deactivateAt` is when the watchdog starts the role's deactivation (the agent's lease
 * deadline minus its deactivation budget); `deadline` is the lease deadline itself, by which
 * the node must be stopped: past it the watchdog no longer waits for a graceful stop.
 */
import { z } from 'zod';

const decimal = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,30})$/, 'a non-negative decimal integer')
  .transform((s) => BigInt(s));

const id = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

const Deadlines = {
  token: decimal,
  deactivateAt: decimal,
  deadline: decimal,
};

export const AgentMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('activate'), id, ...Deadlines }).strict(),
  z.object({ type: z.literal('renew'), ...Deadlines }).strict(),
  z.object({ type: z.literal('deactivate'), id, token: decimal }).strict(),
]);
export type AgentMessage = z.output<typeof AgentMessageSchema>;

export const WatchdogMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('activated'), id, token: decimal }).strict(),
  z.object({ type: z.literal('refused'), id, reason: z.string().max(2000) }).strict(),
  z
    .object({
      type: z.literal('deactivated'),
      id,
      token: decimal,
      confirmed: z.boolean(),
      detail: z.string().max(2000),
    })
    .strict(),
  z
    .object({
      type: z.literal('stopped'),
      token: decimal,
      confirmed: z.boolean(),
      reason: z.string().max(2000),
    })
    .strict(),
]);
export type WatchdogMessage = z.output<typeof WatchdogMessageSchema>;

/** One line, bigints as decimal strings. */
export function encodeMessage(m: AgentMessage | WatchdogMessage): string {
  return JSON.stringify(m, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n';
}

/** Longest accepted line: every message is well under 1 KiB. */
export const MAX_LINE = 4096;

export class ProtocolError extends Error {}

function decodeWith<S extends z.ZodType>(schema: S, line: string): z.output<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new ProtocolError(`not JSON: ${line.slice(0, 80)}`);
  }
  const r = schema.safeParse(raw);
  if (!r.success) throw new ProtocolError(`bad message: ${r.error.issues[0]?.message ?? ''}`);
  return r.data as z.output<S>;
}

export const decodeAgentMessage = (line: string): AgentMessage =>
  decodeWith(AgentMessageSchema, line);
export const decodeWatchdogMessage = (line: string): WatchdogMessage =>
  decodeWith(WatchdogMessageSchema, line);

/** Splits a byte stream into lines; refuses a line longer than MAX_LINE. */
export class LineSplitter {
  private buffered = '';
  push(chunk: string): string[] {
    this.buffered += chunk;
    const lines = this.buffered.split('\n');
    this.buffered = lines.pop()!;
    if (this.buffered.length > MAX_LINE) throw new ProtocolError('line too long');
    return lines.filter((l) => l.length > 0);
  }
}
