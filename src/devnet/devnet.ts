/**
 * `vigil up`: a local HA devnet. Several validator nodes share one key, each through its own
 * agent process, all agents on one store; simulated chains drive them over the real API (each
 * node reaches its agent through a TCP proxy, so links can be cut) and an evidence collector
 * watches every signature for equivocation.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { AgentClient } from '../agent/client.js';
import { loadAgentConfig } from '../agent/config.js';
import { initStore } from '../agent/store.js';
import { VigilError, errorMessage } from '../errors.js';
import { loadEd25519KeyFile, loadSr25519KeyFile } from '../keys/key-file.js';
import { generateCometbftKeyFile, generateSeedFile } from '../keys/generate.js';
import { startAgentProcess, type AgentProcess } from './agent-process.js';
import { CometbftNetwork } from './cometbft-network.js';
import { DevnetEtcdCluster } from './etcd-cluster.js';
import type { DevnetFile } from './devnet-file.js';
import { EvidenceCollector, type Equivocation } from './evidence.js';
import {
  DutyNetwork,
  grandpaSchedule,
  slotSchedule,
  type DutyNode,
  type TickOutcome,
} from './duty-network.js';
import { TcpProxy } from './tcp-proxy.js';
import { signerMetricsOf, type SignerMetrics } from './signer-metrics.js';
import { claimWorkDir } from './work-dir.js';

/** One validator node and the agent that guards it. */
export interface DevnetMember {
  readonly name: string;
  readonly configFile: string;
  /** undefined while the agent is down. */
  agent: AgentProcess | undefined;
  readonly proxy: TcpProxy;
  /** The agent → node links of this member's CometBFT nodes (one per CometBFT chain). */
  readonly nodeLinks: readonly TcpProxy[];
  readonly node: DutyNode;
}

/** What the devnet runs and fault injection may inspect: any simulated chain. */
export interface DevnetNetwork {
  readonly chainId: string;
  readonly tickMs: number;
}

/** What fault injection may do to a running devnet. */
export interface DevnetControl {
  readonly members: readonly DevnetMember[];
  readonly networks: readonly DevnetNetwork[];
  /** SIGKILL the member's agent; its node keeps pointing at the dead address. */
  killAgent(member: DevnetMember): void;
  /** Starts a fresh agent process for a member whose agent is down. */
  restartAgent(member: DevnetMember): Promise<void>;
  /** With `store: etcd`: the local cluster the agents share. */
  readonly etcd?: DevnetEtcdCluster;
}

export interface DevnetOptions {
  readonly file: DevnetFile;
  readonly workDir: string;
  /** Stop by itself after this long; otherwise runs until `signal` aborts. */
  readonly durationMs?: number;
  readonly signal?: AbortSignal;
  readonly onTick?: (o: TickOutcome, totals: DevnetTotals) => void;
  readonly onAgent?: (event: string) => void;
  /**
   * Negative control for tests only: each agent gets its own store, which is exactly the
   * misconfiguration that double-signs. The evidence collector must catch it.
   */
  readonly separateStores?: boolean;
  /** Called once every agent is ready, before the chains start; fault injection hooks in here. */
  readonly onStarted?: (control: DevnetControl) => void;
}

export interface DevnetTotals {
  /** Positions the chains asked for (slots, vote stages). */
  ticks: number;
  signed: number;
  missed: number;
  refusals: number;
  signatures: number;
  equivocations: number;
}

/** One chain's share of the totals. */
export interface ChainTotals {
  readonly family: DevnetFile['chains'][number]['family'];
  ticks: number;
  signed: number;
  missed: number;
  refusals: number;
  signatures: number;
}

export interface DevnetReport extends DevnetTotals {
  readonly chains: Readonly<Record<string, ChainTotals>>;
  readonly name: string;
  readonly agents: number;
  readonly equivocationDetails: readonly Equivocation[];
  readonly invalidSignatures: number;
  /** Each agent's signer metrics from its /metrics just before it stopped, or why not. */
  readonly agentMetrics: Readonly<Record<string, SignerMetrics | { readonly error: string }>>;
}

/** The CometBFT key every CometBFT chain of the devnet signs with. */
const KEY_ID = 'validator';

