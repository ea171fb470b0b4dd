import { schemeOf } from '../keys/binding.js';
import { bindingOf } from '../keys/key-config.js';
import { loadEd25519KeyFile, loadSr25519KeyFile } from '../keys/key-file.js';
import { KeyRing } from '../keys/keyring.js';
import type { SigningKey } from '../keys/signing-key.js';
import type { AgentConfig } from './config.js';

/** Loads every configured key with its binding; a key file that is unreadable or too open, or
 * one key under two entries, stops the agent. */
export function loadKeyRing(config: AgentConfig): KeyRing {
  const ring = new KeyRing();
  for (const k of config.keys) {
    const binding = bindingOf(k);
    const scheme = schemeOf(binding);
    if (scheme === undefined) {
      ring.add({ id: k.id, scopeKeyId: k.publicKey!, binding });
      continue;
    }
    const signer: SigningKey =
      scheme === 'sr25519' ? loadSr25519KeyFile(k.file!) : loadEd25519KeyFile(k.file!);
    ring.add({ id: k.id, scopeKeyId: signer.publicKeyHex, binding, signer });
  }
  return ring;
}
