#!/usr/bin/env node
// `npm run release`: builds dist/release/vigil-<version>-linux-<arch>.tar.gz and its .sha256
// (src/release/build.ts says what goes in and why the bytes are reproducible).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildRelease } from '../dist/src/release/build.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
try {
  const r = buildRelease({ root, outDir: join(root, 'dist', 'release') });
  console.log(
    `${r.tarball}\n  sha256 ${r.sha256}\n  ${(r.bytes / 1048576).toFixed(1)} MiB, Node ${r.manifest.node.version}, ${r.manifest.packages.length} packages, commit ${r.manifest.commit}`,
  );
} catch (e) {
  console.error(`release: ${e.message}${e.hint ? `\n  hint: ${e.hint}` : ''}`);
  process.exit(1);
}
