/**
 * The guard decision on a 3-member etcd cluster on loopback, next to the raw operation it is
 * built on, measured in the same run and alternated op by op:
 *
 *   guard:     GuardedSigner.sign (GRANDPA prevotes, rising rounds, Ed25519) on EtcdWatermarkStore
 *   baseline:  a raw etcd3 compare-and-swap: Txn(if mod_revision == last then put) through
 *              etcd3's own builder API, one key, same record size
 *
 * One request in flight on each side. Target (issue 3): guard p50 ≤ 1.25× raw p50. The guard
 * compares the stored record bytes (issue 10: revisions repeat after a restore), the raw CAS
 * only mod_revision, so the ratio includes the cost of that choice.
 *
 * Then many scopes at a steady rate (issue 10, part 5): SCOPES scopes, each one decision per
 * second, on one agent (one store connection, one signer), next to SCOPES raw CAS loops on
 * their own keys at the same rate, all running at once on the same cluster for
 * VIGIL_BENCH_SCOPES_SECONDS. Target: guard decision p99 ≤ 25 ms.
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
import { BENCH_CHAIN, cometbftProposal, grandpaPrevote } from './messages.js';

export const needsEtcd = true;
const OPS = Number(process.env.VIGIL_BENCH_ETCD_OPS ?? 1500);
const WARMUP = 100;
const PAYLOAD = new Uint8Array(96).fill(7);
const SCOPES = Number(process.env.VIGIL_BENCH_SCOPES ?? 100);
const SCOPES_SECONDS = Number(process.env.VIGIL_BENCH_SCOPES_SECONDS ?? 20);

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/**
 * SCOPES guard loops (one chain id each, so one watermark each) and SCOPES raw CAS loops,
 * each ticking once a second on its own phase, for SCOPES_SECONDS. Returns sorted latencies.
 */
async function manyScopes(
  signer: GuardedSigner,
  raw: Etcd3,
  record: string,
): Promise<{ guard: number[]; raw: number[] }> {
  const guard: number[] = [];
  const rawTimes: number[] = [];
  let start = 0;
  let end = 0;
  const tick = async (phase: number, op: () => Promise<void>, into: number[]) => {
    // One untimed op first: an agent serving a scope has it cached, as the raw loop has
    // its revision; the first decision of a scope reads it.
    await op();
    for (let due = start + phase; due < end; due += 1000) {
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const t = performance.now();
      await op();
      into.push(performance.now() - t);
    }
  };
  const loops: Promise<void>[] = [];
  start = performance.now() + 2000;
  end = start + SCOPES_SECONDS * 1000;
  for (let i = 0; i < SCOPES; i++) {
    let slot = 0n;
    const chainId = `bench-scope-${i}`;
    loops.push(
      tick(
        (i * 1000) / SCOPES,
        async () => {
          // One CometBFT key serving every scope's chain (its sign bytes name the chain).
          const r = await signer.sign({
            chainId,
            keyId: 'bench-cometbft',
            payload: cometbftProposal(chainId, ++slot),
          });
          if (r.outcome !== 'granted') throw new Error(`guard refused: ${r.outcome}`);
        },
        guard,
      ),
    );
    const key = `/vigil-bench/raw-scope-${i}`;
    let rev = 0n;
    loops.push(
      tick(
        (i * 1000) / SCOPES + 500 / SCOPES,
        async () => {
          const res = await raw
            .if(key, 'Mod', '==', rev.toString())
            .then(raw.put(key).value(record))
            .commit();
          if (!res.succeeded) throw new Error('raw CAS lost a race it cannot lose');
          rev = BigInt(res.header.revision);
        },
        rawTimes,
      ),
    );
  }
  await Promise.all(loops);
  return { guard: guard.sort((a, b) => a - b), raw: rawTimes.sort((a, b) => a - b) };
}

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
    keys.add({
      id: 'bench',
      scopeKeyId: key.publicKeyHex,
      signer: key,
      binding: { protocol: 'grandpa', chains: new Set([BENCH_CHAIN]), blockNumber: 'u32' },
    });
    const cometbftKey = Ed25519Key.fromSeed(new Uint8Array(32).fill(43));
    keys.add({
      id: 'bench-cometbft',
      scopeKeyId: cometbftKey.publicKeyHex,
      signer: cometbftKey,
      binding: {
        protocol: 'cometbft',
        chains: new Set(Array.from({ length: SCOPES }, (_, i) => `bench-scope-${i}`)),
      },
    });
    const signer = new GuardedSigner({ store, keys, local, agentId: 'bench' });
    const rawKey = '/vigil-bench/raw';
    let rawRev = 0n;
    const record = encodeRecord({
      family: 'grandpa',
      position: [0n, 1n, 2n],
      payloadHash: new Uint8Array(32).fill(1),
      signature: key.sign(PAYLOAD),
      writer: 'bench',
      updatedAtMs: Date.now(),
    });
    let slot = 0n;
    const guardOp = async () => {
      const r = await signer.sign({
        chainId: BENCH_CHAIN,
        keyId: 'bench',
        payload: grandpaPrevote(++slot),
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

    // Many scopes at one decision per second each, guard and raw loops side by side.
    const steady = await manyScopes(signer, raw, record);
    const sp99 = pct(steady.guard, 99);
    add(`${SCOPES} scopes @1/s p50`, pct(steady.guard, 50), pct(steady.raw, 50), 'ms');
    add(`${SCOPES} scopes @1/s p99`, sp99, pct(steady.raw, 99), 'ms', '≤ 25 ms', sp99 <= 25);
    console.log(
      `${SCOPES} scopes at 1 decision/s each for ${SCOPES_SECONDS} s, next to ${SCOPES} raw CAS loops at the same rate`,
    );
    console.log(
      `  guard ${steady.guard.length} decisions  p50 ${pct(steady.guard, 50).toFixed(3)} ms  p99 ${sp99.toFixed(3)} ms  max ${steady.guard.at(-1)!.toFixed(3)} ms  (target p99 ≤ 25 ms)`,
    );
    console.log(
      `  raw   ${steady.raw.length} CAS        p50 ${pct(steady.raw, 50).toFixed(3)} ms  p99 ${pct(steady.raw, 99).toFixed(3)} ms  max ${steady.raw.at(-1)!.toFixed(3)} ms`,
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
