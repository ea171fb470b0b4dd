/**
 * Two `vigil agent` processes on one host share one SQLite file and one BABE key. Clients race
 * both agents for the same slots with conflicting headers: at most one header per slot is ever
 * sealed, and every seal is the one the store holds (sr25519 seals are randomised, so a second
 * signature at a slot could not hide behind an equal one).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteWatermarkStore } from '../../src/store/sqlite.js';
import {
  initAgentStore,
  startAgentProcess,
  writeAgentConfig,
  writeRigKeyFiles,
  type AgentProcess,
} from '../helpers/agent-process.js';
import { babeHeader, CHAIN, sha256, tempDir } from '../helpers/guard-fixtures.js';
import { RIG_KEYS, verifyRigSignature } from '../helpers/wire-check.js';

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
    const keys = writeRigKeyFiles(dir);
    const configs = ['agent-a', 'agent-b'].map((id) => {
      const dataDir = join(dir, id);
      mkdirSync(dataDir, { recursive: true });
      return writeAgentConfig({ dir, storePath, dataDir, keyFile: keys[0]!.file!, keys }, id);
    });
    initAgentStore(configs[0]!);
    for (const c of configs) agents.push(await startAgentProcess(c));

    const signedAt = new Map<bigint, Set<string>>();
    const signaturesAt = new Map<bigint, Set<string>>();
    let granted = 0;
    let refused = 0;
    const client = async (c: number) => {
      for (let slot = 0n; slot < 60n; slot++) {
        const agent = agents[(c + Number(slot)) % agents.length]!;
        const payload = babeHeader(slot, `slot ${slot} from client ${c}`);
        const res = await agent.client.post<{ signature?: string; reason?: string }>('/v1/sign', {
          family: 'slot',
          chainId: CHAIN,
          keyId: 's1',
          position: { slot: String(slot) },
          payload: hex(payload),
        });
        const body = res.body;
        if (res.status === 200) {
          granted++;
          const sig = new Uint8Array(Buffer.from(body.signature!, 'hex'));
          assert.ok(verifyRigSignature('slot', payload, sig));
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
      const w = await store.get({
        chainId: CHAIN,
        keyId: RIG_KEYS.s1.publicKeyHex,
        family: 'slot',
      });
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
