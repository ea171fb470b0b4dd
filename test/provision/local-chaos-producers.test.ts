/**
 * `vigil chaos --local` on fleets that produce rather than sign through privval: a guarded
 * Cardano producer pair (examples/local/cardano-guarded.yaml: the watchdog of the role holder
 * moves the forging credentials in and sends SIGHUP) and a guarded Polkadot validator pair
 * (examples/topologies/polkadot-guarded.yaml: the watchdog starts the validator node, which
 * asks its agent before each slot). Each fleet runs a short chaos (partitions and host loss),
 * counted from the blocks the simulated producers wrote to their evidence files: 0
 * equivocations, production resumed after every fault, nothing left after the destroy. On the
 * Cardano fleet the monitor host is also lost and restarted first, and every part of its stack
 * must answer again; and two conflicting blocks forged into the evidence are counted as 1.
 * Needs root, ip, nft, wg, wireguard-go, etcd and the monitor tools (local-chaos-helpers.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ProducerTally,
  planLocalFaults,
  runLocalChaos,
  type LocalChaosReport,
  type LocalFaultKind,
} from '../../src/provision/local/chaos.js';
import { killHost } from '../../src/provision/local/faults.js';
import { restartHost } from '../../src/provision/local/restart.js';
import { RunRecordFile } from '../../src/provision/local/run-record.js';
import {
  LOCAL_ALERT_SINK,
  httpGet,
  targetOk,
  waitTargetsUp,
} from '../../src/provision/local/monitor.js';
import { inNetns } from '../../src/provision/local/exec.js';
import { unitProduction } from '../../src/provision/local/sim-services.js';
import { translateAction } from '../../src/provision/local/supervised.js';
import {
  ProducedLineSchema,
  type ProducedLine,
} from '../../src/provision/local/sim-unit-config.js';
import { planFleet } from '../../src/render/fleet.js';
import { renderedPath } from '../../src/provision/local/fleet.js';
import { spawnSync } from 'node:child_process';
import { parse } from 'yaml';
import { chaosCli, localSkip, withLocalFleet } from './local-chaos-helpers.js';

const ADA = 'examples/local/cardano-guarded.yaml';
const DOT = 'examples/topologies/polkadot-guarded.yaml';
const KINDS: LocalFaultKind[] = ['partition-in', 'partition-out', 'partition-both', 'host-loss'];
const DURATION_S = 20;
const INTERVAL_MS = 2500;

const line = (l: Partial<ProducedLine> & Pick<ProducedLine, 'node' | 'slot'>): ProducedLine => ({
  at: 1_000_000,
  unit: 'cardano-node.service',
  chain: 'cardano',
  key: 'pool 00',
  duty: 'block',
  produced: 'a'.repeat(64),
  ...l,
});

test('the producer tally: two different blocks at one slot for one key are one equivocation', () => {
  const t = new ProducerTally(0, 500);
  t.add(line({ node: 'producer-a', slot: '10' }));
  // The same block seen twice, another slot, another key: no conflict.
  t.add(line({ node: 'producer-a', slot: '10' }));
  t.add(line({ node: 'producer-b', slot: '11', produced: 'b'.repeat(64) }));
  t.add(line({ node: 'producer-b', slot: '10', key: 'pool 01', produced: 'b'.repeat(64) }));
  assert.equal(t.totals(10_000).equivocations, 0);
  t.add(line({ node: 'producer-b', slot: '10', produced: 'c'.repeat(64) }));
  const totals = t.totals(10_000);
  assert.equal(totals.equivocations, 1);
  assert.deepEqual(totals.equivocationDetails[0], {
    chainId: 'cardano',
    publicKey: 'pool 00',
    position: 'slot 10',
    nodes: ['producer-a', 'producer-b'],
  });
  // Decred: every wallet casts the same vote for a ticket; a different one conflicts.
  const v = new ProducerTally(0, 500);
  for (const node of ['wallet-eu', 'wallet-us'])
    v.add(line({ node, slot: '7', duty: 'vote', chain: 'decred', key: 'decred tickets' }));
  assert.equal(v.totals(10_000).equivocations, 0);
  v.add(
    line({
      node: 'wallet-asia',
      slot: '7',
      duty: 'vote',
      chain: 'decred',
      key: 'decred tickets',
      produced: 'd'.repeat(64),
    }),
  );
  assert.equal(v.totals(10_000).equivocationDetails[0]!.position, 'ticket 7');
  // A refusal counts as a refusal, produces nothing.
  v.add(line({ node: 'wallet-eu', slot: '8', produced: undefined, refused: 'no' }));
  assert.equal(v.totals(10_000).refusals, 1);
  assert.throws(() => ProducedLineSchema.parse({ ...line({ node: 'x', slot: 'nine' }) }));
});

test('what each rendered producer unit produces, and the Cardano stop check kept locally', () => {
  const state = mkdtempSync(join(tmpdir(), 'vgl-lcp-'));
  try {
    const ada = planFleet(ADA, { state: join(state, 'ada'), write: false });
    assert.ok(ada.plan && ada.files, JSON.stringify(ada.findings));
    const host = (name: string) => ada.plan!.hosts.find((h) => h.name === name)!;
    const p = unitProduction(host('producer-a'), 'cardano-node.service', ada.files!);
    assert.deepEqual(p, {
      kind: 'cardano-forger',
      chain: 'cardano',
      forgingKeys: [
        '/etc/cardano/keys/forging/kes.skey',
        '/etc/cardano/keys/forging/vrf.skey',
        '/etc/cardano/keys/forging/node.cert',
      ],
      socketPath: '/var/lib/cardano/node.socket',
      startsNonProducing: true,
    });
    assert.equal(unitProduction(host('relay-a'), 'cardano-node.service', ada.files!), undefined);
    // The rendered confirm asks the node's forging metric first: kept, systemd replaced.
    const wd = parse(ada.files!.get(renderedPath('producer-a', '/etc/vigil/watchdog.yaml'))!) as {
      confirm: Record<string, unknown>;
      activate: Record<string, unknown>[];
      deactivate: Record<string, unknown>[];
    };
    // The SIGHUP only to a node up on its local socket: socket and signal made local.
    for (const [a, shape] of [
      [
        wd.activate.at(-1)!,
        /^until curl .* --unix-socket '\/r\/var\/lib\/cardano\/node\.socket' .*; do sleep 0\.2; done; kill -HUP "\$\(cat '\/u\/cardano-node\.service\.pid'\)"$/,
      ],
      [
        wd.deactivate.at(-1)!,
        /^if curl .* --unix-socket '\/r\/var\/lib\/cardano\/node\.socket' .*; then kill -HUP "\$\(cat '\/u\/cardano-node\.service\.pid'\)"; fi$/,
      ],
    ] as const) {
      const t = translateAction(a, '/u', 'node', '/r') as { run: string[] };
      assert.match(t.run[2]!, shape);
    }
    const local = translateAction(wd.confirm, '/u', 'node') as { run: string[]; pollMs: number };
    assert.equal(local.pollMs, 200);
    assert.match(
      local.run[2]!,
      /^curl --silent --fail --max-time 2 http:\/\/10\.79\.0\.1:12798\/metrics \| grep -Eq '\^cardano_node_metrics_forging_enabled\(_int\)\? 0\$' \|\| 'node' '.+local-unit-main\.js' 'inactive' '\/u' 'cardano-node\.service'$/,
    );

    const dot = planFleet(DOT, { state: join(state, 'dot'), write: false });
    assert.ok(dot.plan && dot.files);
    const va = dot.plan!.hosts.find((h) => h.name === 'validator-a')!;
    assert.deepEqual(unitProduction(va, 'polkadot-node.service', dot.files!), {
      kind: 'substrate-author',
      chain: 'polkadot',
      role: 'polkadot/polkadot',
      agentSocket: '/var/lib/vigil/agent/api.sock',
    });
    // The standby's sync node authors nothing.
    assert.equal(unitProduction(va, 'polkadot-sync.service', dot.files!), undefined);

    const dcr = planFleet('examples/topologies/decred-solo.yaml', {
      state: join(state, 'dcr'),
      write: false,
    });
    assert.ok(dcr.plan && dcr.files);
    const w = dcr.plan!.hosts.find((h) => h.name === 'wallet-eu')!;
    assert.deepEqual(unitProduction(w, 'dcrwallet.service', dcr.files!), {
      kind: 'decred-voter',
      chain: 'decred',
      voteChoices: 'maxblocksize=yes',
    });
    assert.equal(unitProduction(w, 'dcrd.service', dcr.files!), undefined);
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});

/** The first seed whose schedule loses one of `producers` (so a producer restart is tested). */
function seedLosing(hosts: string[], producers: string[], guard: string[]): number {
  const seed = [...Array(500).keys()]
    .map((i) => i + 1)
    .find((s) =>
      planLocalFaults({
        seed: s,
        durationMs: DURATION_S * 1000,
        meanIntervalMs: INTERVAL_MS,
        maxFaultMs: 3000,
        kinds: KINDS,
        hosts,
        guardHosts: guard,
      }).some((f) => f.kind === 'host-loss' && producers.includes(f.host)),
    );
  assert.ok(seed !== undefined);
  return seed;
}

