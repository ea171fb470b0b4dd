/**
 * Several guard clients in separate OS processes, each with its own store connection, local
 * watermark and GuardedSigner, on ONE SQLite file, sending random interleaved requests. For
 * every (scope, position) all released signatures are over one payload (and authorizations go
 * to one node), each client's granted positions only rise, and the final stored watermark covers
 * everything released. Each key is bound to one protocol, as openSignerRig binds them: BABE
 * headers go to `s1`, GRANDPA votes to `g1`, CometBFT sign bytes to `k1` (on two chains), slot
 * and GRANDPA authorizations to `auth1` and `auth2`; the messages are real and signatures are
 * verified with each protocol's scheme.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import { comparePositions, type Position } from '../../src/guard/index.js';
import { SqliteWatermarkStore } from '../../src/store/sqlite.js';
import type { DutyFamily } from '../../src/guard/watermark.js';
import { runDrivers } from '../helpers/driver-process.js';
import {
  CHAIN,
  CHAIN2,
  cometSignBytes,
  sha256,
  tempDir,
  type CometSpec,
} from '../helpers/guard-fixtures.js';
import type { WireRequest, WireResult } from '../helpers/guard-wire.js';
import { rigScopeKeyHex, verifyRigSignature, wireSignBytes } from '../helpers/wire-check.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const STAGE = { propose: 1n, prevote: 2n, precommit: 3n, proposal: 1n } as const;

/** A request plus what the checker needs to know about it. */
interface Spec {
  readonly wire: WireRequest;
  readonly position: Position;
  readonly comet?: CometSpec;
}

/** GRANDPA, BABE and authorize keys serve one chain; the CometBFT key serves two. */
const cometChainId = fc.constantFrom(CHAIN, CHAIN2);

const slotSign: fc.Arbitrary<Spec> = fc
  .record({ slot: fc.integer({ min: 0, max: 6 }), p: fc.constantFrom('a', 'b') })
  .map(({ slot, p }) => ({
    wire: {
      op: 'sign',
      family: 'slot',
      chainId: CHAIN,
      keyId: 's1',
      slot: String(slot),
      payload: p,
    },
    position: [BigInt(slot)],
  }));

const slotAuthorize = (nodeId: string): fc.Arbitrary<Spec> =>
  fc.record({ slot: fc.integer({ min: 0, max: 6 }) }).map(({ slot }) => ({
    wire: {
      op: 'authorize',
      family: 'slot',
      chainId: CHAIN,
      keyId: 'auth1',
      slot: String(slot),
      nodeId,
    },
    position: [BigInt(slot)],
  }));

const grandpaSign: fc.Arbitrary<Spec> = fc
  .record({
    setId: fc.integer({ min: 0, max: 1 }),
    round: fc.integer({ min: 0, max: 2 }),
    stage: fc.constantFrom('propose', 'prevote', 'precommit'),
    p: fc.constantFrom('a', 'b'),
  })
  .map(({ setId, round, stage, p }) => ({
    wire: {
      op: 'sign',
      family: 'grandpa',
      chainId: CHAIN,
      keyId: 'g1',
      setId: String(setId),
      round: String(round),
      stage,
      payload: p,
    },
    position: [BigInt(setId), BigInt(round), STAGE[stage]],
  }));

const grandpaAuthorize = (nodeId: string): fc.Arbitrary<Spec> =>
  fc
    .record({
      setId: fc.integer({ min: 0, max: 1 }),
      round: fc.integer({ min: 0, max: 2 }),
      stage: fc.constantFrom('propose', 'prevote', 'precommit'),
    })
    .map(({ setId, round, stage }) => ({
      wire: {
        op: 'authorize',
        family: 'grandpa',
        chainId: CHAIN,
        keyId: 'auth2',
        setId: String(setId),
        round: String(round),
        stage,
        nodeId,
      },
      position: [BigInt(setId), BigInt(round), STAGE[stage]],
    }));

