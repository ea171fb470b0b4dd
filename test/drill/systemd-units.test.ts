/**
 * The scheduling example (examples/drill/vigil-drill.{service,timer}): both pass
 * `systemd-analyze verify` (skipped loudly without systemd), and the service's command line is
 * one the real CLI accepts (its options parse; it then stops at the config it cannot read).
 */
import { verifyUnits } from '../helpers/systemd-verify.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { packageRoot } from '../../src/package-root.js';
import { CLI_ENTRY } from '../helpers/paths.js';

const example = (name: string) =>
  readFileSync(join(packageRoot(), 'examples', 'drill', name), 'utf8');

describe('drill scheduling example (systemd)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-drill-unit-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("the service's ExecStart is a command line the CLI accepts", () => {
    const line = /^ExecStart=(.*)$/m.exec(example('vigil-drill.service'))![1]!;
    const argv = line.split(' ');
    assert.equal(argv[0], '/opt/vigil/bin/vigil');
    assert.deepEqual(argv.slice(1, 3), ['drill', 'failover']);
    assert.ok(argv.includes('--execute') && argv.includes('--lock'));
    // Point the config at a file that is not there: parsing must get that far.
    const args = argv
      .slice(1)
      .map((a) => (a === '/etc/vigil/agent.yaml' ? join(dir, 'absent.yaml') : a));
    const r = spawnSync(process.execPath, [CLI_ENTRY, ...args], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 1);
    assert.doesNotMatch(r.stderr, /unknown option|USAGE/, r.stderr);
    assert.match(r.stderr, /CONFIG_UNREADABLE|absent\.yaml/, r.stderr);
  });

  it('passes systemd-analyze verify', (t) => {
    const r = verifyUnits(
      join(dir, 'root'),
      {
        'vigil-drill.service': example('vigil-drill.service'),
        'vigil-drill.timer': example('vigil-drill.timer'),
        // The service orders itself after the agent's unit: give it the shipped one.
        'vigil-agent.service': readFileSync(
          join(packageRoot(), 'examples/systemd/vigil-agent.service'),
          'utf8',
        ),
      },
      ['vigil-drill.service', 'vigil-drill.timer'],
    );
    if ('skipped' in r) return t.skip(r.skipped);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', r.stderr);
  });
});
