/**
 * A fake CometBFT node (RPC on node:http, loopback) with an optional Cosmos SDK REST side, for
 * the watcher's tests. Its answers have the upstream shapes:
 *
 * - /status, /net_info, /block: CometBFT v0.38.24 rpc/core/types/responses.go (ResultStatus,
 *   SyncInfo, ValidatorInfo, ResultNetInfo, ResultBlock), types/block.go (Header, Commit,
 *   CommitSig; BlockIDFlag 1 absent, 2 commit, 3 nil; an absent CommitSig has an empty address,
 *   a zero time and a null signature: NewCommitSigAbsent), written by libs/json/encoder.go
 *   (int64 and int as decimal strings; int32 round and the flag byte as numbers; []byte base64);
 *   the envelope of rpc/jsonrpc/types/types.go (RPCResponse, RPCError {code, message, data});
 *   examples as in rpc/openapi/openapi.yaml (StatusResponse, NetInfoResponse, BlockResponse).
 * - REST: cosmos-sdk proto/cosmos/staking/v1beta1/query.proto (GET
 *   /cosmos/staking/v1beta1/validators/{validator_addr} → {validator}) and staking.proto
 *   (Validator, BondStatus by name); proto/cosmos/slashing/v1beta1/query.proto (GET
 *   /cosmos/slashing/v1beta1/signing_infos/{cons_address} → {val_signing_info}) and
 *   slashing.proto (ValidatorSigningInfo; int64 as strings in proto3 JSON); a gRPC-gateway
 *   error is {code, message, details} with an HTTP status.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export const OTHER_VALIDATORS = [
  '000001E443FD237E4B616E2FA69DF4EE3D49A94F',
  '5D6A51A8E9899C44079C6AF90618BA0369070E6E',
];

export interface FakeState {
  chainId: string;
  /** The node's chain (node_info.network); differs from chainId to play a wrong node. */
  network?: string;
  height: number;
  earliest: number;
  catchingUp: boolean;
  peers: number;
  /** The watched validator's consensus address (upper-case hex). */
  validator: string;
  /** The node's own validator_info.address. */
  nodeValidator: string;
  /** Commit heights the validator did not sign (its CommitSig is absent). */
  missed: Set<number>;
  /** Commit heights where it voted nil (flag 3): signed, for the SDK and for us. */
  nilVotes: Set<number>;
  /** Paths (without query) answered with this raw body instead, e.g. broken JSON. */
  raw: Map<string, { status: number; body: string }>;
  rest: {
    valoper: string;
    jailed: boolean;
    status: 'BOND_STATUS_BONDED' | 'BOND_STATUS_UNBONDING' | 'BOND_STATUS_UNBONDED';
    tombstoned: boolean;
    missedCounter: number;
  };
}

export interface FakeNode {
  readonly url: string;
  readonly state: FakeState;
  /** Every path asked, with its query. */
  readonly requests: string[];
  close(): Promise<void>;
}

const TIME0 = Date.parse('2024-05-01T12:00:00Z');
const blockTime = (h: number) => new Date(TIME0 + h * 6000).toISOString();
const HASH = '790BA84C3545FCCC49A5C629CEE6EA58A6E875C3862175BDC11EE7AF54703501';
const SIG =
  'DBchvucTzAUEJnGYpNvMdqLhBAHG4Px8BsOBB3J3mAFCLGeuG7uJqy+nVngKzZdPhPi8RhmE/xcw/M9DOJjEDg==';

function rpcResult(result: unknown) {
  return { status: 200, body: JSON.stringify({ jsonrpc: '2.0', id: -1, result }) };
}

function rpcError(message: string, data: string) {
  // CometBFT answers a failed URI call with HTTP 500 and the RPCError.
  return {
    status: 500,
    body: JSON.stringify({ jsonrpc: '2.0', id: -1, error: { code: -32603, message, data } }),
  };
}

function commitSigs(s: FakeState, h: number) {
  const sig = (address: string, flag: number) => ({
    block_id_flag: flag,
    validator_address: address,
    timestamp: blockTime(h),
    signature: SIG,
  });
  const ours = s.missed.has(h)
    ? {
        block_id_flag: 1,
        validator_address: '',
        timestamp: '0001-01-01T00:00:00Z',
        signature: null,
      }
    : sig(s.validator, s.nilVotes.has(h) ? 3 : 2);
  return [sig(OTHER_VALIDATORS[0]!, 2), ours, sig(OTHER_VALIDATORS[1]!, 2)];
}

function blockAt(s: FakeState, h: number) {
  const blockId = { hash: HASH, parts: { total: 1, hash: HASH } };
  return {
    block_id: blockId,
    block: {
      header: {
        version: { block: '11', app: '0' },
        chain_id: s.chainId,
        height: String(h),
        time: blockTime(h),
        last_block_id: blockId,
        last_commit_hash: HASH,
        data_hash: HASH,
        validators_hash: HASH,
        next_validators_hash: HASH,
        consensus_hash: HASH,
        app_hash: HASH,
        last_results_hash: HASH,
        evidence_hash: HASH,
        proposer_address: OTHER_VALIDATORS[0],
      },
      data: { txs: [] },
      evidence: { evidence: [] },
      last_commit: {
        height: String(h - 1),
        round: 0,
        block_id: blockId,
        signatures: commitSigs(s, h - 1),
      },
    },
  };
}

