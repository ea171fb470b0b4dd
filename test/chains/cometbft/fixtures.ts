/** Real parts for CometBFT signer tests: a SQLite store, a key ring, local watermarks. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import Database from 'better-sqlite3';
import { CometbftSignerConfigSchema } from '../../../src/chains/cometbft/config.js';
import {
  startCometbftSigner,
  type CometbftSignerHandle,
  type SignerLogger,
} from '../../../src/chains/cometbft/signer.js';
import {
  decodePrivvalMessage,
  encodePrivvalMessage,
  type PrivvalMessage,
  type PrivvalProtocol,
} from '../../../src/protocols/cometbft/privval.js';
import { SecretConnection } from '../../../src/chains/cometbft/secret-connection.js';
import { Ed25519Key } from '../../../src/keys/ed25519.js';
import { KeyRing } from '../../../src/keys/keyring.js';
import { binding } from '../../helpers/guard-fixtures.js';
import { GuardedSigner, type DecisionObserver } from '../../../src/signer/guarded-signer.js';
import { LocalWatermarks } from '../../../src/signer/local-watermark.js';
import { SqliteWatermarkStore } from '../../../src/store/sqlite.js';

export const CHAIN_ID = 'vigil-test-1';
export const validatorKey = Ed25519Key.fromSeed(
  new Uint8Array(createHash('sha256').update('vigil cometbft test validator').digest()),
);

export function tempDir(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'vigil-cometbft-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface Agent {
  readonly guard: GuardedSigner;
  readonly store: SqliteWatermarkStore;
  readonly decisions: Array<{ outcome: string; reason?: string }>;
  signer?: CometbftSignerHandle;
  start(
    nodes: string[],
    protocol: PrivvalProtocol,
    idleMs?: number,
    options?: { logger?: SignerLogger; connectionKeyFile?: string },
  ): Promise<void>;
  close(): Promise<void>;
}

/** One agent: its own local watermarks and connection key, the shared store file. */
export function makeAgent(dir: string, name: string, storePath = join(dir, 'store.db')): Agent {
  const store = SqliteWatermarkStore.open({ path: storePath, create: true });
  const keys = new KeyRing();
  keys.add({
    id: 'validator',
    scopeKeyId: validatorKey.publicKeyHex,
    signer: validatorKey,
    binding: binding('cometbft', [CHAIN_ID]),
  });
  const local = new LocalWatermarks(join(dir, `${name}-local.db`));
  local.bindStore(store.identity);
  const decisions: Agent['decisions'] = [];
  const observer: DecisionObserver = {
    onDecision: (e) =>
      decisions.push({ outcome: e.outcome, ...(e.reason ? { reason: e.reason } : {}) }),
  };
  const guard = new GuardedSigner({ store, keys, local, agentId: name, observer });
  const agent: Agent = {
    guard,
    store,
    decisions,
    async start(nodes, protocol, idleMs = 5000, options = {}) {
      const config = CometbftSignerConfigSchema.parse({
        chains: [
          {
            chainId: CHAIN_ID,
            keyId: 'validator',
            protocol,
            nodes,
            connectionKeyFile: options.connectionKeyFile ?? join(dir, `${name}-connection.key`),
            timeouts: { dialMs: 1000, handshakeMs: 1000, idleMs },
            backoff: { initialMs: 20, maxMs: 200 },
          },
        ],
      });
      agent.signer = await startCometbftSigner({
        config,
        guard,
        publicKeyOf: (id) => keys.get(id)?.signer?.publicKey,
        ...(options.logger ? { logger: options.logger } : {}),
      });
    },
    async close() {
      await agent.signer?.stop();
      await store.close();
      local.close();
    },
  };
  return agent;
}

/** A barrier per (height, step): `parties` simulated nodes start each step together. */
export function lockstep(parties: number): (height: bigint, step: string) => Promise<void> {
  const waiting = new Map<string, { count: number; release: () => void; done: Promise<void> }>();
  return (height, step) => {
    const key = `${height}/${step}`;
    let entry = waiting.get(key);
    if (!entry) {
      let release!: () => void;
      const done = new Promise<void>((r) => (release = r));
      entry = { count: 0, release, done };
      waiting.set(key, entry);
    }
    entry.count++;
    if (entry.count >= parties) {
      entry.release();
      waiting.delete(key);
    }
    return entry.done;
  };
}

/** A node that lets the test send requests one by one, over a real SecretConnection. */
export async function scriptedNode(
  protocol: PrivvalProtocol,
  key = Ed25519Key.fromSeed(randomBytes(32)),
) {
  const server: Server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  let conn: SecretConnection | undefined;
  const ready = new Promise<void>((resolve) => {
    server.on('connection', (s) => {
      if (conn) return void s.destroy();
      SecretConnection.establish(s, key).then(
        (c) => {
          conn = c;
          resolve();
        },
        () => undefined,
      );
    });
  });
  return {
    address: `tcp://127.0.0.1:${(server.address() as { port: number }).port}`,
    ready,
    async request(m: PrivvalMessage): Promise<PrivvalMessage> {
      conn!.writeDelimited(encodePrivvalMessage(m, protocol));
      return decodePrivvalMessage(await conn!.readMessage(10240, 3000), protocol);
    },
    /** Sends bytes the codec may not accept, as a hostile node would. */
    async requestBytes(body: Uint8Array): Promise<PrivvalMessage> {
      conn!.writeDelimited(body);
      return decodePrivvalMessage(await conn!.readMessage(10240, 3000), protocol);
    },
    sendRaw(m: PrivvalMessage) {
      conn!.writeDelimited(encodePrivvalMessage(m, protocol));
    },
    readRaw: () => conn!.readMessage(10240, 3000),
    close() {
      conn?.close();
      server.close();
    },
  };
}

/** A real pino logger whose JSON lines are kept for the test to read. */
export function capturedLogger(): {
  logger: SignerLogger;
  lines: Array<{ level: number; msg: string; [k: string]: unknown }>;
} {
  const lines: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim() !== '') lines.push(JSON.parse(line) as (typeof lines)[number]);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

/** Every row of every table of a SQLite store file, read through a separate connection. */
export function storeRows(path: string): string {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .all() as Array<{ name: string }>;
    return JSON.stringify(
      tables.map((t) => [t.name, db.prepare(`SELECT * FROM "${t.name}"`).raw().all()]),
      (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v),
    );
  } finally {
    db.close();
  }
}
