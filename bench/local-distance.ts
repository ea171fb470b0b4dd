/**
 * Distance, measured on the local fleet (issue 13, item 4): a planned fleet applied on this
 * machine (`vigil apply --local`: one network namespace per host, the rendered nftables,
 * WireGuard, the etcd guard with mutual TLS, the real Vigil agent), with its three guard
 * members placed in three "regions" by slow links (src/provision/local/delay.ts: a delaying
 * UDP relay on the WireGuard path between two hosts, since this kernel has no netem):
 *
 *   region A: validator, guard-1     A–B 20 ms   A–C 80 ms   B–C 150 ms (round trips)
 *   region B: guard-2                (VIGIL_BENCH_DISTANCE_RTT="20,80,150")
 *   region C: guard-3
 *
 * It reports CometBFT sign latency p50/p99 through the validator's real agent (privval over
 * SecretConnection → agent → guard → etcd quorum over WireGuard → back, timed by a node
 * standing in for the validator's simulated one on its rendered priv_validator_laddr) next
 * to a raw etcd compare-and-swap sent from the same namespace to the same cluster with the
 * agent's own certificate, interleaved in blocks in the same run (bench/local/distance-probe.ts),
 * with the raft leader in region A and then in region C. Target: sign p50 ≤ 1.25× the raw
 * quorum write. Reference: Horcrux's published figure, a vote costs 300–800 ms at 100–200 ms RTT.
 *
 * bench/distance.ts is kept beside it: the same regions on loopback with delaying TCP proxies
 * and the guard in-process; it needs no root and isolates the guard from the agent and the VPN.
 * This one needs root, ip, nft, wg, wireguard-go and etcd; without them it prints why it skips.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { kernelHasNetem, slowLink } from '../src/provision/local/delay.js';
import { REQUIRED_TOOLS, missingTools } from '../src/provision/local/exec.js';
import { applyLocal, destroyLocal } from '../src/provision/local/fleet.js';
import {
  NodeProcessConfigSchema,
  RenderedNodeConfigSchema,
  hostPort,
} from '../src/provision/local/node-config.js';
import { stopProcess } from '../src/provision/local/processes.js';
import type { RunRecord } from '../src/provision/local/run-record.js';
import { planFleet } from '../src/render/fleet.js';
import type { BenchFigure } from './figures.js';
import type { ProbeConfig, ProbeResult } from './local/distance-probe.js';
import { localCosmosTopology } from '../test/helpers/local-cosmos-topology.js';

export const needsEtcd = true;

const PROBE = fileURLToPath(new URL('./local/distance-probe.js', import.meta.url));
const CHAIN_ID = 'bench-distance-1';
const [AB, AC, BC] = (process.env.VIGIL_BENCH_DISTANCE_RTT ?? '20,80,150')
  .split(',')
  .map(Number) as [number, number, number];
/** Signatures (and as many raw CAS) with the leader in region A; a third of it in C. */
const OPS = Number(process.env.VIGIL_BENCH_DISTANCE_OPS ?? 150);
const BLOCK = 10;
const WARMUP = 5;
const HORCRUX = 'Horcrux (published): a vote costs 300–800 ms at 100–200 ms RTT';

const REGION: Record<string, string> = {
  validator: 'A',
  'guard-1': 'A',
  'guard-2': 'B',
  'guard-3': 'C',
};
/** Slow links: every pair of hosts in different regions (the sentries stay undelayed). */
const LINKS: [string, string, number][] = [
  ['validator', 'guard-2', AB],
  ['validator', 'guard-3', AC],
  ['guard-1', 'guard-2', AB],
  ['guard-1', 'guard-3', AC],
  ['guard-2', 'guard-3', BC],
];

/** A validator with the two sentries the lint asks for, and three guard members. */
const TOPOLOGY = localCosmosTopology({
  name: 'bench-distance',
  vpnCidr: '10.82.0.0/24',
  store: 'etcd',
  chainId: CHAIN_ID,
  hosts: [
    { name: 'validator', role: 'validator', region: 'region-a' },
    { name: 'sentry-a', role: 'sentry', region: 'region-a' },
    { name: 'sentry-b', role: 'sentry', region: 'region-b' },
    { name: 'guard-1', role: 'guard-member', region: 'region-a' },
    { name: 'guard-2', role: 'guard-member', region: 'region-b' },
    { name: 'guard-3', role: 'guard-member', region: 'region-c' },
  ],
});

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** Why this machine cannot run a local fleet (bench/run.ts prints it as a skip), if it cannot. */
export function skipReason(): string | undefined {
  const why: string[] = [];
  if (process.getuid?.() !== 0) why.push('not root');
  why.push(...missingTools([...REQUIRED_TOOLS, 'etcd']).map((t) => `${t} missing`));
  return why.length > 0
    ? `it runs a local fleet (network namespaces, nftables, WireGuard, etcd): ${why.join(', ')}`
    : undefined;
}

function hostOf(record: RunRecord, name: string) {
  const h = record.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`no host ${name} in the bench fleet`);
  return h;
}

