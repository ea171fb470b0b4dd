/**
 * Reading the event log agent-child.ts writes (`<kind> <holder> <fields…>` per line), for
 * the supervisor tests and the failover benchmark.
 */
import { readFileSync } from 'node:fs';
import { sleep } from '../helpers/etcd-cluster.js';

export interface AgentEvent {
  kind: string;
  holder: string;
  fields: string[];
}

export function readEvents(file: string): AgentEvent[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [kind, holder, ...fields] = l.split(' ');
      return { kind: kind!, holder: holder!, fields };
    });
}

/** Polls `probe` every `stepMs` until it returns a value; bounded by `ms`. */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined,
  ms = 15_000,
  stepMs = 50,
): Promise<T> {
  for (let waited = 0; waited < ms; waited += stepMs) {
    const v = probe();
    if (v !== undefined) return v;
    await sleep(stepMs);
  }
  throw new Error(`timed out waiting for ${what}`);
}
