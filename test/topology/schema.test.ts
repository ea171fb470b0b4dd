import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { ConfigError } from '../../src/config/yaml-file.js';
import { loadTopology, parseTopology, topologyJsonSchema } from '../../src/topology/load.js';
import { lintTopology } from '../../src/topology/lint.js';

const EXAMPLES = 'examples/topologies';

/** A volume attached because a size's disk figure is remembered, not read from a source. */
const UNCHECKED_DISK =
  /^Vigil's figure for .* was not checked against a source, so a \d+ GB volume/;

test('every example loads and lints clean apart from its placeholder checksums and unchecked disk figures', () => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 4);
  for (const f of files) {
    const t = loadTopology(`${EXAMPLES}/${f}`);
    const findings = lintTopology(t);
    assert.ok(findings.length > 0, `${f}: placeholders are flagged`);
    for (const x of findings) {
      if (x.code === 'disk-size' && UNCHECKED_DISK.test(x.message)) {
        assert.equal(x.severity, 'warning');
        continue;
      }
      assert.equal(x.code, 'artifact-placeholder', `${f}: ${x.message}`);
      assert.equal(x.severity, 'warning');
    }
  }
});

test('a bad field is reported with file, line, column and path', () => {
  const text = [
    'version: 1',
    'name: fleet',
    'ssh:',
    '  keys: ["ssh-ed25519 AAAA x@y"]',
    'vigil:',
    '  agent: {url: "https://example.org/v", sha256: "abc"}',
    'hosts:',
    '  - name: a1',
    '    role: validatorr',
    '    provider: hetzner',
    '    region: fsn1',
    '    size: cx22',
  ].join('\n');
  assert.throws(
    () => parseTopology('fleet.yaml', text),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /fleet\.yaml:6:\d+: vigil\.agent\.sha256: sha256 must be 64/);
      assert.match(err.message, /fleet\.yaml:9:11: hosts\[0\]\.role:/);
      return true;
    },
  );
});

test('"latest"-style unknown keys are rejected, not ignored', () => {
  const text =
    'version: 1\nname: fleet\nssh: {keys: ["ssh-ed25519 AAAA x"]}\nvigil: {agent: {url: "https://e.org/x"}}\nhosts: []\nextra: 1\n';
  assert.throws(() => parseTopology('t.yaml', text), /extra|Unrecognized/);
});

test('the committed JSON Schema matches the generator', () => {
  const committed = readFileSync(`${EXAMPLES}/topology.schema.json`, 'utf8');
  // Compared as data: prettier may reflow the committed file.
  assert.deepEqual(
    JSON.parse(committed),
    JSON.parse(topologyJsonSchema()),
    'regenerate with: vigil plan --json-schema examples/topologies/topology.schema.json',
  );
  const schema = JSON.parse(committed) as { properties: Record<string, unknown> };
  assert.ok(schema.properties.hosts && schema.properties.chains && schema.properties.vigil);
});
