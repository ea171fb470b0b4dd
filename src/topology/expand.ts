/** Turns host entries with a `count` into individual machines, in file order. */
import type { Chain, Host, Topology } from './schema.js';

export interface ExpandedHost {
  /** Unique machine name: the entry's name, or `name-N` when the entry has count > 1. */
  readonly name: string;
  /** Index of the entry in `hosts` (for lint paths). */
  readonly index: number;
  readonly host: Host;
  readonly chain?: Chain;
}

export function expandHosts(topology: Topology): ExpandedHost[] {
  const chains = new Map(topology.chains.map((c) => [c.name, c]));
  const out: ExpandedHost[] = [];
  topology.hosts.forEach((host, index) => {
    const chain = host.chain === undefined ? undefined : chains.get(host.chain);
    for (let n = 1; n <= host.count; n++) {
      out.push({
        name: host.count === 1 ? host.name : `${host.name}-${n}`,
        index,
        host,
        ...(chain ? { chain } : {}),
      });
    }
  });
  return out;
}

/** The key a signing host serves; hosts of one chain share it unless they name another. */
export function signingKey(host: Host): string {
  return host.key ?? host.chain ?? host.name;
}

export const SIGNING_ROLES = new Set(['validator', 'producer', 'voting-wallet']);
