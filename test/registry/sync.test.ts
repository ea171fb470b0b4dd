/**
 * The view exchange (sync.ts) between two real libp2p nodes on loopback, each side backed by a
 * real SQLite view of ~10k records: both sides end with the newer of each record, whether a
 * side lists its summary from its records (decoding every envelope) or from the view's
 * version index (view v4: `summary()` + `bytesOf()`). The exchange time of both ways is
 * printed (a figure for the report, not a timed assertion).
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { noise } from '@libp2p/noise';
import { tcp } from '@libp2p/tcp';
import { yamux } from '@libp2p/yamux';
import { createLibp2p, type Libp2p } from 'libp2p';
import '../../src/registry/polyfill.js';
import { Ed25519Key } from '../../src/keys/ed25519.js';
import { recordVersion } from '../../src/registry/distribution.js';
import { peerIdFromEd25519 } from '../../src/registry/peer-id.js';
import { decodeRecord } from '../../src/registry/record.js';
import {
  SYNC_PROTOCOL,
  syncAsDialer,
  syncAsListener,
  type SyncOutcome,
  type SyncSide,
} from '../../src/registry/sync.js';
import { RegistryView } from '../../src/registry/view.js';
import { tempDir } from '../helpers/guard-fixtures.js';
import { NOW, VALIDATORS, signedRecord } from './fixtures.js';

const RECORDS = 10_000;
/** Subjects the listener lacks, and subjects the listener holds at a newer seq. */
const LISTENER_LACKS = 50;
const LISTENER_NEWER = 30;

let root: string;
let cleanup: () => void;
let dialer: Libp2p;
let listener: Libp2p;
/** The listener's side for the next exchange (set by each test before it dials). */
let serve: SyncSide | undefined;
let served: (o: Promise<SyncOutcome>) => void = () => undefined;
/** Base views: the dialer's (every record at seq 1) and the listener's (fewer, some newer). */
let dialerBase: string;
let listenerBase: string;

function keyOf(i: number): Ed25519Key {
  const seed = new Uint8Array(32);
  seed[0] = 0x5c;
  seed[1] = i >> 8;
  seed[2] = i & 0xff;
  return Ed25519Key.fromSeed(seed);
}

/** A side that lists its records as distribution.ts does before view v4: every body decoded. */
function recordsSide(view: RegistryView): SyncSide {
  return {
    records: () =>
      view
        .list()
        .filter((e) => e.record.content.expiresAtMs > NOW)
        .map((e) => ({
          subject: e.record.peerId,
          seq: recordVersion(e.record.seq, view.held(e.record.peerId)?.epoch ?? 0n),
          bytes: e.bytes,
        })),
    accept: (bytes) => view.put(decodeRecord(bytes), bytes, NOW, 0n),
  };
}

/** The same side reading its summary from the version index, and only the bodies it sends. */
function indexSide(view: RegistryView): SyncSide {
  return {
    ...recordsSide(view),
    records: () => assert.fail('records() must not be called when versions() is given'),
    versions: () =>
      view.summary(NOW).map((v) => ({ subject: v.subject, seq: recordVersion(v.seq, v.epoch) })),
    bytesOf: (subjects) => view.bytesOf(subjects),
  };
}

function copyView(from: string, name: string): RegistryView {
  const to = join(root, `${name}.db`);
  copyFileSync(from, to);
  return new RegistryView(to);
}

async function exchange(
  dialerSide: SyncSide,
  listenerSide: SyncSide,
): Promise<{ dialer: SyncOutcome; listener: SyncOutcome; ms: number }> {
  const got = new Promise<Promise<SyncOutcome>>((resolve) => (served = resolve));
  serve = listenerSide;
  const signal = AbortSignal.timeout(60_000);
  const t = performance.now();
  const stream = await dialer.dialProtocol(listener.peerId, SYNC_PROTOCOL, { signal });
  const [d, l] = await Promise.all([syncAsDialer(stream, dialerSide, signal), got.then((p) => p)]);
  serve = undefined;
  return { dialer: d, listener: l, ms: performance.now() - t };
}

const node = () =>
  createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  });

