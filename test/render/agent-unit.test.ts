/**
 * Issue 11: the package ships the agent's systemd unit, and it is the very unit `vigil plan`
 * renders for a default install (agent binary `vigil` in /opt/vigil/bin). Byte-equal, so the
 * two cannot drift; checked by `systemd-analyze verify` where systemd is installed.
 */
import { after, before, describe, it } from 'node:test';
import { verifyUnits } from '../helpers/systemd-verify.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderUnit } from '../../src/render/chains.js';
import { agentUnit } from '../../src/render/services.js';
import { packageRoot } from '../../src/package-root.js';
import { CLI_ENTRY } from '../helpers/paths.js';
import { exampleNames, planExample, removeDir, tempDir } from './helpers.js';

const SHIPPED = join(packageRoot(), 'examples', 'systemd', 'vigil-agent.service');
const shipped = () => readFileSync(SHIPPED, 'utf8');
let dir: string;

before(() => {
  dir = tempDir('agent-unit');
});
after(() => removeDir(dir));

describe('the shipped agent unit', () => {
  it("is byte-equal to the plan's rendering with a default install's inputs", () => {
    assert.equal(shipped(), renderUnit(agentUnit('/opt/vigil/bin/vigil')));
    assert.equal(shipped(), renderUnit(agentUnit()));
  });

  it('is the unit every planned agent host gets', () => {
    let hosts = 0;
    for (const name of exampleNames()) {
      const r = planExample(name, join(dir, `state-${name}`));
      for (const [path, content] of r.files!) {
        if (!path.endsWith('/files/etc__systemd__system__vigil-agent.service')) continue;
        hosts++;
        assert.equal(content, shipped(), `${name}: ${path} differs from ${SHIPPED}`);
      }
    }
    assert.ok(hosts >= 4, `only ${hosts} planned agent units were compared`);
  });

  it('is what `vigil systemd-unit` prints; --exec names another binary', () => {
    const run = (args: string[]) =>
      spawnSync(process.execPath, [CLI_ENTRY, 'systemd-unit', ...args], { encoding: 'utf8' });
    const plain = run([]);
    assert.equal(plain.status, 0, plain.stderr);
    assert.equal(plain.stdout, shipped());
    const other = run(['--exec', '/usr/local/bin/vigil']);
    assert.equal(other.status, 0, other.stderr);
    assert.match(
      other.stdout,
      /^ExecStart=\/usr\/local\/bin\/vigil agent --config \/etc\/vigil\/agent\.yaml$/m,
    );
    const relative = run(['--exec', 'bin/vigil.js']);
    assert.equal(relative.status, 1);
    assert.match(relative.stderr, /^vigil: error \[INVALID_INPUT\]: --exec "bin\/vigil\.js"/);
    assert.doesNotMatch(relative.stderr, /^\s+at /m);
  });

  it('is in the npm package', () => {
    const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: packageRoot(),
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const [pack] = JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>;
    assert.ok(
      pack!.files.some((f) => f.path === 'examples/systemd/vigil-agent.service'),
      'examples/systemd/vigil-agent.service is not packed',
    );
  });

  it('passes systemd-analyze verify', (t) => {
    const r = verifyUnits(join(dir, 'root'), { 'vigil-agent.service': shipped() });
    if ('skipped' in r) return t.skip(r.skipped);
    assert.equal(r.status, 0, r.stderr);
    // Unknown keys and bad values are only warnings to systemd: any output is a failure here.
    assert.equal(r.stderr.trim(), '', r.stderr);
  });
});
