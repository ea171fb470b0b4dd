/**
 * The view exchange `/vigil/registry/sync/2.0.0` (issue 15, item 4): how two registry nodes
 * bring each other up to date without either re-broadcasting anything on a timer.
 *
 * One stream, three phases, every frame length-prefixed and bounded (`lpStream` has no default
 * limit), each phase ended by an empty frame:
 *
 * 1. the dialer sends its **summary**: `{"have":[["<subject>","<version>"],…]}` frames, one
 *    entry per unexpired record it holds (the caller's version: distribution.ts sends the
 *    validator-set records first, as subjects of their own, and folds a record's attested
 *    epoch into its version so a re-countersigned version counts as newer);
 * 2. the listener sends the **records** the dialer lacks (a subject it does not list, or a
 *    higher seq), then its **wants**: `{"want":["<peer id>",…]}` frames naming the subjects
 *    the dialer listed with a higher seq than the listener's (or that the listener lacks);
 * 3. the dialer sends the wanted records, and both close.
 *
 * So one exchange, started by either side, leaves both with the newer of each record, and
 * what crosses the wire is a summary plus the records that differ — not whole views. Every
 * record received goes through the caller's `accept` (verifyRecord, newer-than-held), like a
 * gossip message; summaries and wants are zod-checked, bounded in entries per frame and in
 * total, and anything else ends the exchange.
 *
 * A side lists its summary from `records()`, or, when it has them, from `versions()` and
 * reads the bodies of only the records it sends through `bytesOf()`: a RegistryView answers
 * those from its version index (view v4) without decoding a record, where `records()` decodes
 * every one (test/registry/sync.test.ts: 10k converged records, p50 4.0 s → 0.3 s an exchange).
 */
