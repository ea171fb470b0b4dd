/**
 * Faults across the hosts of a running local fleet: a partition cuts a host's uplink (and
 * so its WireGuard links, which ride on it) in one direction or both, with a table of its own
 * in the host's namespace that drops before the rendered ruleset is consulted; healing deletes
 * that table. Host loss kills every process in the host's namespace.
 */
import { inNetns, run, tryRun } from './exec.js';
import { killNamespacePids } from './fleet.js';
import { HOST_UPLINK } from './network.js';
import type { RunRecord } from './run-record.js';

const CHAOS_TABLE = 'vigil-chaos';

export type PartitionDirection = 'in' | 'out' | 'both';

function netnsOf(record: RunRecord, host: string): string {
  const h = record.hosts.find((x) => x.name === host);
  if (!h) throw new Error(`no host ${host} in this local fleet`);
  return h.netns;
}

/** Pure: the nft script that cuts `direction` on the uplink. */
export function partitionRuleset(direction: PartitionDirection): string {
  const chain = (name: string, hook: 'input' | 'output', match: string) =>
    `  chain ${name} {\n    type filter hook ${hook} priority -200; policy accept;\n    ${match} "${HOST_UPLINK}" drop\n  }\n`;
  return (
    `table inet ${CHAOS_TABLE} {\n` +
    (direction !== 'out' ? chain('cut_in', 'input', 'iifname') : '') +
    (direction !== 'in' ? chain('cut_out', 'output', 'oifname') : '') +
    '}\n'
  );
}

export function partitionHost(record: RunRecord, host: string, direction: PartitionDirection) {
  const ns = netnsOf(record, host);
  healHost(record, host);
  run(inNetns(ns, ['nft', '-f', '-']), partitionRuleset(direction));
}

export function healHost(record: RunRecord, host: string): void {
  tryRun(inNetns(netnsOf(record, host), ['nft', 'delete', 'table', 'inet', CHAOS_TABLE]));
}

/** Host loss: every process of the host's namespace, SIGKILLed. */
export async function killHost(record: RunRecord, host: string): Promise<string[]> {
  return killNamespacePids(netnsOf(record, host));
}
