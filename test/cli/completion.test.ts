/**
 * Issue 11: `vigil completion bash|zsh` prints a completion script generated from the program
 * tree. The bash script is sourced into a real bash and asked to complete, as bash would.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { CLI_ENTRY } from '../helpers/paths.js';
import { buildProgram } from '../../src/cli/main.js';
import { bashCompletion, completionTree, zshCompletion } from '../../src/cli/completion.js';

let dir: string;
let bashScript: string;
let zshScript: string;

function vigil(args: string[]) {
  const r = spawnSync(process.execPath, [CLI_ENTRY, ...args], { encoding: 'utf8', cwd: dir });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** What bash offers for the command line `line` (the last word is the one being completed). */
function completeBash(script: string, line: string): string[] {
  const words = line.split(' ');
  const program = [
    'source "$1"',
    'COMP_WORDS=("${@:2}")',
    'COMP_CWORD=$((${#COMP_WORDS[@]} - 1))',
    'COMP_LINE="${COMP_WORDS[*]}"',
    'COMP_POINT=${#COMP_LINE}',
    // Call whatever function the script registered for vigil, as bash's completion does.
    "fn=$(complete -p vigil | sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p')",
    '"$fn" vigil "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  const path = join(dir, 'completion.bash');
  writeFileSync(path, script);
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', program, 'bash', path, ...words], {
    encoding: 'utf8',
    cwd: dir,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', r.stderr);
  return r.stdout.split('\n').filter((w) => w !== '');
}

const sorted = (a: readonly string[]) => [...a].sort();

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-completion-'));
  writeFileSync(join(dir, 'agent.yaml'), 'x');
  writeFileSync(join(dir, 'another.txt'), 'x');
  const b = vigil(['completion', 'bash']);
  assert.equal(b.code, 0, b.err);
  bashScript = b.out;
  const z = vigil(['completion', 'zsh']);
  assert.equal(z.code, 0, z.err);
  zshScript = z.out;
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('vigil completion bash', () => {
  it('completes `vigil sta` to state and status', () => {
    assert.deepEqual(sorted(completeBash(bashScript, 'vigil sta')), ['state', 'status']);
    assert.deepEqual(sorted(completeBash(bashScript, 'vigil stat')), ['state', 'status']);
    assert.deepEqual(completeBash(bashScript, 'vigil statu'), ['status']);
  });

  it("completes `vigil state ` to state's subcommands", () => {
    assert.deepEqual(
      sorted(completeBash(bashScript, 'vigil state ')),
      sorted(['init', 'adopt', 'import', 'show', 'export', 'help']),
    );
  });

  it('completes every command with subcommands to exactly those subcommands', () => {
    const program = buildProgram();
    for (const node of completionTree(program)) {
      if (node.subcommands.length === 0) continue;
      const line = node.path === '' ? 'vigil ' : `vigil ${node.path} `;
      assert.deepEqual(
        sorted(completeBash(bashScript, line)),
        sorted(node.subcommands.flatMap((s) => s.names)),
        line,
      );
    }
    // The top level offers every command vigil has, the new ones included.
    assert.ok(completeBash(bashScript, 'vigil ').includes('systemd-unit'));
    assert.ok(completeBash(bashScript, 'vigil ').includes('completion'));
  });

  it("completes options, option values from their choices, and files for a path's value", () => {
    assert.deepEqual(sorted(completeBash(bashScript, 'vigil agent --')), ['--config', '--help']);
    assert.deepEqual(sorted(completeBash(bashScript, 'vigil state import --format ')), [
      'filepv',
      'horcrux',
      'tmkms',
    ]);
    assert.deepEqual(completeBash(bashScript, 'vigil agent --config ag'), ['agent.yaml']);
    assert.deepEqual(sorted(completeBash(bashScript, 'vigil completion ')), ['bash', 'zsh']);
    assert.deepEqual(sorted(completeBash(bashScript, 'vigil help sta')), ['state', 'status']);
  });

  it("does not take an option's value for a command", () => {
    // `state` here is the value of --config, not the command: still `state import`'s options.
    const offered = completeBash(bashScript, 'vigil state import --config state --f');
    assert.deepEqual(sorted(offered), ['--force', '--format']);
    // And a file name there is not offered subcommands of `keys`.
    assert.deepEqual(completeBash(bashScript, 'vigil agent --config keys '), []);
  });

  it('is generated from the program tree: a new command completes without other changes', () => {
    const program = buildProgram();
    const extra = new Command('zzz-extra').description('added by the test');
    extra
      .command('alpha')
      .option('--level <n>', 'a level')
      .action(() => undefined);
    extra.command('beta').action(() => undefined);
    program.addCommand(extra);
    const script = bashCompletion(program);
    assert.deepEqual(completeBash(script, 'vigil zzz'), ['zzz-extra']);
    assert.deepEqual(sorted(completeBash(script, 'vigil zzz-extra ')), ['alpha', 'beta', 'help']);
    assert.deepEqual(sorted(completeBash(script, 'vigil zzz-extra alpha --')), [
      '--help',
      '--level',
    ]);
  });

  it("rejects a shell it cannot serve, with commander's choice error", () => {
    const r = vigil(['completion', 'fish']);
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      /value 'fish' is invalid for argument 'shell'\. Allowed choices are bash, zsh/,
    );
  });
});

describe('vigil completion zsh', () => {
  it('is the zsh script, valid zsh if zsh is installed, completing as the program tree says', (t) => {
    assert.match(zshScript, /^#compdef vigil\n/);
    assert.equal(zshCompletion(buildProgram()), zshScript);
    const has = spawnSync('zsh', ['--version'], { encoding: 'utf8' });
    if (has.error) {
      console.error('\n*** SKIPPING zsh completion checks: zsh is not installed ***\n');
      t.skip('zsh is not installed');
      return;
    }
    const path = join(dir, '_vigil');
    writeFileSync(path, zshScript);
    const syntax = spawnSync('zsh', ['-n', path], { encoding: 'utf8' });
    assert.equal(syntax.status, 0, syntax.stderr);
    // Outside a completion widget, zsh's completion builtins are replaced by functions that
    // print what they were given; the script's own logic runs in a real zsh.
    const run = (line: string) => {
      const program = [
        'compdef() { :; }',
        '_describe() { local a=${@[-1]}; local e; for e in ${(P)a}; do print -r -- "${e%%:*}"; done }',
        'compadd() { local a=${@[-1]}; print -rl -- ${(P)a} }',
        '_files() { print -r -- "<files>" }',
        'source "$1"',
        'words=("${@:2}")',
        'CURRENT=${#words}',
        '_vigil',
      ].join('\n');
      const r = spawnSync('zsh', ['-f', '-c', program, 'zsh', path, ...line.split(' ')], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '', r.stderr);
      const prefix = line.split(' ').pop()!;
      return r.stdout.split('\n').filter((w) => w !== '' && w.startsWith(prefix));
    };
    assert.deepEqual(sorted(run('vigil sta')), ['state', 'status']);
    assert.deepEqual(
      sorted(run('vigil state ')),
      sorted(['init', 'adopt', 'import', 'show', 'export', 'help']),
    );
    assert.deepEqual(sorted(run('vigil state import --format ')), ['filepv', 'horcrux', 'tmkms']);
    assert.deepEqual(run('vigil agent --config '), ['<files>']);
    assert.deepEqual(sorted(run('vigil state import --config state --f')), ['--force', '--format']);
  });
});
