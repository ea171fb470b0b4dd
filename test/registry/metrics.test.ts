/**
 * libp2p's own metrics (@libp2p/prometheus-metrics) land in the registry node's prom-client
 * Registry, next to the registry's metrics, and leave prom-client's global registry alone: by
 * default that package clears the global registry when a node is created (issue 15, item 7).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Counter, register as globalRegistry } from 'prom-client';
import { tempDir } from '../helpers/guard-fixtures.js';
import {
  counterValue,
  liveContent,
  startNetwork,
  subscriptionsKnown,
  until,
  type Network,
} from './network-fixture.js';

let root: string;
let cleanup: () => void;
before(() => ({ dir: root, cleanup } = tempDir('vigil-registry-metrics-')));
after(() => cleanup());

const names = async (text: Promise<string>) =>
  new Set(
    (await text)
      .split('\n')
      .filter((l) => l.startsWith('# TYPE '))
      .map((l) => l.split(' ')[2]!),
  );

describe('registry node metrics', { timeout: 60_000 }, () => {
  let net: Network;
  // Made before any libp2p node exists, on the global registry, as another part of the process
  // (or a library) would.
  const unrelated = new Counter({ name: 'vigil_test_unrelated_total', help: 'not the registry' });
  unrelated.inc(3);
  before(async () => {
    net = await startNetwork({ dir: join(root, 'net'), peers: 2 });
    await subscriptionsKnown(net);
  });
  after(async () => net?.close());

  it("libp2p's metrics go to the node's own registry; an unrelated global metric survives", async () => {
    const v0 = net.validators[0]!;
    const p0 = net.peers[0]!;
    // Traffic on the first node: a submission to it, then the record everywhere.
    const r = await p0.submitOwn(liveContent(p0.key), [v0.peerId]);
    await until('the record reaches every node', () =>
      [...net.validators, ...net.peers].every((n) => n.view.seq(p0.peerId) === r.seq),
    );

    const global = await names(globalRegistry.metrics());
    assert.ok(global.has('vigil_test_unrelated_total'), 'the global metric is still registered');
    assert.equal(await counterValue(globalRegistry, 'vigil_test_unrelated_total'), 3);
    assert.deepEqual(
      [...global].filter((n) => n.startsWith('libp2p_')),
      [],
      'no libp2p metric in the global registry',
    );

    const reg = net.metrics.get(v0.peerId)!;
    const own = await names(reg.metrics());
    for (const n of [
      'libp2p_data_transfer_bytes_total',
      'vigil_registry_peers',
      'vigil_registry_submissions_total',
      'vigil_registry_records',
      'vigil_registry_propagation_seconds',
    ])
      assert.ok(own.has(n), `${n} in the validator's registry (has: ${[...own].join(', ')})`);
    assert.ok(
      [...own].filter((n) => n.startsWith('libp2p_')).length >= 5,
      `libp2p's metrics in the validator's registry: ${[...own].join(', ')}`,
    );
    // Bytes per protocol, read from the node's streams: the submission protocol is there.
    const transfer = await reg.getSingleMetric('libp2p_data_transfer_bytes_total')!.get();
    const submitBytes = transfer.values
      .filter((v) => String(v.labels.protocol).startsWith('/vigil/registry/submit/1.0.0'))
      .reduce((a, v) => a + v.value, 0);
    assert.ok(submitBytes > 0, 'bytes of /vigil/registry/submit/1.0.0 counted');
    assert.ok(
      (await counterValue(reg, 'vigil_registry_peers')) >= 2,
      'vigil_registry_peers counts the connected nodes',
    );

    // The second node of the process gets no libp2p metrics (they would be the first node's
    // objects; node.ts libp2pMetricsFor), but its own registry metrics are there.
    const second = await names(net.metrics.get(net.validators[1]!.peerId)!.metrics());
    assert.deepEqual(
      [...second].filter((n) => n.startsWith('libp2p_')),
      [],
    );
    assert.ok(second.has('vigil_registry_peers'));
  });
});
