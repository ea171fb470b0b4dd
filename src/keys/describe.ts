/**
 * What `vigil keys show` prints about a key file: its public key and the names it goes by
 * (CometBFT consensus address, bech32, SS58), never anything private. Apart from the command so
 * that `vigil` loads it only when the command runs.
 */
import { readFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import { loadEd25519KeyFile, loadSr25519KeyFile } from './key-file.js';
import {
  consensusAddressBech32,
  consensusAddressHex,
  cosmosSdkPublicKeyJson,
  legacyBech32PublicKey,
} from './consensus-address.js';
import { ss58Encode } from './ss58.js';

export type Scheme = 'ed25519' | 'sr25519';

/** Everything `keys show` prints; never anything private. */
export interface KeyDescription {
  file: string;
  scheme: Scheme;
  publicKeyHex: string;
  /** CometBFT's `pub_key.value`. */
  publicKeyBase64: string;
  /** Ed25519 only: CometBFT's consensus address, upper-case hex. */
  address?: string;
  /** With a prefix: the address in bech32 (`cosmosvalcons1…`). */
  bech32Address?: string;
  /** With a prefix: the legacy Amino bech32 public key (`cosmosvalconspub1…`). */
  bech32PublicKey?: string;
  /** sr25519 only: the account in SS58 under `ss58Prefix` (42 unless told). */
  ss58Address?: string;
  ss58Prefix?: number;
  /** Ed25519 only: the public key as the Cosmos SDK prints it (`comet show-validator`). */
  cosmosPublicKey?: { '@type': string; key: string };
}

/** A Substrate keystore file holds a JSON string: those are sr25519 (babe, aura, …). */
export function detectScheme(file: string): Scheme {
  let head = '';
  try {
    head = readFileSync(file).subarray(0, 16).toString('utf8').trimStart();
  } catch {
    // The loader reports an unreadable file with its code and hint.
  }
  return head.startsWith('"') ? 'sr25519' : 'ed25519';
}

export function describeKeyFile(
  file: string,
  scheme: Scheme,
  prefix?: string,
  ss58Prefix = 42,
): KeyDescription {
  if (scheme === 'sr25519') {
    if (prefix !== undefined) {
      throw new InputError(
        '--prefix gives the bech32 consensus address of a CometBFT (Ed25519) key; this is an sr25519 key',
        'drop --prefix, or pass --scheme ed25519 for an Ed25519 seed file',
      );
    }
    const key = loadSr25519KeyFile(file);
    return {
      file,
      scheme,
      publicKeyHex: key.publicKeyHex,
      publicKeyBase64: Buffer.from(key.publicKey).toString('base64'),
      ss58Address: ss58Encode(key.publicKey, ss58Prefix),
      ss58Prefix,
    };
  }
  const key = loadEd25519KeyFile(file);
  const pub = key.publicKey;
  return {
    file,
    scheme,
    publicKeyHex: key.publicKeyHex,
    publicKeyBase64: Buffer.from(pub).toString('base64'),
    address: consensusAddressHex(pub),
    ...(prefix !== undefined
      ? {
          bech32Address: consensusAddressBech32(prefix, pub),
          bech32PublicKey: legacyBech32PublicKey(prefix, pub),
        }
      : {}),
    cosmosPublicKey: JSON.parse(cosmosSdkPublicKeyJson(pub)) as KeyDescription['cosmosPublicKey'],
  };
}

export function formatDescription(d: KeyDescription): string {
  const rows: Array<[string, string]> = [
    ['key file', d.file],
    ['scheme', d.scheme],
    ['public key (hex)', d.publicKeyHex],
    [
      'public key (base64)',
      `${d.publicKeyBase64}${d.scheme === 'ed25519' ? '  (pub_key.value)' : ''}`,
    ],
  ];
  if (d.ss58Address !== undefined)
    rows.push(['ss58 address', `${d.ss58Address}  (network prefix ${d.ss58Prefix})`]);
  if (d.address !== undefined) rows.push(['address', `${d.address}  (CometBFT consensus address)`]);
  if (d.bech32Address !== undefined) rows.push(['bech32 address', d.bech32Address]);
  if (d.bech32PublicKey !== undefined)
    rows.push(['bech32 public key', `${d.bech32PublicKey}  (legacy Amino form)`]);
  if (d.cosmosPublicKey !== undefined)
    rows.push(['cosmos-sdk public key', JSON.stringify(d.cosmosPublicKey)]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}
