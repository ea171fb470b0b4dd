/**
 * Golden files: each example topology, planned with the committed test state (keys made for
 * these tests only), must render exactly test/golden/<example>.golden. To accept a change
 * on purpose: VIGIL_UPDATE_GOLDEN=1 node scripts/run-tests.mjs golden, then review the diff.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exampleNames, planExample, removeDir, tempDir } from '../render/helpers.js';

const GOLDEN = 'test/golden';
const update = process.env.VIGIL_UPDATE_GOLDEN === '1';

function serialize(files: Map<string, string>): string {
  return [...files.entries()].map(([path, content]) => `===== ${path} =====\n${content}`).join('\n');
}

for (const name of exampleNames()) {
  test(`golden: ${name}`, () => {
    const committedState = join(GOLDEN, 'state', name);
    // Outside update mode the committed state is only read, never extended.
    const work = update ? undefined : tempDir('golden');
    try {
      let state = committedState;
      if (work) {
        state = join(work, 'state');
        if (existsSync(committedState)) cpSync(committedState, state, { recursive: true });
      }
      const files = planExample(name, state).files!;
      files.delete('topology.schema.json');
      const text = serialize(files);
      const file = join(GOLDEN, `${name}.golden`);
      if (update) {
        writeFileSync(file, text);
        return;
      }
      assert.ok(existsSync(file), `${file} is missing: run with VIGIL_UPDATE_GOLDEN=1`);
      const expected = readFileSync(file, 'utf8');
      if (text !== expected) {
        const a = expected.split('\n');
        const b = text.split('\n');
        const i = a.findIndex((line, n) => line !== b[n]);
        assert.fail(
          `${name} differs from ${file} at line ${i + 1}:\n  golden: ${a[i]}\n  now:    ${b[i]}\n` +
            'If the change is intended: VIGIL_UPDATE_GOLDEN=1 node scripts/run-tests.mjs golden',
        );
      }
    } finally {
      if (work) removeDir(work);
    }
  });
}