import type { Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import { z } from 'zod';
import { InputError } from '../errors.js';
import { LIMITS } from './record.js';

export const SYNC_PROTOCOL = '/vigil/registry/sync/2.0.0';
/** Records (and summary entries) one exchange carries each way, at most. */
export const MAX_SYNC_RECORDS = 100_000;
/** Summary entries or wants per frame: 64 entries of ≤ 80 JSON bytes stay under a frame. */
const ENTRIES_PER_FRAME = 64;
/** A frame is a record (≤ the envelope limit) or a summary/want frame (smaller). */
const MAX_FRAME_BYTES = LIMITS.envelopeBytes;

const peerIdText = z.string().min(1).max(128);
// A version, not only a seq: distribution.ts folds the attested epoch in (seq × 2^32 + epoch).
const seqText = z.string().regex(/^[1-9]\d{0,38}$/);
const SummaryFrame = z
  .object({ have: z.array(z.tuple([peerIdText, seqText])).max(ENTRIES_PER_FRAME) })
  .strict();
const WantFrame = z.object({ want: z.array(peerIdText).max(ENTRIES_PER_FRAME) }).strict();

/** A summary entry: a subject and the version held of it. */
export interface SyncVersion {
  readonly subject: string;
  readonly seq: bigint;
}

/** What an exchange needs from a node: its current records and the gate every record passes. */
export interface SyncSide {
  /** Unexpired records this node holds: subject, seq, encoded record. */
  records(): { subject: string; seq: bigint; bytes: Uint8Array }[];
  /**
   * The summary alone (what `records()` lists, without the bytes), when the side can read it
   * more cheaply than its records — RegistryView.summary() reads an index, not every record
   * body. Given together with `bytesOf`, an exchange calls these and never `records()`: it
   * reads the bytes of only the records it sends.
   */
  versions?(): SyncVersion[];
  /** The bytes of `subjects` held now, in that order (one not held is left out). */
  bytesOf?(subjects: readonly string[]): Uint8Array[];
  /** Verifies and keeps a received record; answers whether it was taken. */
  accept(bytes: Uint8Array): boolean;
}

export interface SyncOutcome {
  /** Records received and taken (newer than what this node held). */
  readonly taken: number;
  /** Records sent to the other side. */
  readonly given: number;
}

type Lp = ReturnType<typeof lpStream<Stream>>;
const END = new Uint8Array(0);
const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

function syncError(message: string): InputError {
  return new InputError(`registry sync: ${message}`, undefined, 'REGISTRY_SYNC');
}

function parseFrame<T>(schema: z.ZodType<T>, frame: Uint8Array, what: string): T {
  try {
    return schema.parse(JSON.parse(new TextDecoder().decode(frame)));
  } catch {
    throw syncError(`a malformed ${what} frame`);
  }
}

async function writeChunks<T>(
  lp: Lp,
  items: readonly T[],
  frame: (chunk: T[]) => unknown,
  signal: AbortSignal,
): Promise<void> {
  for (let i = 0; i < items.length; i += ENTRIES_PER_FRAME)
    await lp.write(json(frame(items.slice(i, i + ENTRIES_PER_FRAME))), { signal });
  await lp.write(END, { signal });
}

/** Reads frames until the empty one, at most `max` of them. */
async function* frames(lp: Lp, max: number, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  for (let i = 0; ; i++) {
    const frame = (await lp.read({ signal })).subarray();
    if (frame.length === 0) return;
    if (i >= max) throw syncError(`more than ${max} frames in one phase`);
    yield frame;
  }
}

async function readSummary(lp: Lp, signal: AbortSignal): Promise<Map<string, bigint>> {
  const have = new Map<string, bigint>();
  for await (const f of frames(lp, Math.ceil(MAX_SYNC_RECORDS / ENTRIES_PER_FRAME), signal))
    for (const [subject, seq] of parseFrame(SummaryFrame, f, 'summary').have)
      have.set(subject, BigInt(seq));
  return have;
}

async function readRecords(lp: Lp, side: SyncSide, signal: AbortSignal): Promise<number> {
  let taken = 0;
  for await (const f of frames(lp, MAX_SYNC_RECORDS, signal)) if (side.accept(f)) taken++;
  return taken;
}

/** A side's summary and, for the subjects picked from it, their bytes. */
function sideReader(side: SyncSide): {
  versions(): SyncVersion[];
  bytesOf(subjects: readonly string[]): Uint8Array[];
} {
  const { versions, bytesOf } = side;
  if (versions && bytesOf)
    return { versions: () => versions.call(side), bytesOf: (s) => bytesOf.call(side, s) };
  return {
    versions: () => side.records(),
    bytesOf: (subjects) => {
      const want = new Set(subjects);
      return side
        .records()
        .filter((r) => want.has(r.subject))
        .map((r) => r.bytes);
    },
  };
}

async function writeRecords(
  lp: Lp,
  list: readonly Uint8Array[],
  signal: AbortSignal,
): Promise<void> {
  for (const bytes of list.slice(0, MAX_SYNC_RECORDS)) await lp.write(bytes, { signal });
  await lp.write(END, { signal });
}

/** The dialer's side of an exchange on `stream`. */
export async function syncAsDialer(
  stream: Stream,
  side: SyncSide,
  signal: AbortSignal,
): Promise<SyncOutcome> {
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
  const reader = sideReader(side);
  const mine = reader.versions().slice(0, MAX_SYNC_RECORDS);
  await writeChunks(
    lp,
    mine,
    (c) => ({ have: c.map((r) => [r.subject, r.seq.toString()]) }),
    signal,
  );
  const taken = await readRecords(lp, side, signal);
  const wanted = new Set<string>();
  for await (const f of frames(lp, Math.ceil(mine.length / ENTRIES_PER_FRAME), signal))
    for (const s of parseFrame(WantFrame, f, 'want').want) wanted.add(s);
  // Read again after taking the listener's records: send what this node holds now.
  const give = reader.bytesOf(mine.map((r) => r.subject).filter((s) => wanted.has(s)));
  await writeRecords(lp, give, signal);
  await stream.close({ signal });
  return { taken, given: give.length };
}

/** The listener's side of an exchange on `stream`. */
export async function syncAsListener(
  stream: Stream,
  side: SyncSide,
  signal: AbortSignal,
): Promise<SyncOutcome> {
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
  const theirs = await readSummary(lp, signal);
  const reader = sideReader(side);
  const mine = reader.versions();
  const held = new Map(mine.map((r) => [r.subject, r.seq]));
  const give = reader.bytesOf(
    mine.filter((r) => (theirs.get(r.subject) ?? 0n) < r.seq).map((r) => r.subject),
  );
  await writeRecords(lp, give, signal);
  const want = [...theirs].filter(([s, seq]) => (held.get(s) ?? 0n) < seq).map(([s]) => s);
  await writeChunks(lp, want, (c) => ({ want: c }), signal);
  const taken = await readRecords(lp, side, signal);
  await stream.close({ signal });
  return { taken, given: give.length };
}
