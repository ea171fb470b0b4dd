/**
 * Slow links on the local fleet (src/provision/local/delay.ts): the delaying relay on its own
 * (order and delay of datagrams, on loopback), then on a running three-host fleet, where a
 * TCP connect over the VPN (one round trip) between two hosts' WireGuard addresses must take
 * about 100 ms longer after slowLink(…, 100), be back to normal after heal, leave the other
 * hosts' links alone, and where destroy stops a relay still running. Needs root, ip, nft, wg
 * and wireguard-go for the fleet part: skipped loudly without them, unless
 * VIGIL_REQUIRE_ETCD=1 (CI), where a missing tool fails the test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  applyLocal,
  destroyLocal,
  RUN_RECORD,
  type LocalFleet,
} from '../../src/provision/local/fleet.js';
import { controlName } from '../../src/provision/local/wireguard.js';
import {
  healAllSlowLinks,
  healSlowLink,
  relayWhat,
  slowLink,
  slowLinksOf,
} from '../../src/provision/local/delay.js';
import type { RelayConfig } from '../../src/provision/local/delay-config.js';
import { REQUIRED_TOOLS, missingTools, pidAlive } from '../../src/provision/local/exec.js';
import { pidRunning } from '../../src/provision/local/processes.js';
import { killHost } from '../../src/provision/local/faults.js';
import { INTERNET_ADDRESS } from '../../src/provision/local/network.js';
import { RunRecordFile, type RunRecord } from '../../src/provision/local/run-record.js';
import { planFleet } from '../../src/render/fleet.js';
import { localCosmosTopology } from '../helpers/local-cosmos-topology.js';

const RELAY_MAIN = fileURLToPath(
  new URL('../../src/provision/local/delay-relay-main.js', import.meta.url),
);

test('the delay relay forwards each datagram after the delay, in order, both ways', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgl-dly-'));
  const a = createSocket('udp4');
  const b = createSocket('udp4');
  const relay = { proc: undefined as ReturnType<typeof spawn> | undefined };
  try {
    a.bind(0, '127.0.0.1');
    b.bind(0, '127.0.0.1');
    await Promise.all([once(a, 'listening'), once(b, 'listening')]);
    const readyFile = join(dir, 'ready.json');
    const config: RelayConfig = {
      bindAddress: '127.0.0.1',
      a: { address: '127.0.0.1', port: a.address().port },
      b: { address: '127.0.0.1', port: b.address().port },
      oneWayMs: 40,
      readyFile,
    };
    writeFileSync(join(dir, 'relay.json'), JSON.stringify(config));
    relay.proc = spawn(process.execPath, [RELAY_MAIN, join(dir, 'relay.json')], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 100 && !existsSync(readyFile); i++) await sleep(50);
    const ready = JSON.parse(readFileSync(readyFile, 'utf8')) as {
      portForA: number;
      portForB: number;
    };
    const got: { n: number; ms: number }[] = [];
    const sentAt = new Map<number, number>();
    b.on('message', (m) => {
      const n = m.readUInt32BE(0);
      got.push({ n, ms: performance.now() - sentAt.get(n)! });
    });
    // 200 datagrams A → B in bursts of 20, 5 ms apart.
    for (let n = 0; n < 200; n++) {
      const buf = Buffer.alloc(64);
      buf.writeUInt32BE(n, 0);
      sentAt.set(n, performance.now());
      a.send(buf, ready.portForA, '127.0.0.1');
      if (n % 20 === 19) await sleep(5);
    }
    // And one B → A, which must reach A (the relay's A-facing socket sends it).
    const back = once(a, 'message');
    b.send(Buffer.from('pong'), ready.portForB, '127.0.0.1');
    const [reply] = (await Promise.race([back, sleep(2000).then(() => [undefined])])) as [
      Buffer | undefined,
    ];
    for (let i = 0; i < 40 && got.length < 200; i++) await sleep(50);
    assert.equal(got.length, 200, 'datagrams lost on loopback');
    assert.deepEqual(
      got.map((g) => g.n),
      [...Array(200).keys()],
      'reordered',
    );
    const delays = got.map((g) => g.ms).sort((x, y) => x - y);
    assert.ok(delays[0]! >= 39, `a datagram came after ${delays[0]} ms, before the 40 ms delay`);
    // Loose on purpose (a loaded machine delays every wake-up): this catches delays that add up
    // per queued datagram (200 × 40 ms), not timer jitter.
    assert.ok(delays[199]! < 1000, `the slowest datagram took ${delays[199]} ms, 40 ms asked`);
    console.log(`relay on loopback: 40 ms asked, median ${delays[100]!.toFixed(1)} ms`);
    assert.equal(reply?.toString(), 'pong');
  } finally {
    relay.proc?.kill('SIGKILL');
    a.close();
    b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

function localSkip(): string | false {
  const why: string[] = [];
  if (process.getuid?.() !== 0) why.push('not root');
  why.push(...missingTools([...REQUIRED_TOOLS]).map((t) => `${t} missing`));
  if (why.length === 0) return false;
  if (process.env.VIGIL_REQUIRE_ETCD === '1')
    throw new Error(`VIGIL_REQUIRE_ETCD=1 but the local fleet cannot run: ${why.join(', ')}`);
  const msg = `slow links on the local fleet: SKIPPING (${why.join(', ')})`;
  console.error(`\n!!! ${msg} !!!\n`);
  return msg;
}

/** A validator and the two sentries the lint asks for; SQLite, so no etcd to wait for. */
const TOPOLOGY = localCosmosTopology({
  name: 'delay-three',
  vpnCidr: '10.79.0.0/24',
  store: 'sqlite',
  chainId: 'delay-1',
  hosts: (['validator', 'sentry-a', 'sentry-b'] as const).map((name) => ({
    name,
    role: name === 'validator' ? 'validator' : 'sentry',
    region: `lab-${name}`,
  })),
});

