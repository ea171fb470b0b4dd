/**
 * SS58, the address format of Substrate chains (Polkadot `1…`, Kusama, the generic `5…`):
 * base58 of (network prefix ‖ public key ‖ the first two bytes of
 * blake2b-512("SS58PRE" ‖ prefix ‖ public key)). Base58 and BLAKE2b come from @scure/base and
 * @noble/hashes; this module only lays out the bytes. Only the one-byte prefixes (0–63), which
 * cover Polkadot (0), Kusama (2) and the generic 42.
 */
import { base58 } from '@scure/base';
import { blake2b } from '@noble/hashes/blake2.js';
import { InputError } from '../errors.js';

const CONTEXT = new TextEncoder().encode('SS58PRE');

export function ss58Encode(publicKey: Uint8Array, prefix = 42): string {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 63) {
    throw new InputError(
      `SS58 prefix ${prefix} is not a one-byte network prefix (0–63)`,
      'use 0 for Polkadot, 2 for Kusama, 42 for the generic Substrate format',
      'INVALID_SS58_PREFIX',
    );
  }
  if (publicKey.length !== 32)
    throw new InputError(`an SS58 account is a 32-byte public key, got ${publicKey.length} bytes`);
  const body = new Uint8Array(33);
  body[0] = prefix;
  body.set(publicKey, 1);
  const hash = blake2b(new Uint8Array([...CONTEXT, ...body]), { dkLen: 64 });
  return base58.encode(new Uint8Array([...body, hash[0]!, hash[1]!]));
}
