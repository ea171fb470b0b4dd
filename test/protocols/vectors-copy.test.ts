// The repository keeps its own copy of the team's shared vectors so a fresh clone tests without
// `../shared`; when the shared folder is there, the copy must not have drifted from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { sharedVectorsDir, vectorsDir } from '../helpers/paths.js';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

test('the repository copy of the shared vectors matches ../shared/vectors', (t) => {
  const shared = sharedVectorsDir();
  if (!existsSync(shared)) {
    t.skip(`no ${shared} beside the repository; the copy is used as is`);
    return;
  }
  for (const file of files(shared)) {
    const rel = relative(shared, file);
    const copy = join(vectorsDir(), rel);
    assert.ok(existsSync(copy), `test/vectors/${rel} is missing: copy it from ../shared/vectors`);
    assert.deepEqual(
      readFileSync(copy),
      readFileSync(file),
      `test/vectors/${rel} differs from ../shared`,
    );
  }
});
