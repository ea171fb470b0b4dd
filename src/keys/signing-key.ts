/**
 * What the guard needs of a private key: its scheme, its public half and a way to sign. Each
 * key is bound to one protocol (see src/keys/binding.ts), and the protocol fixes the scheme.
 */
export type SignatureScheme = 'ed25519' | 'sr25519';

export interface SigningKey {
  readonly scheme: SignatureScheme;
  readonly publicKey: Uint8Array;
  readonly publicKeyHex: string;
  sign(message: Uint8Array): Uint8Array;
}
