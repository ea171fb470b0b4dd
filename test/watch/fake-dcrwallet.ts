/**
 * A fake dcrwallet JSON-RPC server (node:https on 127.0.0.1) for the Decred watcher's tests,
 * answering as dcrwallet v5.1.0 (decred/dcrwallet tag v5.1.0, commit a78745f9aec8) does:
 *
 * - internal/rpc/jsonrpc/server.go: POST `/` only after HTTP basic auth; a wrong or missing
 *   password is `401 Unauthorized.` with `WWW-Authenticate: Basic realm="dcrwallet RPC"`
 *   (`jsonAuthFail`); every answer is a dcrjson `Response` (decred/dcrd dcrjson/jsonrpc.go at
 *   04a107e7c592): `{"jsonrpc","result","error","id"}` in that order, `result` null on error;
 *   an unknown method is error -32601 "Method not found".
 * - rpc/jsonrpc/types/results.go: the results' field names and order, Go's `omitempty` (a zero
 *   `live`, `missed`, `expired`, `poolsize`, `allmempooltix`, `proportionlive`,
 *   `proportionmissed`, `cointype`, `agendadescription`… is left out).
 * - internal/rpc/jsonrpc/methods.go: `treasurypolicy` / `tspendpolicy` without parameters
 *   answer a list (policy "" for neither yes nor no), with a key / hash one object ("abstain"
 *   when nothing is stored).
 *
 * The agendas are Decred mainnet's vote version 10 (decred/dcrd v1.10.8,
 * chaincfg/mainnetparams.go: blake3pow, changesubsidysplitr2), the treasury key mainnet's first
 * Pi key (same file, `PiKeys`).
 *
 * TLS: a CA and a server certificate for 127.0.0.1 from src/etcd/pki.ts (dcrwallet makes one
 * self-signed certificate; trusting a CA that signed the server's is the same pin).
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initCa, issueCert } from '../../src/etcd/pki.js';

export const AGENDAS = {
  blake3pow: 'Change proof of work hashing algorithm to BLAKE3 as defined in DCP0011',
  changesubsidysplitr2: 'Change block reward subsidy split to 1/89/10 as defined in DCP0012',
} as const;
const CHOICE_DESCRIPTIONS: Record<string, string> = {
  abstain: 'abstain voting for change',
  no: 'keep the existing consensus rules',
  yes: 'change to the new consensus rules',
};
/** Mainnet's first Pi key (dcrd chaincfg/mainnetparams.go PiKeys[0]). */
export const PI_KEY = '03f6e7041f1cf51ee10e0a01cd2b0385ce3cd9debaabb2296f7e9dee9329da946c';

export interface FakeWalletState {
  daemonconnected: boolean;
  unlocked: boolean;
  voting: boolean;
  spv: boolean;
  voteversion: number;
  blockheight: number;
  tickets: {
    live: number;
    immature: number;
    unspent: number;
    voted: number;
    revoked: number;
    missed: number;
    expired: number;
    unspentexpired: number;
    ownmempooltix: number;
  };
  /** Agenda id → choice id ("abstain" when left out, as the wallet answers). */
  choices: Record<string, string>;
  /** Treasury key → policy, wallet-wide; `ticket` entries are one ticket's. */
  treasury: Array<{ key: string; policy: string; ticket?: string }>;
  /** tspends in the wallet's mempool view → policy ("" for abstain, as the list writes). */
  tspends: Record<string, string>;
  /** Stored tspend policies answered by hash (default "abstain"). */
  storedTspend: Record<string, string>;
  /** Replaces the answer to a method: an HTTP status and body. */
  raw?: { method?: string; status: number; body: string };
  /** Replaces a method's result (any JSON), in a proper envelope. */
  result?: { method: string; value: unknown };
  /** Answers an RPC error to a method. */
  rpcError?: { method: string; code: number; message: string };
  /** Answers with another id. */
  wrongId?: boolean;
  delayMs?: number;
}

export interface FakeWallet {
  readonly url: string;
  /** The PEM the watcher pins. */
  readonly caFile: string;
  readonly state: FakeWalletState;
  readonly requests: Array<{ method: string; params: unknown[]; jsonrpc: unknown }>;
  /** Requests refused with 401. */
  readonly unauthorized: number;
  close(): Promise<void>;
}

export function healthyState(): FakeWalletState {
  return {
    daemonconnected: true,
    unlocked: true,
    voting: true,
    spv: false,
    voteversion: 10,
    blockheight: 912_345,
    tickets: {
      live: 41,
      immature: 2,
      unspent: 43,
      voted: 250,
      revoked: 1,
      missed: 0,
      expired: 0,
      unspentexpired: 0,
      ownmempooltix: 0,
    },
    choices: { blake3pow: 'yes', changesubsidysplitr2: 'yes' },
    treasury: [{ key: PI_KEY, policy: 'yes' }],
    tspends: {},
    storedTspend: {},
  };
}

/** The `walletinfo` result as dcrwallet marshals it. */
export function walletInfoResult(s: FakeWalletState): Record<string, unknown> {
  return {
    daemonconnected: s.daemonconnected,
    spv: s.spv,
    unlocked: s.unlocked,
    cointype: 42,
    txfee: 0.0001,
    votebits: 1,
    votebitsextended: Buffer.from([s.voteversion, 0, 0, 0]).toString('hex'),
    voteversion: s.voteversion,
    voting: s.voting,
    vsp: '',
    manualtickets: false,
    birthhash: '',
    birthheight: 0,
  };
}

