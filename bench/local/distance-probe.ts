/**
 * The measuring half of bench/local-distance.ts, run inside the validator host's namespace of
 * a local fleet (`ip netns exec <ns> node distance-probe.js <config.json>`).
 *
 * It takes the place of the host's simulated CometBFT node: it listens on the rendered
 * `priv_validator_laddr`, where the host's real Vigil agent dials in, and asks it to sign
 * proposals, prevotes and precommits, each timed from request to verified answer (privval
 * over SecretConnection → agent → guard → etcd quorum over WireGuard → back). Between blocks
 * of signatures, with the node held at its next step, it runs blocks of raw etcd
 * compare-and-swaps (one Txn: if mod_revision == last then put, a record of the guard's size)
 * from this same namespace, with the agent's own client certificate, to the same endpoints in
 * the same order (the store client prefers the first), so both sides cross the same links.
 * One request is in flight at a time. For each placement it first moves the raft leader to the
 * named member. It writes every sample to the result file (JSON).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Etcd3 } from 'etcd3';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { CometbftNodeSimulator } from '../../src/devnet/cometbft-node.js';
import { EtcdClient } from '../../src/etcd/client.js';
import { encodeRecord } from '../../src/store/record-codec.js';

export const ProbeConfigSchema = z.strictObject({
  privvalHost: z.string().min(1),
  privvalPort: z.number().int().min(1).max(65535),
  chainId: z.string().min(1),
  validatorPublicKeyHex: z.string().regex(/^[0-9a-f]{64}$/),
  /** The agent's (re-rooted) agent.yaml: its store endpoints and TLS files. */
  agentYaml: z.string().min(1),
  placements: z.array(z.strictObject({ leader: z.string().min(1), ops: z.number().int().min(1) })),
  block: z.number().int().min(1),
  warmup: z.number().int().min(0),
  /** Above any height the agent has signed: the guard refuses to go back. */
  startHeight: z.number().int().positive(),
  resultFile: z.string().min(1),
});
export type ProbeConfig = z.infer<typeof ProbeConfigSchema>;

export interface ProbeResult {
  readonly placements: {
    readonly leader: string;
    readonly leaderAfter: string;
    readonly sign: number[];
    readonly raw: number[];
    /**
     * The agent's own mean times over this placement's measured signatures, from its
     * /metrics (vigil_guard_decision_seconds, vigil_store_update_seconds), when it serves them.
     */
    readonly agentMeanMs?: { guardDecision: number; storeUpdate: number; count: number };
  }[];
  readonly signed: number;
  readonly verified: number;
  readonly refused: number;
  /** The first refusal's step, height and the agent's reason, when there was one. */
  readonly firstRefusal?: string;
  readonly endpoints: readonly string[];
}