/**
 * The devnet's keys, each bound to one protocol as an operator's would be: one CometBFT key for
 * every CometBFT chain (their sign bytes name the chain), and for each Substrate chain its own
 * key (a GRANDPA key is Ed25519, a BABE key sr25519).
 */
interface DevnetKey {
  readonly id: string;
  /** Relative to the agents' config directory. */
  readonly file: string;
  readonly protocol: 'cometbft' | 'grandpa' | 'babe';
  readonly chains: readonly string[];
  readonly publicKey: Uint8Array;
}

function devnetKeys(workDir: string, file: DevnetFile): DevnetKey[] {
  const keys: DevnetKey[] = [];
  const cometbftChains = file.chains.filter((c) => c.family === 'cometbft').map((c) => c.chainId);
  if (cometbftChains.length > 0) {
    const path = join(workDir, 'validator_key.json');
    if (!existsSync(path)) generateCometbftKeyFile(path);
    keys.push({
      id: KEY_ID,
      file: '../validator_key.json',
      protocol: 'cometbft',
      chains: cometbftChains,
      publicKey: loadEd25519KeyFile(path).publicKey,
    });
  }
  for (const chain of file.chains) {
    if (chain.family === 'cometbft') continue;
    const protocol = chain.family === 'slot' ? 'babe' : 'grandpa';
    const name = `${protocol}-${chain.chainId.replace(/[^A-Za-z0-9._-]/g, '_')}`;
    const path = join(workDir, `${name}.key`);
    if (!existsSync(path)) generateSeedFile(path);
    keys.push({
      id: name,
      file: `../${name}.key`,
      protocol,
      chains: [chain.chainId],
      publicKey: (protocol === 'babe' ? loadSr25519KeyFile(path) : loadEd25519KeyFile(path))
        .publicKey,
    });
  }
  return keys;
}

interface AgentConfigInput {
  readonly workDir: string;
  readonly keys: readonly DevnetKey[];
  readonly name: string;
  readonly index: number;
  readonly separateStore: boolean;
  readonly cometbft: readonly CometbftNetwork[];
  /** With `store: etcd`: this agent's own proxied endpoints, one per member. */
  readonly etcdEndpoints?: readonly string[];
}

function storeSection(
  name: string,
  separateStore: boolean,
  etcdEndpoints: readonly string[] | undefined,
) {
  if (etcdEndpoints) {
    return {
      engine: 'etcd',
      endpoints: [...etcdEndpoints],
      prefix: separateStore ? `/vigil-devnet/${name}/` : '/vigil-devnet/',
      // Within a block: a store that cannot confirm in time costs a refusal, not a stall.
      timeouts: { callMs: 300, updateMs: 800 },
    };
  }
  return {
    engine: 'sqlite',
    path: separateStore ? `./${name}/watermarks.db` : '../watermarks.db',
    busyTimeoutMs: 500,
  };
}

function cometbftSection(name: string, index: number, networks: readonly CometbftNetwork[]) {
  const chains = networks
    .filter((n) => index < n.links.length)
    .map((n) => ({
      chainId: n.chainId,
      keyId: KEY_ID,
      protocol: n.protocol,
      nodes: [n.nodeAddress(index)],
      connectionKeyFile: `./${name}/connection_key.json`,
      // Faults last about a second: a link must come back within a block, not after the
      // production defaults (15 s idle, 5 s backoff) meant for flaky WANs.
      timeouts: { dialMs: 1000, handshakeMs: 2000, idleMs: Math.max(3000, 3 * n.tickMs) },
      backoff: { initialMs: 50, maxMs: 500, multiplier: 2 },
    }));
  return chains.length > 0 ? { cometbft: { chains } } : {};
}

function writeAgentConfig({
  workDir,
  keys,
  name,
  index,
  separateStore,
  cometbft,
  etcdEndpoints,
}: AgentConfigInput): string {
  const file = join(workDir, 'agents', `${name}.yaml`);
  mkdirSync(join(workDir, 'agents'), { recursive: true });
  writeFileSync(
    file,
    stringify({
      agent: { id: name, dataDir: `./${name}` },
      listen: { socket: { path: `./${name}/api.sock` } },
      // A short busy timeout: an agent frozen inside a transaction should cost a slot or
      // two, not stall the others for seconds.
      store: storeSection(name, separateStore, etcdEndpoints),
      keys: keys.map((k) => ({
        id: k.id,
        file: k.file,
        protocol: k.protocol,
        chains: [...k.chains],
      })),
      ...cometbftSection(name, index, cometbft),
      log: { level: 'info' },
    }),
  );
  return file;
}

