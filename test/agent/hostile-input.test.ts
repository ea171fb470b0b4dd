/**
 * Hostile input to /v1/sign and /v1/authorize: every answer is a 4xx with a typed body, and
 * the store is left exactly as it was. (Before these fixes "1e3" and "٣" as a position threw
 * inside the schema and answered 500, and a payload of MAX_PAYLOAD_BYTES + 1 without "0x" was
 * accepted.)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { MAX_PAYLOAD_BYTES } from '../../src/agent/api-schemas.js';
import { AgentClient } from '../../src/agent/client.js';
import { AgentConfigSchema } from '../../src/agent/config.js';
import { startAgent, type RunningAgent } from '../../src/agent/daemon.js';
import { initStore } from '../../src/agent/store.js';
import { cometbftKeyJson } from '../../src/keys/generate.js';
import { babeHeader } from '../helpers/guard-fixtures.js';

let dir: string;
let agent: RunningAgent;
let client: AgentClient;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-hostile-'));
  writeFileSync(join(dir, 'key.json'), cometbftKeyJson(new Uint8Array(32).fill(5)), {
    mode: 0o600,
  });
  for (const [name, tag] of [
    ['babe.seed', 6],
    ['limit.seed', 7],
  ] as const)
    writeFileSync(join(dir, name), Buffer.alloc(32, tag).toString('hex') + '\n', { mode: 0o600 });
  const config = AgentConfigSchema.parse({
    agent: { id: 'hostile', dataDir: join(dir, 'agent') },
    store: { engine: 'sqlite', path: join(dir, 'store.db') },
    keys: [
      // BABE seals: the position comes from a real header, so every door below is parsed.
      { id: 'val', file: join(dir, 'babe.seed'), protocol: 'babe', chains: ['h'] },
      { id: 'limit', file: join(dir, 'limit.seed'), protocol: 'babe', chains: ['limit'] },
      { id: 'comet', file: join(dir, 'key.json'), protocol: 'cometbft', chains: ['h', 'other'] },
      {
        id: 'auth',
        publicKey: '22'.repeat(32),
        protocol: 'authorize',
        duty: 'slot',
        chains: ['h'],
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

type ErrorBody = { error: { code: string; message: string } };
const send = (body: string, path = '/v1/sign', contentType?: string) =>
  client.request<ErrorBody & Record<string, unknown>>('POST', path, body, undefined, contentType);

/** Everything the store holds, comparable with deepEqual. */
const snapshot = async () =>
  JSON.stringify(await agent.store.list(), (_k, v: unknown) =>
    typeof v === 'bigint'
      ? v.toString()
      : v instanceof Uint8Array
        ? Buffer.from(v).toString('hex')
        : v,
  );

/** A BABE header at `slot` whose encoding is exactly `size` bytes (an `other` digest item pads
 * it), as hex. */
function headerHex(slot: bigint, size?: number): string {
  const build = (pad: number) =>
    babeHeader(slot, 'hostile', 1n, pad > 0 ? [{ kind: 'other', data: new Uint8Array(pad) }] : []);
  if (size === undefined) return Buffer.from(build(0)).toString('hex');
  // The compact length prefix grows with the padding: walk down to the exact size.
  let pad = size - build(0).length;
  while (pad > 0 && build(pad).length > size) pad--;
  const header = build(pad);
  assert.equal(header.length, size, 'a header of exactly that size');
  return Buffer.from(header).toString('hex');
}

/** A slot claim as sent, over a real header (at the claimed slot when it is one). */
const slotBody = (slot: unknown) => {
  const real =
    typeof slot === 'string' && /^\d{1,20}$/.test(slot) && BigInt(slot) < 1n << 64n
      ? BigInt(slot)
      : 1n;
  return JSON.stringify({
    family: 'slot',
    chainId: 'h',
    keyId: 'val',
    position: { slot },
    payload: headerHex(real),
  });
};

describe('malformed numbers are 400 with a precise message', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['"1e3"', '1e3', /ASCII decimal digits/],
    ['"٣" (Arabic-Indic digit)', '٣', /ASCII decimal digits/],
    ['"１" (fullwidth digit)', '１', /ASCII decimal digits/],
    ['1e3 as a JSON number', 1e3, /not a JSON number/],
    ['42 as a JSON number', 42, /not a JSON number/],
    ['"+1"', '+1', /without sign/],
    ['" 1"', ' 1', /spaces/],
    ['"01"', '01', /leading zeros/],
    ['"-1"', '-1', /without sign/],
    ['""', '', /ASCII decimal digits/],
    ['2^63', (1n << 63n).toString(), /at most 2\^63-1/],
    ['a hundred digits', '9'.repeat(100), /at most 2\^63-1/],
  ];
  for (const [name, slot, message] of cases) {
    test(name, async () => {
      const before = await snapshot();
      const r = await send(slotBody(slot));
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'INVALID_REQUEST');
      assert.match(r.body.error.message, /position\.slot/);
      assert.match(r.body.error.message, message);
      assert.equal(await snapshot(), before);
    });
  }

  test('the largest position, 2^63-1, is accepted', async () => {
    const r = await send(slotBody(((1n << 63n) - 1n).toString()));
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });
});

