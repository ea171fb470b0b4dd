/**
 * One agent's signing parts with a key for every protocol, and every door into them: the HTTP
 * API (driven with fastify's inject, so no listener is involved), the CometBFT privval signer
 * (dialing a hand-driven "node" over a real SecretConnection), and the guard itself.
 *
 * `checkNoConflicts` is the invariant every door test ends with: among all signatures any door
 * released, read under every protocol's parser, no key has two different messages at one
 * position.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { AgentConfigSchema } from '../../src/agent/config.js';
import { buildHttpApi } from '../../src/agent/http.js';
import { loadKeyRing } from '../../src/agent/keys.js';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { CometbftSignerConfigSchema } from '../../src/chains/cometbft/config.js';
import { SecretConnection } from '../../src/chains/cometbft/secret-connection.js';
import {
  startCometbftSigner,
  type CometbftSignerHandle,
} from '../../src/chains/cometbft/signer.js';
import { Ed25519Key, verifyEd25519 } from '../../src/keys/ed25519.js';
import { cometbftKeyJson } from '../../src/keys/generate.js';
import type { KeyRing } from '../../src/keys/keyring.js';
import { verifySr25519 } from '../../src/keys/sr25519.js';
import {
  decodePrivvalMessage,
  encodePrivvalMessage,
  type PrivvalMessage,
} from '../../src/protocols/cometbft/privval.js';
import { parseSignBytes } from '../../src/protocols/cometbft/sign-bytes.js';
import { decodeGrandpaSignPayload } from '../../src/protocols/substrate/grandpa.js';
import {
  decodeHeader,
  headerHash,
  slotOfUnsealedHeader,
} from '../../src/protocols/substrate/header.js';
import { GuardedSigner } from '../../src/signer/guarded-signer.js';
import { LocalWatermarks } from '../../src/signer/local-watermark.js';
import { SqliteWatermarkStore } from '../../src/store/sqlite.js';

export const COSMOS = 'cosmos-1';
/** Westend's genesis hash: what a Substrate key's chain is named by. */
export const WESTEND = '0xe143f23803ac50e8f6f8e62695d1ce9e4e1d68aa36c1cd2cfd15340213f3423e';

const seed = (tag: number) => new Uint8Array(32).fill(tag);
export const SEEDS = { val: seed(21), gran: seed(22), babe: seed(23), auth: seed(24) } as const;

/** A released signature: who signed, and the exact bytes the caller asked to have signed. */
export interface Released {
  readonly door: string;
  readonly keyHex: string;
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
}

export interface Doors {
  readonly dir: string;
  readonly keys: KeyRing;
  readonly guard: GuardedSigner;
  readonly store: SqliteWatermarkStore;
  readonly http: FastifyInstance;
  readonly released: Released[];
  /** POST a JSON body (object or raw text) to the HTTP API. */
  post(path: string, body: unknown): Promise<{ status: number; body: Record<string, any> }>;
  publicKeyHex(id: 'val' | 'gran' | 'babe' | 'auth'): string;
  close(): Promise<void>;
}

