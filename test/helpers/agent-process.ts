/**
 * Runs `vigil agent --config <file>` as a child process serving on its unix socket, finds the
 * socket in the `agent ready` log line, and hands out a client for it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { AgentClient } from '../../src/agent/client.js';
import type { KeyProtocol } from '../../src/keys/binding.js';
import { babeHeader, CHAIN, CHAIN2, writePrivValidatorKey } from './guard-fixtures.js';
import { CLI_ENTRY } from './paths.js';

/** One entry of an agent config's `keys:` section. */
export interface AgentKeyEntry {
  readonly id: string;
  readonly protocol: KeyProtocol;
  readonly chains: readonly string[];
  readonly file?: string;
  readonly publicKey?: string;
  readonly duty?: 'slot' | 'grandpa';
}

export interface AgentFiles {
  readonly dir: string;
  readonly storePath: string;
  readonly dataDir: string;
  /** The CometBFT key `k1` (chains CHAIN and CHAIN2) when `keys` is not given. */
  readonly keyFile: string;
  readonly keys?: readonly AgentKeyEntry[];
}

/**
 * Writes the key files of openSignerRig's signing keys into `dir` (owner-only) and returns the
 * config entries that bind them as the rig does: `k1` CometBFT (`keyFromTag(7)`, CHAIN and
 * CHAIN2), `g1` GRANDPA (`keyFromTag(8)`, CHAIN), `s1` BABE (`srKeyFromTag(10)`, CHAIN).
 */
export function writeRigKeyFiles(dir: string): AgentKeyEntry[] {
  const k1 = join(dir, 'priv_validator_key.json');
  writePrivValidatorKey(k1, 7);
  const seedFile = (name: string, tag: number) => {
    const path = join(dir, name);
    writeFileSync(path, Buffer.alloc(32, tag).toString('hex') + '\n', { mode: 0o600 });
    chmodSync(path, 0o600);
    return path;
  };
  return [
    { id: 'k1', protocol: 'cometbft', chains: [CHAIN, CHAIN2], file: k1 },
    { id: 'g1', protocol: 'grandpa', chains: [CHAIN], file: seedFile('grandpa.seed', 8) },
    { id: 's1', protocol: 'babe', chains: [CHAIN], file: seedFile('babe.seed', 10) },
  ];
}

/**
 * Writes an agent config (sqlite store, the given keys, the API on the default socket
 * `<dataDir>/api.sock`) and returns its path.
 */
export function writeAgentConfig(files: AgentFiles, agentId: string, logLevel = 'info'): string {
  const path = join(files.dir, `${agentId}.yaml`);
  const keys = files.keys ?? [
    { id: 'k1', protocol: 'cometbft', chains: [CHAIN, CHAIN2], file: files.keyFile },
  ];
  writeFileSync(
    path,
    [
      'agent:',
      `  id: ${agentId}`,
      `  dataDir: ${JSON.stringify(files.dataDir)}`,
      'store:',
      '  engine: sqlite',
      `  path: ${JSON.stringify(files.storePath)}`,
      // YAML reads JSON: one flow mapping per key.
      'keys:',
      ...keys.map((k) => `  - ${JSON.stringify(k)}`),
      'log:',
      `  level: ${logLevel}`,
      '',
    ].join('\n'),
  );
  return path;
}

/** `vigil state init --config <file>`: the operator's act that creates the agent's store. */
export function initAgentStore(configPath: string): string {
  const r = spawnSync(process.execPath, [CLI_ENTRY, 'state', 'init', '--config', configPath], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`vigil state init failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

export interface AgentProcess {
  readonly child: ChildProcess;
  readonly socketPath: string;
  /** A kept-alive client for the agent's socket, closed by kill(). */
  readonly client: AgentClient;
  /** false when the agent logged "agent started, not ready: …" instead of "agent ready". */
  readonly startedReady: boolean;
  readonly exited: Promise<number | string>;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Starts the agent and resolves once it listens; rejects (and kills it) if it never does.
 * With `acceptNotReady`, an agent that started but reported itself not ready counts too.
 */
export async function startAgentProcess(
  configPath: string,
  readyWithinMs = 30_000,
  options: { acceptNotReady?: boolean } = {},
): Promise<AgentProcess> {
  const child = spawn(process.execPath, [CLI_ENTRY, 'agent', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((res) =>
    child.on('exit', (code, signal) => res(code ?? signal ?? 'unknown')),
  );
  let timer: NodeJS.Timeout | undefined;
  let startedReady = true;
  try {
    const socketPath = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        out += line + '\n';
        try {
          const entry = JSON.parse(line) as { msg?: string; socketPath?: string };
          if (entry.msg === 'agent ready' && entry.socketPath) resolve(entry.socketPath);
          if (
            options.acceptNotReady &&
            entry.msg?.startsWith('agent started, not ready') &&
            entry.socketPath
          ) {
            startedReady = false;
            resolve(entry.socketPath);
          }
        } catch {
          // not a log line
        }
      });
      void exited.then((code) => reject(new Error(`agent exited (${code}) before ready:\n${out}`)));
      timer = setTimeout(
        () => reject(new Error(`agent not ready within ${readyWithinMs} ms:\n${out}`)),
        readyWithinMs,
      );
    });
    const client = new AgentClient({ socketPath });
    return {
      child,
      socketPath,
      client,
      startedReady,
      exited,
      output: () => out,
      async kill(signal: NodeJS.Signals = 'SIGKILL') {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        client.close();
        return exited;
      },
    };
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The slot-signing test agent most process tests need: the rig's keys written into
 * `files.dir`, an agent config binding them, and its SQLite store initialised (unless
 * `init: false`, for tests whose store cannot be created yet). Sign with `babeSignBody`.
 */
export function writeSlotAgent(
  files: Omit<AgentFiles, 'keyFile' | 'keys'>,
  agentId: string,
  options: { init?: boolean; logLevel?: string } = {},
): string {
  const keys = writeRigKeyFiles(files.dir);
  const config = writeAgentConfig(
    { ...files, keyFile: keys[0]!.file!, keys },
    agentId,
    options.logLevel,
  );
  if (options.init !== false) initAgentStore(config);
  return config;
}

/** The HTTP body of a BABE seal by `s1` (see writeSlotAgent) of a header at `slot`. */
export function babeSignBody(slot: bigint | number, content: string | number = 'a'): string {
  return JSON.stringify({
    family: 'slot',
    chainId: CHAIN,
    keyId: 's1',
    position: { slot: String(slot) },
    payload: Buffer.from(babeHeader(BigInt(slot), content)).toString('hex'),
  });
}
