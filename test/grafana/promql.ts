/**
 * What the dashboard tests need to read from a PromQL expression: the metric names it selects
 * and the label names its selectors match on, plus `promtool check rules` over many expressions
 * at once. promtool parses with Prometheus' own parser; the name scan here only has to find
 * names, and a name it wrongly took for a metric would fail the test loudly, not pass it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** Words of PromQL that are not metric names (binary and set operators, modifiers, literals). */
const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'inf',
  'nan',
  'atan2',
  'start',
  'end',
]);

/** Grafana's interval variables → a duration promtool accepts; other variables → a regex. */
const GRAFANA_INTERVALS: Record<string, string> = {
  __rate_interval: '1m',
  __interval: '1m',
  __range: '1h',
};

/**
 * The expression Prometheus would receive, with Grafana's template variables filled in. The
 * dashboards use their own variables only inside `=~"…"` matchers, so `.*` (what "All"
 * sends) is the value. A variable left over is an error, not a silent pass.
 */
export function substituteVariables(expr: string, defined: ReadonlySet<string>): string {
  const out = expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (_match, braced?: string, bare?: string) => {
    const name = (braced ?? bare)!;
    const interval = GRAFANA_INTERVALS[name];
    if (interval !== undefined) return interval;
    if (!defined.has(name)) throw new Error(`${expr}: variable $${name} is not defined`);
    return '.*';
  });
  return out;
}

const STRING = /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g;
const IDENT = /(?<![\w.:])[a-zA-Z_:][\w:]*/g;

/** Metric names an expression selects. */
export function metricNames(expr: string): Set<string> {
  const stripped = expr
    .replace(STRING, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    // Function and aggregation names: an identifier followed by `(`.
    .replace(/(?<![\w.:])[a-zA-Z_][\w]*\s*(?=\()/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(IDENT)) {
    if (!KEYWORDS.has(m[0].toLowerCase())) names.add(m[0]);
  }
  return names;
}

/** Each selector `name{…}` of an expression with the label names its matchers use. */
export function selectorLabels(expr: string): Array<{ metric: string; labels: string[] }> {
  const stripped = expr.replace(STRING, '""');
  const out: Array<{ metric: string; labels: string[] }> = [];
  for (const m of stripped.matchAll(/(?<![\w.:])([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}/g)) {
    const labels = [...m[2]!.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!);
    out.push({ metric: m[1]!, labels });
  }
  return out;
}

export interface PromtoolCheck {
  readonly ok: boolean;
  readonly output: string;
}

/**
 * `promtool check rules` on one rule group with a recording rule per expression. promtool has
 * no parse command; this is one short process for every expression, where
 * `promtool query instant` would need a running Prometheus and one HTTP call each.
 */
export function promtoolCheckExpressions(exprs: readonly string[]): PromtoolCheck {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-grafana-promql-'));
  try {
    const file = join(dir, 'dashboards.rules.yml');
    writeFileSync(
      file,
      stringify(
        {
          groups: [
            {
              name: 'vigil-dashboards',
              rules: exprs.map((expr, i) => ({ record: `vigil:dashboard_expr_${i}`, expr })),
            },
          ],
        },
        { lineWidth: 0 },
      ),
    );
    const r = spawnSync('promtool', ['check', 'rules', file], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (r.error) throw r.error;
    const output = `${r.stdout}${r.stderr}`;
    return {
      ok: r.status === 0 && output.includes(`SUCCESS: ${exprs.length} rules found`),
      output,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