/**
 * Round trips over the VPN from host `from` to `address:port`: the time of each TCP connect
 * (SYN out, SYN-ACK back), run inside `from`'s namespace. Returns the median of `n`, in ms.
 */
function connectMedianMs(record: RunRecord, from: string, address: string, port: number, n = 7) {
  const ns = record.hosts.find((h) => h.name === from)!.netns;
  const script = `
    const net = require('node:net');
    const out = [];
    const one = () => new Promise((res, rej) => {
      const t = performance.now();
      const s = net.connect({ host: ${JSON.stringify(address)}, port: ${port}, timeout: 3000 });
      s.once('connect', () => { out.push(performance.now() - t); s.destroy(); res(); });
      s.once('timeout', () => { s.destroy(); rej(new Error('timeout')); });
      s.once('error', rej);
    });
    (async () => { for (let i = 0; i < ${n}; i++) { await one(); } console.log(JSON.stringify(out)); })()
      .catch((e) => { console.error(e.message); process.exit(1); });`;
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(r.status, 0, `connect ${from} → ${address}:${port}: ${r.stderr}`);
  const times = (JSON.parse(r.stdout) as number[]).sort((x, y) => x - y);
  return times[Math.floor(times.length / 2)]!;
}

/** The WireGuard endpoints of `host`'s peers (`wg show all` would list every namespace's). */
/** TCP connects in a loop from `from` to `address:port` for `ms`, in `from`'s namespace. */
function connectLoop(
  record: RunRecord,
  from: string,
  address: string,
  port: number,
  ms: number,
): Promise<void> {
  const ns = record.hosts.find((h) => h.name === from)!.netns;
  const script = `
    const net = require('node:net');
    const end = Date.now() + ${ms};
    const one = () => new Promise((res) => {
      const s = net.connect({ host: ${JSON.stringify(address)}, port: ${port}, timeout: 1000 });
      const done = () => { s.destroy(); res(); };
      s.once('connect', done); s.once('timeout', done); s.once('error', done);
    });
    (async () => { while (Date.now() < end) await one(); })();`;
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], {
    stdio: 'ignore',
  });
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function endpointsOf(fleet: LocalFleet, host: string): string {
  const i = fleet.record.hosts.findIndex((h) => h.name === host);
  const control = controlName(fleet.record.fleetId, i, fleet.wireguardMode === 'kernel');
  const ns = fleet.record.hosts[i]!.netns;
  const r = spawnSync('ip', ['netns', 'exec', ns, 'wg', 'show', control, 'endpoints'], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test(
  'slowLink on the local fleet: +100 ms round trip over the VPN between two hosts, healed, destroyed',
  { skip: localSkip(), timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgl-dly-'));
    const state = join(dir, 's');
    let applied = false;
    try {
      writeFileSync(join(dir, 'delay-three.yaml'), TOPOLOGY);
      const r = planFleet(join(dir, 'delay-three.yaml'), { state, write: false });
      assert.ok(r.plan && r.files, JSON.stringify(r.findings));
      const fleet = await applyLocal({ plan: r.plan!, files: r.files!, stateDir: state });
      applied = true;
      const record = fleet.record;
      const vpn = (h: string) => record.hosts.find((x) => x.name === h)!.vpnAddress;
      // The validator's p2p port: open to its sentries over wg0 (the rendered firewall).
      const p2p = 26656;
      const before = connectMedianMs(record, 'sentry-a', vpn('validator'), p2p);
      const otherBefore = connectMedianMs(record, 'sentry-b', vpn('validator'), p2p);

      // Traffic both ways while the endpoints switch: a direct datagram reaching the end
      // switched first would roam it back (what the bridge table prevents).
      const busy = connectLoop(record, 'sentry-a', vpn('validator'), p2p, 3000);
      await sleep(300);
      await slowLink(record, 'sentry-a', 'validator', 100);
      await busy;
      // The relay is in the run record (file and the caller's copy) and both ends point at it.
      const onDisk = RunRecordFile.load(join(state, RUN_RECORD)).record;
      const relays = onDisk.created.filter(
        (c) => c.kind === 'process' && c.what === relayWhat('validator', 'sentry-a'),
      );
      assert.equal(relays.length, 1, JSON.stringify(onDisk.created));
      const relay = relays[0]!;
      assert.ok(relay.kind === 'process' && pidAlive(relay.pid));
      assert.ok(record.created.some((c) => c.kind === 'process' && c.pid === relay.pid));
      assert.deepEqual(slowLinksOf(record), [{ a: 'validator', b: 'sentry-a', rttMs: 100 }]);
      const slowed = connectMedianMs(record, 'sentry-a', vpn('validator'), p2p);
      const other = connectMedianMs(record, 'sentry-b', vpn('validator'), p2p);
      // WireGuard roaming has not moved either end back to the direct path under traffic.
      assert.match(endpointsOf(fleet, 'validator'), new RegExp(`${INTERNET_ADDRESS}:`));
      assert.match(endpointsOf(fleet, 'sentry-a'), new RegExp(`${INTERNET_ADDRESS}:`));
      assert.doesNotMatch(endpointsOf(fleet, 'sentry-b'), new RegExp(`${INTERNET_ADDRESS}:`));
      console.log(
        `slow link: connect over the VPN ${before.toFixed(1)} ms → ${slowed.toFixed(1)} ms with +100 ms; ` +
          `other link ${otherBefore.toFixed(1)} → ${other.toFixed(1)} ms`,
      );
      const added = slowed - before;
      // Lenient: each direction waits at least 50 ms in the relay, and a loaded 2-core machine
      // adds noise on top (this is a test, not a benchmark).
      assert.ok(added >= 80 && added <= 250, `slowLink(100) added ${added.toFixed(1)} ms`);
      assert.ok(other < otherBefore + 50, `the sentry-b link slowed too: ${other} ms`);

      await healSlowLink(record, 'validator', 'sentry-a');
      assert.ok(!pidRunning(relay.pid), 'the relay outlived heal');
      assert.deepEqual(slowLinksOf(record), []);
      assert.ok(
        !RunRecordFile.load(join(state, RUN_RECORD)).record.created.some(
          (c) => c.kind === 'process' && c.pid === relay.pid,
        ),
      );
      assert.doesNotMatch(endpointsOf(fleet, 'validator'), new RegExp(`${INTERNET_ADDRESS}:`));
      const healed = connectMedianMs(record, 'sentry-a', vpn('validator'), p2p);
      console.log(`healed: ${healed.toFixed(1)} ms`);
      assert.ok(healed < before + 50, `after heal ${healed} ms (before ${before} ms)`);

      // Bad input changes nothing.
      await assert.rejects(slowLink(record, 'sentry-a', 'nowhere', 50), /no host nowhere/);
      await assert.rejects(slowLink(record, 'sentry-a', 'sentry-a', 50), /two hosts/);
      await assert.rejects(slowLink(record, 'sentry-a', 'sentry-b', -1), /round trip/);
      assert.deepEqual(slowLinksOf(record), []);

      // Host loss while slow (every process of sentry-a killed, its WireGuard with them): heal
      // still stops the relay and points the validator back at sentry-a directly.
      await slowLink(record, 'validator', 'sentry-a', 30);
      assert.deepEqual(await killHost(record, 'sentry-a'), []);
      await healSlowLink(record, 'sentry-a', 'validator');
      assert.deepEqual(slowLinksOf(record), []);
      assert.doesNotMatch(endpointsOf(fleet, 'validator'), new RegExp(`${INTERNET_ADDRESS}:`));

      // Two links slow at once, one healed by healAll; the last left for destroy to stop.
      await slowLink(record, 'validator', 'sentry-b', 60);
      await slowLink(record, 'validator', 'sentry-a', 40).then(
        () => assert.fail('slowLink to a lost host (no WireGuard) succeeded'),
        (err: Error) => assert.match(err.message, /no WireGuard interface|sentry-a/),
      );
      assert.equal(slowLinksOf(record).length, 1);
      await healAllSlowLinks(record);
      assert.deepEqual(slowLinksOf(record), []);
      await slowLink(record, 'validator', 'sentry-b', 60);
      const last = RunRecordFile.load(join(state, RUN_RECORD)).record.created.find(
        (c) => c.kind === 'process' && c.what === relayWhat('validator', 'sentry-b'),
      );
      assert.ok(last?.kind === 'process' && pidAlive(last.pid));
      const namespaces = record.created.flatMap((c) => (c.kind === 'netns' ? [c.name] : []));
      await destroyLocal(state);
      applied = false;
      assert.ok(!pidRunning(last.pid), 'destroy left the relay running');
      const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
      for (const ns of namespaces) assert.ok(!left.includes(ns), `${ns} left`);
    } finally {
      if (applied) await destroyLocal(state).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