before(async () => {
  ({ dir: root, cleanup } = tempDir('vigil-registry-sync-'));
  const base = Array.from({ length: RECORDS }, (_, i) => signedRecord(keyOf(i), VALIDATORS));
  const newer = base
    .slice(0, LISTENER_NEWER)
    .map((r, i) => signedRecord(keyOf(i), VALIDATORS, { prevSeq: r.record.seq, role: 'relay' }));
  dialerBase = join(root, 'dialer-base.db');
  listenerBase = join(root, 'listener-base.db');
  const d = new RegistryView(dialerBase);
  const l = new RegistryView(listenerBase);
  for (const r of base) d.put(r.record, r.bytes, NOW);
  for (const r of base.slice(0, RECORDS - LISTENER_LACKS)) l.put(r.record, r.bytes, NOW);
  for (const r of newer) l.put(r.record, r.bytes, NOW);
  d.close();
  l.close();
  [dialer, listener] = await Promise.all([node(), node()]);
  await listener.handle(SYNC_PROTOCOL, (stream) => {
    if (!serve) return stream.abort(new Error('no side to serve'));
    served(syncAsListener(stream, serve, AbortSignal.timeout(60_000)));
  });
  await dialer.dial(listener.getMultiaddrs()[0]!);
});

after(async () => {
  await Promise.all([dialer?.stop(), listener?.stop()]);
  cleanup();
});

for (const [how, side] of [
  ['records (every body decoded)', recordsSide],
  ['the version index', indexSide],
] as const)
  it(`views of ${RECORDS} records that differ converge, summaries from ${how}`, async () => {
    const d = copyView(dialerBase, `dialer-${side.name}`);
    const l = copyView(listenerBase, `listener-${side.name}`);
    try {
      const out = await exchange(side(d), side(l));
      // The listener sent its newer versions; the dialer sent what the listener lacked.
      assert.deepEqual(out.dialer, { taken: LISTENER_NEWER, given: LISTENER_LACKS });
      assert.deepEqual(out.listener, { taken: LISTENER_LACKS, given: LISTENER_NEWER });
      assert.deepEqual(d.summary(NOW), l.summary(NOW));
      assert.equal(d.summary(NOW).length, RECORDS);
      for (let i = 0; i < LISTENER_NEWER; i++) {
        const subject = peerIdFromEd25519(keyOf(i).publicKey);
        assert.equal(d.seq(subject), 2n);
        assert.equal(d.get(subject)!.record.content.role, 'relay');
      }
      // Converged: a second exchange moves nothing.
      const again = await exchange(side(d), side(l));
      assert.deepEqual(
        [again.dialer, again.listener],
        [
          { taken: 0, given: 0 },
          { taken: 0, given: 0 },
        ],
      );
    } finally {
      d.close();
      l.close();
    }
  });

it(`exchange time between two converged views of ${RECORDS} records: before/after the version index`, async () => {
  const d = copyView(dialerBase, 'dialer-timed');
  const l = copyView(dialerBase, 'listener-timed');
  try {
    const times: Record<string, number[]> = { records: [], index: [] };
    // Alternating, three each, so both see the same machine.
    for (let i = 0; i < 3; i++)
      for (const [name, side] of [
        ['records', recordsSide],
        ['index', indexSide],
      ] as const) {
        const out = await exchange(side(d), side(l));
        assert.deepEqual(
          [out.dialer, out.listener],
          [
            { taken: 0, given: 0 },
            { taken: 0, given: 0 },
          ],
        );
        times[name]!.push(out.ms);
      }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const t0 = performance.now();
    const listed = recordsSide(d).records().length;
    const listMs = performance.now() - t0;
    const t1 = performance.now();
    const summarised = d.summary(NOW).length;
    const summaryMs = performance.now() - t1;
    assert.equal(listed, RECORDS);
    assert.equal(summarised, RECORDS);
    console.log(
      `sync of two converged ${RECORDS}-record views: summaries from records p50 ${median(times.records!).toFixed(0)} ms, from the version index p50 ${median(times.index!).toFixed(0)} ms (${(median(times.records!) / median(times.index!)).toFixed(1)}×); one side's listing: records ${listMs.toFixed(0)} ms, summary() ${summaryMs.toFixed(0)} ms`,
    );
  } finally {
    d.close();
    l.close();
  }
});
