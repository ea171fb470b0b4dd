import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as cometbft from '../../../src/chains/cometbft/index.js';

test('the vigil-ha/cometbft entry point exposes the codec, transport and signer', () => {
  for (const name of [
    'encodePrivvalMessage',
    'decodePrivvalMessage',
    'takeDelimited',
    'signBytesOfVote',
    'parseSignBytes',
    'SecretConnection',
    'MerlinTranscript',
    'startCometbftSigner',
    'CometbftSignerConfigSchema',
    'CometbftNodeSimulator',
    'nodeIdOf',
    'pinnedNodeAddress',
    'NodeIdentityError',
    'voteProblem',
  ]) {
    assert.ok(name in cometbft, `${name} is not exported`);
  }
  const bytes = cometbft.encodePrivvalFrame({ kind: 'pingRequest' }, 'v1');
  assert.deepEqual([...bytes], [2, 0x3a, 0]);
});
