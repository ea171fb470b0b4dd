/**
 * The signer's own SecretConnection identity: an Ed25519 key distinct from the validator key,
 * so that a leaked transport key never signs consensus messages. Kept as a hex seed in a file
 * readable only by its owner; created on first use.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, writeSync, closeSync, fsyncSync } from 'node:fs';
import { dirname } from 'node:path';
import { VigilError, errorMessage } from '../../errors.js';
import { Ed25519Key } from '../../keys/ed25519.js';
import { loadEd25519KeyFile } from '../../keys/key-file.js';

export function loadOrCreateConnectionKey(path: string): Ed25519Key {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // 'wx' fails if the file exists, so two agents starting together never overwrite a key.
    const fd = openSync(path, 'wx', 0o600);
    const seed = randomBytes(32);
    try {
      writeSync(fd, `${seed.toString('hex')}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    const key = Ed25519Key.fromSeed(seed);
    seed.fill(0);
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new VigilError(
        'CONNECTION_KEY_UNAVAILABLE',
        `cannot create the CometBFT connection key ${path}: ${errorMessage(err)}`,
        'check that the directory is writable by the agent user',
        { cause: err },
      );
    }
  }
  return loadEd25519KeyFile(path);
}
