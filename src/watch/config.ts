/**
 * The chain watchers' configuration (`vigil watch --config <file>`), validated with zod: where
 * to serve /metrics and /healthz, and one entry per chain to watch: CometBFT (RPC, REST) and
 * Cardano (the node's own Prometheus endpoint), Decred (the voting wallets' dcrwallet JSON-RPC),
 * Polkadot (the node's JSON-RPC over HTTP and, optionally, its Prometheus endpoint).
 */
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { loadYamlFile } from '../config/yaml-file.js';
import { bech32Decode } from '../keys/bech32.js';

const httpUrl = z
  .string()
  .refine((s) => {
    try {
      const u = new URL(s);
      return u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      return false;
    }
  }, 'an http:// or https:// URL')
  .transform((s) => s.replace(/\/+$/, ''));

const bech32WithPrefix = (infix: string) =>
  z.string().superRefine((s, ctx) => {
    let prefix: string;
    try {
      prefix = bech32Decode(s).prefix;
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return;
    }
    if (!prefix.endsWith(infix))
      ctx.addIssue({
        code: 'custom',
        message: `a bech32 address whose prefix ends in "${infix}" (e.g. cosmos${infix}1…)`,
      });
  });

export const CometbftWatchSchema = z
  .object({
    kind: z.literal('cometbft'),
    /** Must equal the node's `node_info.network`; a node of another chain counts as down. */
    chainId: z.string().regex(/^[A-Za-z0-9._-]{1,50}$/),
    /** The node's CometBFT RPC (laddr of `[rpc]`), e.g. http://127.0.0.1:26657. */
    rpc: httpUrl,
    /** The Cosmos SDK REST (LCD) endpoint; without it jailed and tombstoned are not watched. */
    rest: httpUrl.optional(),
    /** The validator's consensus address: 40 hex digits, as in `last_commit` signatures. */
    validatorAddress: z
      .string()
      .regex(/^[0-9A-Fa-f]{40}$/, '40 hex digits (20 bytes), e.g. from `vigil keys show`')
      .transform((s) => s.toUpperCase()),
    /** The operator address (`cosmosvaloper1…`) for the staking query (jailed, bonded). */
    valoper: bech32WithPrefix('valoper').optional(),
    /** The bech32 prefix of consensus addresses; by default the valoper's with `valcons`. */
    valconsPrefix: z
      .string()
      .regex(/^[a-z0-9]{1,40}valcons$/, 'e.g. cosmosvalcons')
      .optional(),
    pollMs: z.number().int().min(200).max(600_000).default(5000),
    /** No new height for this long: the chain (or the node) is stalled. */
    stallSeconds: z.number().int().min(1).max(86_400).default(60),
    /** How many recent commits `missed_blocks_window` counts over. */
    missedWindow: z.number().int().min(1).max(10_000).default(100),
    /** At most this many blocks fetched per poll while catching up with the chain. */
    blocksPerPoll: z.number().int().min(1).max(500).default(50),
    peersMin: z.number().int().min(0).max(10_000).default(3),
    timeoutMs: z.number().int().min(100).max(120_000).default(5000),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.rest !== undefined && c.valoper === undefined && c.valconsPrefix === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['rest'],
        message:
          'the REST probes need `valoper` (staking: jailed, bonded) or at least `valconsPrefix` (slashing: tombstoned, missed counter)',
      });
  });
export type CometbftWatchConfig = z.output<typeof CometbftWatchSchema>;
export type CometbftWatchInput = z.input<typeof CometbftWatchSchema>;

export const CardanoWatchSchema = z
  .object({
    kind: z.literal('cardano'),
    /** The chain's name in the metrics' chain_id label, e.g. cardano-mainnet. */
    name: z.string().regex(/^[A-Za-z0-9._-]{1,50}$/),
    /**
     * The node's Prometheus endpoint: the legacy `hasPrometheus` port (12798 by convention) or
     * the new tracing's `PrometheusSimple` backend, path included, e.g.
     * http://127.0.0.1:12798/metrics.
     */
    metricsUrl: httpUrl,
    pollMs: z.number().int().min(200).max(600_000).default(10_000),
    /** The genesis' slotsPerKESPeriod (mainnet 129600). */
    slotsPerKESPeriod: z.number().int().min(1).max(100_000_000).default(129_600),
    /** The genesis' slotLength in seconds (mainnet 1). */
    slotLengthSeconds: z.number().positive().max(3600).default(1),
    timeoutMs: z.number().int().min(100).max(120_000).default(5000),
  })
  .strict();
export type CardanoWatchConfig = z.output<typeof CardanoWatchSchema>;
export type CardanoWatchInput = z.input<typeof CardanoWatchSchema>;

const absolutePath = z
  .string()
  .min(1)
  .refine((s) => isAbsolute(s), 'an absolute path (the watcher may run from any directory)');

