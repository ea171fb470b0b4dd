/**
 * A devnet's work dir holds its agents' local watermarks, which are only meaningful next to
 * the store they were written against: agents from a SQLite run started against a fresh etcd
 * cluster refuse every duty as `store_behind_local`. So each work dir belongs to one devnet on
 * one store, recorded in a marker file, and another devnet is refused up front.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VigilError } from '../errors.js';

export const WORK_DIR_MARKER = 'devnet.json';

export interface WorkDirOwner {
  readonly name: string;
  readonly store: string;
}

/** The default work dir of a devnet: one per devnet name, so two devnets never share one. */
export function defaultWorkDir(command: 'up' | 'chaos', devnetName: string): string {
  return join('.vigil', command === 'up' ? devnetName : `chaos-${devnetName}`);
}

export function claimWorkDir(workDir: string, owner: WorkDirOwner): void {
  const marker = join(workDir, WORK_DIR_MARKER);
  if (existsSync(marker)) {
    let previous: Partial<WorkDirOwner> = {};
    try {
      previous = JSON.parse(readFileSync(marker, 'utf8')) as Partial<WorkDirOwner>;
    } catch {
      // An unreadable marker proves nothing about the watermarks next to it: refuse below.
    }
    if (previous.name !== owner.name || previous.store !== owner.store) {
      throw new VigilError(
        'DEVNET_WORK_DIR_IN_USE',
        `${workDir} holds devnet ${JSON.stringify(previous.name ?? '?')} on the ${previous.store ?? '?'} store, ` +
          `not ${JSON.stringify(owner.name)} on the ${owner.store} store; its agents' local watermarks would refuse every duty (store_behind_local)`,
        `give another --work-dir, or delete ${workDir} to start that devnet afresh`,
      );
    }
    return;
  }
  writeFileSync(marker, `${JSON.stringify({ name: owner.name, store: owner.store })}\n`);
}
