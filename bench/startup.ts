/**
 * How long `vigil` takes to start: the wall time of `node dist/src/cli/run.js --help` (every
 * command is defined, none runs), next to `node -e ''` measured in the same run, alternating,
 * so the ratio says what Vigil adds to Node's own start. Commands load their heavy modules
 * (fastify, etcd's gRPC client, SQLite, the devnet) only when they run. Issue 11's target is
 * the first command under 3 s; here it is a small multiple of a bare Node start.
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchFigure } from './figures.js';

const RUNS = Number(process.env.VIGIL_BENCH_STARTUP_RUNS ?? 15);
const CLI = fileURLToPath(new URL('../src/cli/run.js', import.meta.url));

function wallMs(args: string[]): number {
  const started = performance.now();
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = performance.now() - started;
  if (r.status !== 0)
    throw new Error(`node ${args.join(' ')} exited ${r.status ?? r.signal}: ${String(r.stderr)}`);
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(): Promise<BenchFigure[]> {
  // One of each first, to warm the file cache; then alternate so load hits both alike.
  wallMs(['-e', '']);
  wallMs([CLI, '--help']);
  const bare: number[] = [];
  const help: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    bare.push(wallMs(['-e', '']));
    help.push(wallMs([CLI, '--help']));
  }
  const value = median(help);
  const baseline = median(bare);
  const ratio = value / baseline;
  console.log(
    `vigil --help: median ${value.toFixed(0)} ms over ${RUNS} runs; node -e '': ${baseline.toFixed(0)} ms; ` +
      `ratio ${ratio.toFixed(2)}×`,
  );
  return [
    {
      name: 'vigil --help start (median wall time)',
      value: Math.round(value),
      unit: 'ms',
      baseline: Math.round(baseline),
      baselineName: "node -e ''",
      ratio: Number(ratio.toFixed(2)),
      target: '≤ 3000 ms (issue 11)',
      ok: value <= 3000,
    },
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run();
}
