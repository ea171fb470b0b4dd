/**
 * Two `vigil agent` processes on one host share one SQLite file, with one key. Clients race
 * both agents for the same positions with conflicting payloads: at most one payload per
 * position is ever signed, and every signature is the one the store holds.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { verifyEd25519 } from '../../src/keys/ed25519.js';
import { SqliteWatermarkStore } from '../../src/store/sqlite.js';
import {
  startAgentProcess,
  writeAgentConfig,
  type AgentProcess,
} from '../helpers/agent-process.js';
import { sha256, tempDir, writePrivValidatorKey } from '../helpers/guard-fixtures.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('two agents sharing one SQLite store over HTTP', () => {
  let dir: string;
  let cleanup: () => void;
  const agents: AgentProcess[] = [];
  before(() => ({ dir, cleanup } = tempDir('vigil-two-agents-')));
  after(async () => {
    for (const a of agents) await a.kill('SIGKILL');
    cleanup();
  });

  it('never sign two payloads at one slot', async () => {
    const storePath = join(dir, 'shared.db');
    const keyFile = join(dir, 'priv_validator_key.json');
    const key = writePrivValidatorKey(keyFile, 7);
    const configs = ['agent-a', 'agent-b'].map((id) => {
      const dataDir = join(dir, id);
      mkdirSync(dataDir, { recursive: true });
      return writeAgentConfig({ dir, storePath, dataDir, keyFile }, id);
    });
    for (const c of configs) agents.push(await startAgentProcess(c));

    const signedAt = new Map<bigint, Set<string>>();
    const signaturesAt = new Map<bigint, Set<string>>();
    let granted = 0;
    let refused = 0;
    const client = async (c: number) => {
      for (let slot = 0n; slot < 60n; slot++) {
        const agent = agents[(c + Number(slot)) % agents.length]!;
        const payload = sha256(`slot ${slot} from client ${c}`);
        const res = await agent.client.post<{ signature?: string; reason?: string }>('/v1/sign', {
          family: 'slot',
          chainId: 'shared',
          keyId: 'k1',
          position: { slot: String(slot) },
          payload: hex(payload),
        });
        const body = res.body;
        if (res.status === 200) {
          granted++;
          const sig = new Uint8Array(Buffer.from(body.signature!, 'hex'));
          assert.ok(verifyEd25519(key.publicKey, payload, sig));
          signedAt.set(slot, (signedAt.get(slot) ?? new Set()).add(hex(payload)));
          signaturesAt.set(slot, (signaturesAt.get(slot) ?? new Set()).add(body.signature!));
        } else {
          refused++;
          assert.equal(res.status, 409, JSON.stringify(body));
          assert.ok(['conflict', 'regression'].includes(body.reason!), body.reason);
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(client));

    assert.ok(granted > 0 && refused > 0, `granted ${granted}, refused ${refused}: a real race`);
    for (const [slot, payloads] of signedAt) {
      assert.equal(payloads.size, 1, `slot ${slot} signed for ${payloads.size} payloads`);
      assert.equal(signaturesAt.get(slot)!.size, 1);
    }
    for (const a of agents) await a.kill('SIGTERM');
    const store = SqliteWatermarkStore.open({ path: storePath });
    try {
      const w = await store.get({ chainId: 'shared', keyId: key.publicKeyHex, family: 'slot' });
      const top = [...signedAt.keys()].reduce((a, b) => (a > b ? a : b));
      assert.ok(w && w.position[0]! >= top);
      if (w.position[0] === top) {
        assert.equal(
          hex(w.payloadHash!),
          hex(sha256(Buffer.from([...signedAt.get(top)!][0]!, 'hex'))),
        );
      }
    } finally {
      await store.close();
    }
  });
});
