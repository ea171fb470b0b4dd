/**
 * An sr25519 signing key (BABE and Aura block authorship on Substrate chains), held in memory.
 * The 64-byte expanded secret lives only in an ES private field; nothing on this class prints,
 * serialises or inspects it.
 *
 * Key derivation and signing are @scure/sr25519's: `secretFromSeed` expands a 32-byte
 * mini-secret the way schnorrkel's `MiniSecretKey::expand_to_keypair(ExpansionMode::Ed25519)`
 * does, which is what `sp_core::sr25519::Pair::from_seed` (and so `subkey`) uses, and `sign`
 * uses the signing context "substrate", as `sp_core::sr25519::Pair::sign` does.
 *
 * sr25519 signatures are randomised: signing the same message twice gives two different, equally
 * valid signatures. A retry must therefore replay the stored signature, not sign again.
 */
import * as sr25519 from '@scure/sr25519';
import { InputError } from '../errors.js';
import type { SigningKey } from './signing-key.js';

export class Sr25519Key implements SigningKey {
  readonly scheme = 'sr25519' as const;
  readonly publicKey: Uint8Array;
  readonly #secret: Uint8Array;

  private constructor(secret: Uint8Array) {
    this.#secret = secret;
    this.publicKey = sr25519.getPublicKey(secret);
  }

  /** A Substrate mini-secret (the "secret seed" `subkey inspect` prints) to its keypair. */
  static fromSeed(seed32: Uint8Array): Sr25519Key {
    if (!(seed32 instanceof Uint8Array) || seed32.length !== 32) {
      throw new InputError(
        `an sr25519 seed is 32 bytes, got ${seed32 instanceof Uint8Array ? seed32.length : typeof seed32}`,
      );
    }
    return new Sr25519Key(sr25519.secretFromSeed(seed32));
  }

  sign(message: Uint8Array): Uint8Array {
    return sr25519.sign(this.#secret, message);
  }

  get publicKeyHex(): string {
    return Buffer.from(this.publicKey).toString('hex');
  }

  toJSON(): unknown {
    return { type: 'sr25519', publicKey: this.publicKeyHex };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Sr25519Key(${this.publicKeyHex})`;
  }
}

/**
 * True only for a valid signature by `publicKey` over `message` in the "substrate" context.
 * A signature or key that is not even well-formed is simply not valid.
 */
export function verifySr25519(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    return sr25519.verify(message, signature, publicKey);
  } catch {
    return false;
  }
}
