/**
 * What importing a signer's state does to the stored watermark, decided without I/O so that
 * `store.update` can run it inside its transaction (and again, if an engine retries).
 */
import { createHash } from 'node:crypto';
import { sameBytes } from '../guard/high-watermark.js';
import { comparePositions, formatPosition, type Position } from '../guard/position.js';
import type { Watermark } from '../guard/watermark.js';
import type { SignState } from './priv-validator-state.js';

export type ImportOutcome =
  /** No watermark existed; the imported one is the start. */
  | 'created'
  /** The imported position is ahead of the stored one. */
  | 'advanced'
  /** The store already holds exactly this (running the import again is harmless). */
  | 'unchanged'
  /** Same position, the store knew no payload there and the file supplies the signed one. */
  | 'enriched'
  /** The store is ahead of (or conflicts with) the file; nothing written. */
  | 'refused'
  /** `--force`: written although it moves the watermark back or replaces what was signed. */
  | 'forced';

export interface ImportPlan {
  readonly outcome: ImportOutcome;
  readonly previous?: Watermark;
  readonly next?: Watermark;
  /** A sentence for the operator: what happened or why not. */
  readonly message: string;
}

export function positionOfState(s: SignState): Position {
  return [s.height, s.round, s.step];
}

export function watermarkFromState(s: SignState, writer: string, nowMs: number): Watermark {
  return {
    family: 'cometbft',
    position: positionOfState(s),
    ...(s.signBytes
      ? {
          signBytes: s.signBytes,
          payloadHash: new Uint8Array(createHash('sha256').update(s.signBytes).digest()),
        }
      : {}),
    ...(s.signature ? { signature: s.signature } : {}),
    writer,
    updatedAtMs: nowMs,
  };
}

export function stateFromWatermark(w: Watermark): SignState {
  const [height, round, step] = w.position;
  if (
    w.family !== 'cometbft' ||
    height === undefined ||
    round === undefined ||
    step === undefined
  ) {
    throw new Error(`not a CometBFT watermark: ${w.family} ${formatPosition(w.position)}`);
  }
  return {
    height,
    round,
    step,
    ...(w.signature ? { signature: w.signature } : {}),
    ...(w.signBytes ? { signBytes: w.signBytes } : {}),
  };
}

function samePayload(a: Watermark, b: Watermark): boolean {
  if (a.payloadHash === undefined && b.payloadHash === undefined) return true;
  return sameBytes(a.payloadHash, b.payloadHash) && sameBytes(a.signature, b.signature);
}

export function planImport(
  current: Watermark | undefined,
  incoming: Watermark,
  force: boolean,
): ImportPlan {
  const to = formatPosition(incoming.position);
  if (current === undefined) {
    return { outcome: 'created', next: incoming, message: `watermark set to ${to}` };
  }
  const from = formatPosition(current.position);
  if (current.family !== incoming.family) {
    return {
      outcome: 'refused',
      previous: current,
      message: `the stored watermark is of family ${current.family}, not ${incoming.family}`,
    };
  }
  const order = comparePositions(incoming.position, current.position);
  if (order > 0) {
    return {
      outcome: 'advanced',
      previous: current,
      next: incoming,
      message: `watermark advanced from ${from} to ${to}`,
    };
  }
  if (order === 0) {
    if (samePayload(current, incoming) || incoming.payloadHash === undefined) {
      return {
        outcome: 'unchanged',
        previous: current,
        message: `the store already holds ${to}${current.payloadHash && !incoming.payloadHash ? ' with its signed payload' : ''}; nothing to do`,
      };
    }
    if (current.payloadHash === undefined) {
      return {
        outcome: 'enriched',
        previous: current,
        next: incoming,
        message: `watermark stays at ${to}; the signed payload and signature from the file were added`,
      };
    }
    if (!force) {
      return {
        outcome: 'refused',
        previous: current,
        message: `the store already holds a different signed payload at ${to}; this file disagrees with what Vigil signed`,
      };
    }
    return {
      outcome: 'forced',
      previous: current,
      next: incoming,
      message: `FORCED: the signed payload stored at ${to} was replaced by the one from the file`,
    };
  }
  if (!force) {
    return {
      outcome: 'refused',
      previous: current,
      message: `the store is already at ${from}, ahead of the file's ${to}; importing would move the watermark backwards`,
    };
  }
  return {
    outcome: 'forced',
    previous: current,
    next: incoming,
    message: `FORCED: watermark moved BACKWARDS from ${from} to ${to}; positions in between can be signed again`,
  };
}