/** The `getstakeinfo` result, `omitempty` fields left out when 0. */
export function stakeInfoResult(s: FakeWalletState): Record<string, unknown> {
  const t = s.tickets;
  const out: Record<string, unknown> = {
    blockheight: s.blockheight,
    difficulty: 218.51,
    totalsubsidy: 412.8,
    ownmempooltix: t.ownmempooltix,
    immature: t.immature,
    unspent: t.unspent,
    voted: t.voted,
    revoked: t.revoked,
    unspentexpired: t.unspentexpired,
  };
  const poolsize = 41_022;
  const optional: Array<[string, number]> = [
    ['poolsize', s.spv ? 0 : poolsize],
    ['allmempooltix', 0],
    ['live', s.spv ? 0 : t.live],
    ['proportionlive', s.spv ? 0 : t.live / poolsize],
    ['missed', s.spv ? 0 : t.missed],
    ['proportionmissed', t.missed > 0 ? t.missed / (t.voted + t.missed) : 0],
    ['expired', s.spv ? 0 : t.expired],
  ];
  for (const [k, v] of optional) if (v !== 0) out[k] = v;
  return out;
}

export function voteChoicesResult(s: FakeWalletState): Record<string, unknown> {
  return {
    version: s.voteversion,
    choices: Object.entries(AGENDAS)
      .filter(([id]) => id in s.choices)
      .map(([id, description]) => {
        const choice = s.choices[id]!;
        const c: Record<string, string> = {
          agendaid: id,
          agendadescription: description,
          choiceid: choice,
        };
        if (CHOICE_DESCRIPTIONS[choice]) c.choicedescription = CHOICE_DESCRIPTIONS[choice];
        return c;
      }),
  };
}

function resultOf(s: FakeWalletState, method: string, params: unknown[]): unknown {
  switch (method) {
    case 'walletinfo':
      return walletInfoResult(s);
    case 'getstakeinfo':
      return stakeInfoResult(s);
    case 'getvotechoices':
      return voteChoicesResult(s);
    case 'treasurypolicy':
      return s.treasury.map((e) => ({
        key: e.key,
        policy: e.policy,
        ...(e.ticket ? { ticket: e.ticket } : {}),
      }));
    case 'tspendpolicy': {
      const hash = params[0];
      if (typeof hash === 'string' && hash !== '')
        return { hash, policy: s.storedTspend[hash] ?? s.tspends[hash] ?? 'abstain' };
      return Object.entries(s.tspends).map(([h, policy]) => ({ hash: h, policy }));
    }
    default:
      return undefined;
  }
}

/** Makes a CA and a server certificate for 127.0.0.1 in `dir` (one per fake wallet). */
export async function walletTls(
  dir: string,
  name: string,
): Promise<{ ca: string; cert: string; key: string }> {
  const caDir = join(dir, `${name}-ca`);
  await initCa(caDir, { commonName: `dcrwallet ${name}` });
  const issued = await issueCert(caDir, { name: 'rpc', kind: 'server', ips: ['127.0.0.1'] });
  return { ca: issued.ca, cert: issued.cert, key: issued.key };
}

export async function startFakeDcrwallet(options: {
  readonly dir: string;
  readonly name: string;
  readonly username: string;
  readonly password: string;
  readonly state?: FakeWalletState;
}): Promise<FakeWallet> {
  const tls = await walletTls(options.dir, options.name);
  const state = options.state ?? healthyState();
  const requests: FakeWallet['requests'] = [];
  let unauthorized = 0;
  const expected =
    'Basic ' + Buffer.from(`${options.username}:${options.password}`).toString('base64');
  const server: Server = createServer(
    { cert: readFileSync(tls.cert), key: readFileSync(tls.key) },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.setHeader('connection', 'close');
        res.setHeader('content-type', 'application/json');
        if (req.headers.authorization !== expected) {
          unauthorized++;
          res.setHeader('www-authenticate', 'Basic realm="dcrwallet RPC"');
          res
            .writeHead(401, { 'content-type': 'text/plain; charset=utf-8' })
            .end('401 Unauthorized.\n');
          return;
        }
        let body: { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
        } catch {
          res.end(
            JSON.stringify({
              jsonrpc: '1.0',
              result: null,
              error: { code: -32600, message: 'Invalid request' },
              id: null,
            }),
          );
          return;
        }
        const method = String(body.method);
        const params = Array.isArray(body.params) ? (body.params as unknown[]) : [];
        requests.push({ method, params, jsonrpc: body.jsonrpc });
        const answer = () => {
          const id = state.wrongId ? 9_999_999 : (body.id ?? null);
          const jsonrpc = body.jsonrpc === '2.0' ? '2.0' : '1.0';
          if (state.raw && (state.raw.method === undefined || state.raw.method === method)) {
            res.writeHead(state.raw.status).end(state.raw.body);
            return;
          }
          if (state.rpcError?.method === method) {
            const { code, message } = state.rpcError;
            res.end(JSON.stringify({ jsonrpc, result: null, error: { code, message }, id }));
            return;
          }
          const result =
            state.result?.method === method ? state.result.value : resultOf(state, method, params);
          if (result === undefined) {
            res.end(
              JSON.stringify({
                jsonrpc,
                result: null,
                error: { code: -32601, message: 'Method not found' },
                id,
              }),
            );
            return;
          }
          res.end(JSON.stringify({ jsonrpc, result, error: null, id }));
        };
        if (state.delayMs) setTimeout(answer, state.delayMs);
        else answer();
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    caFile: tls.ca,
    state,
    requests,
    get unauthorized() {
      return unauthorized;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
