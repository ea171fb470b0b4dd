/**
 * The names a CometBFT / Cosmos validator key goes by: its consensus address (the first 20 bytes
 * of sha256 of the Ed25519 public key, upper-case hex, as priv_validator_key.json's `address`
 * and block headers print it), that address in bech32 under a chain's prefix
 * (`cosmosvalcons1…`), and the public key as the Cosmos SDK shows it.
 */
import { createHash } from 'node:crypto';
import { bech32Encode } from './bech32.js';

export function consensusAddress(ed25519PublicKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(ed25519PublicKey).digest().subarray(0, 20));
}

export function consensusAddressHex(ed25519PublicKey: Uint8Array): string {
  return Buffer.from(consensusAddress(ed25519PublicKey)).toString('hex').toUpperCase();
}

/** `cosmosvalcons1…` for prefix `cosmosvalcons`. */
export function consensusAddressBech32(prefix: string, ed25519PublicKey: Uint8Array): string {
  return bech32Encode(prefix, consensusAddress(ed25519PublicKey));
}

/** Amino's prefix for an Ed25519 public key (`tendermint/PubKeyEd25519`, length 32). */
const AMINO_ED25519_PUBKEY = Uint8Array.from([0x16, 0x24, 0xde, 0x64, 0x20]);

/**
 * The legacy bech32 public key (`cosmosvalconspub1zcjduepq…`) that Cosmos SDK before v0.40
 * printed and some explorers and genesis tools still use: the Amino-encoded key under
 * `<prefix>pub`.
 */
export function legacyBech32PublicKey(prefix: string, ed25519PublicKey: Uint8Array): string {
  const amino = new Uint8Array(AMINO_ED25519_PUBKEY.length + ed25519PublicKey.length);
  amino.set(AMINO_ED25519_PUBKEY);
  amino.set(ed25519PublicKey, AMINO_ED25519_PUBKEY.length);
  return bech32Encode(`${prefix}pub`, amino);
}

/** What `<chaind> comet show-validator` prints and `tx staking create-validator` takes. */
export function cosmosSdkPublicKeyJson(ed25519PublicKey: Uint8Array): string {
  return JSON.stringify({
    '@type': '/cosmos.crypto.ed25519.PubKey',
    key: Buffer.from(ed25519PublicKey).toString('base64'),
  });
}
