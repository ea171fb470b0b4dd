/**
 * Issue 11: the README is a promise. Its example commands must run as written and what it lists
 * (the agent's metrics) must be what the code registers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentMetrics } from '../../src/agent/metrics.js';
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

/** The arguments of a `./bin/vigil.js …` line, without its trailing `# comment`. */
function vigilArgs(line: string): string[] {
  const words = line.replace(/\s+#.*$/, '').split(/\s+/);
  assert.equal(words[0], './bin/vigil.js');
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
