/**
 * Issue 9's attack and its variants, through every door. An agent holds a CometBFT key, a
 * GRANDPA key, a BABE key and an authorization-only key, each bound to its protocol and chain.
 * Each key has signed one message; then every door is asked to sign a conflicting message at
 * that position, including requests built to look like another protocol (a CometBFT proposal
 * sent as a slot or GRANDPA payload, a GRANDPA vote sent as a header, …). Every such request
 * must be refused with a typed reason, and no door may release a second signature at a
 * position a key already signed, in any protocol's reading of the bytes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  emptyProposal,
  type PrivvalMessage,
  type Proposal,
} from '../../src/protocols/cometbft/privval.js';
import { proposalSignBytes, SignedMsgType } from '../../src/protocols/cometbft/sign-bytes.js';
import { babeHeader, grandpaVote } from '../helpers/guard-fixtures.js';
import {
  COSMOS,
  conflictsAmong,
  HandDrivenNode,
  openDoors,
  WESTEND,
  type Doors,
} from './fixtures.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const h32 = (tag: string) => new Uint8Array(createHash('sha256').update(tag).digest());
const TIME = { seconds: 1_750_000_000n, nanos: 0 };

function proposal(height: bigint, round: bigint, block: string): Proposal {
  return {
    ...emptyProposal(),
    type: SignedMsgType.Proposal,
    height,
    round,
    polRound: -1n,
    blockId: { hash: h32(block), partSetHeader: { total: 1, hash: h32(`${block}/parts`) } },
    timestamp: TIME,
  };
}

function proposalBytes(height: bigint, round: bigint, block: string, chainId = COSMOS) {
  const p = proposal(height, round, block);
  return proposalSignBytes({
    height,
    round,
    polRound: -1n,
    blockId: p.blockId,
    timestamp: TIME,
    chainId,
  });
}

let doors: Doors;

before(async () => {
  doors = await openDoors();
  // Each key signs one message, through the HTTP door.
  const seeded = [
    { family: 'cometbft', keyId: 'val', chainId: COSMOS, payload: proposalBytes(10n, 0n, 'A') },
    {
      family: 'grandpa',
      keyId: 'gran',
      chainId: WESTEND,
      payload: grandpaVote(1n, 5n, 'prevote', 'A'),
    },
    { family: 'slot', keyId: 'babe', chainId: WESTEND, payload: babeHeader(100n, 'A') },
  ];
  for (const s of seeded) {
    const r = await doors.post('/v1/sign', { ...s, payload: hex(s.payload) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.decision, 'granted');
  }
  const auth = await doors.post('/v1/authorize', {
    family: 'slot',
    keyId: 'auth',
    chainId: WESTEND,
    position: { slot: '200' },
    nodeId: 'node-1',
  });
  assert.equal(auth.status, 200);
});

after(async () => {
  await doors.close();
});

/** The conflicting messages an attacker would want signed, in every protocol's encoding. */
const conflicting = {
  cometbftProposal: () => proposalBytes(10n, 0n, 'B'),
  grandpaPrevote: () => grandpaVote(1n, 5n, 'prevote', 'B'),
  babeHeader: () => babeHeader(100n, 'B'),
};

