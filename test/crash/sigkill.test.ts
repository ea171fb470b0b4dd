/**
 * Crash safety: SIGKILL a signer under load, restart it on the same files, and check that the
 * stored watermark never went backwards and covers every signature a client received (the
 * stored position is at or above each one, and at that position the stored payload is the one
 * signed). Two variants: the guard driver process, and the real `vigil agent` over HTTP.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { comparePositions, type Position } from '../../src/guard/index.js';
import { SqliteWatermarkStore } from '../../src/store/sqlite.js';
import {
  initAgentStore,
  startAgentProcess,
  writeAgentConfig,
  writeRigKeyFiles,
  type AgentProcess,
} from '../helpers/agent-process.js';
import { startDriver } from '../helpers/driver-process.js';
import { babeHeader, CHAIN, sha256, tempDir } from '../helpers/guard-fixtures.js';
import type { WireRequest } from '../helpers/guard-wire.js';
import { RIG_KEYS, verifyRigSignature, wireSignBytes } from '../helpers/wire-check.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** The key that signs each family here: BABE seals with `s1`, GRANDPA votes with `g1`. */
const KEY_OF = { slot: RIG_KEYS.s1, grandpa: RIG_KEYS.g1 } as const;

/** A signature a client received: what it was for and the bytes it got. */
interface Received {
  readonly chainId: string;
  readonly family: 'slot' | 'grandpa';
  readonly position: Position;
  /** The message as sent (a BABE header, a GRANDPA vote payload): what the store hashes. */
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
}

const scopeKey = (chainId: string, family: string) => `${chainId}/${family}`;

/**
 * Checks the store against everything received so far and against the previous check; returns
 * the stored positions by scope.
 */
async function verifyStore(
  storePath: string,
  received: readonly Received[],
  previous: Map<string, Position>,
): Promise<Map<string, Position>> {
  const store = SqliteWatermarkStore.open({ path: storePath });
  try {
    const now = new Map<string, Position>();
    for (const { scope, watermark } of await store.list()) {
      now.set(scopeKey(scope.chainId, scope.family), watermark.position);
    }
    for (const [scope, before] of previous) {
      const after = now.get(scope);
      assert.ok(after, `watermark for ${scope} disappeared`);
      assert.ok(
        comparePositions(after, before) >= 0,
        `${scope} went back from ${before} to ${after}`,
      );
    }
    for (const r of received) {
      assert.ok(
        verifyRigSignature(r.family, r.payload, r.signature),
        'received signature verifies',
      );
      const w = await store.get({
        chainId: r.chainId,
        keyId: KEY_OF[r.family].publicKeyHex,
        family: r.family,
      });
      assert.ok(w, `no watermark covers a received ${r.family} signature`);
      const order = comparePositions(w.position, r.position);
      assert.ok(
        order >= 0,
        `stored ${w.position.join('/')} is below received ${r.position.join('/')}`,
      );
      if (order === 0) {
        assert.deepEqual(w.payloadHash, sha256(r.payload), 'stored payload is the one signed');
        assert.deepEqual(w.signature, r.signature, 'stored signature is the one received');
      }
    }
    return now;
  } finally {
    await store.close();
  }
}

