/** Leadership of exclusive roles on whichever store engine the agent uses. */
import { EtcdWatermarkStore } from '../store/etcd.js';
import { SqliteWatermarkStore } from '../store/sqlite.js';
import type { WatermarkStore } from '../store/types.js';
import { EtcdLeaderElection } from './etcd.js';
import { SqliteLeaderElection } from './sqlite.js';
import type { LeaderElection, LeaseTiming } from './types.js';

export { EtcdLeaderElection } from './etcd.js';
export { SqliteLeaderElection } from './sqlite.js';
export * from './types.js';

/**
 * The election for `role` on the same engine (and, for etcd, the same connection and prefix)
 * as `store`, so the fence tokens it hands out are the ones `store.update` checks.
 */
export function openElection(
  store: WatermarkStore,
  role: string,
  holderId: string,
  timing: LeaseTiming,
): LeaderElection {
  if (store instanceof EtcdWatermarkStore)
    return new EtcdLeaderElection(store.client, store.config.prefix, role, holderId, timing);
  if (store instanceof SqliteWatermarkStore)
    return new SqliteLeaderElection(store.path, role, holderId, timing);
  throw new Error(`no leader election for store engine ${store.engine}`);
}
