/**
 * The full CometBFT signing round trip, measured from the node's side:
 *
 *   simulated node → SecretConnection → signer → guard (store commit) → back → verified
 *
 * next to a bare Ed25519 signature with node:crypto, measured in the same run as the floor.
 * Store engines: SQLite, and a 3-member etcd cluster on loopback (skipped loudly without the
 * etcd binary, a failure under VIGIL_REQUIRE_ETCD=1). Target: p50 ≤ 5 ms with etcd.
 */
import { sign as cryptoSign, createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { CometbftSignerConfigSchema } from '../src/chains/cometbft/config.js';
import { startCometbftSigner } from '../src/chains/cometbft/signer.js';
import { CometbftNodeSimulator } from '../src/devnet/cometbft-node.js';
import { voteSignBytes } from '../src/protocols/cometbft/sign-bytes.js';
import { Ed25519Key } from '../src/keys/ed25519.js';
import { KeyRing } from '../src/keys/keyring.js';
import { GuardedSigner } from '../src/signer/guarded-signer.js';
import { LocalWatermarks } from '../src/signer/local-watermark.js';
import { spawnSync } from 'node:child_process';
import { DevnetEtcdCluster } from '../src/devnet/etcd-cluster.js';
import { openEtcdStore } from '../src/store/etcd.js';
import { SqliteWatermarkStore } from '../src/store/sqlite.js';
import type { WatermarkStore } from '../src/store/types.js';

/** A store engine to benchmark; `open` gets a fresh temp directory. */
export interface StoreEngineForBench {
  readonly name: string;
  readonly needsEtcd?: boolean;
  open(dir: string): Promise<{ store: WatermarkStore; close(): Promise<void> }>;
}

export const STORE_ENGINES: StoreEngineForBench[] = [
  {
    name: 'sqlite',
    open: async (dir) => {
      const store = SqliteWatermarkStore.open({ path: join(dir, 'store.db'), create: true });
      return { store, close: () => store.close() };
    },
  },
  {
    name: 'etcd (3 members)',
    needsEtcd: true,
    open: async (dir) => {
      const cluster = await DevnetEtcdCluster.start({ dir });
      try {
        const store = await openEtcdStore({ endpoints: cluster.endpoints }, { create: true });
        return {
          store,
          close: async () => {
            await store.close();
            await cluster.stop();
          },
        };
      } catch (err) {
        await cluster.stop();
        throw err;
      }
    },
  },
];

const etcdOnPath = () => spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0;

interface Figures {
  readonly p50: number;
  readonly p99: number;
  readonly perSecond: number;
}

function figures(samplesMs: number[], wallMs: number): Figures {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: at(0.5), p99: at(0.99), perSecond: (samplesMs.length / wallMs) * 1000 };
}

const SEED = new Uint8Array(32).fill(7);
const CHAIN_ID = 'bench-1';

function bareEd25519(n: number): Figures {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), SEED]);
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  const samples: number[] = [];
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    const bytes = voteSignBytes({
      type: 1,
      height: BigInt(i + 1),
      round: 0n,
      timestamp: { seconds: 1_700_000_000n, nanos: 0 },
      chainId: CHAIN_ID,
    });
    const t0 = performance.now();
    cryptoSign(null, bytes, key);
    samples.push(performance.now() - t0);
  }
  return figures(samples, performance.now() - started);
}

async function roundTrip(engine: StoreEngineForBench, n: number): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-cometbft-'));
  const opened = await engine.open(dir);
  const store = opened.store;
  const local = new LocalWatermarks(join(dir, 'local.db'));
  local.bindStore(store.identity);
  const keys = new KeyRing();
  const validator = Ed25519Key.fromSeed(SEED);
  keys.add({
    id: 'validator',
    scopeKeyId: validator.publicKeyHex,
    signer: validator,
    binding: { protocol: 'cometbft', chains: new Set([CHAIN_ID]) },
  });
  const guard = new GuardedSigner({ store, keys, local, agentId: 'bench' });
  const heights = BigInt(Math.ceil(n / 2));
  const sim = await CometbftNodeSimulator.start({
    chainId: CHAIN_ID,
    protocol: 'v0.38',
    validatorPublicKey: validator.publicKey,
    blockTimeMs: 0,
    lastHeight: heights,
    isProposer: () => false,
  });
  const config = CometbftSignerConfigSchema.parse({
    chains: [
      {
        chainId: CHAIN_ID,
        keyId: 'validator',
        nodes: [sim.address],
        connectionKeyFile: join(dir, 'connection.key'),
      },
    ],
  });
  const signer = await startCometbftSigner({
    config,
    guard,
    publicKeyOf: (id) => keys.get(id)?.signer?.publicKey,
  });
  try {
    const started = performance.now();
    await sim.waitForHeight(heights, 600_000);
    const wall = performance.now() - started;
    if (sim.refused.length > 0 || !sim.signed.every((r) => r.verified))
      throw new Error('the benchmark run refused or returned an invalid signature');
    return figures(sim.latenciesMs, wall);
  } finally {
    await signer.stop();
    await sim.stop();
    await opened.close();
    local.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const ms = (x: number) => `${x.toFixed(3)} ms`;

export async function run(): Promise<void> {
  const n = Number(process.env.VIGIL_BENCH_N ?? 2000);
  const floor = bareEd25519(n);
  console.log(
    `CometBFT round trip, ${n} signatures each (node → SecretConnection → signer → guard → node)`,
  );
  console.log(
    `  bare Ed25519 (node:crypto)   p50 ${ms(floor.p50)}  p99 ${ms(floor.p99)}  ${floor.perSecond.toFixed(0)} sig/s`,
  );
  for (const engine of STORE_ENGINES) {
    if (engine.needsEtcd && !etcdOnPath()) {
      if (process.env.VIGIL_REQUIRE_ETCD === '1')
        throw new Error('VIGIL_REQUIRE_ETCD=1 but etcd is not on PATH');
      console.log(
        `  !!! round trip, ${engine.name}: SKIPPED, etcd is not on PATH (apt-get install etcd-server) !!!`,
      );
      continue;
    }
    const f = await roundTrip(engine, n);
    console.log(
      `  round trip, ${engine.name.padEnd(16)} p50 ${ms(f.p50)}  p99 ${ms(f.p99)}  ${f.perSecond.toFixed(0)} sig/s` +
        `  (p50 ${(f.p50 / floor.p50).toFixed(1)}× bare, throughput ${(floor.perSecond / f.perSecond).toFixed(1)}× lower)` +
        (engine.needsEtcd ? `; p50 ${(f.p50 / 5).toFixed(2)}× the 5 ms target` : ''),
    );
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run();
}
