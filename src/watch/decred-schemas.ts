/**
 * The zod schemas of what a dcrwallet answers over JSON-RPC, for the Decred watcher. Field names
 * and types are dcrwallet's own, read at tag v5.1.0 (commit a78745f9aec8) of decred/dcrwallet:
 *
 * - rpc/jsonrpc/types/results.go: `WalletInfoResult`, `GetStakeInfoResult`,
 *   `GetVoteChoicesResult` / `VoteChoice`, `TreasuryPolicyResult`, `TSpendPolicyResult`.
 * - internal/rpc/jsonrpc/methods.go: the handlers `walletInfo`, `getStakeInfo`,
 *   `getVoteChoices`, `treasuryPolicy`, `tspendPolicy` (what is filled in, and how).
 * - the envelope: decred/dcrd dcrjson/jsonrpc.go (`Response`: `jsonrpc`, `result`, `error`
 *   {`code`, `message`}, `id`), written by dcrwallet's `postClientRPC` (server.go).
 *
 * Go's `omitempty` drops a zero: `getstakeinfo`'s `live`, `missed`, `expired`, `poolsize` are
 * absent when 0 (and always absent from an SPV wallet), so they default to 0 here; the fields
 * without `omitempty` are required. Unknown fields are ignored (a newer dcrwallet may add some).
 */
import { z } from 'zod';

const count = z.number().int().min(0).max(0xffff_ffff);

/** dcrjson `Response`: `result` is `null` when `error` is set. */
export const DcrRpcEnvelopeSchema = z.object({
  jsonrpc: z.string().optional(),
  result: z.unknown(),
  error: z
    .object({ code: z.number().int().optional(), message: z.string().optional() })
    .nullable()
    .optional(),
  id: z.union([z.number(), z.string(), z.null()]),
});

/** `walletinfo` (types.WalletInfoResult; methods.go walletInfo). */
export const WalletInfoSchema = z.object({
  /** An RPC (dcrd) backend answered `ping`; for SPV, at least one peer. */
  daemonconnected: z.boolean(),
  spv: z.boolean(),
  /** `!w.Locked()`: the wallet can sign votes. */
  unlocked: z.boolean(),
  votebits: z.number().int().min(0).max(0xffff),
  voteversion: count,
  /** `w.VotingEnabled()`: started with `enablevoting` (config.go; never with SPV). */
  voting: z.boolean(),
});
export type WalletInfo = z.output<typeof WalletInfoSchema>;

/** `getstakeinfo` (types.GetStakeInfoResult; methods.go getStakeInfo). */
export const StakeInfoSchema = z.object({
  blockheight: z.number().int().min(0),
  ownmempooltix: count,
  immature: count,
  unspent: count,
  voted: count,
  revoked: count,
  unspentexpired: count,
  // omitempty: 0 is not written.
  live: count.default(0),
  missed: count.default(0),
  expired: count.default(0),
});
export type StakeInfo = z.output<typeof StakeInfoSchema>;

/** `getvotechoices` (types.GetVoteChoicesResult, types.VoteChoice). */
export const VoteChoicesSchema = z.object({
  version: count,
  choices: z.array(
    z.object({
      agendaid: z.string().min(1).max(200),
      agendadescription: z.string().optional(),
      /** The wallet's choice for the agenda ("abstain" unless one was set). */
      choiceid: z.string().max(200),
      choicedescription: z.string().optional(),
    }),
  ),
});
export type VoteChoices = z.output<typeof VoteChoicesSchema>;

/**
 * A policy as written by the treasury and tspend handlers: "yes", "no", "abstain", or "" in
 * their list form when the stored policy is neither yes nor no (the `switch` there has no
 * default); "" reads as abstain.
 */
const policy = z.enum(['yes', 'no', 'abstain', '']).transform((p) => (p === '' ? 'abstain' : p));
export type Policy = z.output<typeof policy>;

/** 64 hex digits, as chainhash.Hash.String() writes a hash. */
const hash = z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits');

/** One `treasurypolicy` entry (types.TreasuryPolicyResult): a treasury key's policy. */
export const TreasuryPolicyEntrySchema = z.object({
  /** The Pi (treasury spend) public key, hex.EncodeToString of its 33 bytes. */
  key: z.string().regex(/^[0-9a-f]{2,130}$/, 'a hex public key'),
  policy,
  /** Set when the policy is one ticket's own, not the wallet's. */
  ticket: z.string().optional(),
});
/** `treasurypolicy` without a key: every stored policy. */
export const TreasuryPolicyListSchema = z.array(TreasuryPolicyEntrySchema);

/** One `tspendpolicy` entry (types.TSpendPolicyResult): a treasury spend's policy. */
export const TSpendPolicyEntrySchema = z.object({
  hash,
  policy,
  ticket: z.string().optional(),
});
/** `tspendpolicy` without a hash: every tspend the wallet knows of. */
export const TSpendPolicyListSchema = z.array(TSpendPolicyEntrySchema);
