/**
 * The topology file: one YAML document that describes a whole fleet. The schema checks shape
 * only; operational rules (relay counts, quorum spread, checksums…) live in lint.ts so they can
 * be reported all at once with a code, a severity and a reason.
 */
import { z } from 'zod';

export const CHAIN_KINDS = ['cometbft', 'substrate', 'cardano', 'decred'] as const;
export type ChainKind = (typeof CHAIN_KINDS)[number];

export const ROLES = [
  'validator',
  'producer',
  'sentry',
  'relay',
  'voting-wallet',
  'guard-member',
  'monitor',
] as const;
export type Role = (typeof ROLES)[number];

export const PROVIDERS = [
  'digitalocean',
  'hetzner',
  'vultr',
  'linode',
  'aws',
  'gcp',
  'upcloud',
  'ovh',
  /**
   * This machine: each host a network namespace (`vigil apply` runs the local fleet, no
   * Terraform); region and size are labels only. Not mixed with cloud providers.
   */
  'local',
] as const;
export type Provider = (typeof PROVIDERS)[number];
/** The providers Terraform makes machines with. */
export const CLOUD_PROVIDERS = PROVIDERS.filter(
  (p): p is Exclude<Provider, 'local'> => p !== 'local',
);

const name = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,40}[a-z0-9]$/, 'lower-case letters, digits and dashes, 2–42 long');

/** A downloadable release. The checksum is optional here so lint can name every missing one. */
export const ArtifactSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'sha256 must be 64 lower-case hex digits')
    .optional(),
  version: z.string().min(1).optional(),
  /** Path of the executable inside an archive (or the file itself when not an archive). */
  binary: z.string().min(1).optional(),
});
export type Artifact = z.infer<typeof ArtifactSchema>;

const port = z.number().int().min(1).max(65535);
const cidr = z
  .string()
  .regex(/^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$|^[0-9a-fA-F:]+\/\d{1,3}$/, 'an IPv4 or IPv6 CIDR');

const chainBase = {
  name,
  /** Guarded chains have their signing key protected by Vigil, so several signers may be up. */
  guarded: z.boolean().default(false),
};

/** A file fetched on the host and refused unless its sha256 matches. */
export const GenesisSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'sha256 must be 64 lower-case hex digits'),
});

/** A CometBFT peer as `p2p.seeds` names it: `<node id>@<host>:<port>`. */
export const CometbftPeerSchema = z.strictObject({
  id: z.string().regex(/^[0-9a-f]{40}$/, 'a CometBFT node id is 40 lower-case hex digits'),
  address: z.string().min(1),
  port,
});

export const StateSyncSchema = z.strictObject({
  /** CometBFT needs two: the light client cross-checks the primary against a witness. */
  rpcServers: z.array(z.url({ protocol: /^https?$/ })).min(2),
  trustHeight: z.number().int().min(1),
  trustHash: z.string().regex(/^[0-9A-Fa-f]{64}$/, 'a block hash is 64 hex digits'),
  /** A Go duration shorter than the chain's unbonding period (CometBFT's default: 168h0m0s). */
  trustPeriod: z
    .string()
    .regex(/^(\d+h)?(\d+m)?(\d+s)?$/, 'a Go duration such as 168h0m0s')
    .refine((d) => d !== '', 'a Go duration such as 168h0m0s')
    .default('168h0m0s'),
});

/**
 * One coin amount of Cosmos SDK `minimum-gas-prices`, as types/coin.go (v0.50) parses it:
 * a decimal amount, optional spaces, then a denom.
 */
const DEC_COIN = /^(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)[ \t]*([a-zA-Z][a-zA-Z0-9/:._-]{2,127})$/;

/** app.toml `pruning` (cosmos-sdk store/pruning/types/options.go, v0.50). */
export const PruningSchema = z.discriminatedUnion('strategy', [
  z.strictObject({ strategy: z.enum(['default', 'nothing', 'everything']) }),
  z.strictObject({
    strategy: z.literal('custom'),
    /** pruning-keep-recent: the node refuses fewer than 2 (ErrPruningKeepRecentTooSmall). */
    keepRecent: z.number().int().min(2),
    /** pruning-interval: the node refuses fewer than 10 (ErrPruningIntervalTooSmall). */
    interval: z.number().int().min(10),
  }),
]);

/**
 * The Cosmos SDK application of a CometBFT chain (gaiad and the like): Vigil renders its
 * app.toml (src/render/cosmos-app.ts) next to config.toml.
 */