export const DecredWalletSchema = z
  .object({
    /** The wallet's name in the metrics' wallet label, e.g. the host it runs on. */
    name: z.string().regex(/^[A-Za-z0-9._-]{1,50}$/),
    /**
     * dcrwallet's JSON-RPC listener (`rpclisten`; 9110 on mainnet, 19110 on testnet), always
     * https: dcrwallet serves its RPC over TLS, e.g. https://10.77.0.4:9110.
     */
    url: z
      .string()
      .refine((s) => {
        try {
          return new URL(s).protocol === 'https:';
        } catch {
          return false;
        }
      }, 'an https:// URL (dcrwallet serves its JSON-RPC over TLS)')
      .transform((s) => s.replace(/\/+$/, '')),
    /** The wallet's RPC certificate (its `rpccert`, rpc.cert): the only CA trusted for it. */
    caFile: absolutePath,
    /** The wallet's RPC `username`. */
    username: z.string().min(1).max(200),
    /** A file holding the RPC `password` (one line), mode 0600. */
    passwordFile: absolutePath,
  })
  .strict();
export type DecredWalletConfig = z.output<typeof DecredWalletSchema>;

export const DecredWatchSchema = z
  .object({
    kind: z.literal('decred'),
    /** The chain's name in the metrics' chain_id label, e.g. decred-mainnet. */
    name: z.string().regex(/^[A-Za-z0-9._-]{1,50}$/),
    /** The voting wallets that hold the same tickets: compared with each other every poll. */
    wallets: z
      .array(DecredWalletSchema)
      .min(1)
      .max(16)
      .refine(
        (ws) => new Set(ws.map((w) => w.name)).size === ws.length,
        'each wallet name may be used once',
      )
      .refine(
        (ws) => new Set(ws.map((w) => w.url)).size === ws.length,
        'each wallet url may be used once',
      ),
    pollMs: z.number().int().min(1000).max(600_000).default(30_000),
    timeoutMs: z.number().int().min(100).max(120_000).default(5000),
  })
  .strict();
export type DecredWatchConfig = z.output<typeof DecredWatchSchema>;
export type DecredWatchInput = z.input<typeof DecredWatchSchema>;

export const PolkadotWatchSchema = z
  .object({
    kind: z.literal('polkadot'),
    /** The chain's name in the metrics' chain_id label, e.g. polkadot or kusama. */
    name: z.string().regex(/^[A-Za-z0-9._-]{1,50}$/),
    /**
     * The node's JSON-RPC over HTTP (`--rpc-port`, 9944 by default), e.g. http://127.0.0.1:9944.
     * `author_hasSessionKeys` is an unsafe method: the node answers it on a localhost listener
     * (`--rpc-methods auto`, the default) or with `--rpc-methods unsafe`; never expose that.
     */
    rpc: httpUrl,
    /**
     * The validator's session keys as registered on chain (`session.nextKeys(stash)`, the hex
     * `author_rotateKeys` gave and `session.setKeys` set): the node must hold their private
     * keys. Without it the session-key probe does not run.
     */
    sessionKeys: z
      .string()
      .regex(/^0x([0-9A-Fa-f]{2})+$/, '0x-prefixed hex of the SCALE-encoded session keys')
      .transform((s) => s.toLowerCase())
      .optional(),
    /**
     * The node's Prometheus endpoint (`--prometheus-port`, 9615 by default), path included,
     * e.g. http://127.0.0.1:9615/metrics: the para-validation finality lag. Optional.
     */
    metricsUrl: httpUrl.optional(),
    /** Polkadot makes a block every 6 s. */
    pollMs: z.number().int().min(200).max(600_000).default(6000),
    timeoutMs: z.number().int().min(100).max(120_000).default(5000),
  })
  .strict();
export type PolkadotWatchConfig = z.output<typeof PolkadotWatchSchema>;
export type PolkadotWatchInput = z.input<typeof PolkadotWatchSchema>;

export type ChainWatchConfig =
  CometbftWatchConfig | CardanoWatchConfig | DecredWatchConfig | PolkadotWatchConfig;

/** The watched chain's name: the `chain_id` label of its metrics. */
export function watchChainName(c: ChainWatchConfig): string {
  return c.kind === 'cometbft' ? c.chainId : c.name;
}

export const WatchConfigSchema = z
  .object({
    /** Where /metrics and /healthz are served. */
    listen: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(9478),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 9478 }),
    chains: z
      .array(
        z.discriminatedUnion('kind', [
          CometbftWatchSchema,
          CardanoWatchSchema,
          DecredWatchSchema,
          PolkadotWatchSchema,
        ]),
      )
      .min(1)
      .refine(
        (list) => new Set(list.map(watchChainName)).size === list.length,
        'each chain (chainId, name) may be watched once',
      ),
  })
  .strict();
export type WatchConfig = z.output<typeof WatchConfigSchema>;

export function loadWatchConfig(file: string): WatchConfig {
  return loadYamlFile(file, WatchConfigSchema);
}

/** The prefix of consensus addresses: configured, or the valoper's with `valcons`. */
export function valconsPrefixOf(c: CometbftWatchConfig): string | undefined {
  if (c.valconsPrefix !== undefined) return c.valconsPrefix;
  if (c.valoper === undefined) return undefined;
  return bech32Decode(c.valoper).prefix.replace(/valoper$/, 'valcons');
}
