import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AgentConfigSchema } from '../../src/agent/config.js';
import { AgentClient } from '../../src/agent/client.js';
import { initStore } from '../../src/agent/store.js';
import { startAgent, type RunningAgent } from '../../src/agent/daemon.js';
import {
  voteSignBytes,
  SignedMsgType,
  type CanonicalVote,
} from '../../src/protocols/cometbft/sign-bytes.js';
import { headerHash } from '../../src/protocols/substrate/header.js';
import { verifyEd25519 } from '../../src/keys/ed25519.js';
import { verifySr25519 } from '../../src/keys/sr25519.js';
import { writeRigKeyFiles } from '../helpers/agent-process.js';
import { babeHeader, cometSignBytes, grandpaVote } from '../helpers/guard-fixtures.js';
import { RIG_KEYS } from '../helpers/wire-check.js';

/** `val` signs CometBFT on cosmos-1, `babe` seals BABE blocks and `gran` votes GRANDPA on c1. */
const KEY = RIG_KEYS.k1;
const BABE = RIG_KEYS.s1;
const GRANDPA = RIG_KEYS.g1;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

let dir: string;
let agent: RunningAgent;
let client: AgentClient;

const post = (path: string, body: unknown, raw?: string) =>
  client.request<Record<string, any>>('POST', path, raw ?? JSON.stringify(body));

/** Asks to seal the BABE header for `slot` whose content is `content`, claiming its slot. */
const slotSign = (slot: string, content: string, keyId = 'babe', chainId = 'c1') =>
  post('/v1/sign', {
    family: 'slot',
    chainId,
    keyId,
    position: { slot },
    payload: hex(babeHeader(BigInt(slot), content)),
  });

function vote(
  height: bigint,
  round: bigint,
  type: number,
  blockHash: Uint8Array | undefined,
  seconds: bigint,
): CanonicalVote {
  return {
    type,
    height,
    round,
    ...(blockHash
      ? {
          blockId: {
            hash: blockHash,
            partSetHeader: { total: 1, hash: new Uint8Array(32).fill(2) },
          },
        }
      : {}),
    timestamp: { seconds, nanos: 0 },
    chainId: 'cosmos-1',
  };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-http-'));
  const [k1, g1, s1] = writeRigKeyFiles(dir);
  const config = AgentConfigSchema.parse({
    agent: { id: 'test-agent', dataDir: join(dir, 'agent') },
    store: { engine: 'sqlite', path: join(dir, 'store.db') },
    keys: [
      { id: 'val', file: k1!.file, protocol: 'cometbft', chains: ['cosmos-1'] },
      { id: 'babe', file: s1!.file, protocol: 'babe', chains: ['c1'] },
      { id: 'gran', file: g1!.file, protocol: 'grandpa', chains: ['c1'] },
      {
        id: 'authority',
        publicKey: '11'.repeat(32),
        protocol: 'authorize',
        chains: ['dot'],
        duty: 'slot',
      },
      {
        id: 'authority-g',
        publicKey: '22'.repeat(32),
        protocol: 'authorize',
        chains: ['dot'],
        duty: 'grandpa',
      },
    ],
  });
  await (await initStore(config.store)).close();
  agent = await startAgent(config, pino({ level: 'silent' }));
  client = AgentClient.for(agent);
});

