/**
 * Binds an agent's local watermark to the store it opened, before anything is signed: the
 * store's identity (now, or when an etcd store reached without a quorum first answers) and, on
 * etcd, the id of the cluster that answers. A replaced store has another identity; an etcd
 * cluster restored from a snapshot keeps the identity key but not the cluster id. Either is
 * refused (store_identity) until an operator acknowledges it with `vigil state adopt`.
 */
import { StoreUnavailableError } from '../errors.js';
import type { LocalWatermarks } from '../signer/local-watermark.js';
import { EtcdWatermarkStore } from '../store/etcd.js';
import type { WatermarkStore } from '../store/types.js';

export function bindLocalWatermarks(local: LocalWatermarks, store: WatermarkStore): void {
  if (store instanceof EtcdWatermarkStore) store.verifyClusterWith((id) => local.checkCluster(id));
  try {
    local.bindStore(store.identity);
  } catch (err) {
    // An etcd store without its identity yet: the guard binds it at the first decision.
    if (!(err instanceof StoreUnavailableError)) throw err;
  }
}
