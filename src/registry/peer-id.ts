/**
 * libp2p peer ids of Ed25519 keys, per the libp2p spec (specs/peer-ids/peer-ids.md, "Keys" and
 * "Peer Ids"): the public key is wrapped in the protobuf `PublicKey { Type = Ed25519 (1); Data
 * = the 32 key bytes }`, which serialises to 36 bytes (`08 01 12 20` + key); at most 42 bytes,
 * so the peer id is its identity multihash (`00 24` + the 36 bytes), written in base58btc
 * (`12D3KooW…`). Only Ed25519 ids are accepted here: the registry signs with Ed25519 only.
 */
import { base58 } from '@scure/base';
import { InputError } from '../errors.js';

/** protobuf field 1 (Type, varint) = 1 (Ed25519); field 2 (Data, bytes) of length 32. */
const PROTOBUF_ED25519_PREFIX = Uint8Array.from([0x08, 0x01, 0x12, 0x20]);
/** multihash: code 0x00 (identity), length 0x24 (36). */
const IDENTITY_MULTIHASH_PREFIX = Uint8Array.from([0x00, 0x24]);

/** The protobuf-encoded libp2p PublicKey of an Ed25519 key (36 bytes). */
export function ed25519PublicKeyProtobuf(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== 32)
    throw new InputError(`an Ed25519 public key is 32 bytes, got ${publicKey.length}`);
  const out = new Uint8Array(36);
  out.set(PROTOBUF_ED25519_PREFIX, 0);
  out.set(publicKey, 4);
  return out;
}

/** The peer id (base58btc identity multihash) of an Ed25519 public key. */
export function peerIdFromEd25519(publicKey: Uint8Array): string {
  const proto = ed25519PublicKeyProtobuf(publicKey);
  const mh = new Uint8Array(2 + proto.length);
  mh.set(IDENTITY_MULTIHASH_PREFIX, 0);
  mh.set(proto, 2);
  return base58.encode(mh);
}

/**
 * The Ed25519 public key inside a peer id string; InputError for anything else (another key
 * type, a sha256 multihash, a CID form, a non-canonical base58 string).
 */
export function ed25519FromPeerId(peerId: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = base58.decode(peerId);
  } catch {
    throw new InputError(`${JSON.stringify(peerId)} is not a base58btc peer id`);
  }
  const ok =
    bytes.length === 38 &&
    IDENTITY_MULTIHASH_PREFIX.every((b, i) => bytes[i] === b) &&
    PROTOBUF_ED25519_PREFIX.every((b, i) => bytes[2 + i] === b);
  if (!ok)
    throw new InputError(
      `${JSON.stringify(peerId)} is not the peer id of an Ed25519 key`,
      'registry subjects are Ed25519 libp2p identities (peer ids starting 12D3KooW)',
    );
  const key = bytes.slice(6);
  // base58 has one spelling per byte string, but leading '1's are zero bytes: re-encode to be sure.
  if (peerIdFromEd25519(key) !== peerId)
    throw new InputError(`${JSON.stringify(peerId)} is not in canonical base58btc form`);
  return key;
}
