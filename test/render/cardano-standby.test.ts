/**
 * Issue 12: a guarded Cardano producer pair runs both nodes synced, the standby started without
 * forging, and is promoted by the watchdog with the key files and SIGHUP. The rendered command
 * lines are checked against the flags recorded from cardano-node's parsers
 * (upstream-node-flags.json), and the rendered watchdog actions are run for real against a
 * stand-in node that behaves as cardano-node does on SIGHUP (forges iff its credential files
 * are there) and reports `forging_enabled` on its metrics endpoint; `systemctl` is a stand-in
 * on PATH that forwards signals to it and reports its state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { buildPlan, type Plan } from '../../src/topology/plan.js';
import { PlanState } from '../../src/render/state.js';
import { cardanoKeyPaths, chainUnits, renderUnit } from '../../src/render/chains.js';
import { watchdogConfig } from '../../src/render/services.js';
import { WatchdogConfigSchema } from '../../src/watchdog/config.js';
import { checkPasses, runAction, type Action } from '../../src/supervisor/actions.js';
import { cardanoNonProducingFlag } from '../../src/chains/cardano/node-version.js';
import { lintTopology } from '../../src/topology/lint.js';
import type { TopologyInput } from '../../src/topology/schema.js';
import { artifact, baseInput, topology } from '../topology/fixtures.js';
import { removeDir, tempDir } from './helpers.js';

interface RecordedFlag {
  kind: 'value' | 'switch';
  since: string;
}
const recorded = (
  JSON.parse(readFileSync('test/render/upstream-node-flags.json', 'utf8')) as {
    'cardano-node': { subcommand: string; flags: Record<string, RecordedFlag> };
  }
)['cardano-node'];

const newer = (a: string, b: string) => {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number));
  for (let i = 0; i < 3; i++) if (x![i] !== y![i]) return x![i]! > y![i]!;
  return true;
};

const pool = (version: string, guarded = true): TopologyInput => ({
  ...baseInput(),
  spread: false,
  vigil: { ...baseInput().vigil, store: 'etcd' },
  chains: [
    {
      name: 'ada',
      kind: 'cardano',
      network: 'mainnet',
      guarded,
      binary: { ...artifact('cardano-node'), version, binary: 'bin/cardano-node' },
    },
  ],
  hosts: [
    ...baseInput().hosts,
    {
      name: 'prod',
      role: 'producer',
      chain: 'ada',
      count: 2,
      provider: 'hetzner',
      region: 'a',
      size: 's',
    },
    {
      name: 'rel',
      role: 'relay',
      chain: 'ada',
      count: 2,
      provider: 'hetzner',
      region: 'b',
      size: 's',
    },
    { name: 'g1', role: 'guard-member', provider: 'hetzner', region: 'a', size: 's' },
    { name: 'g2', role: 'guard-member', provider: 'hetzner', region: 'b', size: 's' },
    { name: 'g3', role: 'guard-member', provider: 'hetzner', region: 'c', size: 's' },
  ] as never,
});

function withPlan<T>(input: TopologyInput, fn: (plan: Plan) => T): T {
  const dir = tempDir('cardano-standby');
  try {
    return fn(buildPlan(topology(input), new PlanState(dir)));
  } finally {
    removeDir(dir);
  }
}

test('both producers of a guarded pair run, started without forging, with recorded flags only', () => {
  for (const version of ['8.7.2', '10.1.4', '10.5.1', '10.7.1'])
    withPlan(pool(version), (plan) => {
      const producers = plan.hosts.filter((h) => h.role === 'producer');
      assert.equal(producers.length, 2);
      for (const host of producers) {
        const [unit] = chainUnits(plan, host);
        assert.equal(unit!.enable, true, `${host.name}: the standby must run and sync`);
        const words = unit!.execStart.split(/\s+/);
        assert.equal(words[1], recorded.subcommand);
        const flags = words.slice(2).filter((w) => w.startsWith('--'));
        for (const f of flags) {
          const r = recorded.flags[f];
          assert.ok(r, `${f} is not a recorded cardano-node flag`);
          assert.ok(
            newer(version, r.since),
            `${f} needs cardano-node ${r.since}, pinned ${version}`,
          );
        }
        const expected = newer(version, '10.5.1')
          ? '--start-as-non-producing-node'
          : '--non-producing-node';
        assert.ok(flags.includes(expected), `${version}: ${expected} missing`);
        const forging = cardanoKeyPaths('forging');
        assert.ok(unit!.execStart.includes(`--shelley-kes-key ${forging.kes}`));
        // The key directories exist before the node starts (created as root, owned by the node).
        assert.match(renderUnit(unit!), /^ExecStartPre=\+\/usr\/bin\/install -d -m 0700 /m);
      }
    });
});

test('an unguarded producer reads its keys in place and forges from the start', () => {
  withPlan(pool('10.1.4', false), (plan) => {
    const host = plan.hosts.find((h) => h.name === 'prod-1')!;
    const [unit] = chainUnits(plan, host);
    assert.ok(unit!.execStart.includes(`--shelley-kes-key ${cardanoKeyPaths('single').kes}`));
    assert.ok(!/non-producing/.test(unit!.execStart));
  });
});

test('lint refuses a guarded pair on a cardano-node without a non-producing start', () => {
  const codes = (input: TopologyInput) =>
    lintTopology(topology(input))
      .filter((f) => f.code === 'cardano-hot-standby')
      .map((f) => f.path);
  assert.deepEqual(codes(pool('8.1.2')), ['chains[0].binary.version']);
  assert.deepEqual(codes(pool('10.1.4')), []);
  assert.deepEqual(codes(pool('8.1.2', false)), []);
  assert.equal(cardanoNonProducingFlag(undefined), undefined);
  assert.equal(cardanoNonProducingFlag('v10.5.1'), '--start-as-non-producing-node');
  assert.equal(cardanoNonProducingFlag('10.5.0'), '--non-producing-node');
  assert.equal(cardanoNonProducingFlag('8.7.1'), undefined);
});

/**
 * A stand-in cardano-node: forges iff its three credential files exist at its last SIGHUP.
 * As cardano-node, it installs its SIGHUP handler only once started up (after `startupMs`),
 * then opens its local socket; a SIGHUP before that ends it (the default action).
 */
