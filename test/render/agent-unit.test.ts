/**
 * Issue 11: the package ships the agent's systemd unit, and it is the very unit `vigil plan`
 * renders for a default install (agent binary `vigil` in /opt/vigil/bin). Byte-equal, so the
 * two cannot drift; checked by `systemd-analyze verify` where systemd is installed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderUnit } from '../../src/render/chains.js';
import { agentUnit } from '../../src/render/services.js';
import { packageRoot } from '../../src/package-root.js';
import { CLI_ENTRY } from '../helpers/paths.js';
import { exampleNames, planExample, removeDir, requireTool, tempDir } from './helpers.js';

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
    // Not required in CI: the CI image need not carry systemd. Skipped loudly without it.
    if (!requireTool('systemd-analyze', ['--version'], false)) {
      t.skip('systemd-analyze is not installed');
      return;
    }
    const systemUnits = ['/usr/lib/systemd/system', '/lib/systemd/system'].find((d) =>
      existsSync(join(d, 'sysinit.target')),
    );
    if (!systemUnits) {
      console.error('\n*** SKIPPING systemd-analyze verify: no systemd unit directory ***\n');
      t.skip('no sysinit.target found');
      return;
    }
    // A root where the unit's binary exists and systemd's own targets resolve.
    const root = join(dir, 'root');
    mkdirSync(join(root, 'opt/vigil/bin'), { recursive: true });
    writeFileSync(join(root, 'opt/vigil/bin/vigil'), '#!/bin/sh\n');
    chmodSync(join(root, 'opt/vigil/bin/vigil'), 0o755);
    cpSync(systemUnits, join(root, 'usr/lib/systemd/system'), { recursive: true });
    mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
    writeFileSync(join(root, 'etc/systemd/system/vigil-agent.service'), shipped());
    const r = spawnSync(
      'systemd-analyze',
      ['verify', '--man=no', `--root=${root}`, '/etc/systemd/system/vigil-agent.service'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    // Unknown keys and bad values are only warnings to systemd: any output is a failure here.
    assert.equal(r.stderr.trim(), '', r.stderr);
  });
});
