/**
 * Reads validator keys from disk: CometBFT's priv_validator_key.json, or a plain key file
 * holding the 32-byte seed (raw, hex or base64, as tmkms' softsign keys are) or the 64-byte
 * seed‖public key; for sr25519, also a file from a Substrate node's keystore. Files readable by
 * group or others are refused before they are read.
 */
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { VigilError, errorMessage } from '../errors.js';
import { Ed25519Key } from './ed25519.js';
import { Sr25519Key } from './sr25519.js';

export class KeyFileError extends VigilError {
  constructor(path: string, message: string, hint?: string) {
    super('KEY_FILE_INVALID', `key file ${path}: ${message}`, hint);
  }
}

function checkPermissions(path: string): void {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (err) {
    throw new KeyFileError(path, `cannot be read (${errorMessage(err)})`);
  }
  if ((mode & 0o077) !== 0) {
    throw new KeyFileError(
      path,
      `is accessible by group or others (mode ${(mode & 0o777).toString(8)})`,
      `run: chmod 600 ${path}`,
    );
  }
}

/** The 32-byte seed (a copy) of `bytes`, after checking a public key stored with it. */
function seedFromBytes(path: string, bytes: Uint8Array, expectedPublic?: Uint8Array): Uint8Array {
  if (bytes.length !== 32 && bytes.length !== 64) {
    throw new KeyFileError(
      path,
      `holds ${bytes.length} key bytes; expected a 32-byte seed or 64-byte seed‖public key`,
    );
  }
  const seed = Uint8Array.from(bytes.subarray(0, 32));
  const key = Ed25519Key.fromSeed(seed);
  const claimed = expectedPublic ?? (bytes.length === 64 ? bytes.subarray(32) : undefined);
  if (
    claimed !== undefined &&
    Buffer.compare(Buffer.from(claimed), Buffer.from(key.publicKey)) !== 0
  ) {
    throw new KeyFileError(
      path,
      'its public key does not match its private key',
      'the file is damaged or was edited',
    );
  }
  return seed;
}

function parseCometbftJson(path: string, text: string): Uint8Array {
  let doc: {
    priv_key?: { type?: string; value?: string };
    pub_key?: { type?: string; value?: string };
  };
  try {
    doc = JSON.parse(text);
  } catch {
    throw new KeyFileError(path, 'is not valid JSON');
  }
  const priv = doc.priv_key;
  if (!priv || typeof priv.value !== 'string')
    throw new KeyFileError(path, 'has no priv_key.value');
  if (priv.type !== 'tendermint/PrivKeyEd25519') {
    throw new KeyFileError(
      path,
      `priv_key.type is ${JSON.stringify(priv.type)}; only tendermint/PrivKeyEd25519 is supported`,
    );
  }
  const pub =
    typeof doc.pub_key?.value === 'string'
      ? new Uint8Array(Buffer.from(doc.pub_key.value, 'base64'))
      : undefined;
  return seedFromBytes(path, new Uint8Array(Buffer.from(priv.value, 'base64')), pub);
}

function parsePlain(path: string, raw: Buffer): Uint8Array {
  const text = raw.toString('utf8').trim();
  // Text first: a hex seed without a newline is exactly 64 bytes long, like a raw seed‖key.
  if (/^[0-9a-fA-F]{64}$|^[0-9a-fA-F]{128}$/.test(text))
    return seedFromBytes(path, Buffer.from(text, 'hex'));
  if (raw.length === 32 || raw.length === 64) return seedFromBytes(path, raw);
  if (/^([0-9a-fA-F]{64}|[0-9a-fA-F]{128})$/.test(text))
    return seedFromBytes(path, Buffer.from(text, 'hex'));
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return seedFromBytes(path, Buffer.from(text, 'base64'));
  throw new KeyFileError(
    path,
    'is neither priv_validator_key.json nor a raw, hex or base64 Ed25519 seed',
  );
}

export function loadEd25519KeyFile(path: string): Ed25519Key {
  const seed = loadEd25519Seed(path);
  try {
    return Ed25519Key.fromSeed(seed);
  } finally {
    seed.fill(0);
  }
}

/**
 * The 32-byte Ed25519 seed of a key file (same formats and permission check as
 * loadEd25519KeyFile), for the one user that needs the seed itself: a registry node's libp2p
 * identity is built from it (src/registry/node.ts). The caller wipes it when done.
 */
