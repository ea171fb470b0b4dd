/**
 * SS58 addresses for `vigil keys show`. Vector: the development account Alice, whose sr25519
 * public key 0xd43593c7…a56da27d is printed by `subkey inspect //Alice` as
 * 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY (generic prefix 42) and listed by the
 * Polkadot wiki under the Polkadot prefix 0 as 15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ss58Encode } from '../../src/keys/ss58.js';

const ALICE = Buffer.from(
  'd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d',
  'hex',
);

test('Alice in the generic and the Polkadot format', () => {
  assert.equal(ss58Encode(ALICE), '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY');
  assert.equal(ss58Encode(ALICE, 0), '15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5');
});

test('a prefix outside one byte, or a key that is not 32 bytes, is a typed error', () => {
  assert.throws(() => ss58Encode(ALICE, 64), { code: 'INVALID_SS58_PREFIX' });
  assert.throws(() => ss58Encode(ALICE, -1), { code: 'INVALID_SS58_PREFIX' });
  assert.throws(() => ss58Encode(ALICE.subarray(1)), /32-byte/);
});
