/**
 * The answers the Polkadot watcher reads from a node's JSON-RPC (HTTP POST, JSON-RPC 2.0 as
 * jsonrpsee answers it), as zod schemas: only the fields it uses, each with the type the
 * upstream serializer gives it; extra fields are ignored (not `.strict()`).
 *
 * Sources (paritytech/polkadot-sdk):
 * - substrate/client/rpc-api/src/system/mod.rs (492a0d3e7085): `system_health` → `Health`;
 *   system/helpers.rs: `Health {peers: usize, is_syncing: bool, should_have_peers: bool}` with
 *   `#[serde(rename_all = "camelCase")]`, so `{peers, isSyncing, shouldHavePeers}`.
 * - substrate/client/rpc-api/src/chain/mod.rs (b19875990fb0): `chain_getHeader(hash:
 *   Option<Hash>) → Option<Header>` (no hash: the best block), `chain_getFinalizedHead() → Hash`
 *   (alias `chain_getFinalisedHead`).
 * - substrate/primitives/runtime/src/generic/header.rs (ecd6ef5131c6): `Header {parentHash,
 *   number, stateRoot, extrinsicsRoot, digest}`, camelCase; `number` goes through
 *   `serialize_number`, i.e. as a `U256`, which impl-serde writes as a 0x-prefixed hex string
 *   without leading zeros ("0x0" for zero). A hash (`H256`) is "0x" and 64 hex digits.
 * - substrate/client/rpc-api/src/author/mod.rs (1c3c8c512c74): `author_hasSessionKeys(
 *   session_keys: Bytes) → bool`: true iff the keystore holds the private keys of every public
 *   key in the SCALE-encoded session keys (`Bytes` is 0x-prefixed hex).
 * - substrate/client/rpc-api/src/policy.rs (0477b678b141): an unsafe method called where the
 *   node denies them (`--rpc-methods safe`, or `auto` on a public listener) answers error code
 *   -32601 (MethodNotFound) "RPC call is unsafe to be called externally".
 */
import { z } from 'zod';

/** The JSON-RPC 2.0 error object (jsonrpsee ErrorObject: code, message, optional data). */
export const PolkadotRpcErrorSchema = z.object({
  code: z.number().int(),
  message: z.string(),
  data: z.unknown().optional(),
});

/** One JSON-RPC 2.0 answer: a result or an error, with the request's id. */
export const PolkadotRpcEnvelopeSchema = z.union([
  z.object({
    jsonrpc: z.literal('2.0'),
    id: z.union([z.number(), z.string(), z.null()]),
    error: PolkadotRpcErrorSchema,
  }),
  z.object({
    jsonrpc: z.literal('2.0'),
    id: z.union([z.number(), z.string(), z.null()]),
    result: z.unknown(),
  }),
]);

export const SystemHealthSchema = z.object({
  peers: z.number().int().min(0),
  isSyncing: z.boolean(),
  shouldHavePeers: z.boolean(),
});
export type SystemHealth = z.output<typeof SystemHealthSchema>;

/** A U256 as impl-serde writes it: 0x and 1 to 64 lower-case hex digits, read as a bigint. */
export const u256Hex = z
  .string()
  .regex(/^0x(0|[1-9a-f][0-9a-f]{0,63})$/, 'a 0x-prefixed hex number without leading zeros')
  .transform((s) => BigInt(s));

export const HashSchema = z.string().regex(/^0x[0-9a-f]{64}$/, 'a 0x-prefixed 32-byte hash');

export const HeaderSchema = z.object({
  parentHash: HashSchema,
  number: u256Hex,
});
export type Header = z.output<typeof HeaderSchema>;

/** chain_getHeader answers null for a hash the node does not know. */
export const MaybeHeaderSchema = HeaderSchema.nullable();

export const HasSessionKeysSchema = z.boolean();

/** jsonrpsee's ErrorCode::MethodNotFound: an unknown method, or an unsafe one denied. */
export const RPC_METHOD_NOT_FOUND = -32601;
