/**
 * Runs `promtool test rules` on each test group apart, so a report can count groups passed and
 * failed (promtool itself answers once per file).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

export interface RuleGroupResult {
  readonly name: string;
  readonly passed: boolean;
  /** promtool's output, for a failure message. */
  readonly output: string;
}

export function runRuleTests(
  rulesYaml: string,
  groups: ReadonlyArray<{ name: string; evaluation_interval?: string }>,
): RuleGroupResult[] {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-promtool-'));
  try {
    writeFileSync(join(dir, 'rules.yml'), rulesYaml);
    return groups.map(({ evaluation_interval, ...group }, i) => {
      const file = `test-${i}.yml`;
      writeFileSync(
        join(dir, file),
        stringify(
          // A file-level setting in promtool: a group spanning days evaluates every rule every
          // minute unless its cases say a coarser step is enough.
          {
            rule_files: ['rules.yml'],
            evaluation_interval: evaluation_interval ?? '1m',
            tests: [group],
          },
          { lineWidth: 0 },
        ),
      );
      const r = spawnSync('promtool', ['test', 'rules', file], {
        cwd: dir,
        encoding: 'utf8',
        timeout: 60_000,
      });
      if (r.error) throw r.error;
      return { name: group.name, passed: r.status === 0, output: `${r.stdout}${r.stderr}` };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