export function loadEd25519Seed(path: string): Uint8Array {
  checkPermissions(path);
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (err) {
    throw new KeyFileError(path, `cannot be read (${errorMessage(err)})`);
  }
  try {
    return raw.subarray(0, 64).toString('utf8').trimStart().startsWith('{')
      ? parseCometbftJson(path, raw.toString('utf8'))
      : parsePlain(path, raw);
  } finally {
    raw.fill(0);
  }
}

/**
 * A Substrate keystore file (polkadot-sdk `sc_keystore::LocalKeystore`) is named
 * `<key type hex><public key hex>` (e.g. `62616265…` for `babe`) and holds the secret URI as a
 * JSON string.
 */
const KEYSTORE_NAME = /^([0-9a-fA-F]{8})([0-9a-fA-F]{64})$/;

function publicKeyFromKeystoreName(path: string): Uint8Array | undefined {
  const m = KEYSTORE_NAME.exec(basename(path));
  return m ? new Uint8Array(Buffer.from(m[2]!, 'hex')) : undefined;
}

/** A private copy of decoded key bytes; the decoding buffer (often Node's shared pool) is wiped. */
function takeBytes(decoded: Buffer): Uint8Array {
  const copy = new Uint8Array(decoded);
  decoded.fill(0);
  return copy;
}

function sr25519SeedFromSecretUri(path: string, text: string): Uint8Array {
  let suri: unknown;
  try {
    suri = JSON.parse(text);
  } catch {
    throw new KeyFileError(path, 'starts like a Substrate keystore file but is not a JSON string');
  }
  if (typeof suri !== 'string') {
    throw new KeyFileError(path, 'is JSON but not a string; a Substrate keystore file holds one');
  }
  if (/^0x[0-9a-fA-F]{64}$/.test(suri)) return takeBytes(Buffer.from(suri.slice(2), 'hex'));
  if (/^0x[0-9a-fA-F]{64}\//.test(suri)) {
    throw new KeyFileError(
      path,
      'holds a seed with a derivation path; Vigil loads plain seeds only',
      'store the derived key\'s "Secret seed" as printed by `subkey inspect` (hard derivation only)',
    );
  }
  if (/\s/.test(suri.trim()) || suri.startsWith('/')) {
    throw new KeyFileError(
      path,
      'holds a mnemonic phrase or dev URI; Vigil cannot derive keys from phrases',
      'run `subkey inspect --scheme sr25519 "<phrase>"` and store its "Secret seed" (0x followed by 64 hex digits) instead',
    );
  }
  throw new KeyFileError(path, 'holds a secret URI that is not a 0x-prefixed 32-byte seed');
}

function sr25519PlainSeed(path: string, raw: Buffer): Uint8Array {
  const text = raw.toString('utf8').trim();
  // Text first: a hex seed is 64 bytes of text, and no raw sr25519 format is 64 bytes.
  if (/^(0x)?[0-9a-fA-F]{64}$/.test(text)) {
    return takeBytes(Buffer.from(text.replace(/^0x/, ''), 'hex'));
  }
  if (raw.length === 32) return new Uint8Array(raw);
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
    const decoded = Buffer.from(text, 'base64');
    if (decoded.length === 32) return takeBytes(decoded);
    decoded.fill(0);
  }
  throw new KeyFileError(
    path,
    'is neither a Substrate keystore file nor a raw, hex or base64 32-byte sr25519 seed',
  );
}

/**
 * An sr25519 key from a plain seed file (raw, hex or base64 32-byte mini-secret) or from a
 * Substrate keystore file holding a `0x…` seed. When the file name carries a public key, as a
 * keystore file's does, the key must match it.
 */
export function loadSr25519KeyFile(path: string): Sr25519Key {
  checkPermissions(path);
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (err) {
    throw new KeyFileError(path, `cannot be read (${errorMessage(err)})`);
  }
  let seed: Uint8Array | undefined;
  try {
    const isJsonString = raw.subarray(0, 16).toString('utf8').trimStart().startsWith('"');
    seed = isJsonString
      ? sr25519SeedFromSecretUri(path, raw.toString('utf8'))
      : sr25519PlainSeed(path, raw);
    const key = Sr25519Key.fromSeed(seed);
    const named = publicKeyFromKeystoreName(path);
    if (named && Buffer.compare(Buffer.from(named), Buffer.from(key.publicKey)) !== 0) {
      throw new KeyFileError(
        path,
        `its seed gives public key ${key.publicKeyHex}, not the one in its name`,
        'the keystore file was renamed or edited',
      );
    }
    return key;
  } finally {
    raw.fill(0);
    seed?.fill(0);
  }
}
