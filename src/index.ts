/** Library entry point: the guard's rules and the store interface, for embedding Vigil. */
export * from './guard/index.js';
export type { WatermarkScope, WatermarkStore, StoreUpdate } from './store/types.js';
export { SqliteWatermarkStore } from './store/sqlite.js';
export { GuardedSigner } from './signer/guarded-signer.js';
export { VigilError } from './errors.js';
