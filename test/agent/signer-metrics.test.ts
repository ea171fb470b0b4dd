/**
 * The signer's own metrics and its 'signed' log line, on a real agent with a SQLite store:
 * last signed position and time per chain and key, store latency, no label for a chain or
 * key that is not configured, and the per-chain cap on the info line.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AgentConfigSchema } from '../../src/agent/config.js';
import { AgentClient } from '../../src/agent/client.js';
import { initStore } from '../../src/agent/store.js';
import { startAgent, type RunningAgent } from '../../src/agent/daemon.js';
import { writeRigKeyFiles } from '../helpers/agent-process.js';
import { babeHeader, cometSignBytes, grandpaVote } from '../helpers/guard-fixtures.js';
import { sampleOf } from '../helpers/prometheus-text.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

let dir: string;
let agent: RunningAgent;
let client: AgentClient;
/** Wall clock (ms) seen by the metrics and the log cap's clock: both moved by the test. */
let wallMs = 1_750_000_000_000;
let logMs = 0;
const lines: Array<Record<string, any>> = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-signer-metrics-'));
  const [k1, g1, s1] = writeRigKeyFiles(dir);
  const config = AgentConfigSchema.parse({
    agent: { id: 'sm', dataDir: join(dir, 'agent') },
    store: { engine: 'sqlite', path: join(dir, 'store.db') },
    keys: [
      { id: 'val', file: k1!.file, protocol: 'cometbft', chains: ['cosmos-1', 'cosmos-2'] },
      { id: 'babe', file: s1!.file, protocol: 'babe', chains: ['c1'] },
      { id: 'gran', file: g1!.file, protocol: 'grandpa', chains: ['c1'] },
    ],
  });
  await (await initStore(config.store)).close();
  const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
  agent = await startAgent(config, logger, { now: () => wallMs, logClock: () => logMs });
  client = AgentClient.for(agent);
});

after(async () => {
  client.close();
  await agent.stop();
  rmSync(dir, { recursive: true, force: true });
});

const sign = async (body: Record<string, unknown>) =>
  (await client.post<Record<string, any>>('/v1/sign', body)).body;
const comet = (height: bigint, step: 'proposal' | 'prevote' | 'precommit', chainId = 'cosmos-1') =>
  sign({
    family: 'cometbft',
    chainId,
    keyId: 'val',
    payload: hex(cometSignBytes({ height, round: 1n, step, chainId })),
  });
const metrics = async () => (await client.get<string>('/metrics')).body;
const signedLines = () => lines.filter((l) => l.msg === 'signed');

test('every configured chain and key has a last-signed time of 0 before its first signature', async () => {
  const text = await metrics();
  const at = (chain_id: string, key: string, family: string) =>
    sampleOf(text, 'vigil_last_signed_timestamp_seconds', { chain_id, key, family });
  assert.equal(at('cosmos-1', 'val', 'cometbft'), 0);
  assert.equal(at('cosmos-2', 'val', 'cometbft'), 0);
  assert.equal(at('c1', 'babe', 'slot'), 0);
  assert.equal(at('c1', 'gran', 'grandpa'), 0);
  assert.equal(sampleOf(text, 'vigil_store_update_seconds_count', { engine: 'sqlite' }), undefined);
  // Refusal counters of the configured families exist before the first refusal, so that an
  // alert on their increase sees the first one; other families have none.
  const refused = (family: string, reason: string) =>
    sampleOf(text, 'vigil_guard_decisions_total', { family, outcome: 'refused', reason });
  assert.equal(refused('cometbft', 'conflict'), 0);
  assert.equal(refused('grandpa', 'store_behind_local'), 0);
  assert.equal(refused('slot', 'store_identity'), 0);
});