export async function openDoors(): Promise<Doors> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-doors-'));
  writeFileSync(join(dir, 'val.json'), cometbftKeyJson(SEEDS.val), { mode: 0o600 });
  writeFileSync(join(dir, 'gran.key'), Buffer.from(SEEDS.gran).toString('hex'), { mode: 0o600 });
  writeFileSync(join(dir, 'babe.key'), Buffer.from(SEEDS.babe).toString('hex'), { mode: 0o600 });
  const authPublic = Ed25519Key.fromSeed(SEEDS.auth).publicKeyHex;
  const config = AgentConfigSchema.parse({
    agent: { id: 'doors', dataDir: join(dir, 'agent') },
    store: { engine: 'sqlite', path: join(dir, 'store.db') },
    keys: [
      { id: 'val', file: join(dir, 'val.json'), protocol: 'cometbft', chains: [COSMOS] },
      { id: 'gran', file: join(dir, 'gran.key'), protocol: 'grandpa', chains: [WESTEND] },
      { id: 'babe', file: join(dir, 'babe.key'), protocol: 'babe', chains: [WESTEND] },
      { id: 'auth', publicKey: authPublic, protocol: 'authorize', duty: 'slot', chains: [WESTEND] },
    ],
  });
  const keys = loadKeyRing(config);
  const store = SqliteWatermarkStore.open({ path: join(dir, 'store.db'), create: true });
  const local = new LocalWatermarks(join(dir, 'agent', 'local.db'));
  local.bindStore(store.identity);
  const guard = new GuardedSigner({ store, keys, local, agentId: 'doors' });
  const logger = pino({ level: 'silent' });
  const http = await buildHttpApi({ guard, store, metrics: new AgentMetrics(), logger });
  const released: Released[] = [];
  const doors: Doors = {
    dir,
    keys,
    guard,
    store,
    http,
    released,
    async post(path, body) {
      const res = await http.inject({
        method: 'POST',
        url: path,
        headers: { 'content-type': 'application/json' },
        payload: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const parsed = res.json() as Record<string, any>;
      if (path === '/v1/sign' && res.statusCode === 200 && typeof parsed.signature === 'string') {
        const sent = (typeof body === 'string' ? JSON.parse(body) : body) as {
          keyId: string;
          payload: string;
        };
        released.push({
          door: 'http',
          keyHex: keys.resolve(sent.keyId)!.scopeKeyId,
          payload: new Uint8Array(Buffer.from(sent.payload.replace(/^0x/, ''), 'hex')),
          signature: new Uint8Array(Buffer.from(parsed.signature, 'hex')),
        });
      }
      return { status: res.statusCode, body: parsed };
    },
    publicKeyHex: (id) => keys.get(id)!.scopeKeyId,
    async close() {
      await http.close();
      local.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return doors;
}

/**
 * A validator "node" the privval signer dials: it accepts one SecretConnection and lets the test
 * send any privval request and read the answer, as a compromised or buggy node could.
 */
export class HandDrivenNode {
  private conn: SecretConnection | undefined;
  private readonly connected: Promise<SecretConnection>;
  private signer: CometbftSignerHandle | undefined;

  private constructor(
    private readonly server: Server,
    readonly address: string,
  ) {
    const nodeKey = Ed25519Key.fromSeed(seed(99));
    this.connected = new Promise((resolve, reject) => {
      server.once('connection', (socket: Socket) => {
        socket.on('error', () => undefined);
        SecretConnection.establish(socket, nodeKey, { handshakeTimeoutMs: 3000 }).then((c) => {
          this.conn = c;
          resolve(c);
        }, reject);
      });
    });
  }

  /** Listens, then starts the agent's privval signer for `chainId` with key `keyId`. */
  static async start(doors: Doors, chainId: string, keyId: string): Promise<HandDrivenNode> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const node = new HandDrivenNode(server, `tcp://127.0.0.1:${port}`);
    node.signer = await startCometbftSigner({
      config: CometbftSignerConfigSchema.parse({
        chains: [
          {
            chainId,
            keyId,
            nodes: [node.address],
            connectionKeyFile: join(doors.dir, `conn-${chainId}-${keyId}.key`),
            timeouts: { dialMs: 1000, handshakeMs: 3000, idleMs: 10_000 },
            backoff: { initialMs: 20, maxMs: 200 },
          },
        ],
      }),
      guard: doors.guard,
      publicKeyOf: (id) => doors.keys.resolve(id)?.signer?.publicKey,
    });
    await node.connected;
    return node;
  }

  async ask(msg: PrivvalMessage): Promise<PrivvalMessage> {
    const conn = this.conn ?? (await this.connected);
    conn.writeDelimited(encodePrivvalMessage(msg, 'v0.38'));
    return decodePrivvalMessage(await conn.readMessage(64 * 1024, 5000), 'v0.38');
  }

  async stop(): Promise<void> {
    await this.signer?.stop();
    this.conn?.socket.destroy();
    this.server.close();
  }
}

/** Every protocol's reading of some bytes: where they sit, and what the key signed for them. */
function readings(payload: Uint8Array): Array<{ position: string; signed: Uint8Array }> {
  const out: Array<{ position: string; signed: Uint8Array }> = [];
  try {
    const p = parseSignBytes(payload);
    out.push({
      position: `cometbft ${p.chainId} ${p.height}/${p.round}/${p.type}`,
      signed: payload,
    });
  } catch {
    // not CometBFT
  }
  for (const width of ['u32', 'u64'] as const) {
    try {
      const v = decodeGrandpaSignPayload(payload, width);
      out.push({ position: `grandpa ${v.setId}/${v.round}/${v.stage}`, signed: payload });
    } catch {
      // not a GRANDPA vote of this width
    }
  }
  for (const engine of ['babe', 'aura'] as const) {
    try {
      const slot = slotOfUnsealedHeader(decodeHeader(payload), engine);
      out.push({ position: `slot ${slot}`, signed: headerHash(payload) });
    } catch {
      // not a header of this engine
    }
  }
  return out;
}

/** A public key that is no point of the other curve is simply not a valid signer. */
function verifies(check: () => boolean): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}

/**
 * The invariant: no key has two valid signatures over different messages at one position, in
 * any protocol's reading. Returns the violations (empty when the guard held).
 */
export function conflictsAmong(released: readonly Released[]): string[] {
  const seen = new Map<string, { payloadHex: string; door: string }>();
  const violations: string[] = [];
  for (const r of released) {
    for (const reading of readings(r.payload)) {
      const key = Buffer.from(r.keyHex, 'hex');
      const valid =
        verifies(() => verifyEd25519(key, reading.signed, r.signature)) ||
        verifies(() => verifySr25519(key, reading.signed, r.signature));
      if (!valid) continue;
      const id = `${r.keyHex} ${reading.position}`;
      const payloadHex = Buffer.from(r.payload).toString('hex');
      const earlier = seen.get(id);
      if (earlier === undefined) seen.set(id, { payloadHex, door: r.door });
      else if (earlier.payloadHex !== payloadHex)
        violations.push(`${id}: signed through ${earlier.door} and again through ${r.door}`);
    }
  }
  return violations;
}