describe('the HTTP sign door', () => {
  const cases: Array<{
    name: string;
    family: string;
    keyId: string;
    chainId: string;
    payload: () => Uint8Array;
    status: number;
    reason: string;
  }> = [
    // The attack of issue 9, and what each key does with the other protocols' bytes.
    {
      name: 'CometBFT key, conflicting proposal, cometbft door',
      family: 'cometbft',
      keyId: 'val',
      chainId: COSMOS,
      payload: conflicting.cometbftProposal,
      status: 409,
      reason: 'conflict',
    },
    {
      name: 'CometBFT key, conflicting proposal, slot door',
      family: 'slot',
      keyId: 'val',
      chainId: COSMOS,
      payload: conflicting.cometbftProposal,
      status: 403,
      reason: 'wrong_protocol',
    },
    {
      name: 'CometBFT key, conflicting proposal, slot door, invented chain',
      family: 'slot',
      keyId: 'val',
      chainId: 'invented',
      payload: conflicting.cometbftProposal,
      status: 403,
      reason: 'wrong_protocol',
    },
    {
      name: 'CometBFT key, conflicting proposal, grandpa door',
      family: 'grandpa',
      keyId: 'val',
      chainId: COSMOS,
      payload: conflicting.cometbftProposal,
      status: 403,
      reason: 'wrong_protocol',
    },
    {
      name: 'CometBFT key named by its public key, slot door',
      family: 'slot',
      keyId: 'PUB:val',
      chainId: COSMOS,
      payload: conflicting.cometbftProposal,
      status: 403,
      reason: 'wrong_protocol',
    },
    {
      name: 'CometBFT key, a chain it does not serve',
      family: 'cometbft',
      keyId: 'val',
      chainId: 'cosmos-2',
      payload: () => proposalBytes(10n, 0n, 'B', 'cosmos-2'),
      status: 403,
      reason: 'unknown_chain',
    },
    {
      name: 'CometBFT key, GRANDPA vote bytes on the cometbft door',
      family: 'cometbft',
      keyId: 'val',
      chainId: COSMOS,
      payload: conflicting.grandpaPrevote,
      status: 400,
      reason: 'invalid_request',
    },
    {
      name: 'CometBFT key, header bytes on the cometbft door',
      family: 'cometbft',
      keyId: 'val',
      chainId: COSMOS,
      payload: conflicting.babeHeader,
      status: 400,
      reason: 'invalid_request',
    },
    {
      name: 'GRANDPA key, conflicting prevote',
      family: 'grandpa',
      keyId: 'gran',
      chainId: WESTEND,
      payload: conflicting.grandpaPrevote,
      status: 409,
      reason: 'conflict',
    },
    {
      name: 'GRANDPA key, a CometBFT proposal as the vote payload',
      family: 'grandpa',
      keyId: 'gran',
      chainId: WESTEND,
      payload: conflicting.cometbftProposal,
      status: 400,
      reason: 'invalid_request',
    },
    {
      name: 'GRANDPA key, a header as the vote payload',
      family: 'grandpa',
      keyId: 'gran',
      chainId: WESTEND,
      payload: conflicting.babeHeader,
      status: 400,
      reason: 'invalid_request',
    },
    {
      name: 'GRANDPA key, slot door',
      family: 'slot',
      keyId: 'gran',
      chainId: WESTEND,
      payload: conflicting.babeHeader,
      status: 403,
      reason: 'wrong_protocol',
    },
    {
      name: 'GRANDPA key, cometbft door',
      family: 'cometbft',
      keyId: 'gran',
      chainId: WESTEND,
      payload: conflicting.cometbftProposal,
      status: 403,
      reason: 'wrong_protocol',
    },
    {
      name: 'BABE key, conflicting header',
      family: 'slot',
      keyId: 'babe',
      chainId: WESTEND,
      payload: conflicting.babeHeader,
      status: 409,
      reason: 'conflict',
    },
    {
      name: 'BABE key, a CometBFT proposal as the header',
      family: 'slot',
      keyId: 'babe',
      chainId: WESTEND,
      payload: conflicting.cometbftProposal,
      status: 400,
      reason: 'invalid_request',
    },
    {
      name: 'BABE key, a GRANDPA vote as the header',
      family: 'slot',
      keyId: 'babe',
      chainId: WESTEND,
      payload: conflicting.grandpaPrevote,
      status: 400,
      reason: 'invalid_request',
    },
    {
      name: 'BABE key, grandpa door',
      family: 'grandpa',
      keyId: 'babe',
      chainId: WESTEND,
      payload: conflicting.grandpaPrevote,
      status: 403,
      reason: 'wrong_protocol',
    },
    {
      name: 'BABE key, an invented chain',
      family: 'slot',
      keyId: 'babe',
      chainId: 'invented',
      payload: () => babeHeader(7n, 'B'),
      status: 403,
      reason: 'unknown_chain',
    },
    {
      name: 'authorization-only key asked to sign',
      family: 'slot',
      keyId: 'auth',
      chainId: WESTEND,
      payload: () => babeHeader(300n, 'B'),
      status: 403,
      reason: 'wrong_protocol',
    },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.status} ${c.reason}`, async () => {
      const keyId = c.keyId.startsWith('PUB:')
        ? doors.publicKeyHex(c.keyId.slice(4) as 'val')
        : c.keyId;
      const r = await doors.post('/v1/sign', {
        family: c.family,
        keyId,
        chainId: c.chainId,
        payload: hex(c.payload()),
      });
      assert.equal(r.status, c.status, JSON.stringify(r.body));
      assert.equal(r.body.reason, c.reason);
      assert.equal(r.body.signature, undefined);
    });
  }

  it('a claimed position that is not the one in the bytes is refused and records nothing', async () => {
    const before = await doors.store.list();
    const r = await doors.post('/v1/sign', {
      family: 'slot',
      keyId: 'babe',
      chainId: WESTEND,
      position: { slot: '500' },
      payload: hex(babeHeader(101n, 'C')),
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.reason, 'invalid_request');
    assert.match(r.body.message, /claims slot 500.*at slot 101|500.*101/);
    assert.deepEqual(await doors.store.list(), before);
  });

  it('refusals before parsing create no scope in the store', async () => {
    const scopes = (await doors.store.list()).map((e) => `${e.scope.chainId}/${e.scope.family}`);
    assert.deepEqual(
      scopes.sort(),
      [`${COSMOS}/cometbft`, `${WESTEND}/grandpa`, `${WESTEND}/slot`, `${WESTEND}/slot`].sort(),
    );
  });
});

describe('the HTTP authorize door', () => {
  const ask = (keyId: string, family: 'slot' | 'grandpa', nodeId: string, chainId = WESTEND) =>
    doors.post('/v1/authorize', {
      family,
      keyId,
      chainId,
      position: family === 'slot' ? { slot: '100' } : { setId: '1', round: '5', stage: 'prevote' },
      nodeId,
    });

  for (const keyId of ['val', 'gran', 'babe'])
    it(`a signing key (${keyId}) is never granted a duty its node would sign itself`, async () => {
      for (const family of ['slot', 'grandpa'] as const) {
        const r = await ask(keyId, family, 'attacker');
        assert.equal(r.status, 403, JSON.stringify(r.body));
        assert.equal(r.body.reason, 'wrong_protocol');
        assert.equal(r.body.allowed, false);
      }
    });

  it('the authorization key is granted only its duty, its chain, and its first node', async () => {
    assert.equal((await ask('auth', 'grandpa', 'node-1')).body.reason, 'wrong_protocol');
    assert.equal((await ask('auth', 'slot', 'node-1', 'invented')).body.reason, 'unknown_chain');
    const again = await doors.post('/v1/authorize', {
      family: 'slot',
      keyId: 'auth',
      chainId: WESTEND,
      position: { slot: '200' },
      nodeId: 'node-1',
    });
    assert.equal(again.body.decision, 'replayed');
    const other = await doors.post('/v1/authorize', {
      family: 'slot',
      keyId: 'auth',
      chainId: WESTEND,
      position: { slot: '200' },
      nodeId: 'node-2',
    });
    assert.equal(other.status, 409);
    assert.equal(other.body.reason, 'conflict');
  });
});

describe('the privval door', () => {
  const signProposal = (p: Proposal, chainId = COSMOS): PrivvalMessage => ({
    kind: 'signProposalRequest',
    proposal: p,
    chainId,
  });

  it('a node asking for a conflicting proposal gets an error and no signature', async () => {
    const node = await HandDrivenNode.start(doors, COSMOS, 'val');
    try {
      const res = await node.ask(signProposal(proposal(10n, 0n, 'B')));
      assert.equal(res.kind, 'signedProposalResponse');
      if (res.kind !== 'signedProposalResponse') return;
      assert.ok(res.error, 'the signer answers with an error');
      assert.equal(res.proposal?.signature.length ?? 0, 0);
      // The first proposal, asked again, is answered with the stored signature.
      const same = await node.ask(signProposal(proposal(10n, 0n, 'A')));
      assert.ok(same.kind === 'signedProposalResponse' && !same.error && same.proposal);
      if (same.kind === 'signedProposalResponse' && same.proposal)
        doors.released.push({
          door: 'privval',
          keyHex: doors.publicKeyHex('val'),
          payload: proposalBytes(10n, 0n, 'A'),
          signature: same.proposal.signature,
        });
    } finally {
      await node.stop();
    }
  });

  it('a privval link wired to a GRANDPA key signs nothing with it', async () => {
    // The agent config refuses this wiring; the signer must refuse it even if it happens.
    const node = await HandDrivenNode.start(doors, COSMOS, 'gran');
    try {
      const res = await node.ask(signProposal(proposal(11n, 0n, 'B')));
      assert.ok(res.kind === 'signedProposalResponse' && res.error);
      if (res.kind === 'signedProposalResponse') {
        assert.match(res.error!.description, /wrong_protocol/);
        assert.equal(res.proposal?.signature.length ?? 0, 0);
      }
    } finally {
      await node.stop();
    }
  });
});

describe('after every door was tried', () => {
  it('no key has two different messages signed at one position, in any protocol', () => {
    assert.ok(doors.released.length >= 4);
    assert.deepEqual(conflictsAmong(doors.released), []);
  });
});
