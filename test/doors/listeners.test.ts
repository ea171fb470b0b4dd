/**
 * Issue 9's walk-around through the agent's real listeners, not fastify's inject: a `vigil`
 * agent started as an operator runs it serves its API on the unix socket and on loopback TCP
 * with a bearer token. A CometBFT key that signed a proposal at (10, 0) must not sign a
 * conflicting one at that position through either listener, under any family label, any
 * invented chain, or naming an exclusive role — and the store keeps the one record.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AgentClient } from '../../src/agent/client.js';
import { AgentConfigSchema } from '../../src/agent/config.js';
import { startAgent, type RunningAgent } from '../../src/agent/daemon.js';
import { initStore } from '../../src/agent/store.js';
import { cometbftKeyJson } from '../../src/keys/generate.js';
import { proposalSignBytes } from '../../src/protocols/cometbft/sign-bytes.js';
import { grandpaVote } from '../helpers/guard-fixtures.js';

const COSMOS = 'cosmos-listeners-1';
const WESTEND = '0xe143f23803ac50e8f6f8e62695d1ce9e4e1d68aa36c1cd2cfd15340213f3423e';
const TOKEN = 'ab'.repeat(32);
const h32 = (s: string) => new Uint8Array(createHash('sha256').update(s).digest());
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function proposal(block: string, chainId = COSMOS): string {
  return hex(
    proposalSignBytes({
      height: 10n,
      round: 0n,
      polRound: -1n,
      blockId: { hash: h32(block), partSetHeader: { total: 1, hash: h32(`${block}/parts`) } },
      timestamp: { seconds: 1_750_000_000n, nanos: 0 },
      chainId,
    }),
  );
}

describe('the walk-around through the real unix socket and TCP listeners', () => {
  let dir: string;
  let agent: RunningAgent;
  let socket: AgentClient;
  let tcp: AgentClient;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-door-listeners-'));
    writeFileSync(join(dir, 'val.json'), cometbftKeyJson(new Uint8Array(32).fill(31)), {
      mode: 0o600,
    });
    writeFileSync(join(dir, 'gran.seed'), Buffer.alloc(32, 32).toString('hex') + '\n', {
      mode: 0o600,
    });
    writeFileSync(join(dir, 'api.token'), TOKEN + '\n', { mode: 0o600 });
    const config = AgentConfigSchema.parse({
      agent: { id: 'doors-listeners', dataDir: join(dir, 'agent') },
      listen: {
        socket: { path: join(dir, 'agent', 'api.sock') },
        tcp: { host: '127.0.0.1', port: 0, tokenFile: join(dir, 'api.token') },
      },
      store: { engine: 'sqlite', path: join(dir, 'store.db') },
      keys: [
        { id: 'val', file: join(dir, 'val.json'), protocol: 'cometbft', chains: [COSMOS] },
        { id: 'gran', file: join(dir, 'gran.seed'), protocol: 'grandpa', chains: [WESTEND] },
      ],
    });
    await (await initStore(config.store)).close();
    agent = await startAgent(config, pino({ level: 'silent' }));
    assert.ok(agent.socketPath !== undefined && agent.url !== undefined);
    socket = new AgentClient({ socketPath: agent.socketPath });
    tcp = new AgentClient({ url: agent.url, token: TOKEN });
    const first = await socket.post<{ decision?: string }>('/v1/sign', {
      family: 'cometbft',
      chainId: COSMOS,
      keyId: 'val',
      payload: proposal('A'),
    });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.decision, 'granted');
  });

  after(async () => {
    socket?.close();
    tcp?.close();
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const attempts: Array<[string, Record<string, unknown>, number, string]> = [
    ['cometbft door', { family: 'cometbft', chainId: COSMOS }, 409, 'conflict'],
    [
      'slot door',
      { family: 'slot', chainId: COSMOS, position: { slot: '10' } },
      403,
      'wrong_protocol',
    ],
    ['slot door, invented chain', { family: 'slot', chainId: 'made-up' }, 403, 'wrong_protocol'],
    ['grandpa door', { family: 'grandpa', chainId: WESTEND }, 403, 'wrong_protocol'],
    [
      'a chain the key does not serve',
      { family: 'cometbft', chainId: 'other-1' },
      403,
      'unknown_chain',
    ],
    [
      'naming a role this agent does not supervise',
      { family: 'cometbft', chainId: COSMOS, role: 'nobody-holds-it' },
      400,
      'invalid_request',
    ],
  ];
  for (const [via, client] of [
    ['unix socket', () => socket],
    ['TCP + bearer token', () => tcp],
  ] as const) {
    for (const [door, body, status, reason] of attempts) {
      it(`${via}, ${door}: ${status} ${reason}, nothing signed`, async () => {
        const r = await client().post<{ reason?: string; signature?: string; error?: unknown }>(
          '/v1/sign',
          { keyId: 'val', payload: proposal('B'), ...body },
        );
        assert.notEqual(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.signature, undefined);
        assert.equal(r.status, status, JSON.stringify(r.body));
        if (r.body.reason !== undefined) assert.equal(r.body.reason, reason);
      });
    }
    it(`${via}: the GRANDPA key given a CometBFT proposal as its vote is 400`, async () => {
      const r = await client().post<{ signature?: string }>('/v1/sign', {
        family: 'grandpa',
        chainId: WESTEND,
        keyId: 'gran',
        payload: proposal('B'),
      });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.signature, undefined);
    });
  }

  it('TCP without the token is 401 and signs nothing', async () => {
    const anonymous = new AgentClient({ url: agent.url! });
    try {
      const r = await anonymous.post('/v1/sign', {
        family: 'grandpa',
        chainId: WESTEND,
        keyId: 'gran',
        payload: hex(grandpaVote(1n, 5n, 'prevote', 'A')),
      });
      assert.equal(r.status, 401);
    } finally {
      anonymous.close();
    }
  });

  it('after every attempt the store holds one record, the first proposal', async () => {
    const all = await agent.store.list();
    assert.equal(
      all.length,
      1,
      JSON.stringify(all, (_k, v) => (typeof v === 'bigint' ? `${v}` : v)),
    );
    assert.equal(all[0]!.scope.chainId, COSMOS);
    assert.equal(all[0]!.watermark.position[0], 10n);
  });
});
