/**
 * A fake Polkadot node (node:http, loopback) for the Polkadot watcher's tests: its JSON-RPC
 * over HTTP (POST /, JSON-RPC 2.0 as jsonrpsee answers it) and its Prometheus endpoint
 * (GET /metrics). Shapes from paritytech/polkadot-sdk (cited in src/watch/polkadot-schemas.ts):
 *
 * - `system_health` → `{peers, isSyncing, shouldHavePeers}` (system/helpers.rs, camelCase).
 * - `chain_getHeader([hash])` → `{parentHash, number, stateRoot, extrinsicsRoot, digest: {logs}}`
 *   (primitives/runtime/src/generic/header.rs; `number` a U256 in 0x hex without leading zeros),
 *   or null for an unknown hash; `chain_getFinalizedHead` (alias `chain_getFinalisedHead`) → a
 *   0x hash (rpc-api/src/chain/mod.rs).
 * - `author_hasSessionKeys([bytes])` → bool (rpc-api/src/author/mod.rs); denied unsafe methods
 *   answer -32601 "RPC call is unsafe to be called externally" (rpc-api/src/policy.rs); a
 *   parameter that is not `Bytes` answers -32602 (jsonrpsee invalid params).
 * - /metrics: the Rust prometheus crate's text encoder (`# HELP`, `# TYPE`, samples), every
 *   series labelled `chain="<id>"` (substrate/client/service/src/config.rs), with the relay-chain
 *   selection's two finality-lag gauges (polkadot/node/service/src/relay_chain_selection.rs).
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakePolkadotState {
  best: number;
  finalized: number;
  peers: number;
  isSyncing: boolean;
  /** The SCALE-encoded session keys (0x hex, lower case) whose private keys the keystore has. */
  keystore: Set<string>;
  /** `--rpc-methods safe` (or a public listener in auto mode): unsafe methods denied. */
  denyUnsafe?: boolean;
  /** undefined: not a relay-chain node (no chain-selection gauges). */
  approvalLag?: number;
  disputesLag?: number;
  /** Answered to every RPC call instead of the real answer. */
  rpcRaw?: { status: number; body: string };
  /** Answered to GET /metrics instead of the exposition. */
  metricsRaw?: { status: number; body: string };
  /** Per-method answers replacing the result (e.g. a malformed one). */
  results?: Record<string, unknown>;
  /** Answer with this id instead of the request's. */
  wrongId?: boolean;
  delayMs?: number;
}

export interface FakePolkadotNode {
  readonly rpc: string;
  readonly metricsUrl: string;
  readonly state: FakePolkadotState;
  /** Methods called, in order. */
  readonly calls: string[];
  close(): Promise<void>;
}

export const CHAIN_LABEL = 'polkadot';

/** A block's hash here: blake2 is the chain's, any 32 bytes do for the watcher. */
export function blockHash(n: number): string {
  return '0x' + createHash('sha256').update(`block ${n}`).digest('hex');
}

function header(n: number) {
  return {
    parentHash: n === 0 ? '0x' + '00'.repeat(32) : blockHash(n - 1),
    number: '0x' + n.toString(16),
    stateRoot: '0x' + createHash('sha256').update(`state ${n}`).digest('hex'),
    extrinsicsRoot: '0x' + createHash('sha256').update(`extrinsics ${n}`).digest('hex'),
    digest: { logs: ['0x0642414245b50103' + '00'.repeat(16)] },
  };
}

/** The exposition the node would write (a few of its own series around the watched ones). */
export function polkadotExposition(s: FakePolkadotState): string {
  const c = `chain="${CHAIN_LABEL}"`;
  const out = [
    '# HELP substrate_block_height Block height info of the chain',
    '# TYPE substrate_block_height gauge',
    `substrate_block_height{status="best",${c}} ${s.best}`,
    `substrate_block_height{status="finalized",${c}} ${s.finalized}`,
    '# HELP substrate_sub_libp2p_peers_count Number of connected peers',
    '# TYPE substrate_sub_libp2p_peers_count gauge',
    `substrate_sub_libp2p_peers_count{${c}} ${s.peers}`,
  ];
  if (s.approvalLag !== undefined)
    out.push(
      '# HELP polkadot_parachain_approval_checking_finality_lag How far behind the head of the chain the Approval Checking protocol wants to vote',
      '# TYPE polkadot_parachain_approval_checking_finality_lag gauge',
      `polkadot_parachain_approval_checking_finality_lag{${c}} ${s.approvalLag}`,
    );
  if (s.disputesLag !== undefined)
    out.push(
      '# HELP polkadot_parachain_disputes_finality_lag How far behind the head of the chain the Disputes protocol wants to vote',
      '# TYPE polkadot_parachain_disputes_finality_lag gauge',
      `polkadot_parachain_disputes_finality_lag{${c}} ${s.disputesLag}`,
    );
  return out.join('\n') + '\n';
}

type Answer = { result: unknown } | { error: { code: number; message: string } };

function answer(s: FakePolkadotState, method: string, params: unknown[]): Answer {
  if (s.results !== undefined && method in s.results) return { result: s.results[method] };
  switch (method) {
    case 'system_health':
      return { result: { peers: s.peers, isSyncing: s.isSyncing, shouldHavePeers: true } };
    case 'chain_getFinalizedHead':
    case 'chain_getFinalisedHead':
      return { result: blockHash(s.finalized) };
    case 'chain_getHeader': {
      const hash = params[0];
      if (hash === undefined || hash === null) return { result: header(s.best) };
      for (let n = s.best; n >= 0; n--) if (blockHash(n) === hash) return { result: header(n) };
      return { result: null };
    }
    case 'author_hasSessionKeys': {
      if (s.denyUnsafe)
        return { error: { code: -32601, message: 'RPC call is unsafe to be called externally' } };
      const keys = params[0];
      if (typeof keys !== 'string' || !/^0x([0-9a-fA-F]{2})*$/.test(keys))
        return { error: { code: -32602, message: 'Invalid params' } };
      return { result: s.keystore.has(keys.toLowerCase()) };
    }
    default:
      return { error: { code: -32601, message: 'Method not found' } };
  }
}

export async function startFakePolkadot(
  init: Partial<FakePolkadotState>,
): Promise<FakePolkadotNode> {
  const state: FakePolkadotState = {
    best: 100,
    finalized: 98,
    peers: 40,
    isSyncing: false,
    keystore: new Set(),
    ...init,
  };
  const calls: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = () => {
        const path = (req.url ?? '/').split('?')[0];
        if (req.method === 'GET' && path === '/metrics') {
          if (state.metricsRaw !== undefined) {
            res.writeHead(state.metricsRaw.status).end(state.metricsRaw.body);
            return;
          }
          res
            .writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
            .end(polkadotExposition(state));
          return;
        }
        if (req.method !== 'POST' || path !== '/') {
          res.writeHead(405).end();
          return;
        }
        if (state.rpcRaw !== undefined) {
          res.writeHead(state.rpcRaw.status).end(state.rpcRaw.body);
          return;
        }
        let request: { id: number; method: string; params?: unknown[] };
        try {
          request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof request;
        } catch {
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}');
          return;
        }
        calls.push(request.method);
        const body = {
          jsonrpc: '2.0',
          id: state.wrongId ? request.id + 1000 : request.id,
          ...answer(state, request.method, request.params ?? []),
        };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      if (state.delayMs) setTimeout(reply, state.delayMs);
      else reply();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    rpc: `http://127.0.0.1:${port}`,
    metricsUrl: `http://127.0.0.1:${port}/metrics`,
    state,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