const FAKE_NODE = `
const { existsSync, writeFileSync } = require('node:fs');
const { createServer } = require('node:http');
const net = require('node:net');
const [dir, portFile, socket, startupMs] = process.argv.slice(2);
let forging = 0;
const server = createServer((_, res) => res.end('# TYPE x gauge\\ncardano_node_metrics_forging_enabled_int ' + forging + '\\n'));
server.listen(0, '127.0.0.1', () => writeFileSync(portFile, String(server.address().port)));
setTimeout(() => {
  process.on('SIGHUP', () => {
    forging = ['kes.skey', 'vrf.skey', 'node.cert'].every((f) => existsSync(dir + '/' + f)) ? 1 : 0;
  });
  // Like the node's mux, it holds a connection until it reads something it does not speak.
  net.createServer((s) => { s.on('error', () => {}); s.once('data', () => s.destroy()); }).listen(socket);
}, Number(startupMs));
`;

/** A stand-in systemctl: signals the fake node by its pid file; `show` reports its state. */
const FAKE_SYSTEMCTL = `#!/bin/sh
pid="$(cat "$FAKE_NODE_PID")"
case "$1" in
  start) exit 0 ;;
  kill) sig="\${2#--signal=}"; kill -s "\${sig#SIG}" "$pid" ;;
  show) if kill -0 "$pid" 2>/dev/null; then echo active; else echo inactive; fi ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
`;

