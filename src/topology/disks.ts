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

/**
 * The local disk of common sizes on the providers whose disk is fixed by the size, in GB, as
 * the providers' price lists publish them (hetzner.com/cloud, digitalocean.com/pricing/droplets,
 * vultr.com/pricing, linode.com/pricing, ovhcloud.com public-cloud prices; read 2025). A size
 * not listed is unknown: lint says so, and a chain host there gets a volume.
 */
export const PLAN_DISK_GB: Readonly<Partial<Record<Provider, Readonly<Record<string, number>>>>> = {
  hetzner: {
    cx22: 40,
    cx32: 80,
    cx42: 160,
    cx52: 320,
    cpx11: 40,
    cpx21: 80,
    cpx31: 160,
    cpx41: 240,
    cpx51: 360,
    ccx13: 80,
    ccx23: 160,
    ccx33: 240,
    ccx43: 360,
    ccx53: 600,
    ccx63: 960,
  },
  digitalocean: {
    's-1vcpu-1gb': 25,
    's-1vcpu-2gb': 50,
    's-2vcpu-2gb': 60,
    's-2vcpu-4gb': 80,
    's-4vcpu-8gb': 160,
    's-8vcpu-16gb': 320,
    'g-2vcpu-8gb': 25,
    'g-4vcpu-16gb': 50,
    'g-8vcpu-32gb': 100,
    'c-2': 25,
    'c-4': 50,
    'c-8': 100,
  },
  vultr: {
    'vc2-1c-1gb': 25,
    'vc2-1c-2gb': 55,
    'vc2-2c-4gb': 80,
    'vc2-4c-8gb': 160,
    'vc2-6c-16gb': 320,
    'vhf-2c-4gb': 128,
    'vhf-3c-8gb': 256,
    'vhf-4c-16gb': 384,
  },
  linode: {
    'g6-nanode-1': 25,
    'g6-standard-1': 50,
    'g6-standard-2': 80,
    'g6-standard-4': 160,
    'g6-standard-6': 320,
    'g6-standard-8': 640,
    'g6-dedicated-2': 80,
    'g6-dedicated-4': 160,
    'g6-dedicated-8': 320,
    'g6-dedicated-16': 640,
  },
  ovh: {
    'b3-8': 50,
    'b3-16': 100,
    'b3-32': 200,
    'b3-64': 400,
    'c3-4': 50,
    'c3-8': 100,
    'c3-16': 200,
    'c3-32': 400,
  },
};

export interface DiskPlan {
  /** Data besides the OS: the chain recipe's figure for this role, or the host's `disk:`. */
  readonly dataGB: number;
  /** OS plus data: what the host needs in all. */
  readonly needGB: number;
  /** Where the provider sets the root disk: its size (the whole need). */
  readonly rootGB?: number;
  /** The size's fixed disk, where the provider fixes it and the table knows the size. */
  readonly planDiskGB?: number;
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
  const planDiskGB = PLAN_DISK_GB[host.provider]?.[host.size];
  const fits = planDiskGB !== undefined && planDiskGB >= needGB;
  // Only a chain's data moves to a volume: it is mounted at the chain's data directory before
  // the node first starts. An unknown size gets one too: better a volume than a full disk.
  const volume = chain !== undefined && !fits && VOLUME_PROVIDERS.has(host.provider);
  return {
    dataGB,
    needGB,
    ...(planDiskGB !== undefined ? { planDiskGB } : {}),
    ...(volume ? { volumeGB: dataGB } : {}),
  };
}
