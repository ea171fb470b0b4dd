/**
 * `npm run bench`: imports every module directly under bench/ that exports `run()`, runs them
 * one after another, and prints a summary. A module that needs etcd is skipped, loudly, when
 * the `etcd` binary is not on PATH (VIGIL_REQUIRE_ETCD=1 turns that into a failure), and so is
 * one whose `skipReason()` returns a reason (e.g. a local fleet without root). A module
 * that throws is reported and the others still run; the exit code says whether any failed.
 * bench/long/ (the ten-minute chaos run) has its own script, `npm run chaos:long`.
 *
 * Optional arguments filter modules by name: `node dist/bench/run.js guard`.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isBenchFigureList, type BenchFigure } from './figures.js';

const here = dirname(fileURLToPath(import.meta.url));
const HELPERS = new Set(['run.js', 'figures.js']);

function etcdOnPath(): boolean {
  return spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0;
}

function needsEtcd(name: string, mod: Record<string, unknown>): boolean {
  return mod.needsEtcd === true || /^etcd/i.test(name);
}

const banner = (text: string) => {
  const line = '!'.repeat(Math.max(60, text.length + 8));
  console.log(`\n${line}\n!!! ${text}\n${line}\n`);
};

interface Outcome {
  readonly name: string;
  readonly status: 'ok' | 'skipped' | 'failed';
  readonly seconds: number;
  readonly note?: string;
  readonly figures: BenchFigure[];
}

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  const files = readdirSync(here)
    .filter((f) => f.endsWith('.js') && !HELPERS.has(f))
    .filter((f) => filters.length === 0 || filters.some((p) => f.includes(p)))
    .sort();
  const haveEtcd = etcdOnPath();
  const outcomes: Outcome[] = [];
  for (const file of files) {
    const name = file.replace(/\.js$/, '');
    const mod = (await import(pathToFileURL(join(here, file)).href)) as Record<string, unknown>;
    if (typeof mod.run !== 'function') continue;
    if (needsEtcd(name, mod) && !haveEtcd) {
      const note = 'etcd is not on PATH (Debian: apt-get install etcd-server)';
      if (process.env.VIGIL_REQUIRE_ETCD === '1') {
        banner(`FAILED ${name}: ${note}, and VIGIL_REQUIRE_ETCD=1`);
        outcomes.push({ name, status: 'failed', seconds: 0, note, figures: [] });
      } else {
        banner(`SKIPPED ${name}: ${note}`);
        outcomes.push({ name, status: 'skipped', seconds: 0, note, figures: [] });
      }
      continue;
    }
    // A module that needs more than etcd (root, system tools) says why it cannot run here.
    const skipWhy =
      typeof mod.skipReason === 'function' ? (mod.skipReason as () => unknown)() : undefined;
    if (typeof skipWhy === 'string') {
      banner(`SKIPPED ${name}: ${skipWhy}`);
      outcomes.push({ name, status: 'skipped', seconds: 0, note: skipWhy, figures: [] });
      continue;
    }
    console.log(`\n=== ${name}`);
    const started = performance.now();
    try {
      const result: unknown = await (mod.run as () => Promise<unknown>)();
      outcomes.push({
        name,
        status: 'ok',
        seconds: (performance.now() - started) / 1000,
        figures: isBenchFigureList(result) ? result : [],
      });
    } catch (err) {
      const note = err instanceof Error ? err.message : String(err);
      // A module that brings up etcd only for part of its work fails that way without it.
      if (!haveEtcd && /etcd/i.test(note) && process.env.VIGIL_REQUIRE_ETCD !== '1') {
        banner(`SKIPPED ${name}: it needs etcd, which is not on PATH (${note})`);
        outcomes.push({
          name,
          status: 'skipped',
          seconds: (performance.now() - started) / 1000,
          note: 'etcd is not on PATH',
          figures: [],
        });
        continue;
      }
      banner(`FAILED ${name}: ${note}`);
      if (err instanceof Error && err.stack) console.log(err.stack);
      outcomes.push({
        name,
        status: 'failed',
        seconds: (performance.now() - started) / 1000,
        note,
        figures: [],
      });
    }
  }

  console.log('\n=== summary');
  for (const o of outcomes) {
    console.log(
      `  ${o.status.toUpperCase().padEnd(7)} ${o.name.padEnd(28)} ${o.seconds.toFixed(1)} s${o.note ? `  (${o.note})` : ''}`,
    );
    for (const f of o.figures) {
      const fmt = (v: number) =>
        f.unit === 'ms' ? `${v.toFixed(3)} ms` : `${v.toFixed(0)}${f.unit}`;
      const base =
        f.baseline !== undefined
          ? `  vs ${fmt(f.baseline)} ${f.baselineName ?? 'baseline'}` +
            (f.ratio !== undefined ? ` = ${f.ratio.toFixed(2)}×` : '')
          : '';
      const target =
        f.target !== undefined ? `  target ${f.target}: ${f.ok ? 'met' : 'NOT MET'}` : '';
      console.log(`            ${f.name.padEnd(30)} ${fmt(f.value)}${base}${target}`);
    }
  }
  if (outcomes.length === 0) console.log('  no bench module matched');
  return outcomes.some((o) => o.status === 'failed') ? 1 : 0;
}

process.exit(await main());