export const CosmosSdkAppSchema = z
  .strictObject({
    kind: z.literal('cosmos-sdk'),
    /**
     * `minimum-gas-prices`, e.g. `0.005uatom`: the node refuses to start with it empty
     * (server/config ValidateBasic). Comma-separated coins, one per denom.
     */
    minimumGasPrices: z
      .string()
      .min(1)
      .refine(
        (v) => v.split(',').every((c) => DEC_COIN.test(c.trim())),
        'comma-separated coins such as 0.005uatom (an amount, then a denom)',
      )
      .refine((v) => {
        const denoms = v.split(',').map((c) => DEC_COIN.exec(c.trim())?.[1]);
        return new Set(denoms).size === denoms.length;
      }, 'one price per denom'),
    pruning: PruningSchema.default({ strategy: 'default' }),
    /** The REST API (and the app's telemetry), bound to the host's VPN address. */
    apiPort: port.default(1317),
    /** gRPC, bound to loopback: only local tools use it. */
    grpcPort: port.default(9090),
    /**
     * State-sync snapshots, taken and served by the sentries (never the validator): every
     * `interval` blocks, keeping `keepRecent` of them.
     */
    snapshots: z
      .strictObject({
        interval: z.number().int().min(1),
        keepRecent: z.number().int().min(1).default(2),
      })
      .optional(),
    /**
     * The app embeds wasmd (gaia v21 does: wasmd v0.53.0): app.toml gets wasmd's [wasm]
     * section (x/wasm/types/types.go ConfigTemplate), with wasmd's defaults unless set here.
     * Absent, no section is written, and wasmd (if the app has it) runs its defaults.
     */
    wasm: z
      .strictObject({
        /** query_gas_limit (uint64): the most gas one smart query may use. */
        queryGasLimit: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(3_000_000),
        /** memory_cache_size (uint32, MiB): wasmd's in-memory contract cache; 0 disables it. */
        memoryCacheSizeMiB: z.number().int().min(0).max(0xffff_ffff).default(100),
        /**
         * simulation_gas_limit (uint64): the most gas a simulation may use. Unset, the
         * consensus block gas limit applies (the template leaves the key commented out).
         */
        simulationGasLimit: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
      })
      .optional(),
  })
  .refine((app) => !(app.snapshots && app.pruning.strategy === 'everything'), {
    message: "snapshots cannot be served with pruning 'everything' (the node refuses to start)",
    path: ['snapshots'],
  });

/** Any other ABCI application: Vigil writes its CometBFT config only. */
export const OtherAppSchema = z.strictObject({ kind: z.literal('other') });

export const CometbftChainSchema = z.strictObject({
  ...chainBase,
  kind: z.literal('cometbft'),
  chainId: z.string().min(1),
  binary: ArtifactSchema,
  /** Home directory name under /var/lib (e.g. `.gaia`); the node binary's --home. */
  home: z.string().min(1).default('/var/lib/cometbft'),
  p2pPort: port.default(26656),
  metricsPort: port.default(26660),
  privvalPort: port.default(26659),
  doubleSignCheckHeight: z.number().int().min(0).default(10),
  /**
   * The chain's genesis file (plain JSON or gzip), fetched on the host before the node first
   * starts and refused unless its sha256 matches: a node without it cannot start.
   */
  genesis: GenesisSchema,
  /** Seed nodes for the sentries' peer exchange (validators only ever dial their sentries). */
  seeds: z.array(CometbftPeerSchema).default([]),
  /** Optional state sync for an empty node: a light client over these RPC servers. */
  stateSync: StateSyncSchema.optional(),
  /**
   * The application the node runs. Required: a Cosmos SDK node refuses to start without
   * `minimum-gas-prices`, so the topology must say which application it is.
   */
  app: z.discriminatedUnion('kind', [CosmosSdkAppSchema, OtherAppSchema]),
});

export const SubstrateChainSchema = z.strictObject({
  ...chainBase,
  kind: z.literal('substrate'),
  /** The --chain argument (polkadot, kusama, westend or a spec path). */
  chainSpec: z.string().min(1),
  binary: ArtifactSchema,
  /**
   * Binaries installed next to `binary`: a relay-chain validator (the `polkadot` binary)
   * refuses to validate without `polkadot-prepare-worker` and `polkadot-execute-worker`,
   * which it looks for in its own directory (polkadot/cli/src/cli.rs, `--workers-path`).
   */
  workers: z.array(ArtifactSchema).default([]),
  p2pPort: port.default(30333),
  metricsPort: port.default(9615),
});

export const CardanoChainSchema = z.strictObject({
  ...chainBase,
  kind: z.literal('cardano'),
  network: z.enum(['mainnet', 'preprod', 'preview']),
  binary: ArtifactSchema,
  p2pPort: port.default(3001),
  metricsPort: port.default(12798),
  bootstrapPeers: z
    .array(z.strictObject({ address: z.string().min(1), port }))
    .default([{ address: 'backbone.cardano.iog.io', port: 3001 }]),
  useLedgerAfterSlot: z.number().int().min(-1).default(-1),
});

