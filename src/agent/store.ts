import { openEtcdStore } from '../store/etcd.js';
import { SqliteWatermarkStore } from '../store/sqlite.js';
import type { OpenStoreOptions, WatermarkStore } from '../store/types.js';
import type { StoreConfig } from './config.js';

/**
 * Opens the watermark store a config names. Without `options.create` a store that was never
 * initialised is refused (StoreIdentityError): only an operator act creates one.
 */
export async function openStore(
  config: StoreConfig,
  options: OpenStoreOptions & { readonly identityLater?: boolean } = {},
): Promise<WatermarkStore> {
  switch (config.engine) {
    case 'sqlite':
      return SqliteWatermarkStore.open({
        path: config.path,
        busyTimeoutMs: config.busyTimeoutMs,
        ...(options.create !== undefined ? { create: options.create } : {}),
        ...(options.adoptExisting !== undefined ? { adoptExisting: options.adoptExisting } : {}),
      });
    case 'etcd':
      return openEtcdStore(config, options);
  }
}

/**
 * Initialises the store a config names (idempotent: an initialised store keeps its identity)
 * and returns it open. `adoptExisting` also gives an identity to a store from before
 * identities, whose watermarks the operator vouches for.
 */
export async function initStore(
  config: StoreConfig,
  options: { adoptExisting?: boolean } = {},
): Promise<WatermarkStore> {
  return openStore(config, { create: true, adoptExisting: options.adoptExisting === true });
}
