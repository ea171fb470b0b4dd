/**
 * Issue 11: the README is a promise. Its example commands must run as written and what it lists
 * (the agent's metrics) must be what the code registers. Every `./bin/vigil.js …` (and bare
 * `vigil …`) line of its ```sh blocks names a real command, with options that command has and
 * as many arguments as it takes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { buildProgram } from '../../src/cli/main.js';
import { packageRoot } from '../../src/package-root.js';
import { CLI_ENTRY } from '../helpers/paths.js';

const README = readFileSync(join(packageRoot(), 'README.md'), 'utf8');

/** Every line of the README's ```sh blocks, trimmed. */
function shellLines(markdown: string): string[] {
  const lines: string[] = [];
  let inSh = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) {
      inSh = !inSh && /^\s*```sh\s*$/.test(line);
      continue;
    }
    if (inSh) lines.push(line.trim());
  }
  return lines;
}

const VIGIL_LINE = /^(\.\/bin\/vigil\.js|vigil)\s/;

/** The arguments of a `./bin/vigil.js …` line, without its trailing `# comment`. */
function vigilArgs(line: string): string[] {
  const words = line.replace(/\s+#.*$/, '').split(/\s+/);
  assert.ok(words[0] === './bin/vigil.js' || words[0] === 'vigil', line);
  assert.ok(
    words.every((w) => !/["'$`\\<>|;&]/.test(w)),
    `README line needs a shell to read it; keep examples plain: ${line}`,
  );
  return words.slice(1);
}

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI_ENTRY, ...args], {
    encoding: 'utf8',
    cwd: packageRoot(),
    timeout: 30_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('README', () => {
  it('the `vigil cometbft decode` example decodes, exactly as written', () => {
    const lines = shellLines(README).filter((l) => l.startsWith('./bin/vigil.js cometbft decode'));
    assert.equal(lines.length, 1, 'one decode example');
    const r = run(vigilArgs(lines[0]!));
    assert.equal(r.code, 0, r.err);
    const decoded = JSON.parse(r.out) as {
      message: { kind: string; chainId: string; vote: { height: string; typeName: string } };
    };
    // What the prose around the example says it is.
    assert.equal(decoded.message.kind, 'signVoteRequest');
    assert.equal(decoded.message.chainId, 'cosmoshub-4');
    assert.equal(decoded.message.vote.height, '19000000');
    assert.equal(decoded.message.vote.typeName, 'prevote');
  });

  it('names every metric the agent registers', async () => {
    const metrics = new AgentMetrics({ agent: 'readme' });
    const names = (await metrics.registry.getMetricsAsJSON())
      .map((m) => m.name)
      .filter((n) => n.startsWith('vigil_'));
    assert.ok(names.length >= 7, names.join(', '));
    for (const name of names)
      assert.ok(README.includes(`\`${name}`), `README's metric list omits ${name}`);
    for (const prefix of ['process_', 'nodejs_']) {
      assert.ok(
        (await metrics.registry.getMetricsAsJSON()).some((m) => m.name.startsWith(prefix)),
        `no ${prefix}* metric registered; the README says there are`,
      );
    }
  });
});

interface Parsed {
  path: string[];
  flags: string[];
  positionals: string[];
}

/**
 * Splits a README command line the way commander would: the subcommand path through Vigil's
 * real command tree, the long and short flags, and what is left as positional arguments (an
 * option's value is not one).
 */
function parseLine(line: string): Parsed & { command: Command } {
  const words = vigilArgs(line);
  let command = buildProgram();
  const path: string[] = [];
  while (words.length > 0 && !words[0]!.startsWith('-')) {
    const sub = command.commands.find(
      (c) => c.name() === words[0] || c.aliases().includes(words[0]!),
    );
    if (!sub) break;
    command = sub;
    path.push(words.shift()!);
  }
  const flags: string[] = [];
  const positionals: string[] = [];
  while (words.length > 0) {
    const word = words.shift()!;
    if (word === '--') {
      positionals.push(...words.splice(0));
    } else if (word.startsWith('-') && word.length > 1) {
      const flag = word.split('=')[0]!;
      flags.push(flag);
      let option;
      for (let c: Command | null = command; c && !option; c = c.parent)
        option = c.options.find((o) => o.long === flag || o.short === flag);
      // A value-taking option written without `=` consumes the next word.
      if (option && (option.required || option.optional) && !word.includes('=')) {
        if (option.required || (words.length > 0 && !words[0]!.startsWith('-'))) words.shift();
      }
    } else {
      positionals.push(word);
    }
  }
  return { command, path, flags, positionals };
}

/** `vigil <path> --help`, run as a process, with at most `limit` at a time. */
async function helpTexts(paths: string[][], limit: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const queue = [...paths];
  const worker = async () => {
    for (let path = queue.shift(); path; path = queue.shift()) {
      const p = path;
      const child = spawn(process.execPath, [CLI_ENTRY, ...p, '--help'], { cwd: packageRoot() });
      let text = '';
      child.stdout.on('data', (b: Buffer) => (text += b.toString()));
      child.stderr.on('data', (b: Buffer) => (text += b.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      assert.equal(code, 0, `vigil ${p.join(' ')} --help exited ${code}:\n${text}`);
      out.set(p.join(' '), text);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return out;
}

describe('README command lines', () => {
  const lines = shellLines(README).filter((l) => VIGIL_LINE.test(l));

  it('are found (the guard guards something)', () => {
    assert.ok(lines.length >= 15, `only ${lines.length} vigil lines in README.md`);
  });

  it("each names a real command, with that command's options and arguments", async () => {
    const parsed = lines.map((line) => ({ line, ...parseLine(line) }));
    const unique = [...new Map(parsed.map((p) => [p.path.join(' '), p.path])).values()];
    const help = await helpTexts(unique, 3);
    for (const { line, path, flags, positionals, command } of parsed) {
      assert.ok(path.length > 0, `not a vigil command: ${line}`);
      assert.equal(
        command.commands.length,
        0,
        `${line}: \`vigil ${path.join(' ')}\` needs a subcommand (${command.commands.map((c) => c.name()).join(', ')})`,
      );
      const text = help.get(path.join(' '))!;
      for (const flag of flags) {
        const known = new RegExp(`(^|[\\s,])${flag.replace(/[-]/g, '\\-')}(?![\\w-])`, 'm');
        assert.match(text, known, `${line}: ${flag} is not in \`vigil ${path.join(' ')} --help\``);
      }
      const args = command.registeredArguments;
      const min = args.filter((a) => a.required).length;
      const max = args.some((a) => a.variadic) ? Infinity : args.length;
      assert.ok(
        positionals.length >= min && positionals.length <= max,
        `${line}: ${positionals.length} arguments (${positionals.join(' ')}); \`vigil ${path.join(' ')}\` takes ${min}..${max}`,
      );
    }
  });

  it('the guard catches a wrong flag, a wrong subcommand and a stray argument', () => {
    const bad = parseLine('./bin/vigil.js state shwo --config a.yaml');
    assert.deepEqual(bad.path, ['state']);
    assert.ok(bad.command.commands.length > 0, 'state alone needs a subcommand');
    const stray = parseLine('./bin/vigil.js agent --config a.yaml extra');
    assert.deepEqual(stray.positionals, ['extra']);
    assert.equal(stray.command.registeredArguments.length, 0);
    const valued = parseLine('./bin/vigil.js state export --config a.yaml --format filepv --out x');
    assert.deepEqual(valued.flags, ['--config', '--format', '--out']);
    assert.deepEqual(valued.positionals, []);
  });
});
