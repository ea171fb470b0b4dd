/**
 * Runs a host's Vigil agent from its RENDERED agent.yaml. Only the file paths change: every
 * absolute path (data dir, socket, store, keys) moves under the host's directory in the run
 * dir, since the namespaces share this machine's filesystem. Listen addresses are kept as
 * rendered (the host's VPN address exists inside its namespace). The signing keys the
 * operator would install are generated there (0600) for the simulated chain.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { generateCometbftKeyFile, generateSeedFile } from '../../keys/generate.js';
import { inNetns, run } from './exec.js';
import { startInNetns, waitFor, type StartedProcess } from './processes.js';
import type { RunRecordFile } from './run-record.js';

const CLI_ENTRY = fileURLToPath(new URL('../../cli/run.js', import.meta.url));

/** Pure: the same document with every absolute path string moved under `root`. */
export function rerootPaths(doc: unknown, root: string): unknown {
  if (typeof doc === 'string') return doc.startsWith('/') ? join(root, doc) : doc;
  if (Array.isArray(doc)) return doc.map((d) => rerootPaths(d, root));
  if (doc !== null && typeof doc === 'object')
    return Object.fromEntries(Object.entries(doc).map(([k, v]) => [k, rerootPaths(v, root)]));
  return doc;
}

/** The engine of a rendered agent.yaml's store (`sqlite`, `etcd`). */
export function agentStoreEngine(renderedYaml: string): string | undefined {
  const doc = parse(renderedYaml) as { store?: { engine?: unknown } } | null;
  return typeof doc?.store?.engine === 'string' ? doc.store.engine : undefined;
}

export interface PreparedAgent {
  readonly configFile: string;
  /** Public keys (hex) of the generated CometBFT signing keys, by key id. */
  readonly cometbftKeys: ReadonlyMap<string, string>;
}

const AgentKeysSchemaShape = (doc: unknown) =>
  ((doc as { keys?: { id?: string; file?: string; protocol?: string }[] }).keys ?? []).filter(
    (k): k is { id: string; file: string; protocol?: string } =>
      typeof k.id === 'string' && typeof k.file === 'string',
  );

/**
 * `sharedKeysDir`: where each key is generated once, by key id, and copied from: the hosts
 * that serve one signing key (an active/standby or guarded pair) get the same key, as an
 * operator installs it on each of them.
 */
export function prepareAgent(
  renderedYaml: string,
  hostRoot: string,
  sharedKeysDir?: string,
): PreparedAgent {
  const doc = rerootPaths(parse(renderedYaml), hostRoot) as Record<string, unknown>;
  const cometbftKeys = new Map<string, string>();
  for (const key of AgentKeysSchemaShape(doc)) {
    mkdirSync(dirname(key.file), { recursive: true, mode: 0o700 });
    if (sharedKeysDir !== undefined && !existsSync(key.file)) {
      mkdirSync(sharedKeysDir, { recursive: true, mode: 0o700 });
      const shared = join(sharedKeysDir, `${key.protocol ?? 'seed'}-${key.id}.json`);
      if (!existsSync(shared))
        if (key.protocol === 'cometbft') generateCometbftKeyFile(shared);
        else generateSeedFile(shared);
      copyFileSync(shared, key.file);
    }
    if (key.protocol === 'cometbft') {
      if (!existsSync(key.file)) generateCometbftKeyFile(key.file);
      const { pub_key } = JSON.parse(readFileSync(key.file, 'utf8')) as {
        pub_key: { value: string };
      };
      cometbftKeys.set(key.id, Buffer.from(pub_key.value, 'base64').toString('hex'));
    } else if (!existsSync(key.file)) generateSeedFile(key.file);
  }
  const agent = doc.agent as { dataDir?: string } | undefined;
  if (agent?.dataDir) mkdirSync(agent.dataDir, { recursive: true, mode: 0o700 });
  const configFile = join(hostRoot, 'etc/vigil/agent.yaml');
  mkdirSync(dirname(configFile), { recursive: true });
  writeFileSync(configFile, stringify(doc), { mode: 0o600 });
  return { configFile, cometbftKeys };
}

export async function startAgent(
  record: RunRecordFile,
  netns: string,
  configFile: string,
  logFile: string,
): Promise<StartedProcess> {
  // What the operator does once per store before the first start: an agent never creates
  // its store by itself (src/cli/state.ts).
  run(inNetns(netns, [process.execPath, CLI_ENTRY, 'state', 'init', '--config', configFile]));
  const proc = startInNetns(
    record,
    netns,
    'vigil agent',
    [process.execPath, CLI_ENTRY, 'agent', '--config', configFile],
    logFile,
  );
  await waitFor(
    `the Vigil agent in ${netns}`,
    () => {
      try {
        return /"msg":"agent (ready|started, not ready)/.test(readFileSync(logFile, 'utf8'));
      } catch {
        return false;
      }
    },
    proc,
    20_000,
  );
  return proc;
}
