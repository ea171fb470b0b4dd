/**
 * A worker thread with its own connection to a registry SQLite file: submits `count` records
 * for one subject on top of whatever is committed, and posts the seqs it was given.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RegistryStore } from '../../src/registry/store.js';
import { SqliteRegistryCells } from '../../src/registry/store-sqlite.js';
import { NOW, SET, keyOf, submitOnTop } from './fixtures.js';

const { path, worker, count, subjectTag } = workerData as {
  path: string;
  worker: number;
  count: number;
  subjectTag: number;
};
const store = new RegistryStore(new SqliteRegistryCells({ path }), {
  validators: SET,
  nowMs: () => NOW,
});
const seqs: Array<{ seq: string; tag: number }> = [];
try {
  for (let i = 0; i < count; i++) {
    const tag = worker * 10_000 + i + 1;
    seqs.push({ seq: String(await submitOnTop(store, keyOf(subjectTag), tag)), tag });
  }
  parentPort!.postMessage({ seqs });
} catch (err) {
  parentPort!.postMessage({
    error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
  });
} finally {
  await store.close();
}
