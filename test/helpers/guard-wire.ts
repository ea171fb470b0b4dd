/**
 * The JSON form of guard requests and results exchanged with test/helpers/guard-driver.ts:
 * numbers as decimal strings, bytes as hex. A slot or GRANDPA sign request names its position
 * and a content tag; the driver builds the real message (an unsealed BABE header, a GRANDPA
 * vote payload) from them, so the guard reads the position back out of real bytes.
 */
import type { Timestamp } from '../../src/protocols/cometbft/sign-bytes.js';
import type {
  AuthorizationRequest,
  GuardResult,
  SignRequest,
} from '../../src/signer/guarded-signer.js';
import { babeHeader, grandpaVote } from './guard-fixtures.js';

export type WireRequest =
  | {
      op: 'sign';
      family: 'slot';
      chainId: string;
      keyId: string;
      slot: string;
      /** Content tag of the header: two tags at one slot are two different blocks. */
      payload: string;
    }
  | {
      op: 'sign';
      family: 'grandpa';
      chainId: string;
      keyId: string;
      setId: string;
      round: string;
      stage: 'propose' | 'prevote' | 'precommit';
      /** Content tag of the vote's target block. */
      payload: string;
    }
  | {
      op: 'sign';
      family: 'cometbft';
      chainId: string;
      keyId: string;
      height: string;
      round: string;
      step: 'proposal' | 'prevote' | 'precommit';
      signBytes: string;
      extension?: string;
    }
  | {
      op: 'authorize';
      family: 'slot';
      chainId: string;
      keyId: string;
      slot: string;
      nodeId: string;
    }
  | {
      op: 'authorize';
      family: 'grandpa';
      chainId: string;
      keyId: string;
      setId: string;
      round: string;
      stage: 'propose' | 'prevote' | 'precommit';
      nodeId: string;
    };

export interface WireResult {
  /** Index of the request in the client's list. */
  i: number;
  outcome: GuardResult['outcome'];
  reason?: string;
  signature?: string;
  timestamp?: { seconds: string; nanos: number };
  /** The stored position after the decision, when the result carries one. */
  watermark?: string[];
}

const bytes = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export function fromWire(
  r: WireRequest,
): { op: 'sign'; req: SignRequest } | { op: 'authorize'; req: AuthorizationRequest } {
  const common = { chainId: r.chainId, keyId: r.keyId };
  if (r.op === 'authorize') {
    return r.family === 'slot'
      ? {
          op: 'authorize',
          req: { ...common, family: 'slot', slot: BigInt(r.slot), nodeId: r.nodeId },
        }
      : {
          op: 'authorize',
          req: {
            ...common,
            family: 'grandpa',
            setId: BigInt(r.setId),
            round: BigInt(r.round),
            stage: r.stage,
            nodeId: r.nodeId,
          },
        };
  }
  switch (r.family) {
    case 'slot':
      return {
        op: 'sign',
        req: {
          ...common,
          payload: babeHeader(BigInt(r.slot), r.payload),
          claims: { family: 'slot' },
        },
      };
    case 'grandpa':
      return {
        op: 'sign',
        req: {
          ...common,
          payload: grandpaVote(BigInt(r.setId), BigInt(r.round), r.stage, r.payload),
          claims: { family: 'grandpa' },
        },
      };
    case 'cometbft':
      return {
        op: 'sign',
        req: {
          ...common,
          payload: bytes(r.signBytes),
          claims: { family: 'cometbft' },
          ...(r.extension !== undefined ? { extension: bytes(r.extension) } : {}),
        },
      };
  }
}

export function toWire(i: number, result: GuardResult): WireResult {
  const out: WireResult = { i, outcome: result.outcome };
  if (result.outcome === 'refused') out.reason = result.reason;
  else {
    if (result.signature) out.signature = hex(result.signature);
    if (result.timestamp) out.timestamp = wireTimestamp(result.timestamp);
  }
  if (result.watermark) out.watermark = result.watermark.position.map(String);
  return out;
}

function wireTimestamp(t: Timestamp): { seconds: string; nanos: number } {
  return { seconds: String(t.seconds), nanos: t.nanos };
}

/** The position a wire request asks for, as a key for maps. */
export function wirePositionKey(r: WireRequest): string {
  switch (r.family) {
    case 'slot':
      return r.slot;
    case 'grandpa':
      return `${r.setId}/${r.round}/${r.stage}`;
    case 'cometbft':
      return `${r.height}/${r.round}/${r.step}`;
  }
}
