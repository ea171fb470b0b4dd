/**
 * `systemd-analyze verify` on unit files in a scratch root where `/opt/vigil/bin/vigil` exists
 * and systemd's own units resolve. Skips loudly without systemd-analyze or a unit directory
 * (not required in CI: the CI image need not carry systemd).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireTool } from '../render/helpers.js';

/** systemd-analyze's answer, or why it could not be asked. */
export type VerifyResult =
  { readonly skipped: string } | { readonly status: number | null; readonly stderr: string };

/** `units` maps a file name in /etc/systemd/system to its text; all of them are verified. */
export function verifyUnits(
  root: string,
  units: Record<string, string>,
  verify: readonly string[] = Object.keys(units),
): VerifyResult {
  if (!requireTool('systemd-analyze', ['--version'], false))
    return { skipped: 'systemd-analyze is not installed' };
  const systemUnits = ['/usr/lib/systemd/system', '/lib/systemd/system'].find((d) =>
    existsSync(join(d, 'sysinit.target')),
  );
  if (!systemUnits) {
    console.error('\n*** SKIPPING systemd-analyze verify: no systemd unit directory ***\n');
    return { skipped: 'no sysinit.target found' };
  }
  mkdirSync(join(root, 'opt/vigil/bin'), { recursive: true });
  writeFileSync(join(root, 'opt/vigil/bin/vigil'), '#!/bin/sh\n');
  chmodSync(join(root, 'opt/vigil/bin/vigil'), 0o755);
  cpSync(systemUnits, join(root, 'usr/lib/systemd/system'), { recursive: true });
  mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
  for (const [name, text] of Object.entries(units))
    writeFileSync(join(root, 'etc/systemd/system', name), text);
  const r = spawnSync(
    'systemd-analyze',
    ['verify', '--man=no', `--root=${root}`, ...verify.map((u) => `/etc/systemd/system/${u}`)],
    { encoding: 'utf8', timeout: 60_000 },
  );
  return { status: r.status, stderr: r.stderr };
}