test('granted signatures set the last signed position, its time per step, and store latency', async () => {
  assert.equal((await comet(7n, 'prevote')).decision, 'granted');
  wallMs += 2_000;
  assert.equal((await comet(7n, 'precommit')).decision, 'granted');
  // A replay releases the stored signature: neither the position nor the time moves.
  wallMs += 2_000;
  assert.equal((await comet(7n, 'precommit')).decision, 'replayed');
  const slot = await sign({
    family: 'slot',
    chainId: 'c1',
    keyId: 'babe',
    payload: hex(babeHeader(321n, 'x')),
  });
  assert.equal(slot.decision, 'granted');
  const vote = await sign({
    family: 'grandpa',
    chainId: 'c1',
    keyId: 'gran',
    payload: hex(grandpaVote(4n, 12n, 'precommit', 't')),
  });
  assert.equal(vote.decision, 'granted');

  const text = await metrics();
  const pos = (chain_id: string, key: string, family: string, component: string) =>
    sampleOf(text, 'vigil_last_signed_position', { chain_id, key, family, component });
  assert.equal(pos('cosmos-1', 'val', 'cometbft', 'height'), 7);
  assert.equal(pos('cosmos-1', 'val', 'cometbft', 'round'), 1);
  assert.equal(pos('cosmos-1', 'val', 'cometbft', 'step'), 3); // precommit
  assert.equal(pos('c1', 'babe', 'slot', 'slot'), 321);
  assert.equal(pos('c1', 'gran', 'grandpa', 'setId'), 4);
  assert.equal(pos('c1', 'gran', 'grandpa', 'round'), 12);
  assert.equal(pos('c1', 'gran', 'grandpa', 'stage'), 3); // precommit
  const first = 1_750_000_000;
  const ts = (labels: Record<string, string>) =>
    sampleOf(text, 'vigil_last_signed_timestamp_seconds', labels);
  assert.equal(ts({ chain_id: 'cosmos-1', key: 'val', family: 'cometbft' }), first + 2);
  assert.equal(ts({ chain_id: 'cosmos-2', key: 'val', family: 'cometbft' }), 0);
  assert.equal(ts({ chain_id: 'c1', key: 'babe', family: 'slot' }), first + 4);
  const stepAt = (step: string) =>
    sampleOf(text, 'vigil_last_signed_step_timestamp_seconds', {
      chain_id: 'cosmos-1',
      key: 'val',
      family: 'cometbft',
      step,
    });
  assert.equal(stepAt('prevote'), first);
  assert.equal(stepAt('precommit'), first + 2);
  assert.equal(stepAt('proposal'), undefined);
  // Five requests reached the store (the replay too); one observation each, no more.
  assert.equal(sampleOf(text, 'vigil_store_update_seconds_count', { engine: 'sqlite' }), 5);
  assert.equal(
    sampleOf(text, 'vigil_guard_decisions_total', {
      family: 'cometbft',
      outcome: 'granted',
      reason: '',
    }),
    2,
  );
});

test('requests for an unknown chain or key are counted by reason but create no chain or key label', async () => {
  const before = await metrics();
  const storeCalls = sampleOf(before, 'vigil_store_update_seconds_count', { engine: 'sqlite' });
  const wrongChain = await comet(8n, 'prevote', 'evil-chain');
  assert.equal(wrongChain.reason, 'unknown_chain');
  const wrongKey = await sign({
    family: 'cometbft',
    chainId: 'evil-chain-2',
    keyId: 'evil-key',
    payload: hex(cometSignBytes({ height: 8n, step: 'prevote', chainId: 'evil-chain-2' })),
  });
  assert.equal(wrongKey.reason, 'unknown_key');
  const text = await metrics();
  assert.doesNotMatch(text, /evil/);
  assert.equal(
    sampleOf(text, 'vigil_guard_decisions_total', {
      family: 'cometbft',
      outcome: 'refused',
      reason: 'unknown_chain',
    }),
    1,
  );
  // Refused before the store: no store call observed.
  assert.equal(
    sampleOf(text, 'vigil_store_update_seconds_count', { engine: 'sqlite' }),
    storeCalls,
  );
});

test('one info line per granted signature, at most one per chain per second, with the count held back', async () => {
  logMs += 10_000;
  lines.length = 0;
  for (let h = 20n; h < 25n; h++) assert.equal((await comet(h, 'prevote')).decision, 'granted');
  // Another chain has its own cap.
  assert.equal((await comet(20n, 'prevote', 'cosmos-2')).decision, 'granted');
  logMs += 999;
  assert.equal((await comet(25n, 'prevote')).decision, 'granted');
  let logged = signedLines();
  assert.equal(logged.length, 2, JSON.stringify(logged));
  assert.deepEqual(
    {
      chainId: logged[0]!.chainId,
      key: logged[0]!.key,
      family: logged[0]!.family,
      position: logged[0]!.position,
      level: logged[0]!.level,
    },
    {
      chainId: 'cosmos-1',
      key: 'val',
      family: 'cometbft',
      position: { height: '20', round: '1', step: 'prevote' },
      level: 30,
    },
  );
  // The precommit at height 7 came in the same second as the prevote logged for it, earlier
  // (the test's log clock stood still): held back then, counted now.
  assert.equal(logged[0]!.suppressed, 1);
  assert.equal(logged[1]!.chainId, 'cosmos-2');
  assert.equal(logged[1]!.suppressed, undefined);
  logMs += 1;
  assert.equal((await comet(26n, 'prevote')).decision, 'granted');
  logged = signedLines();
  assert.equal(logged.length, 3);
  assert.deepEqual(logged[2]!.position, { height: '26', round: '1', step: 'prevote' });
  // Heights 21 to 25 were signed in the second after the line for 20.
  assert.equal(logged[2]!.suppressed, 5);
  // Refusals are still logged one by one, at warn.
  assert.equal((await comet(26n, 'prevote', 'evil-chain')).reason, 'unknown_chain');
  assert.equal(lines.filter((l) => l.msg === 'refused').length, 1);
});
