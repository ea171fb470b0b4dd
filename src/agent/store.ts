import { openEtcdStore } from '../store/etcd.js';
import { SqliteWatermarkStore } from '../store/sqlite.js';
import type { WatermarkStore } from '../store/types.js';
import type { StoreConfig } from './config.js';

/** Opens the watermark store a config names. */
export async function openStore(config: StoreConfig): Promise<WatermarkStore> {
  switch (config.engine) {
    case 'sqlite':
      return SqliteWatermarkStore.open({ path: config.path, busyTimeoutMs: config.busyTimeoutMs });
    case 'etcd':
      return openEtcdStore(config);
  }
}
