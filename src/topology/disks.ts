/**
 * How much disk each host needs, and where it comes from: a root disk sized at creation where
 * the provider lets Terraform set it, otherwise the plan's fixed disk, plus a block volume for
 * the chain's data where that disk is too small. Pure data and rules, read by lint (a host
 * that cannot hold its chain is an error) and by the plan (what Terraform renders).
 *
 * Figures are GB (10^9 bytes, as providers bill them). A host's need is the OS's share plus
 * its data; the data figure is the chain recipe's for the host's role, or the topology's
 * `disk:` override.
 */
import type { Chain, Provider, Role } from './schema.js';

/** Ubuntu 24.04, packages, logs, the Vigil release and the chain binaries. */
export const OS_DISK_GB = 20;

/**
 * Chain data a node needs, by chain recipe and network, with headroom for a year's growth.
 * Sources (read 2026-12):
 * - Cardano mainnet 250 GB: cardano-wallet's installation guide (cardano-foundation/
 *   cardano-wallet docs, "mainnet: 250 GB disk space"; the node's database is most of it);
 *   preprod/preview 30 GB: the testnet minimum of the stake-pool operators' hardware guide.
 * - Polkadot and Kusama validators 2000 GB: docs.polkadot.com validator reference hardware
 *   ("2 TB+ NVMe SSD"), for a pruned validator (state pruning 256, the node's default; an
 *   archive node needs more). Other chain specs (Westend, Paseo, a spec file): 500 GB.
 * - Cosmos Hub (cosmoshub-4) 600 GB: cosmos/launch README, Quicksync snapshots "archive
 *   1.4TB, default 540GB, and pruned 265GB"; Vigil's nodes keep the default pruning. Other
 *   CometBFT chains: 500 GB.
 * - Decred mainnet 60 GB for dcrd's full chain plus dcrwallet (no upstream figure is
 *   published; dcrd's data directory is well under this), testnet 20 GB.
 * Override per host with `disk:` when the chain has grown past these.
 */
export function chainDataGB(chain: Chain): number {
  switch (chain.kind) {
    case 'cardano':
      return chain.network === 'mainnet' ? 250 : 30;
    case 'substrate':
      return ['polkadot', 'kusama'].includes(chain.chainSpec) ? 2000 : 500;
    case 'cometbft':
      return chain.chainId === 'cosmoshub-4' ? 600 : 500;
    case 'decred':
      return chain.network === 'mainnet' ? 60 : 20;
  }
}

/**
 * Data besides the OS on hosts that run no chain node: Prometheus's TSDB at its default 15 days
 * of retention for a fleet of tens of hosts, and etcd's backend (its default quota is 2 GB,
 * 8 GB the documented maximum) with room for snapshots.
 */
const ROLE_DATA_GB: Partial<Record<Role, number>> = { monitor: 15, 'guard-member': 10 };

/** Providers whose root disk size Terraform sets (AWS root_block_device.volume_size, GCP
 * boot_disk.initialize_params.size, UpCloud template.size): no volume is ever needed. */
export const ROOT_DISK_SIZED: ReadonlySet<Provider> = new Set(['aws', 'gcp', 'upcloud']);

/**
 * Providers whose disk is fixed by the size (plan) and where Vigil attaches a block volume for
 * the chain's data when it does not fit: hcloud_volume, digitalocean_volume,
 * vultr_block_storage, linode_volume. OVH's provider cannot attach a volume to an instance
 * (ovh/terraform-provider-ovh issue 975, open), so an OVH host must pick a flavor whose disk
 * is large enough.
 */
export const VOLUME_PROVIDERS: ReadonlySet<Provider> = new Set([
  'hetzner',
  'digitalocean',
  'vultr',
  'linode',
]);

/** Where a size's disk figure was read. */
const HCLOUD_ACCEPTANCE =
  'hetznercloud/terraform-provider-hcloud v1.68.0 (93291f4960a23079d89574ab37b025b8e69da82d) internal/servertype/data_source_test.go, an acceptance test run against the live API';
const LINODE_TYPES_CASSETTE =
  'linode/linodego 676b9dbeacf05d88a69ef25c2968be2497d363b4 test/integration/fixtures/TestTypes_List.yaml, a recorded GET /v4beta/linode/types (2024-07-19): disk in MiB / 1024';

/**
 * A size's local disk in GB and where the figure was read; `source: null` marks a figure
 * remembered from the providers' price lists (2025) that no source here confirms.
 */
export interface PlanDisk {
  readonly gb: number;
  readonly source: string | null;
}

/**
 * The local disk of the sizes Vigil knows on the providers whose disk is fixed by the size.
 * Checked: Hetzner cpx11 and cpx22 (the hcloud provider's acceptance test asserts them against
 * the live API) and every Linode type (linodego's recorded API response; MiB / 1024, so GiB,
 * below the size in GB: a safe reading). Unchecked (`source: null`): the other Hetzner,
 * DigitalOcean, Vultr and OVH figures; the providers' SDK unit fixtures are synthetic
 * (hcloud-go gives cx22 a 20 GB disk) and prove nothing. An unchecked figure is never trusted
 * to hold a chain: a chain host there gets a volume for its data (where the provider has
 * volumes), as on a size not listed at all; lint still compares it with the need.
 */
