import { loadEd25519KeyFile } from '../keys/key-file.js';
import { KeyRing } from '../keys/keyring.js';
import type { AgentConfig } from './config.js';

/** Loads every configured key; a key file that is unreadable or too open stops the agent. */
export function loadKeyRing(config: AgentConfig): KeyRing {
  const ring = new KeyRing();
  for (const k of config.keys) {
    if (k.file !== undefined) {
      const signer = loadEd25519KeyFile(k.file);
      ring.add({ id: k.id, scopeKeyId: signer.publicKeyHex, signer });
    } else {
      ring.add({ id: k.id, scopeKeyId: k.publicKey! });
    }
  }
  return ring;
}