async function chaosOn(
  topology: string,
  state: string,
  hosts: string[],
  producers: string[],
  guard: string[],
): Promise<LocalChaosReport> {
  const seed = seedLosing(hosts, producers, guard);
  const run = await chaosCli([
    topology,
    '--state',
    state,
    '--seed',
    String(seed),
    '--duration',
    String(DURATION_S),
    '--interval',
    String(INTERVAL_MS),
    '--kinds',
    KINDS.join(','),
    '--targets',
    hosts.join(','),
    '--json',
  ]);
  assert.equal(run.code, 0, run.stderr.slice(-3000));
  const report = JSON.parse(run.stdout) as LocalChaosReport;
  const why = `${run.stderr.slice(-3000)}\n${JSON.stringify(report.faultLog)}`;
  assert.equal(report.devnet.equivocations, 0, why);
  assert.ok(report.faults >= 3, why);
  assert.ok(
    report.faultLog.some(
      (f) => f.kind === 'host-loss' && producers.includes(f.host) && (f.restartMs ?? 0) > 0,
    ),
    why,
  );
  assert.ok(
    report.faultLog.every((f) => f.error === undefined),
    why,
  );
  // Production went on, and resumed after every fault.
  assert.ok(report.devnet.signatures > 0 && report.devnet.signed > 0, why);
  assert.equal(report.resumedMs.neverResumed, 0, why);
  assert.deepEqual(
    [...report.validatorNodes].sort(),
    producers
      .map((p) => `${p}/${topology === ADA ? 'cardano-node.service' : 'polkadot-node.service'}`)
      .sort(),
  );
  return report;
}

