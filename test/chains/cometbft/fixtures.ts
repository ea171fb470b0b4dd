/** Real parts for CometBFT signer tests: a SQLite store, a key ring, local watermarks. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { CometbftSignerConfigSchema } from '../../../src/chains/cometbft/config.js';
import {
  startCometbftSigner,
  type CometbftSignerHandle,
} from '../../../src/chains/cometbft/signer.js';
import type { PrivvalProtocol } from '../../../src/protocols/cometbft/privval.js';
import { Ed25519Key } from '../../../src/keys/ed25519.js';
import { KeyRing } from '../../../src/keys/keyring.js';
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
  start(nodes: string[], protocol: PrivvalProtocol, idleMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** One agent: its own local watermarks and connection key, the shared store file. */
export function makeAgent(dir: string, name: string, storePath = join(dir, 'store.db')): Agent {
  const store = SqliteWatermarkStore.open({ path: storePath, create: true });
  const keys = new KeyRing();
  keys.add({ id: 'validator', scopeKeyId: validatorKey.publicKeyHex, signer: validatorKey });
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
    async start(nodes, protocol, idleMs = 5000) {
      const config = CometbftSignerConfigSchema.parse({
        chains: [
          {
            chainId: CHAIN_ID,
            keyId: 'validator',
            protocol,
            nodes,
            connectionKeyFile: join(dir, `${name}-connection.key`),
            timeouts: { dialMs: 1000, handshakeMs: 1000, idleMs },
            backoff: { initialMs: 20, maxMs: 200 },
          },
        ],
      });
      agent.signer = await startCometbftSigner({
        config,
        guard,
        publicKeyOf: (id) => keys.get(id)?.signer?.publicKey,
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