/** Median TCP connect time (one round trip) from `from` to `to`'s VPN address, in ms. */
function connectMs(record: RunRecord, from: string, to: string, port: number): number {
  const address = hostOf(record, to).vpnAddress;
  const script = `
    const net = require('node:net'); const out = [];
    const one = () => new Promise((res, rej) => { const t = performance.now();
      const s = net.connect({ host: ${JSON.stringify(address)}, port: ${port}, timeout: 3000 });
      s.once('connect', () => { out.push(performance.now() - t); s.destroy(); res(); });
      s.once('timeout', () => rej(new Error('timeout'))); s.once('error', rej); });
    (async () => { for (let i = 0; i < 5; i++) await one(); console.log(JSON.stringify(out)); })()
      .catch((e) => { console.error(e.message); process.exit(1); });`;
  const r = spawnSync(
    'ip',
    ['netns', 'exec', hostOf(record, from).netns, process.execPath, '-e', script],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (r.status !== 0) throw new Error(`connect ${from} → ${to}:${port}: ${r.stderr.trim()}`);
  const times = (JSON.parse(r.stdout) as number[]).sort((x, y) => x - y);
  return times[2]!;
}

/** Runs the probe in the validator's namespace; resolves with its result. */
function runProbe(
  record: RunRecord,
  config: ProbeConfig,
  configFile: string,
): Promise<ProbeResult> {
  writeFileSync(configFile, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  const ns = hostOf(record, 'validator').netns;
  const child = spawn(
    'ip',
    ['netns', 'exec', ns, process.execPath, '--no-deprecation', PROBE, configFile],
    {
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  // Bounded: a probe that hangs is killed (by its own pid) and the bench fails.
  const timer = setTimeout(() => child.kill('SIGKILL'), 15 * 60_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`the distance probe exited ${code ?? signal}`));
      resolve(JSON.parse(readFileSync(config.resultFile, 'utf8')) as ProbeResult);
    });
  });
}

