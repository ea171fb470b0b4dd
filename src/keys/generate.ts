/** Writes new Ed25519 keys in CometBFT's priv_validator_key.json format, mode 0600. */
import { randomBytes } from 'node:crypto';
import { writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { VigilError } from '../errors.js';
import { Ed25519Key } from './ed25519.js';
import { consensusAddressHex } from './consensus-address.js';

export function cometbftKeyJson(seed: Uint8Array): string {
  const key = Ed25519Key.fromSeed(seed);
  const pub = Buffer.from(key.publicKey);
  return (
    JSON.stringify(
      {
        address: consensusAddressHex(pub),
        pub_key: { type: 'tendermint/PubKeyEd25519', value: pub.toString('base64') },
        priv_key: {
          type: 'tendermint/PrivKeyEd25519',
          value: Buffer.concat([seed, pub]).toString('base64'),
        },
      },
      null,
      2,
    ) + '\n'
  );
}

/**
 * Writes a new random 32-byte seed into `path` in the form `render` gives it: exclusively (an
 * existing key is never overwritten), mode 0600, in a parent directory created private. The
 * seed is wiped once written; `after` sees it before that.
 */
function writeNewSeedFile<T>(
  path: string,
  render: (seed: Buffer) => string,
  after: (seed: Buffer) => T,
): T {
  if (existsSync(path)) {
    throw new VigilError(
      'KEY_EXISTS',
      `${path} already exists`,
      'Vigil never overwrites a key; choose another path',
    );
  }
  // Missing parent directories are created private: they are about to hold a key.
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const seed = randomBytes(32);
  try {
    writeFileSync(path, render(seed), { mode: 0o600, flag: 'wx' });
    return after(seed);
  } finally {
    seed.fill(0);
  }
}

/** Creates the file exclusively: an existing key is never overwritten. Returns the public key. */
export function generateCometbftKeyFile(path: string): Uint8Array {
  return writeNewSeedFile(path, cometbftKeyJson, (seed) => Ed25519Key.fromSeed(seed).publicKey);
}

/**
 * Creates a plain key file holding a new random 32-byte seed in hex (an Ed25519 seed, or a
 * Substrate sr25519 mini-secret), exclusively and mode 0600. Returns nothing: the caller loads
 * it with the loader of the scheme the key is bound to.
 */
export function generateSeedFile(path: string): void {
  writeNewSeedFile(
    path,
    (seed) => seed.toString('hex') + '\n',
    () => undefined,
  );
}
