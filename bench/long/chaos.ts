/**
 * The long chaos benchmark (`npm run chaos:long`): the same seeded fault schedule against
 * an HA devnet (five nodes sharing one key through five agents) and against the same devnet
 * with one node and no HA, each for VIGIL_CHAOS_MINUTES (default 10) at 1 s ticks, on three
 * chains: slot production, GRANDPA-like votes and a CometBFT-like chain over privval (with
 * conflicting proposals). VIGIL_CHAOS_STORE=etcd runs both on a local 3-member etcd (and
 * adds etcd faults). Prints both reports and the comparison. Not part of `npm run bench`:
 * it takes twenty minutes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatChaosReport } from '../../src/cli/chaos.js';
import { runChaos, type ChaosReport } from '../../src/devnet/chaos.js';
import type { DevnetFile } from '../../src/devnet/devnet-file.js';

const minutes = Number(process.env.VIGIL_CHAOS_MINUTES ?? '10');
const seed = Number(process.env.VIGIL_CHAOS_SEED ?? '20261121');
const store = process.env.VIGIL_CHAOS_STORE === 'etcd' ? 'etcd' : 'sqlite';

function devnet(nodes: number): DevnetFile {
  return {
    name: `chaos-${nodes}`,
    store,
    chains: [
      { family: 'slot', chainId: 'chaos-slot', slotMs: 1000, nodes },
      { family: 'grandpa', chainId: 'chaos-grandpa', stageMs: 1000, roundsPerSet: 20, nodes },
      {
        family: 'cometbft',
        chainId: 'chaos-cometbft',
        blockMs: 1000,
        nodes,
        conflictingProposals: true,
        protocol: 'v0.38',
      },
    ],
  };
}

function perChain(r: ChaosReport): string {
  return Object.entries(r.devnet.chains)
    .map(
      ([id, c]) =>
        `  ${id.padEnd(15)} ${c.family.padEnd(8)} positions ${c.ticks}  missed ${c.missed} (${((100 * c.missed) / Math.max(1, c.ticks)).toFixed(2)} %)  signatures ${c.signatures}  refusals ${c.refusals}`,
    )
    .join('\n');
}

async function run(nodes: number): Promise<ChaosReport> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-chaos-long-'));
  try {
    return await runChaos({
      file: devnet(nodes),
      workDir: dir,
      seed,
      durationMs: minutes * 60_000,
      // Each member takes a new fault as soon as it has settled from the last one
      // (about every 2.3 s): over 1,100 faults in ten minutes across five members.
      meanIntervalMs: 120,
      maxFaultMs: 1200,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ha = await run(5);
console.log(
  `HA: five nodes, one key, five agents (${store})\n${formatChaosReport(ha)}\n${perChain(ha)}\n`,
);
const single = await run(1);
console.log(
  `baseline: one node, one agent, no HA (${store})\n${formatChaosReport(single)}\n${perChain(single)}\n`,
);
console.log(
  `missed positions: HA ${ha.missedPercent.toFixed(2)} % vs single ${single.missedPercent.toFixed(2)} % ` +
    `(ratio ${(ha.missedPercent / Math.max(single.missedPercent, 1e-9)).toFixed(3)}); ` +
    `equivocations: HA ${ha.devnet.equivocations}, single ${single.devnet.equivocations}`,
);
if (process.env.VIGIL_CHAOS_JSON)
  writeFileSync(process.env.VIGIL_CHAOS_JSON, JSON.stringify({ ha, single }, null, 2));
if (ha.devnet.equivocations > 0 || single.devnet.equivocations > 0) process.exitCode = 2;
