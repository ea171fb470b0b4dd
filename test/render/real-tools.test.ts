/**
 * Every generated artifact is checked by the real tool that will consume it:
 * cloud-init schema, nft -c, promtool, and parsers for TOML/JSON/INI chain configs.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { SIGNER_RULES_PATH } from '../../src/render/alert-rules.js';
import { exampleNames, planExample, removeDir, requireTool, tempDir } from './helpers.js';

let root = '';
const outs: Array<{ name: string; out: string }> = [];

before(() => {
  root = tempDir('tools');
  for (const name of exampleNames()) {
    const out = join(root, name, 'out');
    planExample(name, join(root, name, 'state'), out);
    outs.push({ name, out });
  }
});
after(() => removeDir(root));

function hostDirs(out: string): string[] {
  return readdirSync(join(out, 'hosts')).map((h) => join(out, 'hosts', h));
}

test('every cloud-config passes `cloud-init schema`', () => {
  if (!requireTool('cloud-init')) return;
  let checked = 0;
  for (const { out } of outs)
    for (const dir of hostDirs(out)) {
      const file = join(dir, 'cloud-init.yaml');
      const r = spawnSync('cloud-init', ['schema', '--config-file', file], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(r.status, 0, `${file}:\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /Valid cloud-config/);
      checked++;
    }
  assert.ok(checked >= 20, `only ${checked} cloud-configs checked`);
});

test('a malformed cloud-config is rejected (the check can fail)', () => {
  if (!requireTool('cloud-init')) return;
  const dir = tempDir('ci');
  try {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, '#cloud-config\nwrite_files:\n  - path: 5\n    defer: maybe\n');
    const r = spawnSync('cloud-init', ['schema', '--config-file', file], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.notEqual(r.status, 0);
  } finally {
    removeDir(dir);
  }
});

test('every nftables ruleset passes `nft -c -f`', () => {
  if (!requireTool('nft', ['--version'])) return;
  for (const { out } of outs)
    for (const dir of hostDirs(out)) {
      const file = join(dir, 'files', 'etc__nftables.conf');
      const r = spawnSync('nft', ['-c', '-f', file], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, `${file}:\n${r.stderr}`);
      // The bootstrap ruleset in the user data, as bootcmd feeds it to nft.
      const cc = parseYaml(readFileSync(join(dir, 'cloud-init.yaml'), 'utf8')) as {
        write_files: Array<{ path: string; content: string }>;
      };
      const boot = cc.write_files.find((f) => f.path === '/etc/nftables.conf')!.content;
      const b = spawnSync('nft', ['-c', '-f', '-'], {
        input: boot,
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(b.status, 0, `${dir} bootstrap ruleset:\n${b.stderr}`);
    }
});

test('every bundle installer is valid POSIX sh', () => {
  const shell = requireTool('dash', ['-c', 'true'], false) ? 'dash' : 'sh';
  for (const { out } of outs)
    for (const dir of hostDirs(out)) {
      const file = join(dir, 'bundle', 'install.sh');
      const r = spawnSync(shell, ['-n', file], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${file}:\n${r.stderr}`);
    }
});

test('a broken ruleset is rejected by nft (the check can fail)', () => {
  if (!requireTool('nft', ['--version'])) return;
  const r = spawnSync('nft', ['-c', '-f', '-'], {
    input: 'table inet t { chain c { type filter hook input priority filter; policy dropp; } }\n',
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.notEqual(r.status, 0);
});

test('the Prometheus config passes `promtool check config`', () => {
  if (!requireTool('promtool', ['--version'])) return;
  for (const { out } of outs) {
    const files = join(out, 'hosts', 'monitor', 'files');
    const rendered = join(files, 'etc__prometheus__prometheus.yml');
    assert.ok(existsSync(rendered), rendered);
    // The rules file it names is checked too: pointed at the copy rendered for the monitor.
    const rules = join(files, 'etc__prometheus__vigil-signer.rules.yml');
    assert.ok(existsSync(rules), rules);
    const text = readFileSync(rendered, 'utf8');
    assert.ok(text.includes(SIGNER_RULES_PATH), `${rendered} names no ${SIGNER_RULES_PATH}`);
    const file = join(out, 'prometheus-check.yml');
    writeFileSync(file, text.replace(SIGNER_RULES_PATH, rules));
    const r = spawnSync('promtool', ['check', 'config', file], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, `${rendered}:\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /SUCCESS: \d+ rules found/);
  }
});

test('chain configs parse: CometBFT TOML, Cardano JSON, Decred INI', () => {
  for (const { out } of outs)
    for (const dir of hostDirs(out)) {
      for (const f of readdirSync(join(dir, 'files'))) {
        const path = join(dir, 'files', f);
        const text = readFileSync(path, 'utf8');
        if (f.endsWith('config.toml')) {
          const c = parseToml(text) as { p2p: Record<string, unknown> };
          assert.equal(typeof c.p2p.pex, 'boolean');
        } else if (f.endsWith('.json')) JSON.parse(text);
        else if (f.endsWith('.conf') && f.includes('decred'))
          for (const line of text.split('\n').filter((l) => l && !l.startsWith('[')))
            assert.match(line, /^[a-z]+=\S+$/, `${path}: ${line}`);
      }
    }
});