function answer(s: FakeState, req: IncomingMessage): { status: number; body: string } {
  const url = new URL(req.url ?? '/', 'http://fake');
  const raw = s.raw.get(url.pathname);
  if (raw) return raw;
  switch (url.pathname) {
    case '/status':
      return rpcResult({
        node_info: {
          protocol_version: { p2p: '8', block: '11', app: '0' },
          id: '5576458aef205977e18fd50b274e9b5d9014525a',
          listen_addr: 'tcp://0.0.0.0:26656',
          network: s.network ?? s.chainId,
          version: '0.38.24',
          channels: '40202122233038606100',
          moniker: 'fake-node',
          other: { tx_index: 'on', rpc_address: 'tcp://0.0.0.0:26657' },
        },
        sync_info: {
          latest_block_hash: HASH,
          latest_app_hash: HASH,
          latest_block_height: String(s.height),
          latest_block_time: blockTime(s.height),
          earliest_block_hash: HASH,
          earliest_app_hash: HASH,
          earliest_block_height: String(s.earliest),
          earliest_block_time: blockTime(s.earliest),
          catching_up: s.catchingUp,
        },
        validator_info: {
          address: s.nodeValidator,
          pub_key: {
            type: 'tendermint/PubKeyEd25519',
            value: 'A6DoBUypNtUAyEHWtQ9bFjfNg8Bo9CrnkUGl6k6OHN4=',
          },
          voting_power: '10',
        },
      });
    case '/net_info':
      return rpcResult({
        listening: true,
        listeners: ['Listener(@)'],
        n_peers: String(s.peers),
        peers: [],
      });
    case '/block': {
      const h = Number(url.searchParams.get('height'));
      if (h > s.height)
        return rpcError(
          'Internal error',
          `height ${h} must be less than or equal to the current blockchain height ${s.height}`,
        );
      if (h < s.earliest)
        return rpcError(
          'Internal error',
          `height ${h} is not available, lowest height is ${s.earliest}`,
        );
      return rpcResult(blockAt(s, h));
    }
  }
  const staking = /^\/cosmos\/staking\/v1beta1\/validators\/([a-z0-9]+)$/.exec(url.pathname);
  if (staking) {
    if (staking[1] !== s.rest.valoper)
      return {
        status: 404,
        body: JSON.stringify({ code: 5, message: 'validator not found', details: [] }),
      };
    return {
      status: 200,
      body: JSON.stringify({
        validator: {
          operator_address: s.rest.valoper,
          consensus_pubkey: {
            '@type': '/cosmos.crypto.ed25519.PubKey',
            key: 'A6DoBUypNtUAyEHWtQ9bFjfNg8Bo9CrnkUGl6k6OHN4=',
          },
          jailed: s.rest.jailed,
          status: s.rest.status,
          tokens: '1000000',
          delegator_shares: '1000000.000000000000000000',
          description: {
            moniker: 'fake',
            identity: '',
            website: '',
            security_contact: '',
            details: '',
          },
          unbonding_height: '0',
          unbonding_time: '1970-01-01T00:00:00Z',
          commission: {
            commission_rates: {
              rate: '0.050000000000000000',
              max_rate: '0.200000000000000000',
              max_change_rate: '0.010000000000000000',
            },
            update_time: '2024-01-01T00:00:00Z',
          },
          min_self_delegation: '1',
          unbonding_on_hold_ref_count: '0',
          unbonding_ids: [],
        },
      }),
    };
  }
  const signing = /^\/cosmos\/slashing\/v1beta1\/signing_infos\/([a-z0-9]+)$/.exec(url.pathname);
  if (signing)
    return {
      status: 200,
      body: JSON.stringify({
        val_signing_info: {
          address: signing[1],
          start_height: '0',
          index_offset: String(s.height),
          jailed_until: s.rest.jailed ? '2024-05-01T12:10:00Z' : '1970-01-01T00:00:00Z',
          tombstoned: s.rest.tombstoned,
          missed_blocks_counter: String(s.rest.missedCounter),
        },
      }),
    };
  return { status: 404, body: '404 page not found\n' };
}

export async function startFakeCometbft(init: Partial<FakeState> & { validator: string }) {
  const state: FakeState = {
    chainId: 'fakechain-1',
    height: 10,
    earliest: 1,
    catchingUp: false,
    peers: 5,
    nodeValidator: init.validator,
    missed: new Set(),
    nilVotes: new Set(),
    raw: new Map(),
    rest: {
      valoper: '',
      jailed: false,
      status: 'BOND_STATUS_BONDED',
      tombstoned: false,
      missedCounter: 0,
    },
    ...init,
  };
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const a = answer(state, req);
    res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const node: FakeNode = {
    url: `http://127.0.0.1:${port}`,
    state,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return node;
}
