import { InputError } from '../errors.js';
import type { KeyBinding } from './binding.js';
import type { SigningKey } from './signing-key.js';

/** A key the agent knows by its configured id: a signing key, or for authorization only a
 * public identity (the node holds the private key itself), bound to one protocol. */
export interface KnownKey {
  readonly id: string;
  /** Lower-case hex of the public key: the watermark scope, identical on every agent. */
  readonly scopeKeyId: string;
  readonly binding: KeyBinding;
  /** Absent for `authorize` keys. */
  readonly signer?: SigningKey;
}

export class KeyRing {
  private readonly byId = new Map<string, KnownKey>();
  private readonly byPublicKey = new Map<string, KnownKey>();

  add(key: KnownKey): void {
    if (this.byId.has(key.id))
      throw new InputError(`key id ${JSON.stringify(key.id)} is configured twice`);
    const same = this.byPublicKey.get(key.scopeKeyId);
    if (same !== undefined) {
      // Two entries for one key would give it two protocols, or two names for one watermark.
      throw new InputError(
        `keys ${JSON.stringify(same.id)} (${same.binding.protocol}) and ${JSON.stringify(key.id)} (${key.binding.protocol}) are the same key ${key.scopeKeyId}`,
        'a key is bound to one protocol: configure it once, or use a separate key for each protocol',
        'KEY_CONFIGURED_TWICE',
      );
    }
    this.byId.set(key.id, key);
    this.byPublicKey.set(key.scopeKeyId, key);
  }

  get(id: string): KnownKey | undefined {
    return this.byId.get(id);
  }

  /** Finds a key by configured id or by its public key in hex. */
  resolve(idOrPublicKey: string): KnownKey | undefined {
    return (
      this.byId.get(idOrPublicKey) ??
      this.byPublicKey.get(idOrPublicKey.toLowerCase().replace(/^0x/, ''))
    );
  }

  all(): KnownKey[] {
    return [...this.byId.values()];
  }
}