const voteChoices = z.record(z.string().min(1), z.string().min(1));
/** dcrwallet's treasury and tspend policies (rpc/jsonrpc/types: yes, no, abstain). */
const votePolicy = z.enum(['yes', 'no', 'abstain']);

export const DecredChainSchema = z.strictObject({
  ...chainBase,
  kind: z.literal('decred'),
  network: z.enum(['mainnet', 'testnet']),
  dcrd: ArtifactSchema,
  dcrwallet: ArtifactSchema,
  p2pPort: port.default(9108),
  voteChoices: voteChoices.default({}),
  /** `settreasurypolicy`: a treasury spending key (33-byte compressed pubkey, hex) → policy. */
  treasuryPolicies: z
    .record(z.string().regex(/^[0-9a-f]{66}$/, 'a 33-byte public key in hex'), votePolicy)
    .default({}),
  /** `settspendpolicy`: a tspend transaction hash → policy. */
  tspendPolicies: z
    .record(z.string().regex(/^[0-9a-f]{64}$/, 'a transaction hash in hex'), votePolicy)
    .default({}),
});

export const ChainSchema = z.discriminatedUnion('kind', [
  CometbftChainSchema,
  SubstrateChainSchema,
  CardanoChainSchema,
  DecredChainSchema,
]);
export type Chain = z.infer<typeof ChainSchema>;
export type CometbftChain = z.infer<typeof CometbftChainSchema>;
export type CosmosSdkApp = z.infer<typeof CosmosSdkAppSchema>;
export type SubstrateChain = z.infer<typeof SubstrateChainSchema>;
export type CardanoChain = z.infer<typeof CardanoChainSchema>;
export type DecredChain = z.infer<typeof DecredChainSchema>;

export const HostSchema = z.strictObject({
  name,
  role: z.enum(ROLES),
  /** Which chain this host serves; guard members and monitors serve none. */
  chain: name.optional(),
  provider: z.enum(PROVIDERS),
  region: z.string().min(1),
  size: z.string().min(1),
  count: z.number().int().min(1).max(50).default(1),
  /** OS image; each provider has an Ubuntu 24.04 default (OVH needs an image id). */
  image: z.string().min(1).optional(),
  /**
   * GB of disk for the host's data besides the OS (the chain's data directory on chain hosts),
   * overriding the chain recipe's figure for the host's role (src/topology/disks.ts). Where
   * the provider sets the root disk it is sized to this plus 20 GB for the OS; where the size
   * fixes the disk and it is too small, a block volume of this size holds the chain's data.
   */
  disk: z.number().int().min(1).max(64000).optional(),
  /** Signing key served by a validator/producer; defaults to the chain's name. */
  key: z.string().min(1).optional(),
  /** A passive (standby) signer holds the key but must not sign unless promoted. */
  active: z.boolean().default(true),
  /**
   * Extra public peers this host dials (a block producer or validator behind sentries must
   * have none). `id` is the peer's node id where the chain's address format needs one:
   * CometBFT (40 hex digits, `id@host:port`) and Substrate (a libp2p peer id, `/p2p/<id>`).
   */
  peers: z
    .array(
      z.strictObject({
        address: z.string().min(1),
        port,
        id: z.string().min(1).optional(),
      }),
    )
    .default([]),
  /** Decred voting wallets: per-host overrides checked for consistency by lint. */
  decred: z
    .strictObject({
      spv: z.boolean().default(false),
      version: z.string().min(1).optional(),
      voteChoices: voteChoices.optional(),
    })
    .optional(),
});
export type Host = z.infer<typeof HostSchema>;

/** A file on the monitor host that holds a secret; the topology names it, never its content. */
const secretFile = z
  .string()
  .regex(
    /^\/[^\s@]+$/,
    'an absolute path on the monitor host, without spaces or @ (secrets are files, never inline)',
  );
const duration = z.string().regex(/^(\d+(ms|s|m|h|d|w|y))+$/, 'a Prometheus duration, e.g. 4h');

/**
 * One Alertmanager receiver with one or more integrations. Every secret is a `*File` the
 * operator installs on the monitor host (root:prometheus 0640): Alertmanager reads it there,
 * so it never rides in the topology, the user data or the Terraform state.
 */
export const ReceiverSchema = z
  .strictObject({
    name,
    webhook: z
      .strictObject({
        url: z.url({ protocol: /^https?$/ }),
        /** A bearer token file: http_config.authorization.credentials_file. */
        credentialsFile: secretFile.optional(),
      })
      .optional(),
    email: z
      .strictObject({
        to: z.email(),
        from: z.email(),
        /** host:port of the SMTP server. */
        smarthost: z.string().regex(/^[^\s:]+:\d{1,5}$/, 'host:port'),
        authUsername: z.string().min(1).optional(),
        authPasswordFile: secretFile.optional(),
      })
      .optional(),
    pagerduty: z.strictObject({ routingKeyFile: secretFile }).optional(),
    telegram: z
      .strictObject({
        botTokenFile: secretFile,
        /** Telegram chat ids are signed (groups are negative) and fit in 52 bits. */
        chatId: z.number().int().safe(),
      })
      .optional(),
    discord: z.strictObject({ webhookUrlFile: secretFile }).optional(),
  })
  .refine(
    (r) => [r.webhook, r.email, r.pagerduty, r.telegram, r.discord].some((x) => x !== undefined),
    'a receiver needs at least one of webhook, email, pagerduty, telegram, discord',
  );
