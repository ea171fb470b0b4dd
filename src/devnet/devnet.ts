/**
 * `vigil up`: a local HA devnet. Several validator nodes share one key, each through its own
 * agent process, all agents on one store; simulated chains drive them over the real API and
 * an evidence collector watches every signature for equivocation.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { loadEd25519KeyFile } from '../keys/key-file.js';
import { generateCometbftKeyFile } from '../keys/generate.js';
import { startAgentProcess, type AgentProcess } from './agent-process.js';
import type { DevnetFile } from './devnet-file.js';
import { EvidenceCollector, type Equivocation } from './evidence.js';
import { SlotNetwork, type SlotNode, type SlotOutcome } from './slot-network.js';

export interface DevnetOptions {
  readonly file: DevnetFile;
  readonly workDir: string;
  /** Stop by itself after this long; otherwise runs until `signal` aborts. */
  readonly durationMs?: number;
  readonly signal?: AbortSignal;
  readonly onSlot?: (o: SlotOutcome, totals: DevnetTotals) => void;
  readonly onAgent?: (event: string) => void;
  /** Called once every agent is ready, before the chains start; fault injection hooks in here. */
  readonly onStarted?: (agents: readonly AgentProcess[], nodes: readonly SlotNode[]) => void;
}

export interface DevnetTotals {
  slots: number;
  signed: number;
  missed: number;
  refusals: number;
  signatures: number;
  equivocations: number;
}

export interface DevnetReport extends DevnetTotals {
  readonly name: string;
  readonly agents: number;
  readonly equivocationDetails: readonly Equivocation[];
  readonly invalidSignatures: number;
}

const KEY_ID = 'validator';

function writeAgentConfig(workDir: string, name: string): string {
  const file = join(workDir, 'agents', `${name}.yaml`);
  mkdirSync(join(workDir, 'agents'), { recursive: true });
  writeFileSync(
    file,
    stringify({
      agent: { id: name, dataDir: `./${name}` },
      listen: { host: '127.0.0.1', port: 0 },
      store: { engine: 'sqlite', path: '../watermarks.db' },
      keys: [{ id: KEY_ID, file: '../validator_key.json' }],
      log: { level: 'info' },
    }),
  );
  return file;
}

export async function runDevnet(opts: DevnetOptions): Promise<DevnetReport> {
  const workDir = resolve(opts.workDir);
  mkdirSync(workDir, { recursive: true });
  const keyFile = join(workDir, 'validator_key.json');
  if (!existsSync(keyFile)) generateCometbftKeyFile(keyFile);
  const publicKey = loadEd25519KeyFile(keyFile).publicKey;

  const nodeCount = Math.max(...opts.file.chains.map((c) => c.nodes));
  const names = Array.from({ length: nodeCount }, (_, i) => `node-${i + 1}`);
  const agents: AgentProcess[] = [];
  const evidence = new EvidenceCollector();
  const totals: DevnetTotals = {
    slots: 0,
    signed: 0,
    missed: 0,
    refusals: 0,
    signatures: 0,
    equivocations: 0,
  };
  const networks: SlotNetwork[] = [];
  const allNodes: SlotNode[] = [];
  try {
    agents.push(
      ...(await Promise.all(names.map((n) => startAgentProcess(n, writeAgentConfig(workDir, n))))),
    );
    for (const a of agents) opts.onAgent?.(`${a.name} agent pid ${a.child.pid} at ${a.url}`);

    for (const chain of opts.file.chains) {
      const nodes: SlotNode[] = agents
        .slice(0, chain.nodes)
        .map((a) => ({ name: a.name, agentUrl: a.url }));
      allNodes.push(...nodes);
      const network = new SlotNetwork(
        chain.chainId,
        chain.slotMs,
        KEY_ID,
        publicKey,
        nodes,
        evidence,
        (o) => {
          totals.slots++;
          if (o.author) totals.signed++;
          else totals.missed++;
          totals.refusals += o.refused;
          totals.signatures = evidence.signatures;
          totals.equivocations = evidence.equivocations.length;
          opts.onSlot?.(o, totals);
        },
      );
      networks.push(network);
    }
    opts.onStarted?.(agents, allNodes);
    for (const n of networks) n.start();

    await new Promise<void>((done) => {
      const timer = opts.durationMs !== undefined ? setTimeout(done, opts.durationMs) : undefined;
      opts.signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        done();
      });
    });
  } finally {
    for (const n of networks) n.stop();
    await Promise.all(agents.map((a) => a.stop()));
  }
  return {
    name: opts.file.name,
    agents: agents.length,
    ...totals,
    equivocationDetails: evidence.equivocations,
    invalidSignatures: evidence.invalidSignatures.length,
  };
}
