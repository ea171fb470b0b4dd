/** The validators' countersigning loop on a real SQLite file and a real 3-member etcd cluster. */
import { after, before, describe } from 'node:test';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openEtcdStore } from '../../src/store/etcd.js';
import { RegistryStore } from '../../src/registry/store.js';
import { EtcdRegistryCells, registryKey } from '../../src/registry/store-etcd.js';
import { SqliteRegistryCells } from '../../src/registry/store-sqlite.js';
import { EtcdTestCluster, etcdSkip } from '../helpers/etcd-cluster.js';
import { tempDir } from '../helpers/guard-fixtures.js';
import { NOW, SET } from './fixtures.js';
import { countersignerSuite } from './countersigner-suite.js';

let dirs = 0;
let root: string;
let cleanup: () => void;
before(() => ({ dir: root, cleanup } = tempDir('vigil-countersigner-')));
after(() => cleanup());
const freshDir = () => join(root, `d${dirs++}`);

describe('countersigner on SQLite', () => {
  let path: string;
  before(async () => {
    path = join(freshDir(), 'registry.db');
    await new SqliteRegistryCells({ path, create: true }).close();
  });
  countersignerSuite({
    open: async () =>
      new RegistryStore(new SqliteRegistryCells({ path }), { validators: SET, nowMs: () => NOW }),
    writeRaw: async (subject, bytes) => {
      const seq = Buffer.from(bytes).readBigUInt64BE(3 + Buffer.from(bytes).readUInt16BE(1) + 64);
      const db = new Database(path);
      try {
        db.prepare(
          'INSERT INTO records (subject, seq, record) VALUES (?, ?, ?) ON CONFLICT (subject) DO UPDATE SET seq = excluded.seq, record = excluded.record',
        ).run(subject, seq, Buffer.from(bytes));
      } finally {
        db.close();
      }
    },
    dir: freshDir,
    tag: 120,
  });
});

describe('countersigner on etcd', { skip: etcdSkip() }, () => {
  let cluster: EtcdTestCluster;
  const prefix = '/vigil-countersigner-test/';
  before(async () => {
    cluster = await EtcdTestCluster.start({ size: 3 });
    await (await openEtcdStore(cluster.storeConfig({ prefix }), { create: true })).close();
  });
  after(async () => cluster?.close());
  countersignerSuite({
    open: async () =>
      new RegistryStore(await EtcdRegistryCells.open(cluster.client(2000), { prefix }), {
        validators: SET,
        nowMs: () => NOW,
      }),
    writeRaw: async (subject, bytes) => {
      const c = cluster.client();
      try {
        await c.txn(
          'raw put',
          [],
          [{ put: { key: registryKey(prefix, subject), value: Buffer.from(bytes) } }],
          [],
        );
      } finally {
        c.close();
      }
    },
    dir: freshDir,
    tag: 140,
  });
});