test('the rendered watchdog recipe promotes, demotes and kills a node that behaves like cardano-node', async () => {
  const dir = tempDir('cardano-recipe');
  let node: ChildProcess | undefined;
  try {
    const rendered = withPlan(pool('10.5.1'), (plan) =>
      watchdogConfig(plan.hosts.find((h) => h.name === 'prod-2')!),
    );
    // The rendered file is a valid watchdog config before anything is re-rooted.
    const config = WatchdogConfigSchema.parse(parseYaml(rendered));
    const keys = join(dir, 'keys');
    const socket = join(dir, 'node.socket');
    const rerooted = WatchdogConfigSchema.parse(
      parseYaml(
        rendered
          .replaceAll('/etc/cardano/keys', keys)
          .replaceAll('/var/lib/ada/node.socket', socket),
      ),
    );
    for (const sub of ['forging', 'standby']) mkdirSync(join(keys, sub), { recursive: true });
    for (const f of ['kes.skey', 'vrf.skey', 'node.cert'])
      writeFileSync(join(keys, 'standby', f), 'secret\n', { mode: 0o600 });

    const bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'systemctl'), FAKE_SYSTEMCTL, { mode: 0o755 });
    const portFile = join(dir, 'port');
    writeFileSync(join(dir, 'node.cjs'), FAKE_NODE);
    // Promoted right after its start (a restart, a boot): the SIGHUP waits for its socket.
    node = spawn(
      process.execPath,
      [join(dir, 'node.cjs'), join(keys, 'forging'), portFile, socket, '1500'],
      { stdio: 'ignore' },
    );
    writeFileSync(join(dir, 'node.pid'), String(node.pid));
    for (let i = 0; i < 100 && !existsSync(portFile); i++)
      await new Promise((r) => setTimeout(r, 50));
    const port = readFileSync(portFile, 'utf8');
    // The confirm check asks the node's metrics on its VPN address: point it at the stand-in.
    const confirm = {
      ...config.confirm,
      run: (config.confirm as { run: string[] }).run.map((w) =>
        w.replace(/http:\/\/[^ ]+\/metrics/, `http://127.0.0.1:${port}/metrics`),
      ),
    } as { run: string[]; pollMs: number };
    const env = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      FAKE_NODE_PID: join(dir, 'node.pid'),
    };
    const runAll = async (actions: readonly unknown[]) => {
      for (const a of actions) await runAction(a as Action, 5000, env);
    };
    const forging = async () =>
      (await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text())).match(/ (\d)\n/)![1];
    const settle = () => new Promise((r) => setTimeout(r, 200));

    assert.equal(await forging(), '0', 'started without forging');
    assert.equal(await checkPasses(confirm, 5000, env), true, 'a non-forging node is confirmed');
    // Demoted before it is up: not signalled (it would die), and not forging anyway.
    await runAll(rerooted.deactivate);
    assert.equal(node.exitCode ?? node.signalCode, null, 'a SIGHUP before its handler ended it');

    const t0 = Date.now();
    await runAll(rerooted.activate);
    await settle();
    assert.equal(node.exitCode ?? node.signalCode, null, 'a SIGHUP before its handler ended it');
    assert.ok(Date.now() - t0 >= 1000, 'the SIGHUP waited for the node to be up');
    assert.equal(await forging(), '1', 'promoted: keys in place and SIGHUP');
    assert.ok(existsSync(join(keys, 'forging', 'kes.skey')));
    assert.equal(await checkPasses(confirm, 5000, env), false, 'a forging node is never confirmed');

    await runAll(rerooted.deactivate);
    await settle();
    assert.equal(await forging(), '0', 'demoted: keys out and SIGHUP');
    assert.ok(existsSync(join(keys, 'standby', 'kes.skey')));
    assert.equal(await checkPasses(confirm, 5000, env), true);

    // Promote again, then the deadline passes: SIGKILL first (a failing key move must not
    // keep the node alive), then the keys move out.
    assert.deepEqual(rerooted.kill![0], { signal: 'SIGKILL', systemdUnit: 'ada-node.service' });
    await runAll(rerooted.activate);
    await settle();
    assert.equal(await forging(), '1');
    await runAll(rerooted.kill!);
    await new Promise<void>((r) =>
      node!.exitCode !== null || node!.signalCode ? r() : node!.once('exit', () => r()),
    );
    assert.equal(node.signalCode, 'SIGKILL');
    assert.ok(
      !existsSync(join(keys, 'forging', 'kes.skey')),
      'keys left where a SIGHUP would find them',
    );
    assert.ok(existsSync(join(keys, 'standby', 'kes.skey')));
    // Metrics gone, systemd says inactive: confirmed stopped.
    assert.equal(await checkPasses(confirm, 5000, env), true);
    // Metrics gone and systemctl failing: never confirmed (safety over liveness).
    writeFileSync(join(bin, 'systemctl'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    assert.equal(await checkPasses(confirm, 5000, env), false);
  } finally {
    node?.kill('SIGKILL');
    removeDir(dir);
  }
});
