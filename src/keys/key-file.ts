/**
 * Reads validator keys from disk: CometBFT's priv_validator_key.json, or a plain key file
 * holding the 32-byte seed (raw, hex or base64, as tmkms' softsign keys are) or the 64-byte
 * seed‖public key. Files readable by group or others are refused before they are read.
 */
import { readFileSync, statSync } from 'node:fs';
import { VigilError, errorMessage } from '../errors.js';
import { Ed25519Key } from './ed25519.js';

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

function keyFromBytes(path: string, bytes: Uint8Array, expectedPublic?: Uint8Array): Ed25519Key {
  if (bytes.length !== 32 && bytes.length !== 64) {
    throw new KeyFileError(
      path,
      `holds ${bytes.length} key bytes; expected a 32-byte seed or 64-byte seed‖public key`,
    );
  }
  const key = Ed25519Key.fromSeed(bytes.subarray(0, 32));
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
  return key;
}

function parseCometbftJson(path: string, text: string): Ed25519Key {
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
  return keyFromBytes(path, new Uint8Array(Buffer.from(priv.value, 'base64')), pub);
}

function parsePlain(path: string, raw: Buffer): Ed25519Key {
  const text = raw.toString('utf8').trim();
  // Text first: a hex seed without a newline is exactly 64 bytes long, like a raw seed‖key.
  if (/^[0-9a-fA-F]{64}$|^[0-9a-fA-F]{128}$/.test(text))
    return keyFromBytes(path, Buffer.from(text, 'hex'));
  if (raw.length === 32 || raw.length === 64) return keyFromBytes(path, raw);
  if (/^([0-9a-fA-F]{64}|[0-9a-fA-F]{128})$/.test(text))
    return keyFromBytes(path, Buffer.from(text, 'hex'));
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return keyFromBytes(path, Buffer.from(text, 'base64'));
  throw new KeyFileError(
    path,
    'is neither priv_validator_key.json nor a raw, hex or base64 Ed25519 seed',
  );
}

export function loadEd25519KeyFile(path: string): Ed25519Key {
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