describe('crash: SIGKILL under load', () => {
  let dir: string;
  let cleanup: () => void;
  const agents: AgentProcess[] = [];
  before(() => ({ dir, cleanup } = tempDir('vigil-crash-')));
  after(async () => {
    for (const a of agents) await a.kill('SIGKILL');
    cleanup();
  });

  it('guard driver process: killed mid-stream five times, the store covers what it released', async () => {
    const storePath = join(dir, 'driver-store.db');
    const localPath = join(dir, 'driver-local.db');
    const received: Received[] = [];
    let stored = new Map<string, Position>();
    let next = 0n;
    let lastRequests: WireRequest[] = [];
    const signatureAt = new Map<string, string>();
    for (let round = 0; round < 5; round++) {
      const requests: WireRequest[] = [];
      // Re-send the last few requests the previous incarnation answered: a replay must give
      // the same signature, and anything else must be refused.
      requests.push(...lastRequests.slice(-3));
      for (let k = 0n; k < 3000n; k++) {
        const s = next + k;
        requests.push({
          op: 'sign',
          family: 'slot',
          chainId: CHAIN,
          keyId: 's1',
          slot: String(s),
          payload: `slot ${s}`,
        });
        requests.push({
          op: 'sign',
          family: 'grandpa',
          chainId: CHAIN,
          keyId: 'g1',
          setId: '1',
          round: String(s),
          stage: 'precommit',
          payload: `vote ${s}`,
        });
      }
      const killAfter = 40 + ((round * 37) % 90);
      const driver = startDriver({ storePath, localPath, agentId: `driver-${round}`, requests });
      const answered: WireRequest[] = [];
      driver.onResult((r) => {
        const req = requests[r.i]!;
        answered.push(req);
        if (r.outcome === 'refused') {
          assert.ok(r.i < 3, `request ${r.i} refused: ${r.reason}`);
          assert.ok(['regression', 'conflict'].includes(r.reason!), r.reason);
        } else if (req.op === 'sign' && req.family !== 'cometbft') {
          received.push({
            chainId: req.chainId,
            family: req.family,
            position: req.family === 'slot' ? [BigInt(req.slot)] : [1n, BigInt(req.round), 3n],
            payload: wireSignBytes(req),
            signature: new Uint8Array(Buffer.from(r.signature!, 'hex')),
          });
          const key = `${req.family}@${received.at(-1)!.position.join('/')}`;
          const earlier = signatureAt.get(key);
          assert.ok(earlier === undefined || earlier === r.signature, `two signatures at ${key}`);
          signatureAt.set(key, r.signature!);
        }
        if (driver.results.length === killAfter) driver.child.kill('SIGKILL');
      });
      const code = await driver.exited;
      assert.equal(
        code,
        'SIGKILL',
        `driver ended with ${code} before it was killed: ${driver.stderr()}`,
      );
      stored = await verifyStore(storePath, received, stored);
      const slot = stored.get(scopeKey(CHAIN, 'slot'));
      const vote = stored.get(scopeKey(CHAIN, 'grandpa'));
      next = ((slot?.[0] ?? 0n) > (vote?.[1] ?? 0n) ? slot![0]! : (vote?.[1] ?? 0n)) + 1n;
      lastRequests = answered;
    }
    assert.ok(received.length >= 5 * 30, `clients received ${received.length} signatures`);
  });

  it('vigil agent over HTTP: killed under concurrent load three times, restarted on the same files', async () => {
    const files = {
      dir,
      storePath: join(dir, 'agent-store.db'),
      dataDir: join(dir, 'agent-data'),
      keyFile: join(dir, 'priv_validator_key.json'),
      keys: writeRigKeyFiles(dir),
    };
    mkdirSync(files.dataDir, { recursive: true });
    const config = writeAgentConfig(files, 'crash-agent');
    initAgentStore(config);
    const received: Received[] = [];
    let stored = new Map<string, Position>();
    let nextSlot = 0n;
    let last: { slot: bigint; payload: string; signature: string } | undefined;

    const sign = (agent: AgentProcess, slot: bigint, payloadHex: string) =>
      agent.client.post<{ decision?: string; signature?: string; reason?: string }>('/v1/sign', {
        family: 'slot',
        chainId: CHAIN,
        keyId: 's1',
        position: { slot: String(slot) },
        payload: payloadHex,
      });

    for (let round = 0; round < 3; round++) {
      const agent = await startAgentProcess(config);
      agents.push(agent);
      if (last) {
        const again = await sign(agent, last.slot, last.payload);
        if (again.status === 200) {
          assert.equal(again.body.decision, 'replayed');
          assert.equal(again.body.signature, last.signature);
        } else {
          assert.equal(again.status, 409);
          assert.equal(again.body.reason, 'regression');
        }
      }
      const killAfter = 60 + round * 25;
      let counter = nextSlot;
      let killed = false;
      let statuses = new Map<number, number>();
      const client = async () => {
        // Bounded: stops at the kill, or after 5000 requests if the kill never comes.
        for (let n = 0; n < 5000 && !killed; n++) {
          const slot = counter++;
          const payload = hex(babeHeader(slot, `http slot ${slot}`));
          let r: Awaited<ReturnType<typeof sign>>;
          try {
            r = await sign(agent, slot, payload);
          } catch {
            return; // the agent is gone
          }
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (r.status === 200) {
            assert.ok(r.body.signature);
            received.push({
              chainId: CHAIN,
              family: 'slot',
              position: [slot],
              payload: new Uint8Array(Buffer.from(payload, 'hex')),
              signature: new Uint8Array(Buffer.from(r.body.signature, 'hex')),
            });
            if (!last || slot > last.slot) last = { slot, payload, signature: r.body.signature };
            if (received.length >= killAfter * (round + 1) && !killed) {
              killed = true;
              agent.child.kill('SIGKILL');
            }
          } else {
            // Concurrent clients overtake each other: a lower slot arriving late is refused.
            assert.equal(r.status, 409, JSON.stringify(r.body));
            assert.equal(r.body.reason, 'regression');
          }
        }
      };
      await Promise.all([client(), client(), client(), client()]);
      assert.equal(await agent.kill('SIGKILL'), 'SIGKILL');
      assert.ok(
        killed,
        `the agent was killed under load (statuses ${JSON.stringify([...statuses])})`,
      );
      statuses = new Map();
      stored = await verifyStore(files.storePath, received, stored);
      nextSlot = stored.get(scopeKey(CHAIN, 'slot'))![0]! + 1n;
    }
    // The restarted agent still answers after the last crash.
    const final = await startAgentProcess(config);
    agents.push(final);
    const r = await sign(final, nextSlot, hex(babeHeader(nextSlot, 'after')));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await final.kill('SIGTERM');
  });
});
