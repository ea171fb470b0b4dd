/** The fault kinds `vigil chaos` injects, apart from the injector so the CLI can name them cheaply. */
export const FAULT_KINDS = [
  'agent-kill',
  'agent-pause',
  'link-cut',
  'clock-jump',
  'etcd-kill',
  'etcd-pause',
  'etcd-link-cut',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Faults that need the devnet's etcd cluster (`store: etcd`). */
export const ETCD_FAULT_KINDS: readonly FaultKind[] = ['etcd-kill', 'etcd-pause', 'etcd-link-cut'];
