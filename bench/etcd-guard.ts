/**
 * The guard decision on a 3-member etcd cluster on loopback, next to the raw operation it is
 * built on, measured in the same run and alternated op by op:
 *
 *   guard:     GuardedSigner.sign (slot family, rising slots, Ed25519) on EtcdWatermarkStore
 *   baseline:  a raw etcd3 compare-and-swap: Txn(if mod_revision == last then put) through
 *              etcd3's own builder API, one key, same record size
 *
 * One request in flight on each side. Target (issue 3): guard p50 ≤ 1.25× raw p50.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Etcd3 } from 'etcd3';
import { Ed25519Key } from '../src/keys/ed25519.js';
import { KeyRing } from '../src/keys/keyring.js';
import { GuardedSigner } from '../src/signer/guarded-signer.js';
import { LocalWatermarks } from '../src/signer/local-watermark.js';
import { encodeRecord } from '../src/store/record-codec.js';
import { openEtcdStore } from '../src/store/etcd.js';
import { EtcdTestCluster } from '../test/helpers/etcd-cluster.js';
import type { BenchFigure } from './figures.js';

export const needsEtcd = true;
const OPS = Number(process.env.VIGIL_BENCH_ETCD_OPS ?? 1500);
const WARMUP = 100;
const PAYLOAD = new Uint8Array(96).fill(7);

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

export async function run(): Promise<BenchFigure[]> {
  const cluster = await EtcdTestCluster.start();
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-etcd-'));
  const store = await openEtcdStore(cluster.storeConfig(), { create: true });
  const raw = new Etcd3({ hosts: cluster.endpoints.map((e) => e.replace('http://', '')) });
  const local = new LocalWatermarks(join(dir, 'local.db'));
  local.bindStore(store.identity);
  try {
    const key = Ed25519Key.fromSeed(new Uint8Array(32).fill(42));
    const keys = new KeyRing();
    keys.add({ id: 'bench', scopeKeyId: key.publicKeyHex, signer: key });
    const signer = new GuardedSigner({ store, keys, local, agentId: 'bench' });
    const rawKey = '/vigil-bench/raw';
    let rawRev = 0n;
    const record = encodeRecord({
      family: 'slot',
      position: [1n],
      payloadHash: new Uint8Array(32).fill(1),
      signature: key.sign(PAYLOAD),
      writer: 'bench',
      updatedAtMs: Date.now(),
    });
    let slot = 0n;
    const guardOp = async () => {
      const r = await signer.sign({
        family: 'slot',
        chainId: 'bench',
        keyId: 'bench',
        slot: ++slot,
        payload: PAYLOAD,
      });
      if (r.outcome !== 'granted') throw new Error(`guard refused: ${JSON.stringify(r)}`);
    };
    const rawOp = async () => {
      const res = await raw
        .if(rawKey, 'Mod', '==', rawRev.toString())
        .then(raw.put(rawKey).value(record))
        .commit();
      if (!res.succeeded) throw new Error('raw CAS lost a race it cannot lose');
      rawRev = BigInt(res.header.revision);
    };
    for (let i = 0; i < WARMUP; i++) {
      await guardOp();
      await rawOp();
    }
    const g: number[] = [];
    const r: number[] = [];
    let gWall = 0;
    let rWall = 0;
    for (let i = 0; i < OPS; i++) {
      // Alternate which side goes first so neither always follows the other's fsync.
      const order = i % 2 === 0 ? ([guardOp, rawOp] as const) : ([rawOp, guardOp] as const);
      for (const op of order) {
        const t = performance.now();
        await op();
        const dt = performance.now() - t;
        if (op === guardOp) {
          g.push(dt);
          gWall += dt;
        } else {
          r.push(dt);
          rWall += dt;
        }
      }
    }
    g.sort((a, b) => a - b);
    r.sort((a, b) => a - b);
    const figures: BenchFigure[] = [];
    const add = (
      name: string,
      value: number,
      baseline: number,
      unit: string,
      target?: string,
      ok?: boolean,
    ) =>
      figures.push({
        name,
        value,
        unit,
        baseline,
        baselineName: 'raw etcd3 CAS',
        ratio: value / baseline,
        ...(target ? { target, ok } : {}),
      });
    const p50 = pct(g, 50) / pct(r, 50);
    add('etcd guard p50', pct(g, 50), pct(r, 50), 'ms', '≤ 1.25× raw', p50 <= 1.25);
    add('etcd guard p99', pct(g, 99), pct(r, 99), 'ms');
    add('etcd guard throughput', (OPS * 1000) / gWall, (OPS * 1000) / rWall, ' ops/s');
    console.log(`etcd guard on a 3-member loopback cluster, ${OPS} ops each side, one in flight`);
    console.log(
      `  guard p50 ${pct(g, 50).toFixed(3)} ms  p99 ${pct(g, 99).toFixed(3)} ms  ${((OPS * 1000) / gWall).toFixed(0)} ops/s`,
    );
    console.log(
      `  raw   p50 ${pct(r, 50).toFixed(3)} ms  p99 ${pct(r, 99).toFixed(3)} ms  ${((OPS * 1000) / rWall).toFixed(0)} ops/s`,
    );
    console.log(
      `  ratio p50 ${p50.toFixed(2)}×  p99 ${(pct(g, 99) / pct(r, 99)).toFixed(2)}×  (target p50 ≤ 1.25×)`,
    );
    return figures;
  } finally {
    raw.close();
    await store.close();
    local.close();
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
