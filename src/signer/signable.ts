/**
 * Vigil signs only what it parses. This module turns the bytes a caller wants signed into the
 * guard's rule input, reading the position from the bytes themselves with the parser of the
 * protocol the key is bound to — never from a label the caller sends. Bytes that do not parse
 * as exactly one message of that protocol are refused.
 *
 * Pure: no I/O, no keys; the guarded signer runs it before the store is touched.
 */
import { createHash } from 'node:crypto';
import { InputError } from '../errors.js';
import {
  cometbftPosition,
  grandpaPosition,
  slotPosition,
  type Position,
  type RuleRequest,
} from '../guard/index.js';
import { stepOfSignBytes } from '../guard/cometbft.js';
import type { KeyBinding } from '../keys/binding.js';
import { ProtoError } from '../protocols/cometbft/proto.js';
import { parseSignBytes } from '../protocols/cometbft/sign-bytes.js';
import { decodeGrandpaSignPayload } from '../protocols/substrate/grandpa.js';
import { unsealedHeaderToSeal } from '../protocols/substrate/header.js';

export interface Signable {
  readonly rule: RuleRequest;
  readonly position: Position;
  /** What the key signs: the sign bytes or vote payload as given, or a header's hash. */
  readonly message: Uint8Array;
}

const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

/** Runs a codec and reports what it could not read as a refusal, not a crash. */
function parsed<T>(what: string, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof InputError) throw new InputError(`${what}: ${err.message}`);
    if (err instanceof ProtoError) throw new InputError(`${what}: ${err.message}`);
    throw err;
  }
}

/**
 * Reads `payload` as the message of the key's protocol for `chainId`. `withExtension` (CometBFT)
 * says a vote extension is to be signed with it. Throws InputError for anything else.
 */
export function parseSignable(
  binding: KeyBinding,
  chainId: string,
  payload: Uint8Array,
  withExtension: boolean,
): Signable {
  if (withExtension && binding.protocol !== 'cometbft')
    throw new InputError('only CometBFT precommits carry a vote extension');
  switch (binding.protocol) {
    case 'cometbft': {
      const p = parsed('not CometBFT canonical sign bytes', () => parseSignBytes(payload));
      if (p.chainId !== chainId)
        throw new InputError(
          `sign bytes are for chain ${JSON.stringify(p.chainId)}, not ${JSON.stringify(chainId)}`,
        );
      const step = stepOfSignBytes(p);
      return {
        rule: {
          family: 'cometbft',
          chainId,
          height: p.height,
          round: p.round,
          step,
          signBytes: payload,
          parsed: p,
          payloadHash: sha256(payload),
          withExtension,
        },
        position: cometbftPosition(p.height, p.round, step),
        message: payload,
      };
    }
    case 'grandpa': {
      const vote = parsed('not a GRANDPA vote payload', () =>
        decodeGrandpaSignPayload(payload, binding.blockNumber),
      );
      return {
        rule: {
          family: 'grandpa',
          setId: vote.setId,
          round: vote.round,
          stage: vote.stage,
          payloadHash: sha256(payload),
          mode: 'sign',
        },
        position: grandpaPosition(vote.setId, vote.round, vote.stage),
        message: payload,
      };
    }
    case 'babe':
    case 'aura': {
      const engine = binding.protocol;
      const { slot, hash } = parsed(
        `not an unsealed Substrate header with a ${engine} pre-digest`,
        () => unsealedHeaderToSeal(payload, engine),
      );
      return {
        rule: { family: 'slot', slot, payloadHash: sha256(payload), mode: 'sign' },
        position: slotPosition(slot),
        // The seal signs the hash of the header without the seal (sc-consensus-babe/aura).
        message: hash,
      };
    }
    case 'authorize':
      throw new InputError('an authorize key signs nothing here: its node signs by itself');
  }
}
