/**
 * What parsing costs a decision. The guard reads every position out of the signed bytes
 * (CometBFT sign bytes, a GRANDPA vote, a Substrate header); the target is that this costs at
 * most 10 % of a guarded decision. Both are measured in this run: the decision is
 * GuardedSigner.sign of a GRANDPA prevote on a real SQLite file (as bench/guard.ts), and the
 * parse is `parseSignable` for each protocol's message, timed over many iterations.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { KeyBinding } from '../src/keys/binding.js';
import { Ed25519Key } from '../src/keys/ed25519.js';
import { KeyRing } from '../src/keys/keyring.js';
import { encodeBabePreDigest, encodeHeader } from '../src/protocols/substrate/header.js';
import { GuardedSigner } from '../src/signer/guarded-signer.js';
import { LocalWatermarks } from '../src/signer/local-watermark.js';
import { parseSignable } from '../src/signer/signable.js';
import { SqliteWatermarkStore } from '../src/store/sqlite.js';
import type { BenchFigure } from './figures.js';
import { BENCH_CHAIN, cometbftProposal, grandpaPrevote } from './messages.js';

const DECISIONS = Number(process.env.VIGIL_BENCH_PARSE_DECISIONS ?? 2000);
const PARSES = 20_000;

const chains = new Set([BENCH_CHAIN]);
const bindings: Record<string, KeyBinding> = {
  cometbft: { protocol: 'cometbft', chains },
  grandpa: { protocol: 'grandpa', chains, blockNumber: 'u32' },
  babe: { protocol: 'babe', chains },
};

function babeHeader(slot: bigint): Uint8Array {
  return encodeHeader({
    parentHash: new Uint8Array(32).fill(1),
    number: 1_000_000n,
    stateRoot: new Uint8Array(32).fill(2),
    extrinsicsRoot: new Uint8Array(32).fill(3),
    digest: [
      {
        kind: 'preRuntime',
        engine: 'BABE',
        data: encodeBabePreDigest({
          type: 'primary',
          authorityIndex: 3,
          slot,
          vrfOutput: new Uint8Array(32).fill(4),
          vrfProof: new Uint8Array(64).fill(5),
        }),
      },
    ],
  });
}

/** Median of `rounds` timings of `n` parses, in microseconds per parse. */
function parseMicros(protocol: string, payloads: Uint8Array[]): number {
  const binding = bindings[protocol]!;
  const rounds: number[] = [];
  for (let round = 0; round < 7; round++) {
    const t = performance.now();
    for (let i = 0; i < PARSES; i++)
      parseSignable(binding, BENCH_CHAIN, payloads[i % payloads.length]!, false);
    rounds.push(((performance.now() - t) * 1000) / PARSES);
  }
  return rounds.sort((a, b) => a - b)[3]!;
}

async function decisionP50Micros(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-parse-'));
  const store = SqliteWatermarkStore.open({ path: join(dir, 'store.db'), create: true });
  const local = new LocalWatermarks(join(dir, 'local.db'));
  local.bindStore(store.identity);
  try {
    const key = Ed25519Key.fromSeed(new Uint8Array(32).fill(9));
    const keys = new KeyRing();
    keys.add({
      id: 'bench',
      scopeKeyId: key.publicKeyHex,
      signer: key,
      binding: bindings.grandpa!,
    });
    const signer = new GuardedSigner({ store, keys, local, agentId: 'bench' });
    const latencies: number[] = [];
    for (let i = 1; i <= DECISIONS; i++) {
      const t = performance.now();
      const r = await signer.sign({
        chainId: BENCH_CHAIN,
        keyId: 'bench',
        payload: grandpaPrevote(BigInt(i)),
      });
      latencies.push((performance.now() - t) * 1000);
      if (r.outcome !== 'granted') throw new Error(`refused: ${JSON.stringify(r)}`);
    }
    return latencies.sort((a, b) => a - b)[Math.floor(latencies.length / 2)]!;
  } finally {
    local.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchFigure[]> {
  const decision = await decisionP50Micros();
  const samples = Array.from({ length: 64 }, (_, i) => BigInt(i + 1));
  const parses: Record<string, number> = {
    cometbft: parseMicros(
      'cometbft',
      samples.map((h) => cometbftProposal(BENCH_CHAIN, h)),
    ),
    grandpa: parseMicros('grandpa', samples.map(grandpaPrevote)),
    babe: parseMicros('babe', samples.map(babeHeader)),
  };
  console.log(
    `Parsing the signed bytes, next to a guarded decision on SQLite (p50 ${decision.toFixed(1)} µs, GRANDPA prevotes)`,
  );
  const figures: BenchFigure[] = [];
  for (const [protocol, micros] of Object.entries(parses)) {
    const ratio = micros / decision;
    console.log(
      `  ${protocol.padEnd(9)} parse ${micros.toFixed(2).padStart(6)} µs   ${(ratio * 100).toFixed(1)} % of a decision (target ≤ 10 %)`,
    );
    figures.push({
      name: `${protocol} parse`,
      value: micros,
      unit: 'µs',
      baseline: decision,
      baselineName: 'guarded decision p50',
      ratio,
      target: '≤ 0.10× a decision',
      ok: ratio <= 0.1,
    });
  }
  return figures;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run();
}
