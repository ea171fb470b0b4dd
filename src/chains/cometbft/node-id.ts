/**
 * CometBFT node IDs: the hex of the first 20 bytes of sha256(ed25519 public key), as CometBFT
 * derives them (`p2p.PubKeyToID` → `ed25519.PubKey.Address()` = `tmhash.SumTruncated`) and as
 * tmkms does for the `tcp://<id>@host:port` form of a validator address
 * (`secret_connection::PublicKey::peer_id`). For privval the key is the one the node presents
 * in the SecretConnection handshake, not the validator key.
 */
import { createHash } from 'node:crypto';

export const NODE_ID_HEX_DIGITS = 40;

export function nodeIdOf(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest().subarray(0, 20).toString('hex');
}

/**
 * Checks a node ID as written in configuration and returns it in lowercase. Case is folded
 * rather than refused: tmkms prints IDs in uppercase in its own logs and CometBFT in lowercase,
 * and both spell the same 20 bytes, so refusing one would only make operators retype them.
 */
export function parseNodeId(text: string): { id: string } | { error: string } {
  const bad = /[^0-9a-fA-F]/.exec(text);
  if (bad)
    return {
      error: `the node id must be hex, but has ${JSON.stringify(bad[0])} at position ${bad.index + 1}`,
    };
  if (text.length !== NODE_ID_HEX_DIGITS)
    return {
      error: `the node id must be ${NODE_ID_HEX_DIGITS} hex digits (20 bytes of sha256 of the node's SecretConnection key), got ${text.length}`,
    };
  return { id: text.toLowerCase() };
}
