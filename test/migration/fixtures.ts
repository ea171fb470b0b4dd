/**
 * Realistic sign-state files, built the way each signer writes them: real canonical sign bytes
 * signed by a real Ed25519 key, then laid out byte for byte as CometBFT, tmkms and Horcrux do.
 */
import { createHash } from 'node:crypto';
import {
  proposalSignBytes,
  SignedMsgType,
  voteSignBytes,
  type BlockId,
} from '../../src/protocols/cometbft/sign-bytes.js';
import { Ed25519Key } from '../../src/keys/ed25519.js';

export const CHAIN = 'cosmoshub-test';
export const SEED = new Uint8Array(32).map((_, i) => i + 7);
export const KEY = Ed25519Key.fromSeed(SEED);

export const sha256 = (b: Uint8Array): Uint8Array =>
  new Uint8Array(createHash('sha256').update(b).digest());

export function blockId(tag: number): BlockId {
  return {
    hash: new Uint8Array(32).fill(tag),
    partSetHeader: { total: 2, hash: new Uint8Array(32).fill(tag + 1) },
  };
}

export type StepName = 'proposal' | 'prevote' | 'precommit';

export function signBytesFor(
  height: bigint,
  round: bigint,
  step: StepName,
  opts: { chainId?: string; block?: number; seconds?: bigint } = {},
): Uint8Array {
  const common = {
    height,
    round,
    blockId: opts.block === undefined ? undefined : blockId(opts.block),
    timestamp: { seconds: opts.seconds ?? 1_700_000_000n, nanos: 123_000_000 },
    chainId: opts.chainId ?? CHAIN,
  };
  if (step === 'proposal') return proposalSignBytes({ ...common, polRound: -1n });
  return voteSignBytes({
    ...common,
    type: step === 'prevote' ? SignedMsgType.Prevote : SignedMsgType.Precommit,
  });
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const HEX = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();
const stepNumber = { proposal: 1, prevote: 2, precommit: 3 } as const;

export interface Signed {
  readonly height: bigint;
  readonly round: bigint;
  readonly step: StepName;
  readonly signBytes: Uint8Array;
  readonly signature: Uint8Array;
}

export function signed(
  height: bigint,
  round: bigint,
  step: StepName,
  opts: { chainId?: string; block?: number; key?: Ed25519Key } = {},
): Signed {
  const signBytes = signBytesFor(height, round, step, { block: 9, ...opts });
  return { height, round, step, signBytes, signature: (opts.key ?? KEY).sign(signBytes) };
}

/** CometBFT's FilePVLastSignState as libs/json MarshalIndent(…, "", "  ") writes it. */
export function filePvText(s: Signed): string {
  return (
    `{\n  "height": "${s.height}",\n  "round": ${s.round},\n  "step": ${stepNumber[s.step]},\n` +
    `  "signature": "${b64(s.signature)}",\n  "signbytes": "${HEX(s.signBytes)}"\n}`
  );
}

export const FILEPV_FRESH = '{\n  "height": "0",\n  "round": 0,\n  "step": 0\n}';

/** tmkms' consensus state (serde_json::to_string of tendermint::consensus::State). */
export function tmkmsText(
  height: bigint,
  round: bigint,
  tmkmsStep: number,
  block?: number,
): string {
  const id =
    block === undefined
      ? { hash: '', parts: { total: 0, hash: '' } }
      : {
          hash: HEX(new Uint8Array(32).fill(block)),
          parts: { total: 2, hash: HEX(new Uint8Array(32).fill(block + 1)) },
        };
  return JSON.stringify({
    height: String(height),
    round: String(round),
    step: tmkmsStep,
    block_id: id,
  });
}

/** Horcrux's SignState as its released builds write it (libs/json, HexBytes signbytes). */
export function horcruxText(s: Signed): string {
  return (
    `{\n  "height": "${s.height}",\n  "round": "${s.round}",\n  "step": ${stepNumber[s.step]},\n` +
    `  "nonce_public": null,\n  "signature": "${b64(s.signature)}",\n` +
    `  "signbytes": "${HEX(s.signBytes)}"\n}`
  );
}

/** Horcrux v3 development builds: encoding/json, numbers, base64 `sign_bytes`. */
export function horcruxV3Text(s: Signed): string {
  return JSON.stringify(
    {
      height: Number(s.height),
      round: Number(s.round),
      step: stepNumber[s.step],
      block_id: null,
      pol_round: -1,
      timestamp: 1_700_000_000_123_000_000,
      sign_bytes: b64(s.signBytes),
      signature: b64(s.signature),
    },
    null,
    2,
  );
}