const AgentStoreSchema = z.object({
  metricsListen: z.object({ host: z.string(), port: z.number() }).optional(),
  store: z.object({
    engine: z.literal('etcd'),
    endpoints: z.array(z.string().min(1)).min(1),
    tls: z.object({ ca: z.string(), cert: z.string(), key: z.string() }),
  }),
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sum and count of a histogram over all its series, from a Prometheus text page. */
function histogramTotals(page: string, name: string): { sum: number; count: number } {
  let sum = 0;
  let count = 0;
  for (const line of page.split('\n')) {
    const m = /^(\w+?)_(sum|count)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (m[2] === 'sum') sum += Number(m[3]);
    else count += Number(m[3]);
  }
  return { sum, count };
}

interface AgentTotals {
  decision: { sum: number; count: number };
  store: { sum: number; count: number };
}

async function agentTotals(url: string | undefined): Promise<AgentTotals | undefined> {
  if (url === undefined) return undefined;
  try {
    const page = await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();
    return {
      decision: histogramTotals(page, 'vigil_guard_decision_seconds'),
      store: histogramTotals(page, 'vigil_store_update_seconds'),
    };
  } catch {
    return undefined;
  }
}

/** Raft leadership, read and moved through the members' own endpoints (etcd's maintenance API). */
class Leadership {
  private readonly members: { endpoint: string; etcd: Etcd3 }[];
  private names = new Map<string, string>();

  constructor(endpoints: readonly string[], tls: { ca: string; cert: string; key: string }) {
    const credentials = {
      rootCertificate: readFileSync(tls.ca),
      privateKey: readFileSync(tls.key),
      certChain: readFileSync(tls.cert),
    };
    this.members = endpoints.map((endpoint) => ({
      endpoint,
      etcd: new Etcd3({ hosts: endpoint.replace(/^https?:\/\//, ''), credentials }),
    }));
  }

  /** Member id (decimal) → name. */
  private async load(): Promise<void> {
    const { members } = await this.members[0]!.etcd.cluster.memberList({});
    this.names = new Map(members.map((m) => [String(m.ID), m.name]));
  }

  async leader(): Promise<string> {
    if (this.names.size === 0) await this.load();
    const s = await this.members[0]!.etcd.maintenance.status({});
    return this.names.get(String(s.leader)) ?? `id ${s.leader}`;
  }

  /** Moves leadership to member `name`; bounded, like the loopback bench. */
  async moveTo(name: string): Promise<void> {
    if (this.names.size === 0) await this.load();
    const target = [...this.names].find(([, n]) => n === name)?.[0];
    if (target === undefined) throw new Error(`no etcd member named ${name}`);
    for (let attempt = 0; attempt < 20; attempt++) {
      const current = await this.leader().catch(() => '');
      if (current === name) return;
      // moveLeader must be sent to the current leader.
      for (const m of this.members) {
        const s = await m.etcd.maintenance.status({}).catch(() => undefined);
        if (!s || String(s.leader) !== String(s.header.member_id)) continue;
        await m.etcd.maintenance.moveLeader({ targetID: target }).catch(() => undefined);
      }
      await sleep(300);
    }
    throw new Error(`could not move the etcd leader to ${name}`);
  }

  close(): void {
    for (const m of this.members) m.etcd.close();
  }
}

async function main(configFile: string): Promise<void> {
  const cfg = ProbeConfigSchema.parse(JSON.parse(readFileSync(configFile, 'utf8')));
  const { store, metricsListen } = AgentStoreSchema.parse(
    parseYaml(readFileSync(cfg.agentYaml, 'utf8')),
  );
  const metricsUrl = metricsListen
    ? `http://${metricsListen.host}:${metricsListen.port}/metrics`
    : undefined;
  const etcd = new EtcdClient({
    endpoints: store.endpoints,
    tls: store.tls,
    callTimeoutMs: 10_000,
  });
  const leadership = new Leadership(store.endpoints, store.tls);

  // The gate the simulated node awaits before each step: the measuring loop below hands out
  // permits, so signatures and raw CAS never overlap.
  let permits = 0;
  let wake: (() => void) | undefined;
  const beforeStep = async () => {
    while (permits === 0) await new Promise<void>((r) => (wake = r));
    permits--;
  };
  const sim = await CometbftNodeSimulator.start({
    chainId: cfg.chainId,
    protocol: 'v0.38',
    host: cfg.privvalHost,
    port: cfg.privvalPort,
    name: 'bench-local-distance',
    validatorPublicKey: Buffer.from(cfg.validatorPublicKeyHex, 'hex'),
    blockTimeMs: 0,
    startHeight: BigInt(cfg.startHeight),
    beforeStep,
    requestTimeoutMs: 10_000,
  });
  const signs = async (n: number): Promise<number[]> => {
    const from = sim.latenciesMs.length;
    permits += n;
    wake?.();
    const deadline = Date.now() + 120_000 + n * 5_000;
    while (sim.latenciesMs.length < from + n) {
      if (Date.now() > deadline)
        throw new Error(
          `the agent answered ${sim.latenciesMs.length - from} of ${n} sign requests in time; incidents: ${sim.incidents.slice(-3).join(' | ')}`,
        );
      await sleep(1);
    }
    return sim.latenciesMs.slice(from, from + n);
  };

  const rawKey = '/vigil-bench-local-distance/raw';
  const record = encodeRecord({
    family: 'cometbft',
    position: [1_000_000n, 0n, 1n],
    payloadHash: new Uint8Array(32).fill(1),
    signature: new Uint8Array(64).fill(7),
    writer: 'bench',
    updatedAtMs: Date.now(),
  });
  let rawRev = (await etcd.get(rawKey)).kv?.modRevision ?? 0n;
  const raws = async (n: number): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const res = await etcd.txn(
        'raw CAS',
        [{ key: rawKey, target: 'mod', revision: rawRev }],
        [{ put: { key: rawKey, value: record } }],
      );
      out.push(performance.now() - t);
      if (!res.succeeded) throw new Error('the raw CAS lost a race it cannot lose');
      rawRev = res.revision;
    }
    return out;
  };

  const result: ProbeResult = {
    placements: [],
    signed: 0,
    verified: 0,
    refused: 0,
    endpoints: store.endpoints,
  };
  try {
    for (const p of cfg.placements) {
      await leadership.moveTo(p.leader);
      await signs(cfg.warmup);
      await raws(cfg.warmup);
      const sign: number[] = [];
      const raw: number[] = [];
      const before = await agentTotals(metricsUrl);
      for (let b = 0; b * cfg.block < p.ops; b++) {
        const n = Math.min(cfg.block, p.ops - b * cfg.block);
        // Interleaved blocks, alternating which side goes first.
        if (b % 2 === 0) {
          sign.push(...(await signs(n)));
          raw.push(...(await raws(n)));
        } else {
          raw.push(...(await raws(n)));
          sign.push(...(await signs(n)));
        }
      }
      const after = await agentTotals(metricsUrl);
      const leaderAfter = await leadership.leader();
      const n = after && before ? after.decision.count - before.decision.count : 0;
      result.placements.push({
        leader: p.leader,
        leaderAfter,
        sign,
        raw,
        ...(after && before && n > 0
          ? {
              agentMeanMs: {
                guardDecision: ((after.decision.sum - before.decision.sum) / n) * 1000,
                storeUpdate:
                  ((after.store.sum - before.store.sum) /
                    Math.max(1, after.store.count - before.store.count)) *
                  1000,
                count: n,
              },
            }
          : {}),
      });
      process.stdout.write(
        `  probe: leader ${p.leader}: ${sign.length} signatures, ${raw.length} raw CAS\n`,
      );
    }
  } finally {
    Object.assign(result, {
      signed: sim.signed.length,
      verified: sim.signed.filter((r) => r.verified).length,
      refused: sim.refused.length,
      ...(sim.refused[0]
        ? {
            firstRefusal: `${sim.refused[0].step} ${sim.refused[0].height}: ${sim.refused[0].error.description}`,
          }
        : {}),
    });
    writeFileSync(cfg.resultFile, JSON.stringify(result) + '\n', { mode: 0o600 });
    leadership.close();
    etcd.close();
    // stop() waits for the node's driver, which waits at the gate: open it once stopping has
    // begun (the step after it then finds the node stopped and sends nothing).
    const stopped = sim.stop();
    permits = Number.POSITIVE_INFINITY;
    wake?.();
    await stopped;
  }
}

main(process.argv[2] ?? '').then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `distance probe failed: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exit(1);
  },
);