function socketOf(agent: AgentProcess): { path: string } {
  if (agent.socketPath === undefined)
    throw new VigilError('DEVNET_AGENT_SOCKET', `agent ${agent.name} serves on no unix socket`);
  return { path: agent.socketPath };
}

export async function runDevnet(opts: DevnetOptions): Promise<DevnetReport> {
  const workDir = resolve(opts.workDir);
  mkdirSync(workDir, { recursive: true });
  claimWorkDir(workDir, { name: opts.file.name, store: opts.file.store });
  const keys = devnetKeys(workDir, opts.file);
  const keyFor = (chainId: string) => keys.find((k) => k.chains.includes(chainId))!;

  const nodeCount = Math.max(...opts.file.chains.map((c) => c.nodes));
  const names = Array.from({ length: nodeCount }, (_, i) => `node-${i + 1}`);
  const members: DevnetMember[] = [];
  const evidence = new EvidenceCollector();
  const totals: DevnetTotals = {
    ticks: 0,
    signed: 0,
    missed: 0,
    refusals: 0,
    signatures: 0,
    equivocations: 0,
  };
  const networks: DutyNetwork[] = [];
  const cometbftNetworks: CometbftNetwork[] = [];
  const restarts = new Set<Promise<void>>();
  let stopping = false;
  const agentMetrics: Record<string, SignerMetrics | { error: string }> = {};
  const chainTotals: Record<string, ChainTotals> = Object.fromEntries(
    opts.file.chains.map((c) => [
      c.chainId,
      { family: c.family, ticks: 0, signed: 0, missed: 0, refusals: 0, signatures: 0 },
    ]),
  );
  const countTick = (o: TickOutcome) => {
    const chain = chainTotals[o.chainId];
    if (chain) {
      chain.ticks++;
      if (o.author) chain.signed++;
      else chain.missed++;
      chain.refusals += o.refused;
      chain.signatures = evidence.signaturesOf(o.chainId);
    }
    totals.ticks++;
    if (o.author) totals.signed++;
    else totals.missed++;
    totals.refusals += o.refused;
    totals.signatures = evidence.signatures;
    totals.equivocations = evidence.equivocations.length;
    opts.onTick?.(o, totals);
  };
  // One clock per member, shared by all its chains (a clock jump hits every chain it runs).
  const clocks: DutyNode[] = names.map((name) => ({ name, agent: undefined }));
  let etcd: DevnetEtcdCluster | undefined;
  try {
    if (opts.file.store === 'etcd') {
      etcd = await DevnetEtcdCluster.start({ dir: workDir });
      opts.onAgent?.(
        `etcd cluster ${etcd.members.map((m) => m.name).join(', ')} at ${etcd.endpoints.join(', ')}`,
      );
    }
    for (const chain of opts.file.chains) {
      if (chain.family !== 'cometbft') continue;
      // The nodes listen first: each agent's config names its node's (proxied) address.
      cometbftNetworks.push(
        await CometbftNetwork.create({
          spec: chain,
          publicKey: keyFor(chain.chainId).publicKey,
          nodes: clocks.slice(0, chain.nodes),
          evidence,
          onTick: countTick,
        }),
      );
    }
    const configs: string[] = [];
    for (const [index, name] of names.entries()) {
      configs.push(
        writeAgentConfig({
          workDir,
          keys,
          name,
          index,
          separateStore: opts.separateStores === true,
          cometbft: cometbftNetworks,
          ...(etcd ? { etcdEndpoints: await etcd.endpointsFor(name) } : {}),
        }),
      );
    }
    // Agents never create their store: initialise each one first, as an operator does with
    // `vigil state init` (idempotent, so a shared store or a reused work dir keeps its identity).
    for (const config of configs) await (await initStore(loadAgentConfig(config).store)).close();
    const started = await Promise.allSettled(
      names.map((name, index) => startAgentProcess(name, configs[index]!)),
    );
    const agents = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      // Agents that did start are not members yet: stop them here, by their pids.
      await Promise.all(agents.map((a) => a.stop()));
      throw failed.reason;
    }
    for (const [index, agent] of agents.entries()) {
      // The node's link to its agent: a socket of its own in front of the agent's, so a
      // fault can cut it while the agent itself stays up.
      const proxy = new TcpProxy(
        socketOf(agent),
        undefined,
        join(workDir, 'agents', `${agent.name}.link.sock`),
      );
      await proxy.start();
      const node = clocks[index]!;
      node.agent = new AgentClient({ socketPath: proxy.listenPath! });
      members.push({
        name: agent.name,
        configFile: agent.configFile,
        agent,
        proxy,
        nodeLinks: cometbftNetworks.flatMap((n) => n.links.slice(index, index + 1)),
        node,
      });
      opts.onAgent?.(`${agent.name} agent pid ${agent.child.pid} at ${agent.socketPath}`);
    }

    for (const chain of opts.file.chains) {
      if (chain.family === 'cometbft') continue;
      const nodes = members.slice(0, chain.nodes).map((m) => m.node);
      const [tickMs, schedule] =
        chain.family === 'slot'
          ? [chain.slotMs, slotSchedule]
          : [chain.stageMs, grandpaSchedule(chain.roundsPerSet)];
      networks.push(
        new DutyNetwork(
          chain.chainId,
          tickMs,
          schedule,
          keyFor(chain.chainId).id,
          keyFor(chain.chainId).publicKey,
          nodes,
          evidence,
          countTick,
        ),
      );
    }
    opts.onStarted?.({
      members,
      networks: [...networks, ...cometbftNetworks],
      ...(etcd ? { etcd } : {}),
      killAgent(m) {
        m.agent?.child.kill('SIGKILL');
        m.agent = undefined;
      },
      async restartAgent(m) {
        if (m.agent || stopping) return;
        const restart = startAgentProcess(m.name, m.configFile).then(async (agent) => {
          // The devnet may have begun stopping while this agent started.
          if (stopping) return agent.stop();
          m.proxy.setTarget(socketOf(agent));
          m.agent = agent;
        });
        restarts.add(restart);
        await restart.finally(() => restarts.delete(restart));
      },
    });
    for (const n of networks) n.start();
    for (const n of cometbftNetworks) n.start();

    await new Promise<void>((done) => {
      const timer = opts.durationMs !== undefined ? setTimeout(done, opts.durationMs) : undefined;
      opts.signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        done();
      });
    });
  } finally {
    stopping = true;
    for (const n of networks) n.stop();
    await Promise.all(cometbftNetworks.map((n) => n.stop()));
    await Promise.allSettled([...restarts]);
    // Read before the agents stop: their counters live in their processes.
    const read = await Promise.all(members.map((m) => readSignerMetrics(m)));
    members.forEach((m, i) => (agentMetrics[m.name] = read[i]!));
    await Promise.all(members.map((m) => m.agent?.stop()));
    await Promise.all(members.map((m) => m.proxy.stop()));
    for (const m of members) m.node.agent?.close();
    await etcd?.stop();
  }
  return {
    name: opts.file.name,
    agents: members.length,
    ...totals,
    chains: chainTotals,
    equivocationDetails: evidence.equivocations,
    invalidSignatures: evidence.invalidSignatures.length,
    agentMetrics,
  };
}

/** A member's signer metrics from its agent's /metrics (on its own socket), or why not. */
async function readSignerMetrics(
  m: DevnetMember,
): Promise<SignerMetrics | { readonly error: string }> {
  if (!m.agent) return { error: 'agent down' };
  const client = AgentClient.for(m.agent, { timeoutMs: 2000 });
  try {
    const answer = await client.get<unknown>('/metrics');
    if (answer.status !== 200 || typeof answer.body !== 'string')
      return { error: `/metrics answered ${answer.status}` };
    return signerMetricsOf(answer.body, `${m.name} /metrics`, Date.now());
  } catch (err) {
    return { error: errorMessage(err) };
  } finally {
    client.close();
  }
}