const cometSign: fc.Arbitrary<Spec> = fc
  .record({
    chainId: cometChainId,
    height: fc.integer({ min: 1, max: 3 }),
    round: fc.integer({ min: 0, max: 1 }),
    step: fc.constantFrom('proposal', 'prevote', 'precommit'),
    block: fc.constantFrom(0, 1, 2),
    ts: fc.constantFrom(
      { seconds: 1_700_000_000n, nanos: 5 },
      { seconds: 1_700_000_000n, nanos: 0 },
      { seconds: 1_700_000_002n, nanos: 123_456_789 },
    ),
  })
  .map(({ chainId, height, round, step, block, ts }) => {
    const comet: CometSpec = {
      height: BigInt(height),
      round: BigInt(round),
      step,
      ...(block === 0 ? { nil: true } : { block }),
      timestamp: ts,
      chainId,
    };
    return {
      wire: {
        op: 'sign',
        family: 'cometbft',
        chainId,
        keyId: 'k1',
        height: String(height),
        round: String(round),
        step,
        signBytes: hex(cometSignBytes(comet)),
      },
      position: [BigInt(height), BigInt(round), STAGE[step]],
      comet,
    };
  });

const clientRequests = (nodeId: string) =>
  fc.array(
    fc.oneof(
      slotSign,
      slotSign,
      slotAuthorize(nodeId),
      grandpaSign,
      grandpaAuthorize(nodeId),
      cometSign,
      cometSign,
    ),
    { minLength: 1, maxLength: 25 },
  );

/** The message a released signature must be for (a BABE seal signs its header's hash). */
function signedMessage(spec: Spec, r: WireResult): Uint8Array {
  const w = spec.wire;
  if (w.op !== 'sign') throw new Error('not a signature');
  if (w.family !== 'cometbft' || !r.timestamp) return wireSignBytes(w);
  // A timestamp-only replay: the signature is over the sign bytes with the stored time.
  return cometSignBytes({
    ...spec.comet!,
    timestamp: { seconds: BigInt(r.timestamp.seconds), nanos: r.timestamp.nanos },
  });
}

interface Scope {
  readonly chainId: string;
  readonly keyId: string;
  readonly family: DutyFamily;
}
const scopeOf = (w: WireRequest): Scope => ({
  chainId: w.chainId,
  keyId: rigScopeKeyHex(w),
  family: w.family,
});
const scopeName = (s: Scope) => `${s.keyId.slice(0, 8)}/${s.chainId}/${s.family}`;

async function checkRun(dir: string, run: number, clients: Spec[][]): Promise<void> {
  const storePath = join(dir, `run-${run}.db`);
  const results = await runDrivers(
    clients.map((specs, c) => ({
      storePath,
      localPath: join(dir, `run-${run}-local-${c}.db`),
      agentId: `client-${c}`,
      requests: specs.map((s) => s.wire),
    })),
  );

  /** What was released at each (scope, position): `sign:<message>` or `auth:<node>`. */
  const releasedAt = new Map<string, Set<string>>();
  const signaturesAt = new Map<string, Set<string>>();
  const highest = new Map<string, { scope: Scope; position: Position; what: string }>();

  clients.forEach((specs, c) => {
    const res = results[c]!;
    assert.equal(res.length, specs.length, `client ${c} answered every request`);
    const lastReleased = new Map<string, Position>();
    const lastGranted = new Map<string, Position>();
    res.forEach((r, k) => {
      assert.equal(r.i, k);
      const spec = specs[k]!;
      const w = spec.wire;
      if (r.outcome === 'refused') {
        assert.ok(
          ['regression', 'conflict'].includes(r.reason!),
          `client ${c} request ${k} refused for ${r.reason}`,
        );
        assert.equal(r.signature, undefined);
        return;
      }
      const scopeParts = scopeOf(w);
      const scope = scopeName(scopeParts);
      const key = `${scope}@${spec.position.join('/')}`;
      let what: string;
      if (w.op === 'sign') {
        assert.ok(r.signature, 'a released signature');
        const sig = new Uint8Array(Buffer.from(r.signature, 'hex'));
        const message = signedMessage(spec, r);
        assert.ok(verifyRigSignature(w.family, message, sig), `signature verifies for ${key}`);
        what = `sign:${hex(message)}`;
        signaturesAt.set(key, (signaturesAt.get(key) ?? new Set()).add(r.signature));
      } else {
        assert.equal(r.signature, undefined);
        what = `auth:${w.nodeId}`;
      }
      releasedAt.set(key, (releasedAt.get(key) ?? new Set()).add(what));

      const prev = lastReleased.get(scope);
      assert.ok(
        prev === undefined || comparePositions(spec.position, prev) >= 0,
        `client ${c} was released ${key} after ${prev?.join('/')}`,
      );
      lastReleased.set(scope, spec.position);
      if (r.outcome === 'granted') {
        const g = lastGranted.get(scope);
        assert.ok(
          g === undefined || comparePositions(spec.position, g) > 0,
          `client ${c} granted ${key} twice`,
        );
        lastGranted.set(scope, spec.position);
      }
      const h = highest.get(scope);
      if (h === undefined || comparePositions(spec.position, h.position) > 0)
        highest.set(scope, { scope: scopeParts, position: spec.position, what });
    });
  });

  for (const [key, set] of releasedAt) {
    assert.equal(set.size, 1, `conflicting releases at ${key}: ${[...set].join(' | ')}`);
  }
  for (const [key, set] of signaturesAt) assert.equal(set.size, 1, `two signatures at ${key}`);

  // The store covers the highest release of every scope, with the payload released there.
  const store = SqliteWatermarkStore.open({ path: storePath });
  try {
    for (const [scope, h] of highest) {
      const wm = await store.get(h.scope);
      assert.ok(wm, `a watermark for ${scope}`);
      const order = comparePositions(wm.position, h.position);
      assert.ok(
        order >= 0,
        `stored ${wm.position.join('/')} below released ${h.position.join('/')}`,
      );
      if (order === 0 && h.what.startsWith('sign:')) {
        assert.deepEqual(wm.payloadHash, sha256(Buffer.from(h.what.slice(5), 'hex')));
      }
    }
  } finally {
    await store.close();
  }
}