export type Receiver = z.infer<typeof ReceiverSchema>;

/** The severities Vigil's alert rules carry (src/render/alert-rules.ts). */
export const ALERT_SEVERITIES = ['page', 'warning'] as const;

export const MonitoringSchema = z.strictObject({
  /**
   * A pinned Grafana release for the monitor host (the standalone linux-amd64 tarball, e.g.
   * https://dl.grafana.com/oss/release/grafana-11.3.0.linux-amd64.tar.gz with binary
   * grafana-v11.3.0/bin/grafana): the Vigil dashboards are provisioned into it.
   */
  grafana: ArtifactSchema.optional(),
  alertmanager: z
    .strictObject({
      receivers: z.array(ReceiverSchema).min(1),
      route: z
        .strictObject({
          /** Where alerts no severity route takes go; without it they are dropped. */
          receiver: name.optional(),
          groupBy: z.array(z.string().min(1)).default(['alertname', 'chain', 'host']),
          groupWait: duration.default('30s'),
          groupInterval: duration.default('5m'),
          repeatInterval: duration.default('4h'),
          /** Severity label value → receiver name. */
          severities: z.partialRecord(z.enum(ALERT_SEVERITIES), name).default({}),
        })
        .default({
          groupBy: ['alertname', 'chain', 'host'],
          groupWait: '30s',
          groupInterval: '5m',
          repeatInterval: '4h',
          severities: {},
        }),
    })
    .optional(),
  /**
   * Chain watchers (`vigil watch`) run on the signing hosts (see src/render/watch.ts). What the
   * plan cannot know is given here: a CometBFT validator's consensus address and operator
   * address. Cardano producers are watched without an entry.
   */
  watch: z
    .array(
      z.strictObject({
        chain: name,
        /** CometBFT: the validator's consensus address (40 hex digits). */
        validatorAddress: z
          .string()
          .regex(/^[0-9A-Fa-f]{40}$/, '40 hex digits')
          .optional(),
        /** CometBFT: the operator address (cosmosvaloper1…) for jailed/bonded. */
        valoper: z.string().min(1).optional(),
        /** CometBFT: the Cosmos SDK REST endpoint as seen from the validator host. */
        rest: z.url({ protocol: /^https?$/ }).optional(),
      }),
    )
    .default([]),
});
export type Monitoring = z.infer<typeof MonitoringSchema>;

export const TopologySchema = z.strictObject({
  version: z.literal(1),
  name,
  /** Ask for spread: no two hosts of the same role (and chain) in one region. */
  spread: z.boolean().default(true),
  ssh: z.strictObject({
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]{0,31}$/)
      .default('vigil'),
    port: port.default(22),
    keys: z.array(z.string().regex(/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+|sk-\S+) \S+/)).min(1),
    allowFrom: z.array(cidr).min(1).default(['0.0.0.0/0', '::/0']),
  }),
  vpn: z
    .strictObject({
      cidr: z
        .string()
        .regex(
          /^10\.(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)\.0\/24$/,
          'a 10.x.y.0/24 network',
        )
        .default('10.77.0.0/24'),
      port: port.default(51820),
    })
    .default({ cidr: '10.77.0.0/24', port: 51820 }),
  vigil: z.strictObject({
    agent: ArtifactSchema,
    /** Watermark store: sqlite on each signer, or the etcd cluster on the guard members. */
    store: z.enum(['sqlite', 'etcd']).default('etcd'),
    apiPort: port.default(9900),
    etcd: ArtifactSchema.optional(),
  }),
  /** Provider-wide settings Terraform needs that are not per host. */
  providers: z
    .strictObject({
      gcp: z.strictObject({ project: z.string().min(1) }).optional(),
      ovh: z.strictObject({ serviceName: z.string().min(1) }).optional(),
    })
    .default({}),
  chains: z.array(ChainSchema).default([]),
  hosts: z.array(HostSchema).min(1),
  /** Alertmanager receivers and routes, and what the chain watchers need to know. */
  monitoring: MonitoringSchema.default({ watch: [] }),
});
export type Topology = z.infer<typeof TopologySchema>;
/** The file as written (defaults not yet applied), for tests and generators. */
export type TopologyInput = z.input<typeof TopologySchema>;
