import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { CometbftSignerConfigSchema } from '../../../src/chains/cometbft/config.js';
import { CometbftNodeSimulator, type SignedRecord } from '../../../src/devnet/cometbft-node.js';
import { CHAIN_ID, lockstep, makeAgent, tempDir, validatorKey } from './fixtures.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Fails if any (height, round, step) got two different signatures anywhere. */
function assertNoEquivocation(records: SignedRecord[]): void {
  const seen = new Map<string, string>();
  for (const r of records) {
    const k = `${r.height}/${r.round}/${r.step}`;
    const s = hex(r.signature);
    const prev = seen.get(k);
    assert.ok(prev === undefined || prev === s, `two signatures at ${k}`);
    seen.set(k, s);
  }
}

describe('CometBFT signer over real TCP', () => {
  it('rejects malformed configuration and fills in defaults', () => {
    const base = {
      chainId: 'c',
      keyId: 'k',
      nodes: ['tcp://127.0.0.1:26659'],
      connectionKeyFile: 'x',
    };
    const ok = CometbftSignerConfigSchema.parse({ chains: [base] });
    assert.equal(ok.chains[0]!.protocol, 'v0.38');
    assert.equal(ok.chains[0]!.timeouts.idleMs, 15000);
    assert.equal(ok.chains[0]!.backoff.maxMs, 5000);
    for (const nodes of [['127.0.0.1:26659'], ['tcp://host:0'], ['unix:///sock'], []]) {
      assert.equal(
        CometbftSignerConfigSchema.safeParse({ chains: [{ ...base, nodes }] }).success,
        false,
      );
    }
    assert.equal(CometbftSignerConfigSchema.safeParse({ chains: [base, base] }).success, false);
    assert.equal(
      CometbftSignerConfigSchema.safeParse({ chains: [{ ...base, extra: 1 }] }).success,
      false,
    );
  });

  for (const protocol of ['v0.38', 'v1'] as const) {
    it(`${protocol}: signs proposals, votes and extensions the node verifies`, async () => {
      const dir = tempDir();
      const streamed: unknown[] = [];
      const sim = await CometbftNodeSimulator.start({
        onRecord: (r) => streamed.push(r),
        chainId: CHAIN_ID,
        protocol,
        validatorPublicKey: validatorKey.publicKey,
        blockTimeMs: 5,
        lastHeight: 6n,
        voteExtensions: true,
        isProposer: (h) => h % 2n === 1n,
      });
      const agent = makeAgent(dir.path, 'a');
      try {
        await agent.start([sim.address], protocol);
        await sim.waitForHeight(6n);
        assert.deepEqual(sim.refused, []);
        assert.equal(sim.signed.length, 2 * 6 + 3);
        assert.equal(streamed.length, sim.signed.length);
        assert.ok(sim.signed.every((r) => r.verified));
        const precommits = sim.signed.filter((r) => r.step === 'precommit');
        assert.ok(precommits.every((r) => r.extensionSignature?.length === 64));
        const mode = statSync(join(dir.path, 'a-connection.key')).mode & 0o777;
        assert.equal(mode, 0o600);
        assert.equal(agent.signer!.status()[0]!.connected, true);
      } finally {
        await agent.close();
        await sim.stop();
        dir.remove();
      }
    });
  }

  it('refuses a node of another chain and answers with RemoteSignerError', async () => {
    const dir = tempDir();
    const sim = await CometbftNodeSimulator.start({
      chainId: 'other-chain',
      protocol: 'v0.38',
      blockTimeMs: 5,
      lastHeight: 1n,
    });
    const agent = makeAgent(dir.path, 'a');
    try {
      await agent.start([sim.address], 'v0.38');
      const deadline = Date.now() + 5000;
      while (!sim.incidents.some((i) => i.startsWith('pubkey')) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      assert.match(sim.incidents.find((i) => i.startsWith('pubkey')) ?? '', /vigil-test-1/);
      assert.deepEqual(sim.signed, []);
    } finally {
      await agent.close();
      await sim.stop();
      dir.remove();
    }
  });

  it('active-active: identical requests get the same signature on both agents', async () => {
    const dir = tempDir();
    // Node B's clock runs a second ahead: its requests differ from A's only in time.
    const beforeStep = lockstep(2);
    const sims = await Promise.all(
      [0n, 1n].map((skew) =>
        CometbftNodeSimulator.start({
          chainId: CHAIN_ID,
          protocol: 'v0.38',
          blockTimeMs: 5,
          lastHeight: 5n,
          name: skew === 0n ? 'A' : 'B',
          beforeStep,
          timestampOf: (h, _r, step) => ({
            seconds: 1_700_000_000n + h * 10n + skew,
            nanos: step === 'prevote' ? 1 : 2,
          }),
        }),
      ),
    );
    const agents = [makeAgent(dir.path, 'a'), makeAgent(dir.path, 'b')];
    try {
      await agents[0]!.start([sims[0]!.address], 'v0.38');
      await agents[1]!.start([sims[1]!.address], 'v0.38');
      await Promise.all(sims.map((s) => s.waitForHeight(5n)));
      for (const s of sims) assert.deepEqual(s.refused, []);
      const all = [...sims[0]!.signed, ...sims[1]!.signed];
      assert.ok(all.every((r) => r.verified));
      assertNoEquivocation(all);
      // Whichever node asked second got the first one's timestamp back.
      assert.ok(all.some((r) => r.timestampReplaced));
      assert.equal(all.length, 2 * 3 * 5);
    } finally {
      for (const a of agents) await a.close();
      for (const s of sims) await s.stop();
      dir.remove();
    }
  });

  it('active-active: conflicting proposals at one height and round get exactly one signature', async () => {
    const dir = tempDir();
    const beforeStep = lockstep(2);
    const sims = await Promise.all(
      ['A', 'B'].map((name) =>
        CometbftNodeSimulator.start({
          chainId: CHAIN_ID,
          protocol: 'v1',
          beforeStep,
          blockTimeMs: 5,
          lastHeight: 6n,
          name,
          conflictingProposals: true,
        }),
      ),
    );
    const agents = [makeAgent(dir.path, 'a'), makeAgent(dir.path, 'b')];
    try {
      await agents[0]!.start([sims[0]!.address], 'v1');
      await agents[1]!.start([sims[1]!.address], 'v1');
      await Promise.all(sims.map((s) => s.waitForHeight(6n)));
      const all = [...sims[0]!.signed, ...sims[1]!.signed];
      assertNoEquivocation(all);
      for (let h = 1n; h <= 6n; h++) {
        const proposals = all.filter((r) => r.step === 'proposal' && r.height === h);
        assert.equal(proposals.length, 1, `height ${h}: ${proposals.length} proposals signed`);
        // The other node's proposal is refused (a node running behind may also see its
        // votes refused as regressions: the key already voted further on).
        const refusals = [...sims[0]!.refused, ...sims[1]!.refused].filter(
          (r) => r.height === h && r.step === 'proposal',
        );
        assert.equal(refusals.length, 1);
        assert.equal(refusals[0]!.error.code, 2);
        assert.match(refusals[0]!.error.description, /vigil refused to sign proposal/);
      }
    } finally {
      for (const a of agents) await a.close();
      for (const s of sims) await s.stop();
      dir.remove();
    }
  });

  it('killing one of two agents that serve both nodes loses no height', async () => {
    const dir = tempDir();
    const beforeStep = lockstep(2);
    const sims = await Promise.all(
      ['A', 'B'].map((name) =>
        CometbftNodeSimulator.start({
          chainId: CHAIN_ID,
          protocol: 'v0.38',
          blockTimeMs: 10,
          lastHeight: 10n,
          name,
          voteExtensions: true,
          beforeStep,
          isProposer: (h) => h % 2n === 1n,
        }),
      ),
    );
    const agents = [makeAgent(dir.path, 'a'), makeAgent(dir.path, 'b')];
    const nodes = sims.map((s) => s.address);
    try {
      await agents[0]!.start(nodes, 'v0.38');
      await agents[1]!.start(nodes, 'v0.38');
      await Promise.all(sims.map((s) => s.waitForHeight(3n)));
      await agents[0]!.close();
      await Promise.all(sims.map((s) => s.waitForHeight(10n, 15_000)));
      // Both nodes are one validator: the key must have signed every step of every height
      // through one node or the other; in lockstep both ask the same and both get an answer.
      const all = [...sims[0]!.signed, ...sims[1]!.signed];
      for (let h = 1n; h <= 10n; h++)
        for (const step of ['prevote', 'precommit'] as const)
          assert.ok(
            all.some((r) => r.height === h && r.step === step && r.verified),
            `the validator lost its ${step} at height ${h}`,
          );
      for (const s of sims)
        assert.deepEqual(
          s.refused.map((r) => r.error.description),
          [],
        );
      assertNoEquivocation([...sims[0]!.signed, ...sims[1]!.signed]);
    } finally {
      for (const a of agents) await a.close().catch(() => undefined);
      for (const s of sims) await s.stop();
      dir.remove();
    }
  });
});
