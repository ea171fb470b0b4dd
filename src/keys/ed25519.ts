/**
 * An Ed25519 signing key held in memory. The private half lives only inside a Node KeyObject;
 * nothing on this class prints, serialises or inspects it.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { InputError } from '../errors.js';
import type { SigningKey } from './signing-key.js';

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export class Ed25519Key implements SigningKey {
  readonly scheme = 'ed25519' as const;
  readonly publicKey: Uint8Array;
  readonly #privateKey: KeyObject;

  private constructor(privateKey: KeyObject) {
    this.#privateKey = privateKey;
    const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
    this.publicKey = new Uint8Array(spki.subarray(SPKI_ED25519_PREFIX.length));
  }

  static fromSeed(seed: Uint8Array): Ed25519Key {
    if (seed.length !== 32) throw new InputError(`an Ed25519 seed is 32 bytes, got ${seed.length}`);
    const der = Buffer.concat([PKCS8_ED25519_PREFIX, seed]);
    return new Ed25519Key(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
  }

  sign(message: Uint8Array): Uint8Array {
    return new Uint8Array(sign(null, message, this.#privateKey));
  }

  get publicKeyHex(): string {
    return Buffer.from(this.publicKey).toString('hex');
  }

  toJSON(): unknown {
    return { type: 'ed25519', publicKey: this.publicKeyHex };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Ed25519Key(${this.publicKeyHex})`;
  }
}

export function verifyEd25519(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  const key = createPublicKey({
    key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]),
    format: 'der',
    type: 'spki',
  });
  return verify(null, message, key, signature);
}
