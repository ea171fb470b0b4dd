/**
 * The answers the CometBFT watcher reads, as zod schemas: only the fields it uses, each with the
 * type the upstream encoder gives it. Everything else in an answer is ignored (not `.strict()`),
 * so a newer node's extra fields do not break the watcher.
 *
 * Sources (CometBFT v0.38.24):
 * - rpc/core/types/responses.go: ResultStatus {node_info, sync_info, validator_info};
 *   SyncInfo {latest_block_height, latest_block_time, earliest_block_height, catching_up};
 *   ValidatorInfo {address, voting_power}; ResultNetInfo {n_peers}; ResultBlock {block_id, block}.
 * - types/block.go: Block.last_commit is a Commit {height, round, block_id, signatures};
 *   CommitSig {block_id_flag, validator_address, timestamp, signature} with BlockIDFlag
 *   1 absent, 2 commit, 3 nil; Header {chain_id, height, time, proposer_address}.
 * - libs/json/encoder.go: int64/int are written as decimal strings ("64-bit integers are
 *   emitted as strings"), so height, n_peers and voting_power are strings; int32 (round) and
 *   the BlockIDFlag byte are JSON numbers; []byte is base64; HexBytes/Address upper-case hex.
 * - rpc/jsonrpc/types/types.go: RPCResponse {jsonrpc, id, result | error {code, message, data}}.
 * - rpc/openapi/openapi.yaml: the same shapes (StatusResponse, NetInfoResponse, BlockResponse).
 *
 * Cosmos SDK REST (gRPC-gateway, proto3 JSON: int64 as strings, enums by name):
 * - proto/cosmos/slashing/v1beta1/query.proto: GET /cosmos/slashing/v1beta1/signing_infos/
 *   {cons_address} → {val_signing_info: ValidatorSigningInfo}; slashing.proto:
 *   ValidatorSigningInfo {address, start_height, index_offset, jailed_until, tombstoned,
 *   missed_blocks_counter}.
 * - proto/cosmos/staking/v1beta1/query.proto: GET /cosmos/staking/v1beta1/validators/
 *   {validator_addr} → {validator: Validator}; staking.proto: Validator {operator_address,
 *   jailed, status: BondStatus (BOND_STATUS_UNSPECIFIED, _UNBONDED, _UNBONDING, _BONDED), …}.
 */
import { z } from 'zod';

/** A cmtjson int64: a decimal string, read as a safe integer. */
export const int64String = z
  .string()
  .regex(/^-?[0-9]{1,19}$/, 'a decimal integer string')
  .transform(Number)
  .refine(Number.isSafeInteger, 'beyond 2^53');

const rfc3339 = z
  .string()
  .refine((s) => !Number.isNaN(Date.parse(s)), 'an RFC 3339 time')
  .transform((s) => Date.parse(s));

const hexOrEmpty = z.string().regex(/^([0-9A-Fa-f]{2})*$/, 'hex');

export const RpcErrorSchema = z.object({
  code: z.number().int(),
  message: z.string(),
  data: z.string().optional(),
});

/** The JSON-RPC envelope of every URI/HTTP answer: a result or an error. */
export const RpcEnvelopeSchema = z.union([
  z.object({ jsonrpc: z.literal('2.0'), error: RpcErrorSchema }),
  z.object({ jsonrpc: z.literal('2.0'), result: z.unknown() }),
]);

export const StatusResultSchema = z.object({
  node_info: z.object({ network: z.string(), moniker: z.string(), version: z.string() }),
  sync_info: z.object({
    latest_block_height: int64String,
    latest_block_time: rfc3339,
    earliest_block_height: int64String,
    catching_up: z.boolean(),
  }),
  validator_info: z.object({ address: hexOrEmpty, voting_power: int64String }),
});
export type StatusResult = z.output<typeof StatusResultSchema>;

export const NetInfoResultSchema = z.object({ n_peers: int64String });

export const CommitSigSchema = z.object({
  block_id_flag: z.number().int().min(1).max(3),
  validator_address: hexOrEmpty,
});

export const BlockResultSchema = z.object({
  block: z.object({
    header: z.object({ chain_id: z.string(), height: int64String }),
    last_commit: z.object({
      height: int64String,
      signatures: z.array(CommitSigSchema),
    }),
  }),
});
export type BlockResult = z.output<typeof BlockResultSchema>;

export const BLOCK_ID_FLAG_ABSENT = 1;

export const SigningInfoSchema = z.object({
  val_signing_info: z.object({
    address: z.string(),
    tombstoned: z.boolean(),
    missed_blocks_counter: int64String,
    jailed_until: rfc3339,
  }),
});

export const BOND_STATUSES = [
  'BOND_STATUS_UNSPECIFIED',
  'BOND_STATUS_UNBONDED',
  'BOND_STATUS_UNBONDING',
  'BOND_STATUS_BONDED',
] as const;

export const StakingValidatorSchema = z.object({
  validator: z.object({
    operator_address: z.string(),
    jailed: z.boolean(),
    status: z.enum(BOND_STATUSES),
  }),
});