test(
  'a guarded Cardano pair under chaos: the monitor restarts whole, 0 equivocations, forged conflicts counted',
  { skip: localSkip(), timeout: 240_000 },
  () =>
    withLocalFleet(
      ADA,
      { tmpPrefix: 'vgl-lcp-', blockTimeMs: 500, monitorIntervalSeconds: 1 },
      async (fleet, { state, plan, files }) => {
        const record = RunRecordFile.load(fleet.recordFile);
        const stack = fleet.monitor!;

        // The monitor host lost and restarted: Prometheus (and every target it scrapes),
        // Alertmanager and the alert sink answer again.
        const left = await killHost(record.record, 'monitor');
        assert.deepEqual(left, []);
        assert.equal(httpGet(stack.netns, `${stack.prometheusUrl}/-/ready`, 1), undefined);
        const steps: string[] = [];
        await restartHost({ record, plan, files, onStep: (s) => steps.push(s) }, 'monitor');
        assert.ok(
          steps.some((s) => /prometheus \(rendered config/.test(s)),
          steps.join('\n'),
        );
        assert.ok(httpGet(stack.netns, `${stack.prometheusUrl}/-/ready`) !== undefined);
        assert.ok(httpGet(stack.netns, `${stack.alertmanagerUrl}/-/ready`) !== undefined);
        const post = inNetns(stack.netns, [
          'curl',
          '-sSf',
          '-X',
          'POST',
          '-d',
          '{}',
          `http://${LOCAL_ALERT_SINK}/`,
        ]);
        const sink = spawnSync(post[0]!, post.slice(1), { encoding: 'utf8' });
        assert.equal(sink.status, 0, String(sink.stderr));
        const up = await waitTargetsUp(stack, 30_000);
        assert.ok(up.every(targetOk), JSON.stringify(up.filter((t) => !targetOk(t))));
        // With the intervals apply used (1 s), not the rendered ones.
        const cfg = readFileSync(
          join(record.record.runDir, 'monitor', 'root', 'etc/prometheus/prometheus.yml'),
          'utf8',
        );
        assert.match(cfg, /scrape_interval: 1s/);

        await chaosOn(
          ADA,
          state,
          ['producer-a', 'producer-b', 'relay-a', 'guard-1', 'guard-2', 'guard-3'],
          ['producer-a', 'producer-b'],
          ['guard-1', 'guard-2', 'guard-3'],
        );

        // The counter can fail: a block producer-b never forged, for a slot producer-a did.
        const evidence = (h: string) =>
          join(record.record.runDir, h, 'units', 'cardano-node.service.evidence.jsonl');
        const forged = readFileSync(evidence('producer-a'), 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => ProducedLineSchema.parse(JSON.parse(l)))
          .find((e) => e.produced !== undefined)!;
        appendFileSync(
          evidence('producer-b'),
          JSON.stringify({ ...forged, node: 'producer-b', produced: 'f'.repeat(64) }) + '\n',
        );
        const check = await runLocalChaos({
          record,
          plan,
          files,
          seed: 1,
          durationMs: 1000,
          meanIntervalMs: 1000,
          maxFaultMs: 500,
          kinds: [],
        });
        assert.equal(check.devnet.equivocations, 1);
        assert.deepEqual(check.devnet.equivocationDetails[0]!.nodes, ['producer-a', 'producer-b']);
      },
    ),
);

test(
  "a guarded Polkadot pair under chaos: the holder's node asks its agent each slot, 0 equivocations",
  { skip: localSkip(), timeout: 240_000 },
  () =>
    withLocalFleet(DOT, { tmpPrefix: 'vgl-lcp-', blockTimeMs: 500 }, async (_fleet, { state }) => {
      await chaosOn(
        DOT,
        state,
        ['validator-a', 'validator-b', 'guard-hel', 'guard-lon', 'guard-gcp'],
        ['validator-a', 'validator-b'],
        ['guard-hel', 'guard-lon', 'guard-gcp'],
      );
    }),
);