export const PLAN_DISKS: Readonly<Partial<Record<Provider, Readonly<Record<string, PlanDisk>>>>> = {
  hetzner: {
    cpx11: { gb: 40, source: HCLOUD_ACCEPTANCE },
    cpx22: { gb: 80, source: HCLOUD_ACCEPTANCE },
    cx22: { gb: 40, source: null },
    cx32: { gb: 80, source: null },
    cx42: { gb: 160, source: null },
    cx52: { gb: 320, source: null },
    cpx21: { gb: 80, source: null },
    cpx31: { gb: 160, source: null },
    cpx41: { gb: 240, source: null },
    cpx51: { gb: 360, source: null },
    ccx13: { gb: 80, source: null },
    ccx23: { gb: 160, source: null },
    ccx33: { gb: 240, source: null },
    ccx43: { gb: 360, source: null },
    ccx53: { gb: 600, source: null },
    ccx63: { gb: 960, source: null },
  },
  digitalocean: {
    's-1vcpu-1gb': { gb: 25, source: null },
    's-1vcpu-2gb': { gb: 50, source: null },
    's-2vcpu-2gb': { gb: 60, source: null },
    's-2vcpu-4gb': { gb: 80, source: null },
    's-4vcpu-8gb': { gb: 160, source: null },
    's-8vcpu-16gb': { gb: 320, source: null },
    'g-2vcpu-8gb': { gb: 25, source: null },
    'g-4vcpu-16gb': { gb: 50, source: null },
    'g-8vcpu-32gb': { gb: 100, source: null },
    'c-2': { gb: 25, source: null },
    'c-4': { gb: 50, source: null },
    'c-8': { gb: 100, source: null },
  },
  vultr: {
    'vc2-1c-1gb': { gb: 25, source: null },
    'vc2-1c-2gb': { gb: 55, source: null },
    'vc2-2c-4gb': { gb: 80, source: null },
    'vc2-4c-8gb': { gb: 160, source: null },
    'vc2-6c-16gb': { gb: 320, source: null },
    'vhf-2c-4gb': { gb: 128, source: null },
    'vhf-3c-8gb': { gb: 256, source: null },
    'vhf-4c-16gb': { gb: 384, source: null },
  },
  linode: {
    'g6-nanode-1': { gb: 25, source: LINODE_TYPES_CASSETTE },
    'g6-standard-1': { gb: 50, source: LINODE_TYPES_CASSETTE },
    'g6-standard-2': { gb: 80, source: LINODE_TYPES_CASSETTE },
    'g6-standard-4': { gb: 160, source: LINODE_TYPES_CASSETTE },
    'g6-standard-6': { gb: 320, source: LINODE_TYPES_CASSETTE },
    'g6-standard-8': { gb: 640, source: LINODE_TYPES_CASSETTE },
    'g6-standard-16': { gb: 1280, source: LINODE_TYPES_CASSETTE },
    'g6-dedicated-2': { gb: 80, source: LINODE_TYPES_CASSETTE },
    'g6-dedicated-4': { gb: 160, source: LINODE_TYPES_CASSETTE },
    'g6-dedicated-8': { gb: 320, source: LINODE_TYPES_CASSETTE },
    'g6-dedicated-16': { gb: 640, source: LINODE_TYPES_CASSETTE },
    'g6-dedicated-32': { gb: 1280, source: LINODE_TYPES_CASSETTE },
  },
  ovh: {
    'b3-8': { gb: 50, source: null },
    'b3-16': { gb: 100, source: null },
    'b3-32': { gb: 200, source: null },
    'b3-64': { gb: 400, source: null },
    'c3-4': { gb: 50, source: null },
    'c3-8': { gb: 100, source: null },
    'c3-16': { gb: 200, source: null },
    'c3-32': { gb: 400, source: null },
  },
};

/** A size's disk from the table (checked or not), or undefined when the size is not listed. */
export function planDisk(provider: Provider, size: string): PlanDisk | undefined {
  return PLAN_DISKS[provider]?.[size];
}

export interface DiskPlan {
  /** Data besides the OS: the chain recipe's figure for this role, or the host's `disk:`. */
  readonly dataGB: number;
  /** OS plus data: what the host needs in all. */
  readonly needGB: number;
  /** Where the provider sets the root disk: its size (the whole need). */
  readonly rootGB?: number;
  /** The size's fixed disk, where the provider fixes it and the table knows the size. */
  readonly planDiskGB?: number;
  /** Whether that figure was read from a source (PLAN_DISKS), not remembered. */
  readonly planDiskChecked?: boolean;
  /** A block volume for the chain's data, attached where the fixed disk is too small. */
  readonly volumeGB?: number;
}

interface DiskHost {
  readonly provider: Provider;
  readonly size: string;
  readonly role: Role;
  readonly disk?: number | undefined;
}

/** The data a host's role and chain need by the recipes, before any override. */
export function recipeDataGB(role: Role, chain: Chain | undefined): number {
  return chain ? chainDataGB(chain) : (ROLE_DATA_GB[role] ?? 0);
}

export function diskPlan(host: DiskHost, chain: Chain | undefined): DiskPlan {
  const dataGB = host.disk ?? recipeDataGB(host.role, chain);
  const needGB = OS_DISK_GB + dataGB;
  if (host.provider === 'local') return { dataGB, needGB };
  if (ROOT_DISK_SIZED.has(host.provider)) return { dataGB, needGB, rootGB: needGB };
  const known = planDisk(host.provider, host.size);
  const planDiskGB = known?.gb;
  // Only a figure read from a source is trusted to hold the chain.
  const fits = known?.source != null && known.gb >= needGB;
  // Only a chain's data moves to a volume: it is mounted at the chain's data directory before
  // the node first starts. An unknown or unchecked size gets one too: better a volume than a
  // full disk.
  const volume = chain !== undefined && !fits && VOLUME_PROVIDERS.has(host.provider);
  return {
    dataGB,
    needGB,
    ...(known !== undefined ? { planDiskGB, planDiskChecked: known.source !== null } : {}),
    ...(volume ? { volumeGB: dataGB } : {}),
  };
}
