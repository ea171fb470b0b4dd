/** The duplicate-key scanner, checked against JSON.parse on generated documents. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { findDuplicateKey, parseJsonBody } from '../../src/agent/json-body.js';

/** A JSON document as an object's list of entries, so the same key may appear twice. */
type Doc =
  | { kind: 'leaf'; value: unknown }
  | { kind: 'array'; items: Doc[] }
  | { kind: 'object'; entries: Array<[string, Doc]> };

// Keys from a small alphabet collide often; escapes and quotes exercise the string scanner.
const key = fc.oneof(
  fc.constantFrom('a', 'b', 'slot', '"', '\\', 'a"b', '{', '}', ',', ':', '[', ']', '\u00e9'),
  fc.string({ maxLength: 4 }),
);
const leaf = fc.oneof(
  fc.string({ maxLength: 6 }).map((s) => s + '",{}[]:\\'),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
);

const doc: fc.Arbitrary<Doc> = fc.letrec<{ doc: Doc }>((tie) => ({
  doc: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf.map((value): Doc => ({ kind: 'leaf', value })),
    fc.array(tie('doc'), { maxLength: 4 }).map((items): Doc => ({ kind: 'array', items })),
    fc
      .array(fc.tuple(key, tie('doc')), { maxLength: 5 })
      .map((entries): Doc => ({ kind: 'object', entries })),
  ),
})).doc;

/** Serialises with optional whitespace; `\u`-escapes keys on request (same key to JSON.parse). */
function render(d: Doc, space: string, escapeKeys: boolean): string {
  switch (d.kind) {
    case 'leaf':
      return JSON.stringify(d.value);
    case 'array':
      return `[${space}${d.items.map((i) => render(i, space, escapeKeys)).join(`,${space}`)}${space}]`;
    case 'object':
      return `{${space}${d.entries
        .map(
          ([k, v]) =>
            `${escapeKeys ? escapeAll(k) : JSON.stringify(k)}${space}:${space}${render(v, space, escapeKeys)}`,
        )
        .join(`,${space}`)}${space}}`;
  }
}

const escapeAll = (k: string) =>
  `"${[...k].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`;

function hasDuplicate(d: Doc): boolean {
  switch (d.kind) {
    case 'leaf':
      return false;
    case 'array':
      return d.items.some(hasDuplicate);
    case 'object': {
      const keys = d.entries.map(([k]) => k);
      return new Set(keys).size !== keys.length || d.entries.some(([, v]) => hasDuplicate(v));
    }
  }
}

test('findDuplicateKey finds a duplicate exactly when some object repeats a key, at any depth', () => {
  fc.assert(
    fc.property(doc, fc.constantFrom('', ' ', '\n\t '), fc.boolean(), (d, space, escape) => {
      const text = render(d, space, escape);
      JSON.parse(text); // the generator only makes valid JSON
      assert.equal(findDuplicateKey(text) !== undefined, hasDuplicate(d), text);
    }),
    { numRuns: 3000 },
  );
});

test('JSON.stringify output never has a duplicate key', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      assert.equal(findDuplicateKey(JSON.stringify(v)), undefined);
    }),
    { numRuns: 2000 },
  );
});

test('parseJsonBody refuses duplicates and invalid JSON with typed errors', () => {
  assert.deepEqual(parseJsonBody('{"a":1,"b":{"a":2}}'), { a: 1, b: { a: 2 } });
  assert.throws(
    () => parseJsonBody('{"position":{"slot":"1","slot":"9"}}'),
    (err: { code?: string; message: string }) =>
      err.code === 'DUPLICATE_KEY' && err.message.includes('"slot"'),
  );
  assert.throws(
    () => parseJsonBody('{"a":1,"\\u0061":2}'),
    (err: { code?: string }) => err.code === 'DUPLICATE_KEY',
  );
  assert.throws(
    () => parseJsonBody('{"a":'),
    (err: { code?: string }) => err.code === 'INVALID_JSON',
  );
  // Deep nesting is scanned without recursion.
  const deep = '['.repeat(50_000) + ']'.repeat(50_000);
  assert.equal(findDuplicateKey(deep), undefined);
});