describe('the payload limit is exact', () => {
  test('MAX_PAYLOAD_BYTES is signed; one byte more is 400 naming the sizes', async () => {
    const atLimit = await send(
      JSON.stringify({
        family: 'slot',
        chainId: 'limit',
        keyId: 'limit',
        position: { slot: '1' },
        payload: headerHex(1n, MAX_PAYLOAD_BYTES),
      }),
    );
    assert.equal(atLimit.status, 200, JSON.stringify(atLimit.body));
    const before = await snapshot();
    for (const prefix of ['', '0x']) {
      const over = await send(
        JSON.stringify({
          family: 'slot',
          chainId: 'limit',
          keyId: 'limit',
          position: { slot: '2' },
          payload: prefix + 'ab'.repeat(MAX_PAYLOAD_BYTES + 1),
        }),
      );
      assert.equal(over.status, 400, `${prefix}: ${JSON.stringify(over.body)}`);
      assert.match(
        over.body.error.message,
        new RegExp(`payload: at most ${MAX_PAYLOAD_BYTES} bytes`),
      );
    }
    assert.equal(await snapshot(), before);
  });
});

describe('bodies that are not one plain JSON object', () => {
  test('a key named twice, at any depth, is 400', async () => {
    const before = await snapshot();
    for (const body of [
      '{"family":"slot","chainId":"h","keyId":"val","position":{"slot":"7","slot":"8"},"payload":"ab"}',
      '{"family":"slot","family":"slot","chainId":"h","keyId":"val","position":{"slot":"7"},"payload":"ab"}',
      '{"family":"slot","chainId":"h","keyId":"val","position":{"slot":"7"},"payload":"ab","\\u0070ayload":"cd"}',
    ]) {
      const r = await send(body);
      assert.equal(r.status, 400, body);
      assert.equal(r.body.error.code, 'DUPLICATE_KEY');
    }
    assert.equal(await snapshot(), before);
  });

  test('a wrong content type is 415 with a typed body', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonx']) {
      const r = await send(slotBody('9'), '/v1/sign', type);
      assert.equal(r.status, 415, type);
      assert.equal(r.body.error.code, 'UNSUPPORTED_MEDIA_TYPE');
    }
  });

  test('invalid JSON, an empty body, and non-objects are 400', async () => {
    for (const body of ['{', '', 'null', '[]', '"x"', '1', '{"family":"slot"}']) {
      const r = await send(body);
      assert.equal(r.status, 400, body);
      assert.equal(typeof r.body.error.code, 'string');
      assert.equal(typeof r.body.error.message, 'string');
    }
  });
});

describe('random JSON-ish bodies', () => {
  const position = fc.oneof(
    fc.constantFrom('1e3', '٣', '+1', ' 1', '01', '-0', '0x10', '1.5', '9'.repeat(30), ''),
    fc.bigInt({ min: 0n, max: 1n << 64n }).map(String),
    fc.integer(),
    fc.double(),
    fc.constant(null),
    fc.jsonValue(),
  );
  const hexish = fc.oneof(
    fc.constantFrom('', '0x', 'zz', 'abc', '0xab', 'AB'),
    fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('hex')),
    fc.string(),
    fc.jsonValue(),
  );
  const body = fc.record(
    {
      family: fc.oneof(fc.constantFrom('slot', 'grandpa', 'cometbft', 'SLOT', ''), fc.jsonValue()),
      chainId: fc.oneof(fc.string({ maxLength: 300 }), fc.jsonValue()),
      keyId: fc.oneof(fc.constantFrom('val', 'comet', 'auth', 'nope'), fc.jsonValue()),
      role: fc.oneof(fc.string(), fc.jsonValue()),
      nodeId: fc.oneof(fc.string(), fc.jsonValue()),
      position: fc.oneof(
        fc.record(
          {
            slot: position,
            setId: position,
            round: position,
            height: position,
            stage: fc.string(),
            step: fc.string(),
          },
          { requiredKeys: [] },
        ),
        fc.jsonValue(),
      ),
      payload: hexish,
      extension: hexish,
      __proto__: fc.jsonValue(),
      extra: fc.jsonValue(),
    },
    { requiredKeys: [] },
  );
  // Well-formed but for one hostile field, so the schema's deeper checks are reached.
  const nearlyValid = fc
    .record({
      family: fc.constantFrom('slot', 'grandpa', 'cometbft'),
      chainId: fc.constantFrom('h', 'other'),
      keyId: fc.constantFrom('val', 'comet', 'auth'),
      nodeId: fc.constantFrom('n1', 'n2'),
      position: fc.record({
        slot: position,
        setId: position,
        round: position,
        height: position,
        stage: fc.constantFrom('propose', 'prevote', 'precommit'),
        step: fc.constantFrom('proposal', 'prevote', 'precommit'),
      }),
      payload: hexish,
    })
    .map((b) => {
      const keep =
        b.family === 'slot'
          ? ['slot']
          : b.family === 'grandpa'
            ? ['setId', 'round', 'stage']
            : ['height', 'round', 'step'];
      const pos = Object.fromEntries(Object.entries(b.position).filter(([k]) => keep.includes(k)));
      return JSON.stringify({ ...b, position: pos });
    });
  const text = fc.oneof(
    { weight: 4, arbitrary: nearlyValid },
    { weight: 3, arbitrary: body.map((b) => JSON.stringify(b)) },
    { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    {
      weight: 1,
      arbitrary: body.map((b) => {
        const s = JSON.stringify(b);
        return s.length > 2 ? s.slice(0, -1) + ',"family":"slot"}' : s;
      }),
    },
  );

  test('never a 5xx, always a typed error body, and the store changes only on a 200', async () => {
    await fc.assert(
      fc.asyncProperty(text, fc.constantFrom('/v1/sign', '/v1/authorize'), async (t, path) => {
        const before = await snapshot();
        const r = await send(t, path);
        assert.ok(r.status < 500, `${r.status} for ${t}: ${JSON.stringify(r.body)}`);
        if (r.status >= 400) {
          assert.equal(typeof r.body.error?.code, 'string', JSON.stringify(r.body));
          assert.equal(typeof r.body.error?.message, 'string');
        }
        if (r.status !== 200) assert.equal(await snapshot(), before, t);
      }),
      { numRuns: 400 },
    );
  });
});