export async function run(): Promise<BenchFigure[]> {
  const skip = skipReason();
  if (skip !== undefined) {
    console.log(`!!! local-distance: SKIPPED: ${skip} !!!`);
    return [];
  }
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-local-distance-'));
  const state = join(dir, 's');
  let applied = false;
  try {
    const topologyFile = join(dir, 'bench-distance.yaml');
    writeFileSync(topologyFile, TOPOLOGY);
    const planned = planFleet(topologyFile, { state, write: false });
    if (!planned.plan || !planned.files)
      throw new Error(`the bench topology did not plan: ${JSON.stringify(planned.findings)}`);
    const t0 = performance.now();
    const fleet = await applyLocal({
      plan: planned.plan,
      files: planned.files,
      stateDir: state,
      progress: {
        step: (label, _ms, err) => {
          if (err) console.log(`  apply: FAILED ${label}: ${err}`);
        },
      },
    });
    applied = true;
    const record = fleet.record;
    console.log(
      `local-distance: fleet ${record.fleetId} applied in ${((performance.now() - t0) / 1000).toFixed(1)} s ` +
        `(${record.hosts.length} namespaces, WireGuard via ${fleet.wireguardMode})`,
    );
    // The probe takes the place of the validator's simulated node on its privval address.
    const hostDir = join(record.runDir, 'validator');
    const nodeConfig = NodeProcessConfigSchema.parse(
      JSON.parse(readFileSync(join(hostDir, 'node.json'), 'utf8')),
    );
    const rendered = RenderedNodeConfigSchema.parse(
      parseToml(readFileSync(join(hostDir, 'config.toml'), 'utf8')),
    );
    if (!rendered.priv_validator_laddr || !nodeConfig.validatorPublicKeyHex)
      throw new Error('the validator renders no priv_validator_laddr or key');
    const [privvalHost, privvalPort] = hostPort(rendered.priv_validator_laddr);
    const validatorNs = hostOf(record, 'validator').netns;
    for (const c of record.created)
      if (
        c.kind === 'process' &&
        c.netns === validatorNs &&
        c.what === `simulated ${CHAIN_ID} node`
      )
        await stopProcess(c.pid, c.startTime);
    const probe = async (
      name: string,
      startHeight: number,
      placements: ProbeConfig['placements'],
    ): Promise<ProbeResult> => {
      const result = await runProbe(
        record,
        {
          privvalHost,
          privvalPort,
          chainId: CHAIN_ID,
          validatorPublicKeyHex: nodeConfig.validatorPublicKeyHex!,
          agentYaml: join(hostDir, 'root', 'etc/vigil/agent.yaml'),
          placements,
          block: BLOCK,
          warmup: WARMUP,
          startHeight,
          resultFile: join(dir, `${name}-result.json`),
        },
        join(dir, `${name}.json`),
      );
      if (result.refused > 0 || result.verified !== result.signed)
        throw new Error(
          `the agent refused ${result.refused} (first: ${result.firstRefusal ?? '-'}) or returned ${result.signed - result.verified} unverifiable signatures`,
        );
      return result;
    };

    // First with no slow link: what the agent path (privval, SecretConnection, the agent's
    // local watermark, WireGuard) costs on this machine beyond the raw write, at no distance.
    // The simulated node's heights follow the wall clock (one per block time, from its
    // node.json), so the agent's watermark is near Date.now() / blockTime: start well above it
    // (and low enough that the proposals' timestamps, a second per height, stay within
    // CometBFT's years 1..9999).
    const aboveNode = Math.floor(Date.now() / Math.max(1, nodeConfig.blockTimeMs)) + 1_000_000;
    const near = await probe('near', aboveNode, [
      { leader: 'guard-1', ops: Math.max(BLOCK, Math.round(OPS / 3)) },
    ]);

    const netem = kernelHasNetem(record.internetNetns);
    console.log(
      `  delay: a userspace UDP relay per slow link on the WireGuard path (netem in this kernel: ${netem ? 'yes, unused: one mechanism everywhere' : 'no'})`,
    );
    for (const [a, b, rtt] of LINKS) await slowLink(record, a, b, rtt);
    const measured = LINKS.map(([a, b, rtt]) => {
      // validator → member: the etcd client port; member → member: the peer port.
      const port = a === 'validator' ? 2379 : 2380;
      return `${a}–${b} ${rtt} ms asked, ${connectMs(record, a, b, port).toFixed(1)} ms measured`;
    });
    console.log(`  slow links (TCP connect over the VPN): ${measured.join('; ')}`);
    const far = await probe('far', aboveNode + 1_000_000, [
      { leader: 'guard-1', ops: OPS },
      { leader: 'guard-3', ops: Math.max(BLOCK, Math.round(OPS / 3)) },
    ]);

    console.log(
      `  validator and guard-1 in region A, guard-2 in B, guard-3 in C; round trips A–B ${AB} ms, ` +
        `A–C ${AC} ms, B–C ${BC} ms; agent store endpoints ${far.endpoints.join(', ')}`,
    );
    const figures: BenchFigure[] = [];
    const report = (p: ProbeResult['placements'][number], distance: string, target: boolean) => {
      const where = `leader ${p.leader} (region ${REGION[p.leader] ?? '?'}${distance})`;
      if (p.leaderAfter !== p.leader)
        throw new Error(`the leader moved from ${p.leader} to ${p.leaderAfter} during the run`);
      const sign = [...p.sign].sort((x, y) => x - y);
      const raw = [...p.raw].sort((x, y) => x - y);
      const s50 = pct(sign, 50);
      const s99 = pct(sign, 99);
      const r50 = pct(raw, 50);
      const r99 = pct(raw, 99);
      const ok = s50 <= 1.25 * r50;
      console.log(
        `  ${where}: ${sign.length} CometBFT signatures through the agent, ${raw.length} raw CAS, interleaved in blocks of ${BLOCK}`,
      );
      console.log(`    sign p50 ${s50.toFixed(1)} ms  p99 ${s99.toFixed(1)} ms`);
      console.log(`    raw  p50 ${r50.toFixed(1)} ms  p99 ${r99.toFixed(1)} ms`);
      const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
      if (p.agentMeanMs)
        console.log(
          `    means: sign ${mean(sign).toFixed(1)} ms at the node, of which the agent's guard decision ` +
            `${p.agentMeanMs.guardDecision.toFixed(1)} ms (store update ${p.agentMeanMs.storeUpdate.toFixed(1)} ms; ` +
            `agent /metrics, ${p.agentMeanMs.count} decisions); raw CAS ${mean(raw).toFixed(1)} ms`,
        );
      console.log(
        `    ratio p50 ${(s50 / r50).toFixed(2)}×  p99 ${(s99 / r99).toFixed(2)}×` +
          (target
            ? `  (target p50 ≤ 1.25× raw quorum write: ${ok ? 'met' : 'NOT MET'})`
            : `  (sign − raw at p50: ${(s50 - r50).toFixed(1)} ms, the agent path's own cost)`),
      );
      const base = { unit: 'ms', baselineName: 'raw etcd CAS' } as const;
      figures.push(
        {
          ...base,
          name: `local sign p50 (${where})`,
          value: s50,
          baseline: r50,
          ratio: s50 / r50,
          ...(target ? { target: '≤ 1.25× raw quorum write', ok } : {}),
        },
        { ...base, name: `local sign p99 (${where})`, value: s99, baseline: r99, ratio: s99 / r99 },
      );
      return s50;
    };
    for (const p of near.placements) report(p, ', no slow links', false);
    let farthest = 0;
    for (const p of far.placements) farthest = report(p, '', true);
    console.log(
      `  reference: ${HORCRUX}; here, with the leader ${AC}–${BC} ms away, a signature costs ` +
        `${farthest.toFixed(0)} ms at p50 (Horcrux's range is ${(300 / farthest).toFixed(1)}–${(800 / farthest).toFixed(1)}× that)`,
    );
    return figures;
  } finally {
    // Destroy stops the relays with every other recorded process.
    if (applied) await destroyLocal(state);
    rmSync(dir, { recursive: true, force: true });
  }
}
