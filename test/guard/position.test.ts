import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../../src/errors.js';
import {
  checkPositionComponent,
  comparePositions,
  MAX_POSITION,
  parsePositionComponent,
} from '../../src/guard/position.js';

describe('position components', () => {
  it('accepts 0 and 2^63-1', () => {
    assert.equal(checkPositionComponent('h', 0n), 0n);
    assert.equal(MAX_POSITION, 9223372036854775807n);
    assert.equal(checkPositionComponent('h', MAX_POSITION), MAX_POSITION);
  });

  it('refuses 2^63, larger values and negatives with the component name', () => {
    for (const v of [1n << 63n, (1n << 64n) + 5n, -1n, -(1n << 63n)]) {
      assert.throws(
        () => checkPositionComponent('height', v),
        (e: unknown) => e instanceof InputError && /height/.test(e.message),
        String(v),
      );
    }
  });

  it('refuses numbers that are not bigint', () => {
    assert.throws(() => checkPositionComponent('slot', 5 as unknown as bigint), InputError);
  });

  it('parses canonical decimal strings only', () => {
    assert.equal(parsePositionComponent('slot', '0'), 0n);
    assert.equal(parsePositionComponent('slot', '9223372036854775807'), MAX_POSITION);
    for (const bad of [
      '9223372036854775808',
      '99999999999999999999',
      '-1',
      '+1',
      '01',
      '1.0',
      '1e3',
      '',
      ' 1',
      '0x10',
    ]) {
      assert.throws(() => parsePositionComponent('slot', bad), InputError, JSON.stringify(bad));
    }
  });

  it('orders tuples lexicographically, shorter first on a common prefix', () => {
    assert.equal(comparePositions([1n, 2n, 3n], [1n, 2n, 3n]), 0);
    assert.equal(comparePositions([1n, 2n, 3n], [1n, 2n, 2n]), 1);
    assert.equal(comparePositions([1n, 9n, 1n], [2n, 0n, 0n]), -1);
    assert.equal(comparePositions([5n], [5n, 0n]), -1);
    assert.equal(comparePositions([MAX_POSITION], [MAX_POSITION - 1n]), 1);
  });
});
