/**
 * What checkers of driver runs need to know about the signer rig's keys (guard-fixtures.ts
 * `openSignerRig`): which public key a wire request's watermark lives under, which bytes the
 * store hashes, and how a released signature verifies with the protocol's own scheme.
 */
import { verifyEd25519 } from '../../src/keys/ed25519.js';
import { verifySr25519 } from '../../src/keys/sr25519.js';
import { headerHash } from '../../src/protocols/substrate/header.js';
import { babeHeader, grandpaVote, keyFromTag, srKeyFromTag } from './guard-fixtures.js';
import type { WireRequest } from './guard-wire.js';

/** The rig's keys by id, as openSignerRig binds them. */
export const RIG_KEYS = {
  k1: keyFromTag(7),
  g1: keyFromTag(8),
  s1: srKeyFromTag(10),
  auth1: keyFromTag(9),
  auth2: keyFromTag(11),
} as const;

/** The public key (hex) whose watermark a request moves: its scope's key id. */
export function rigScopeKeyHex(r: WireRequest): string {
  if (r.op === 'authorize')
    return (r.family === 'slot' ? RIG_KEYS.auth1 : RIG_KEYS.auth2).publicKeyHex;
  switch (r.family) {
    case 'cometbft':
      return RIG_KEYS.k1.publicKeyHex;
    case 'grandpa':
      return RIG_KEYS.g1.publicKeyHex;
    case 'slot':
      return RIG_KEYS.s1.publicKeyHex;
  }
}

/** The message bytes a sign request carries (what the store hashes), as fromWire builds them. */
export function wireSignBytes(r: Extract<WireRequest, { op: 'sign' }>): Uint8Array {
  switch (r.family) {
    case 'slot':
      return babeHeader(BigInt(r.slot), r.payload);
    case 'grandpa':
      return grandpaVote(BigInt(r.setId), BigInt(r.round), r.stage, r.payload);
    case 'cometbft':
      return new Uint8Array(Buffer.from(r.signBytes, 'hex'));
  }
}

/**
 * True when `signature` is the rig's key's over `message` as its protocol signs it: a BABE seal
 * is sr25519 over the header's hash; GRANDPA and CometBFT sign their bytes with Ed25519.
 */
export function verifyRigSignature(
  family: 'slot' | 'grandpa' | 'cometbft',
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  switch (family) {
    case 'slot':
      return verifySr25519(RIG_KEYS.s1.publicKey, headerHash(message), signature);
    case 'grandpa':
      return verifyEd25519(RIG_KEYS.g1.publicKey, message, signature);
    case 'cometbft':
      return verifyEd25519(RIG_KEYS.k1.publicKey, message, signature);
  }
}
