/**
 * The watchdog process on its own: a real `vigil watchdog` running the fake node, driven over
 * its unix socket by the agent's client. Deadlines are absolute CLOCK_MONOTONIC instants, so
 * the test computes them exactly as the agent does.
 */
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import type { ChildProcess } from 'node:child_process';
import { WatchdogClient } from '../../src/watchdog/client.js';
import {
  decodeAgentMessage,
  encodeMessage,
  ProtocolError,
  type AgentMessage,
} from '../../src/watchdog/protocol.js';
import { sleep } from '../helpers/etcd-cluster.js';
import { producedStamps, startWatchdog, type Host } from './role-harness.js';

const FAKE_NODE = fileURLToPath(new URL('./fake-node.js', import.meta.url));
const ms = (n: number) => BigInt(Math.round(n * 1e6));

describe('agent ↔ watchdog protocol', () => {
  it('property: every agent message round-trips; deadlines stay exact bigints', () => {
    const ns = fc.bigInt({ min: 0n, max: 2n ** 63n });
    const msg: fc.Arbitrary<AgentMessage> = fc.oneof(
      fc.record({
        type: fc.constant('activate' as const),
        id: fc.nat(),
        token: ns,
        deactivateAt: ns,
        deadline: ns,
      }),
      fc.record({ type: fc.constant('renew' as const), token: ns, deactivateAt: ns, deadline: ns }),
      fc.record({ type: fc.constant('deactivate' as const), id: fc.nat(), token: ns }),
    );
    fc.assert(
      fc.property(msg, (m) => assert.deepEqual(decodeAgentMessage(encodeMessage(m)), { ...m })),
    );
  });

  it('refuses durations, negative or fractional instants, and unknown fields', () => {
    for (const bad of [
      '{"type":"renew","token":"1","deactivateAt":"-5","deadline":"10"}',
      '{"type":"renew","token":"1","deactivateAt":5,"deadline":"10"}',
      '{"type":"renew","token":"1","deactivateAt":"1.5","deadline":"10"}',
      '{"type":"renew","token":"1","deactivateAt":"1","deadline":"10","ttlMs":5000}',
      '{"type":"extend","token":"1"}',
      'not json',
    ])
      assert.throws(() => decodeAgentMessage(bad), ProtocolError, bad);
  });
});

describe('vigil watchdog (real process)', () => {
  let dir: string;
  let watchdog: ChildProcess | undefined;
  let host: Host;
  let socket: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-wd-unit-'));
    for (const d of ['standby', 'live']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'standby', 'kes.skey'), 'secret', { mode: 0o600 });
    socket = join(dir, 'wd.sock');
    const produced = join(dir, 'produced');
    writeFileSync(produced, '');
    const node = JSON.stringify({
      credential: join(dir, 'live', 'kes.skey'),
      produced,
      status: join(dir, 'status'),
      everyMs: 5,
      stopDelayMs: 0,
      pidFile: join(dir, 'node.pid'),
    });
    const move = (from: string, to: string) => ({
      moveFile: { from: join(dir, from, 'kes.skey'), to: join(dir, to, 'kes.skey') },
    });
    writeFileSync(
      join(dir, 'watchdog.yaml'),
      JSON.stringify({
        role: 'r',
        socket,
        node: { run: [process.execPath, FAKE_NODE, node], restartDelayMs: 100 },
        activate: [move('standby', 'live'), { signalNode: 'SIGHUP' }],
        deactivate: [move('live', 'standby'), { signalNode: 'SIGHUP' }],
        confirm: { run: ['sh', '-c', `test "$(cat '${join(dir, 'status')}')" = idle`], pollMs: 10 },
      }),
    );
    watchdog = await startWatchdog(join(dir, 'watchdog.yaml'));
    host = { name: 'w', dir, produced } as Host;
    for (let i = 0; i < 500 && !existsSync(join(dir, 'node.pid')); i++) await sleep(10);
  });
  after(async () => {
    if (watchdog && watchdog.exitCode === null) {
      const gone = new Promise((r) => watchdog!.once('exit', r));
      watchdog.kill('SIGTERM');
      await Promise.race([gone, sleep(5000)]);
      if (watchdog.exitCode === null) watchdog.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const activate = async (client: WatchdogClient, token: bigint, deadlineInMs: number) => {
    const deadline = process.hrtime.bigint() + ms(deadlineInMs);
    const reply = await client.request(
      { type: 'activate', token, deactivateAt: deadline - ms(300), deadline },
      2000,
    );
    return { reply, deadline };
  };

  it('a closed channel (agent died): the node stops by the deadline last sent', async () => {
    const client = new WatchdogClient(socket, () => undefined);
    const { reply, deadline } = await activate(client, 7n, 1000);
    assert.equal(reply.type, 'activated');
    assert.ok(existsSync(join(dir, 'live', 'kes.skey')));
    client.close();
    await sleep(1500);
    const stamps = producedStamps(host);
    assert.ok(stamps.length > 0, 'the node produced while active');
    assert.ok(stamps[stamps.length - 1]! < deadline, 'nothing produced at or past the deadline');
    assert.ok(existsSync(join(dir, 'standby', 'kes.skey')), 'the key was put away');
  });

  it('a renewal for another token changes nothing; an agent gets a stop notice', async () => {
    const stopped: bigint[] = [];
    const client = new WatchdogClient(socket, (m) => stopped.push(m.token));
    const { reply, deadline } = await activate(client, 8n, 1000);
    assert.equal(reply.type, 'activated');
    const far = process.hrtime.bigint() + ms(60_000);
    client.renew({ type: 'renew', token: 7n, deactivateAt: far, deadline: far });
    // Deadlines only move forward: an older instant is ignored.
    client.renew({ type: 'renew', token: 8n, deactivateAt: deadline - ms(900), deadline });
    await sleep(1500);
    const stamps = producedStamps(host);
    assert.ok(stamps[stamps.length - 1]! < deadline);
    assert.deepEqual(stopped, [8n], 'the agent was told the watchdog stopped the node');
    const again = await client.request({ type: 'deactivate', token: 8n }, 2000);
    assert.equal(again.type === 'deactivated' && again.confirmed, true);
    client.close();
  });

  it('refuses an activation whose deadline has passed, and a second agent', async () => {
    const client = new WatchdogClient(socket, () => undefined);
    const past = process.hrtime.bigint() - ms(1);
    const reply = await client.request(
      { type: 'activate', token: 9n, deactivateAt: past, deadline: past + ms(300) },
      2000,
    );
    assert.equal(reply.type, 'refused');
    assert.ok(existsSync(join(dir, 'standby', 'kes.skey')), 'nothing was activated');
    const second = new WatchdogClient(socket, () => undefined);
    await assert.rejects(activate(second, 10n, 5000));
    second.close();
    client.close();
  });

  it('a malformed message closes the channel and leaves the deadline as it was', async () => {
    const client = new WatchdogClient(socket, () => undefined);
    const { reply, deadline } = await activate(client, 11n, 1000);
    assert.equal(reply.type, 'activated');
    client.close();
    await sleep(50);
    const raw = createConnection(socket);
    const closed = new Promise((r) => raw.once('close', r));
    raw.write('{"type":"renew","token":"11","deactivateAt":"99999999999999999","deadline":1}\n');
    await closed;
    await sleep(1500);
    const stamps = producedStamps(host);
    assert.ok(stamps[stamps.length - 1]! < deadline);
  });
});