describe('concurrent clients in separate processes on one SQLite file', () => {
  let dir: string;
  let cleanup: () => void;
  let run = 0;
  before(() => ({ dir, cleanup } = tempDir('vigil-multiproc-')));
  after(() => cleanup());

  it('never release conflicting grants (fast-check, 2-3 processes per run)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 2, max: 3 })
          .chain((n) =>
            fc.tuple(...Array.from({ length: n }, (_, c) => clientRequests(`node-${c}`))),
          ),
        async (clients) => checkRun(dir, ++run, clients),
      ),
      { numRuns: 12, endOnFailure: true },
    );
  });

  it('never release conflicting grants under heavy contention on rising positions', async () => {
    // Every client walks the same rising positions with its own random payload choices, so
    // the processes race for each position with conflicting requests.
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const clients: Spec[][] = [0, 1, 2].map((c) =>
      Array.from({ length: 120 }, (_, k): Spec => {
        const base = Math.floor(k / 3) + rand(2);
        const p = `p${rand(2)}`;
        switch (rand(4)) {
          case 0:
            return {
              wire: {
                op: 'authorize',
                family: 'slot',
                chainId: CHAIN,
                keyId: 'auth1',
                slot: String(base),
                nodeId: `node-${c}`,
              },
              position: [BigInt(base)],
            };
          case 1: {
            const stage = (['propose', 'prevote', 'precommit'] as const)[rand(3)]!;
            return {
              wire: {
                op: 'sign',
                family: 'grandpa',
                chainId: CHAIN,
                keyId: 'g1',
                setId: '0',
                round: String(base),
                stage,
                payload: p,
              },
              position: [0n, BigInt(base), STAGE[stage]],
            };
          }
          case 2: {
            const step = (['proposal', 'prevote', 'precommit'] as const)[rand(3)]!;
            const comet: CometSpec = {
              height: BigInt(base + 1),
              round: 0n,
              step,
              ...(rand(3) === 0 ? { nil: true } : { block: 1 + rand(2) }),
              timestamp: { seconds: 1_700_000_000n + BigInt(rand(2)), nanos: rand(2) * 999 },
              chainId: CHAIN2,
            };
            return {
              wire: {
                op: 'sign',
                family: 'cometbft',
                chainId: CHAIN2,
                keyId: 'k1',
                height: String(base + 1),
                round: '0',
                step,
                signBytes: hex(cometSignBytes(comet)),
              },
              position: [BigInt(base + 1), 0n, STAGE[step]],
              comet,
            };
          }
          default:
            return {
              wire: {
                op: 'sign',
                family: 'slot',
                chainId: CHAIN,
                keyId: 's1',
                slot: String(base),
                payload: p,
              },
              position: [BigInt(base)],
            };
        }
      }),
    );
    await checkRun(dir, ++run, clients);
  });
});
