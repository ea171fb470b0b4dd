/**
 * Loads a host's rendered nftables ruleset into its namespace unchanged: inside the namespace
 * the interfaces are named as the ruleset expects (`lo`, `wg0`), so nothing needs rewriting.
 * `nft -c` checks it first so a bad ruleset fails before anything is loaded.
 */
import { inNetns, run } from './exec.js';

export function applyFirewall(netns: string, rulesetFile: string): void {
  run(inNetns(netns, ['nft', '-c', '-f', rulesetFile]));
  run(inNetns(netns, ['nft', '-f', rulesetFile]));
}

/** The table names loaded in a namespace (for tests and the run summary). */
export function loadedTables(netns: string): string[] {
  return run(inNetns(netns, ['nft', 'list', 'tables']))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('table '));
}
