import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { EtcdClient } from '../../src/etcd/client.js';
import {
  DEVNET_ETCD_MEMBERS,
  ETCD_FAULT_KINDS,
  FAULT_KINDS,
  faultKindsFor,
  planFaults,
  runChaos,
} from '../../src/devnet/chaos.js';
import { DevnetEtcdCluster } from '../../src/devnet/etcd-cluster.js';
import { DevnetFileSchema } from '../../src/devnet/devnet-file.js';
import { etcdSkip } from '../helpers/etcd-cluster.js';

const skip = etcdSkip();

/** A client call that may land on a dead member first (ambiguous failures are not retried
 * by the client itself); bounded, so a broken cluster still fails the test. */
async function eventually<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 40) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

test('etcd faults are planned only with an etcd cluster, one etcd member at a time', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2 ** 31 }),
      fc.integer({ min: 50, max: 2000 }),
      fc.integer({ min: 1, max: 5 }),
      (seed, interval, members) => {
        const opts = { seed, durationMs: 60_000, meanIntervalMs: interval, maxFaultMs: 2000 };
        const noEtcd = planFaults(opts, members);
        assert.ok(noEtcd.every((f) => !ETCD_FAULT_KINDS.includes(f.kind)));
        const plan = planFaults(opts, members, DEVNET_ETCD_MEMBERS);
        const onMember = plan.filter((f) => f.kind === 'etcd-kill' || f.kind === 'etcd-pause');
        for (const f of onMember) assert.ok(f.target < DEVNET_ETCD_MEMBERS);
        // Never two etcd members down or paused at once: the cluster keeps its quorum.
        for (let i = 1; i < onMember.length; i++)
          assert.ok(onMember[i]!.atMs >= onMember[i - 1]!.atMs + onMember[i - 1]!.lastsMs);
      },
    ),
  );
  assert.deepEqual(faultKindsFor('etcd'), FAULT_KINDS);
  assert.ok(faultKindsFor('sqlite').every((k) => !ETCD_FAULT_KINDS.includes(k)));
});

test('etcd fault kinds on a SQLite devnet are refused before anything starts', async () => {
  await assert.rejects(
    runChaos({
      file: DevnetFileSchema.parse({
        name: 'x',
        chains: [{ family: 'slot', chainId: 's' }],
      }),
      workDir: join(tmpdir(), 'vigil-never-created'),
      seed: 1,
      durationMs: 1000,
      meanIntervalMs: 100,
      maxFaultMs: 200,
      kinds: ['etcd-kill'],
    }),
    (err: Error & { code?: string }) => err.code === 'CHAOS_FAULT_NEEDS_ETCD',
  );
});

test(
  'devnet etcd cluster: kill and restart on the same data dir, pause, per-agent link cut',
  { skip },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-devnet-etcd-'));
    const cluster = await DevnetEtcdCluster.start({ dir });
    const viaAgent = new EtcdClient({
      endpoints: await cluster.endpointsFor('a1'),
      callTimeoutMs: 500,
    });
    const viaOther = new EtcdClient({
      endpoints: await cluster.endpointsFor('a2'),
      callTimeoutMs: 500,
    });
    try {
      await eventually(() => viaAgent.put('/t/k', 'v1'));
      await cluster.killMember(0);
      // Two of three members keep the quorum. (The client is pointed at the live two: it does
      // not itself move off a dead member whose call ended "waiting for LB pick".)
      const survivors = new EtcdClient({
        endpoints: (await cluster.endpointsFor('a1')).slice(1),
        callTimeoutMs: 500,
      });
      try {
        await eventually(() => survivors.put('/t/k', 'v2'));
      } finally {
        survivors.close();
      }
      await cluster.startMember(0);
      // The restarted member catches up from its own data dir and the leader's log.
      const member0 = new EtcdClient({ endpoints: [cluster.endpoints[0]!], callTimeoutMs: 500 });
      try {
        let value: string | undefined;
        for (let i = 0; i < 100 && value !== 'v2'; i++) {
          value = await member0.get('/t/k').then(
            (r) => r.kv?.value.toString(),
            () => undefined,
          );
          if (value !== 'v2') await new Promise((r) => setTimeout(r, 100));
        }
        assert.equal(value, 'v2');
      } finally {
        member0.close();
      }

      cluster.pauseMember(1);
      await eventually(() => viaAgent.put('/t/k', 'v3'));
      cluster.resumeMember(1);

      cluster.cutAgent('a1', 1500);
      await assert.rejects(viaAgent.get('/t/k'));
      // Only that agent's links are cut.
      assert.equal((await eventually(() => viaOther.get('/t/k'))).kv?.value.toString(), 'v3');
    } finally {
      viaAgent.close();
      viaOther.close();
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    for (const m of cluster.members)
      assert.ok(
        m.proc && (m.proc.exitCode !== null || m.proc.signalCode !== null),
        `${m.name} runs`,
      );
  },
);

test('a missing etcd binary is a clear ETCD_MISSING error', async () => {
  await assert.rejects(
    DevnetEtcdCluster.start({
      dir: join(tmpdir(), 'vigil-never-created'),
      binary: '/nonexistent/etcd',
    }),
    (err: Error & { code?: string; hint?: string }) => err.code === 'ETCD_MISSING',
  );
});

test(
  'bounded chaos run on the etcd store: etcd faults too, zero equivocations',
  { skip },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-etcd-chaos-'));
    try {
      const file = DevnetFileSchema.parse({
        name: 'etcd-chaos',
        store: 'etcd',
        chains: [
          { family: 'slot', chainId: 'etcd-slot', slotMs: 300, nodes: 3 },
          {
            family: 'cometbft',
            chainId: 'etcd-cmt',
            // A height counts as signed only when its precommit is signed within the last third
            // of the block. At 300 ms that left 100 ms per etcd round trip, which a loaded 2-core
            // CI runner missed for every height of the run (signed 0, CI of 2026-12-02).
            blockMs: 900,
            nodes: 3,
            conflictingProposals: true,
          },
        ],
      });
      // 24 s: under a loaded CI runner the CometBFT chain's first heights can fall inside the early
      // etcd faults; liveness is asserted, so it gets room to make progress after them.
      const opts = { seed: 11, durationMs: 24_000, meanIntervalMs: 250, maxFaultMs: 1200 };
      const planned = new Set(planFaults(opts, 3, DEVNET_ETCD_MEMBERS).map((f) => f.kind));
      for (const k of ETCD_FAULT_KINDS) assert.ok(planned.has(k), `seed plans no ${k}`);
      const report = await runChaos({ file, workDir: dir, ...opts });
      for (const k of ETCD_FAULT_KINDS) assert.ok(report.faultsByKind[k] > 0, `no ${k} injected`);
      assert.equal(
        report.devnet.equivocations,
        0,
        JSON.stringify(report.devnet.equivocationDetails),
      );
      assert.equal(report.devnet.invalidSignatures, 0);
      assert.ok(report.devnet.chains['etcd-slot']!.signed > 0);
      assert.ok(report.devnet.chains['etcd-cmt']!.signed > 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
