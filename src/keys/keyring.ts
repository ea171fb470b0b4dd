import { InputError } from '../errors.js';
import type { Ed25519Key } from './ed25519.js';

/** A key the agent knows by its configured id: a signing key, or for authorization only a
 * public identity (the node holds the private key itself). */
export interface KnownKey {
  readonly id: string;
  /** Lower-case hex of the public key: the watermark scope, identical on every agent. */
  readonly scopeKeyId: string;
  readonly signer?: Ed25519Key;
}

export class KeyRing {
  private readonly byId = new Map<string, KnownKey>();

  add(key: KnownKey): void {
    if (this.byId.has(key.id))
      throw new InputError(`key id ${JSON.stringify(key.id)} is configured twice`);
    this.byId.set(key.id, key);
  }

  get(id: string): KnownKey | undefined {
    return this.byId.get(id);
  }

  /** Finds a key by configured id or by its public key in hex. */
  resolve(idOrPublicKey: string): KnownKey | undefined {
    return (
      this.byId.get(idOrPublicKey) ??
      [...this.byId.values()].find((k) => k.scopeKeyId === idOrPublicKey.toLowerCase())
    );
  }

  all(): KnownKey[] {
    return [...this.byId.values()];
  }
}
