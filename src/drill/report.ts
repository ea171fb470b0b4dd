/** The drill's report, pure: a table for terminals, JSON for scripts, the exit code. */
import type { DrillResult } from './failover.js';

/** 0 passed (or a dry run whose checks all hold), 2 refused or failed, 130 interrupted. */
export function drillExitCode(r: DrillResult): number {
  if (r.outcome === 'aborted') return 130;
  return r.outcome === 'passed' || r.outcome === 'planned' ? 0 : 2;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function formatDrill(r: DrillResult): string {
  const out: string[] = [];
  out.push(
    `drill failover ${r.role} (${r.mode === 'dry-run' ? 'dry run: nothing changed' : 'executed'}): ${r.outcome.toUpperCase()}` +
      (r.message ? ` — ${r.message}` : ''),
  );
  out.push(`holder ${r.holder ?? '-'}, standby ${r.standby ?? '-'}`);
  out.push('');
  out.push(
    table([
      ['CHECK', 'RESULT', 'DETAIL'],
      ...r.checks.map((c) => [
        c.name,
        c.ok ? 'ok' : `FAIL${c.reason ? ` (${c.reason})` : ''}`,
        c.detail,
      ]),
    ]),
  );
  if (r.mode === 'dry-run' && r.steps.length) {
    out.push('', 'with --execute it would:');
    r.steps.forEach((s, i) => out.push(`  ${i + 1}. ${s}`));
  }
  if (r.legs.length) {
    out.push('');
    out.push(
      table([
        ['FROM', 'TO', 'STOP CONFIRMED', 'ACTIVE', 'SWITCH', 'OBSERVED', 'CHECKS'],
        ...r.legs.map((l) => [
          l.from,
          l.to,
          l.stopConfirmedAt ?? '-',
          l.activeAt ?? '-',
          l.switchMs !== undefined ? `${l.switchMs} ms` : '-',
          l.observedMs !== undefined ? `${l.observedMs} ms` : '-',
          l.checks.every((c) => c.ok)
            ? 'ok'
            : l.checks
                .filter((c) => !c.ok)
                .map((c) => `${c.name}: ${c.detail}`)
                .join('; '),
        ]),
      ]),
    );
    out.push(
      "SWITCH: old holder stop confirmed → standby active (agents' clocks); OBSERVED: handover asked → standby seen active (drill's clock)",
    );
  }
  if (r.mode === 'execute')
    out.push(
      `role held at the end by ${r.finalHolder ?? 'NOBODY'}; most agents active at once: ${r.maxActiveSeen}`,
    );
  return out.join('\n') + '\n';
}
