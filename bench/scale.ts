/**
 * One agent guarding many chains: decisions per second and p50/p99 at 1, 10 and 100 concurrent
 * scopes (each scope a closed loop: its next decision as soon as the last one answered), on
 * SQLite, next to the same number of raw single-write durable transactions measured in the same
 * run. Group commit lets concurrent scopes share one fsync; the targets (issue 10) at 100 scopes:
 * throughput ≥ 3× the raw single-transaction baseline, and p99 ≤ 2× the single-scope p99.
 *
 * With etcd on PATH, the same loops run on a local 3-member cluster next to raw
 * compare-and-swap loops (etcd batches concurrent proposals in Raft by itself).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { Etcd3 } from 'etcd3';
import { Ed25519Key } from '../src/keys/ed25519.js';
import { KeyRing } from '../src/keys/keyring.js';
import { GuardedSigner } from '../src/signer/guarded-signer.js';
import { LocalWatermarks } from '../src/signer/local-watermark.js';
import { openEtcdStore } from '../src/store/etcd.js';
import { SqliteWatermarkStore } from '../src/store/sqlite.js';
import type { WatermarkStore } from '../src/store/types.js';
import { EtcdTestCluster, etcdSkip } from '../test/helpers/etcd-cluster.js';
import type { BenchFigure } from './figures.js';
import { cometbftProposal } from './messages.js';

const SCOPES = [1, 10, 100];
const SECONDS = Number(process.env.VIGIL_BENCH_SCALE_SECONDS ?? 3);

interface Figures {
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
}

function figures(latencies: number[], wallMs: number): Figures {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  return { perSecond: (sorted.length / wallMs) * 1000, p50: at(0.5), p99: at(0.99) };
}

/** `scopes` closed loops for SECONDS; `op(scope, n)` is one decision. */
async function loops(
  scopes: number,
  op: (scope: number, n: bigint) => Promise<void>,
): Promise<Figures> {
  const latencies: number[] = [];
  const started = performance.now();
  const end = started + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: scopes }, async (_, scope) => {
      for (let n = 1n; performance.now() < end; n++) {
        const t = performance.now();
        await op(scope, n);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return figures(latencies, performance.now() - started);
}

function guardOn(store: WatermarkStore, dir: string, tag: string) {
  const key = Ed25519Key.fromSeed(new Uint8Array(32).fill(77));
  const keys = new KeyRing();
  const chain = (scope: number) => `scale-${scope}`;
  keys.add({
    id: 'v',
    scopeKeyId: key.publicKeyHex,
    signer: key,
    binding: {
      protocol: 'cometbft',
      chains: new Set(Array.from({ length: Math.max(...SCOPES) }, (_, i) => chain(i))),
    },
  });
  const local = new LocalWatermarks(join(dir, `local-${tag}.db`));
  local.bindStore(store.identity);
  const guard = new GuardedSigner({ store, keys, local, agentId: 'bench' });
  return {
    async decide(scope: number, n: bigint) {
      const r = await guard.sign({
        chainId: chain(scope),
        keyId: 'v',
        payload: cometbftProposal(chain(scope), n),
      });
      if (r.outcome !== 'granted') throw new Error(`refused: ${JSON.stringify(r)}`);
    },
    close: () => local.close(),
  };
}

/** The raw baseline: one durable single-row transaction at a time, as many as it can do. */
function rawSqlite(dir: string) {
  const db = new Database(join(dir, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT NOT NULL) STRICT');
  const put = db.prepare(
    'INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v',
  );
  const tx = db.transaction((k: string, v: string) => put.run(k, v));
  return {
    async write(scope: number, n: bigint) {
      // A new value every time: SQLite skips writing (and the fsync) when a row's bytes are
      // unchanged, which made an earlier version of this baseline 40× too fast.
      tx.immediate(`scope-${scope}`, `${n}|`.padEnd(400, 'x'));
    },
    close: () => db.close(),
  };
}

function line(label: string, f: Figures, extra = ''): void {
  console.log(
    `  ${label.padEnd(34)} ${f.perSecond.toFixed(0).padStart(7)}/s  p50 ${f.p50.toFixed(3)} ms  p99 ${f.p99.toFixed(3)} ms${extra}`,
  );
}

async function sqlite(out: BenchFigure[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-scale-'));
  const raw = rawSqlite(dir);
  try {
    console.log(`Scale on SQLite: closed loops per scope, ${SECONDS} s each`);
    const single: Record<number, Figures> = {};
    for (const scopes of SCOPES) {
      const store = SqliteWatermarkStore.open({
        path: join(dir, `store-${scopes}.db`),
        create: true,
      });
      const guard = guardOn(store, dir, String(scopes));
      try {
        const rawFig = await loops(scopes, (scope, n) => raw.write(scope, n));
        const g = await loops(scopes, (scope, n) => guard.decide(scope, n));
        single[scopes] = g;
        const batch = store.commits.decisions / Math.max(1, store.commits.transactions);
        line(`raw single-write txns, ${scopes} loop(s)`, rawFig, '  (baseline)');
        line(
          `guard, ${scopes} scope(s)`,
          g,
          `  ${(g.perSecond / rawFig.perSecond).toFixed(2)}× raw, ${batch.toFixed(1)} decisions/commit`,
        );
        if (scopes === 100) {
          const p99Ratio = g.p99 / single[1]!.p99;
          out.push(
            {
              name: 'sqlite 100 scopes throughput',
              value: g.perSecond,
              unit: '/s',
              baseline: rawFig.perSecond,
              baselineName: 'raw single-write txns',
              ratio: g.perSecond / rawFig.perSecond,
              target: '≥ 3× raw',
              ok: g.perSecond >= 3 * rawFig.perSecond,
            },
            {
              name: 'sqlite 100 scopes p99',
              value: g.p99,
              unit: 'ms',
              baseline: single[1]!.p99,
              baselineName: 'single-scope p99',
              ratio: p99Ratio,
              target: '≤ 2× single scope',
              ok: p99Ratio <= 2,
            },
          );
        }
      } finally {
        guard.close();
        await store.close();
      }
    }
  } finally {
    raw.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function etcd(out: BenchFigure[]): Promise<void> {
  if (etcdSkip()) {
    console.log('Scale on etcd: skipped (etcd is not on PATH)');
    return;
  }
  const cluster = await EtcdTestCluster.start();
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-scale-etcd-'));
  const raw = new Etcd3({ hosts: cluster.endpoints.map((e) => e.replace('http://', '')) });
  try {
    console.log(
      `Scale on a 3-member etcd cluster (loopback): closed loops per scope, ${SECONDS} s each`,
    );
    for (const scopes of SCOPES) {
      const store = await openEtcdStore(
        { ...cluster.storeConfig(), prefix: `/scale-${scopes}/` },
        { create: true },
      );
      const guard = guardOn(store, dir, `etcd-${scopes}`);
      const revisions = new Map<number, string>();
      try {
        const rawFig = await loops(scopes, async (scope) => {
          const key = `/raw-scale-${scopes}/${scope}`;
          const res = await raw
            .if(key, 'Mod', '==', revisions.get(scope) ?? '0')
            .then(raw.put(key).value('x'.repeat(400)))
            .commit();
          revisions.set(scope, res.header.revision);
        });
        const g = await loops(scopes, (scope, n) => guard.decide(scope, n));
        line(`raw CAS loops, ${scopes}`, rawFig, '  (baseline)');
        line(
          `guard, ${scopes} scope(s)`,
          g,
          `  ${(g.perSecond / rawFig.perSecond).toFixed(2)}× raw`,
        );
        out.push({
          name: `etcd ${scopes} scopes p99`,
          value: g.p99,
          unit: 'ms',
          baseline: rawFig.p99,
          baselineName: 'raw CAS p99',
          ratio: g.p99 / rawFig.p99,
        });
      } finally {
        guard.close();
        await store.close();
      }
    }
  } finally {
    raw.close();
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchFigure[]> {
  const out: BenchFigure[] = [];
  await sqlite(out);
  await etcd(out);
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run();
}