after(async () => {
  client.close();
  await agent.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('POST /v1/sign', () => {
  test('BABE: seals a header (sr25519 over its hash), replays it, refuses a conflict and a regression', async () => {
    const first = await slotSign('100', 'aa01');
    assert.equal(first.status, 200);
    assert.equal(first.body.decision, 'granted');
    assert.ok(
      verifySr25519(
        BABE.publicKey,
        headerHash(babeHeader(100n, 'aa01')),
        Buffer.from(first.body.signature, 'hex'),
      ),
    );
    assert.deepEqual(first.body.watermark.position, { slot: '100' });

    // sr25519 is randomised: the same signature again means the stored one was replayed.
    const again = await slotSign('100', 'aa01');
    assert.equal(again.status, 200);
    assert.equal(again.body.decision, 'replayed');
    assert.equal(again.body.signature, first.body.signature);

    const conflict = await slotSign('100', 'aa02');
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.reason, 'conflict');
    assert.equal(conflict.body.signature, undefined);
    assert.deepEqual(conflict.body.watermark.position, { slot: '100' });

    const regression = await slotSign('99', 'aa03');
    assert.equal(regression.status, 409);
    assert.equal(regression.body.reason, 'regression');
  });

  test('the key may be named by its public key, sharing the same watermark', async () => {
    const r = await slotSign('100', 'aa01', hex(BABE.publicKey));
    assert.equal(r.body.decision, 'replayed');
  });

  test('the position is optional: the guard reads it from the bytes; a wrong claim is 400', async () => {
    const unclaimed = await post('/v1/sign', {
      family: 'slot',
      chainId: 'c1',
      keyId: 'babe',
      payload: hex(babeHeader(101n, 'no claim')),
    });
    assert.equal(unclaimed.status, 200, JSON.stringify(unclaimed.body));
    assert.deepEqual(unclaimed.body.watermark.position, { slot: '101' });
    const wrong = await post('/v1/sign', {
      family: 'slot',
      chainId: 'c1',
      keyId: 'babe',
      position: { slot: '103' },
      payload: hex(babeHeader(102n, 'wrong claim')),
    });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.reason, 'invalid_request');
    assert.match(wrong.body.message, /claims \(103\).*bytes are at \(102\)/);
    // The refused claim moved nothing: slot 102 is still free.
    assert.equal((await slotSign('102', 'wrong claim')).status, 200);
  });

  test('GRANDPA: signs the vote payload with ed25519 and replays it', async () => {
    const payload = grandpaVote(4n, 12n, 'prevote', 'target');
    const body = {
      family: 'grandpa',
      chainId: 'c1',
      keyId: 'gran',
      position: { setId: '4', round: '12', stage: 'prevote' },
      payload: hex(payload),
    };
    const a = await post('/v1/sign', body);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.ok(verifyEd25519(GRANDPA.publicKey, payload, Buffer.from(a.body.signature, 'hex')));
    assert.deepEqual(a.body.watermark.position, { setId: '4', round: '12', stage: 'prevote' });
    const b = await post('/v1/sign', body);
    assert.equal(b.body.decision, 'replayed');
    const other = await post('/v1/sign', {
      ...body,
      payload: hex(grandpaVote(4n, 12n, 'prevote', 'other target')),
    });
    assert.equal(other.status, 409);
    assert.equal(other.body.reason, 'conflict');
  });

  test('CometBFT: timestamp-only difference replays with the stored timestamp', async () => {
    const hash = new Uint8Array(32).fill(9);
    const first = voteSignBytes(vote(5n, 0n, SignedMsgType.Prevote, hash, 1_700_000_000n));
    const later = voteSignBytes(vote(5n, 0n, SignedMsgType.Prevote, hash, 1_700_000_005n));
    const body = (payload: Uint8Array) => ({
      family: 'cometbft',
      chainId: 'cosmos-1',
      keyId: 'val',
      position: { height: '5', round: '0', step: 'prevote' },
      payload: hex(payload),
    });
    const a = await post('/v1/sign', body(first));
    assert.equal(a.body.decision, 'granted');
    const b = await post('/v1/sign', body(later));
    assert.equal(b.status, 200);
    assert.equal(b.body.decision, 'replayed');
    assert.equal(b.body.signature, a.body.signature);
    assert.equal(b.body.timestamp, '2023-11-14T22:13:20Z');
    assert.ok(verifyEd25519(KEY.publicKey, first, Buffer.from(b.body.signature, 'hex')));

    const otherBlock = voteSignBytes(
      vote(5n, 0n, SignedMsgType.Prevote, new Uint8Array(32).fill(8), 1_700_000_000n),
    );
    const c = await post('/v1/sign', body(otherBlock));
    assert.equal(c.status, 409);
    assert.equal(c.body.reason, 'conflict');
  });

  test('CometBFT: the declared position must be the one in the sign bytes', async () => {
    const bytes = voteSignBytes(
      vote(7n, 0n, SignedMsgType.Prevote, new Uint8Array(32).fill(1), 1n),
    );
    const r = await post('/v1/sign', {
      family: 'cometbft',
      chainId: 'cosmos-1',
      keyId: 'val',
      position: { height: '8', round: '0', step: 'prevote' },
      payload: hex(bytes),
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.reason, 'invalid_request');
    assert.match(r.body.message, /bytes are at \(7, 0, 2\)/);
  });

  test('CometBFT: a vote extension is refused on a nil precommit and signed on a non-nil one', async () => {
    const nilPrecommit = voteSignBytes(vote(9n, 0n, SignedMsgType.Precommit, undefined, 1n));
    const base = {
      family: 'cometbft',
      chainId: 'cosmos-1',
      keyId: 'val',
      position: { height: '9', round: '0', step: 'precommit' },
    };
    const refused = await post('/v1/sign', {
      ...base,
      payload: hex(nilPrecommit),
      extension: 'beef',
    });
    assert.equal(refused.status, 400);
    const blockPrecommit = voteSignBytes(
      vote(9n, 0n, SignedMsgType.Precommit, new Uint8Array(32).fill(3), 1n),
    );
    const ok = await post('/v1/sign', { ...base, payload: hex(blockPrecommit), extension: 'beef' });
    assert.equal(ok.status, 200);
    assert.equal(typeof ok.body.extensionSignature, 'string');
  });

  test('unknown keys are 404; authorization-only keys cannot sign (403 wrong_protocol)', async () => {
    assert.equal((await slotSign('1', 'aa', 'nope')).status, 404);
    const r = await slotSign('1', 'aa', 'authority', 'dot');
    assert.equal(r.status, 403);
    assert.equal(r.body.reason, 'wrong_protocol');
    assert.match(r.body.message, /authorization only/);
  });

  test("a key is used only through its protocol's door and for its chains (403)", async () => {
    // A BABE header under the CometBFT key's family label, and the other way round.
    const viaComet = await post('/v1/sign', {
      family: 'cometbft',
      chainId: 'c1',
      keyId: 'babe',
      payload: hex(babeHeader(500n, 'x')),
    });
    assert.equal(viaComet.status, 403);
    assert.equal(viaComet.body.reason, 'wrong_protocol');
    const slotViaVal = await slotSign('500', 'x', 'val', 'cosmos-1');
    assert.equal(slotViaVal.status, 403);
    assert.equal(slotViaVal.body.reason, 'wrong_protocol');
    const unserved = await slotSign('500', 'x', 'babe', 'c2');
    assert.equal(unserved.status, 403);
    assert.equal(unserved.body.reason, 'unknown_chain');
    // The right family and chain, but bytes of another protocol: 400, nothing recorded.
    const vote = await post('/v1/sign', {
      family: 'slot',
      chainId: 'c1',
      keyId: 'babe',
      payload: hex(grandpaVote(1n, 1n, 'prevote')),
    });
    assert.equal(vote.status, 400);
    assert.equal(vote.body.reason, 'invalid_request');
    const proposal = await post('/v1/sign', {
      family: 'grandpa',
      chainId: 'c1',
      keyId: 'gran',
      payload: hex(
        cometSignBytes({ height: 3n, round: 0n, step: 'proposal', chainId: 'c1', block: 1 }),
      ),
    });
    assert.equal(proposal.status, 400);
    assert.equal(proposal.body.reason, 'invalid_request');
    const w = await agent.store.list();
    assert.equal(
      w.some((e) => e.watermark.position[0] === 500n || e.scope.chainId === 'c2'),
      false,
    );
  });
});

describe('POST /v1/authorize', () => {
  const ask = (slot: string, nodeId: string) =>
    post('/v1/authorize', {
      family: 'slot',
      chainId: 'dot',
      keyId: 'authority',
      position: { slot },
      nodeId,
    });

  test('one node per slot; a retry by the same node is allowed again', async () => {
    const a = await ask('50', 'node-a');
    assert.equal(a.status, 200);
    assert.equal(a.body.allowed, true);
    assert.equal(a.body.signature, undefined);
    assert.equal((await ask('50', 'node-a')).body.allowed, true);
    const b = await ask('50', 'node-b');
    assert.equal(b.status, 409);
    assert.equal(b.body.allowed, false);
    assert.equal(b.body.reason, 'conflict');
    assert.equal((await ask('49', 'node-a')).body.reason, 'regression');
  });

  test('an authorize key is granted only its duty; a signing key is granted nothing (403)', async () => {
    const grandpaAsk = await post('/v1/authorize', {
      family: 'grandpa',
      chainId: 'dot',
      keyId: 'authority',
      position: { setId: '1', round: '1', stage: 'prevote' },
      nodeId: 'n',
    });
    assert.equal(grandpaAsk.status, 403);
    assert.equal(grandpaAsk.body.reason, 'wrong_protocol');
    const signingKey = await post('/v1/authorize', {
      family: 'slot',
      chainId: 'c1',
      keyId: 'babe',
      position: { slot: '7' },
      nodeId: 'n',
    });
    assert.equal(signingKey.status, 403);
    assert.equal(signingKey.body.allowed, false);
    assert.equal(signingKey.body.reason, 'wrong_protocol');
  });

  test('GRANDPA rounds restart only with a higher set id', async () => {
    const g = (setId: string, round: string, stage: string, nodeId = 'n') =>
      post('/v1/authorize', {
        family: 'grandpa',
        chainId: 'dot',
        keyId: 'authority-g',
        position: { setId, round, stage },
        nodeId,
      });
    assert.equal((await g('3', '10', 'prevote')).status, 200);
    assert.equal((await g('3', '10', 'precommit')).status, 200);
    assert.equal((await g('3', '9', 'precommit')).body.reason, 'regression');
    assert.equal((await g('4', '1', 'prevote')).status, 200);
    assert.equal((await g('3', '11', 'prevote')).body.reason, 'regression');
  });
});

describe('malformed requests', () => {
  const cases: Array<[string, unknown, string?]> = [
    ['not JSON', undefined, '{bad'],
    ['no body fields', {}],
    [
      'unknown family',
      { family: 'pow', chainId: 'c1', keyId: 'babe', position: { slot: '1' }, payload: '00' },
    ],
    [
      'negative slot',
      { family: 'slot', chainId: 'c1', keyId: 'babe', position: { slot: '-1' }, payload: '00' },
    ],
    [
      'slot above 2^63-1',
      {
        family: 'slot',
        chainId: 'c1',
        keyId: 'babe',
        position: { slot: '9223372036854775808' },
        payload: '00',
      },
    ],
    [
      'slot as a JSON number',
      { family: 'slot', chainId: 'c1', keyId: 'babe', position: { slot: 5 }, payload: '00' },
    ],
    [
      'odd hex',
      { family: 'slot', chainId: 'c1', keyId: 'babe', position: { slot: '1' }, payload: 'abc' },
    ],
    [
      'extra field',
      {
        family: 'slot',
        chainId: 'c1',
        keyId: 'babe',
        position: { slot: '1' },
        payload: '00',
        sneaky: 1,
      },
    ],
    [
      'a header that does not parse',
      { family: 'slot', chainId: 'c1', keyId: 'babe', position: { slot: '1' }, payload: '00' },
    ],
    [
      'cometbft garbage sign bytes',
      {
        family: 'cometbft',
        chainId: 'cosmos-1',
        keyId: 'val',
        position: { height: '1', round: '0', step: 'prevote' },
        payload: 'ffff',
      },
    ],
  ];
  for (const [name, body, raw] of cases) {
    test(`${name} → 400 with a message, nothing recorded`, async () => {
      const r = await post('/v1/sign', body, raw);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      const message = r.body.error?.message ?? r.body.message;
      assert.equal(typeof message, 'string');
      assert.ok(message.length > 5);
    });
  }

  test('an oversized body is rejected and the daemon keeps serving', async () => {
    const r = await post('/v1/sign', {
      family: 'slot',
      chainId: 'c1',
      keyId: 'babe',
      position: { slot: '1' },
      payload: 'aa'.repeat(200_000),
    });
    assert.ok(r.status === 413 || r.status === 400, String(r.status));
    const health = await client.get('/healthz');
    assert.equal(health.status, 200);
    assert.equal((await slotSign('200', 'bb')).status, 200);
  });

  test('a refused or malformed request leaves the watermark where it was', async () => {
    assert.equal((await slotSign('300', 'cc')).status, 200);
    await post('/v1/sign', {
      family: 'slot',
      chainId: 'c1',
      keyId: 'babe',
      position: { slot: '-5' },
      payload: 'cc',
    });
    assert.equal((await slotSign('299', 'cc')).status, 409);
    const w = await agent.store.list();
    const slot = w.find((e) => e.scope.chainId === 'c1' && e.scope.family === 'slot');
    assert.deepEqual(slot?.watermark.position, [300n]);
  });
});

describe('health, readiness, metrics and the API document', () => {
  test('/healthz and /readyz answer', async () => {
    assert.equal((await client.get('/healthz')).status, 200);
    const ready = await client.get<{ store: string }>('/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.store, 'sqlite');
  });

  test('/metrics counts decisions by outcome and reason and exports watermarks', async () => {
    const text = (await client.get<string>('/metrics')).body;
    assert.match(
      text,
      /vigil_guard_decisions_total\{family="slot",outcome="refused",reason="conflict",agent="test-agent"\} [1-9]/,
    );
    assert.match(text, /vigil_guard_decision_seconds_bucket/);
    assert.match(
      text,
      /vigil_watermark\{chain_id="c1",key="babe",family="slot",component="slot",agent="test-agent"\} 300/,
    );
  });

  test('/openapi.json documents the request bodies', async () => {
    const doc = (await client.get<any>('/openapi.json')).body;
    assert.equal(doc.openapi, '3.0.3');
    for (const path of ['/v1/sign', '/v1/authorize']) {
      const schema = doc.paths[path].post.requestBody.content['application/json'].schema;
      assert.ok(
        Array.isArray(schema.oneOf) || Array.isArray(schema.anyOf),
        `${path} has no union body schema`,
      );
    }
    assert.ok(doc.paths['/readyz']);
  });
});
