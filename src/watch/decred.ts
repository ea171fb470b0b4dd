/**
 * The Decred chain watcher: the solo voter's voting wallets, read over dcrwallet's JSON-RPC
 * (HTTPS with the wallet's own certificate as the only trusted CA, HTTP basic auth,
 * `{jsonrpc: "1.0", id, method, params}` POSTed to `/`).
 *
 * Each poll asks every wallet, one call after the other (none after a `walletinfo` that got no
 * answer, a refused handshake or a refused password):
 *
 * - `walletinfo`: `daemonconnected` (its dcrd answered `ping`), `unlocked`, `voting`
 *   (started with `enablevoting`), `spv`, `votebits`, `voteversion`;
 * - `getstakeinfo`: the ticket counts (`live`, `immature`, `unspent`, `voted`, `revoked`,
 *   `missed`, `expired`, `unspentexpired`, `ownmempooltix`) and `blockheight`;
 * - `getvotechoices`: the choice per consensus agenda;
 * - `treasurypolicy`: the wallet-wide policy per treasury key (per-ticket policies, with
 *   `ticket` set, are left aside: a solo voter sets them on no ticket);
 * - `tspendpolicy`: the policy per treasury spend the wallet knows of; a tspend that another
 *   wallet lists and this one does not is asked for by hash (`tspendpolicy <hash>`, which
 *   answers the stored policy or "abstain"), at most `MAX_TSPEND_LOOKUPS` per wallet and poll.
 *
 * A solo voter runs the same tickets with the same choices on two or three wallets, so the
 * wallets are compared with each other every poll (`driftOf`): the live-ticket count, the choice
 * per agenda, the policy per treasury key and per tspend. A wallet whose value differs from the
 * majority's has drift 1; without a majority every wallet compared has drift 1. Only wallets
 * whose probe answered are compared.
 *
 * Method names, parameters and answers: decred/dcrwallet v5.1.0 (sources in
 * ./decred-schemas.ts). A wallet that cannot be reached, refuses the TLS handshake (a
 * certificate the pinned CA did not sign), refuses the password (HTTP 401, server.go
 * `jsonAuthFail`), answers an RPC error or something malformed is a `ProbeError` counted in
 * `vigil_watch_decred_probe_errors_total{wallet,probe,kind}`; the watcher never throws out of a
 * poll. A missing or unreadable CA file or password file, or a password file that group or
 * others may read, is refused when the watcher is made, before anything runs.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { z } from 'zod';
import { InputError, errorMessage } from '../errors.js';
import type { WatchLog } from './cometbft.js';
import type { DecredWalletConfig, DecredWatchConfig } from './config.js';
import {
  DcrRpcEnvelopeSchema,
  StakeInfoSchema,
  TSpendPolicyEntrySchema,
  TSpendPolicyListSchema,
  TreasuryPolicyListSchema,
  VoteChoicesSchema,
  WalletInfoSchema,
  type Policy,
  type StakeInfo,
  type VoteChoices,
  type WalletInfo,
} from './decred-schemas.js';
import { PollLoop, ProbeError, perRegistry, type ProbeErrorKind } from './probe.js';

export const DECRED_PROBES = [
  'walletinfo',
  'getstakeinfo',
  'getvotechoices',
  'treasurypolicy',
  'tspendpolicy',
] as const;
export type DecredProbe = (typeof DECRED_PROBES)[number];
export const DECRED_PROBE_ERROR_KINDS = [
  'unreachable',
  'timeout',
  'tls',
  'auth',
  'http',
  'rpc',
  'malformed',
] as const satisfies readonly ProbeErrorKind[];

/** The `status` label of `vigil_watch_decred_tickets`: getstakeinfo's counts. */
export const TICKET_STATUSES = [
  'live',
  'immature',
  'unspent',
  'voted',
  'revoked',
  'missed',
  'expired',
  'unspentexpired',
  'ownmempool',
] as const;
export type TicketStatus = (typeof TICKET_STATUSES)[number];

/** dcrwallet reads at most 4 MiB of a request (server.go maxRequestSize); we read as much. */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;
/** tspends asked for by hash per wallet and poll (see above). */
export const MAX_TSPEND_LOOKUPS = 32;
/** The choice of a wallet that does not list an agenda the others list. */
export const ABSENT_CHOICE = '(absent)';

/** A wallet ready to be asked: its URL, the agent trusting only its CA, its credentials. */
export interface WalletEndpoint {
  readonly name: string;
  readonly url: URL;
  readonly agent: Agent;
  readonly authorization: string;
}

/**
 * Reads a password file: a regular file, mode 0600 or stricter, one non-empty line. Throws an
 * `InputError` with the fix otherwise.
 */
export function readPasswordFile(file: string): string {
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    throw new InputError(
      `cannot read the dcrwallet password file ${file}: ${errorMessage(err)}`,
      'write the wallet RPC password into it and `chmod 600` it',
      'WATCH_PASSWORD_FILE',
    );
  }
  if (!st.isFile())
    throw new InputError(
      `the dcrwallet password file ${file} is not a regular file`,
      undefined,
      'WATCH_PASSWORD_FILE',
    );
  if ((st.mode & 0o077) !== 0)
    throw new InputError(
      `the dcrwallet password file ${file} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)})`,
      `run \`chmod 600 ${file}\``,
      'WATCH_PASSWORD_FILE_MODE',
    );
  const password = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  if (password.length === 0 || password.includes('\n'))
    throw new InputError(
      `the dcrwallet password file ${file} must hold the password on one non-empty line`,
      undefined,
      'WATCH_PASSWORD_FILE',
    );
  return password;
}

/** Reads the wallet's CA (its rpc.cert) and password; throws an `InputError` before any I/O. */
export function openWallet(w: DecredWalletConfig): WalletEndpoint {
  let ca: string;
  try {
    ca = readFileSync(w.caFile, 'utf8');
    new X509Certificate(ca);
  } catch (err) {
    throw new InputError(
      `wallet ${w.name}: cannot use ${w.caFile} as its CA: ${errorMessage(err)}`,
      "copy the wallet's rpc.cert (PEM) there",
      'WATCH_CA_FILE',
    );
  }
  const password = readPasswordFile(w.passwordFile);
  return {
    name: w.name,
    url: new URL(w.url),
    // `ca` replaces Node's root store: only the wallet's own certificate is trusted.
    agent: new Agent({ ca, keepAlive: false }),
    authorization: `Basic ${Buffer.from(`${w.username}:${password}`, 'utf8').toString('base64')}`,
  };
}

/** OpenSSL's and Node's codes for a certificate or handshake refused. */
function isTlsError(code: string | undefined): boolean {
  return (
    code !== undefined &&
    (/^ERR_(TLS|SSL)_/.test(code) ||
      /CERT|SELF_SIGNED|UNABLE_TO_(VERIFY|GET_ISSUER)/.test(code) ||
      code === 'EPROTO')
  );
}

function transportError(probe: DecredProbe, wallet: string, err: unknown): ProbeError {
  if (err instanceof ProbeError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const kind: ProbeErrorKind = isTlsError(code) ? 'tls' : 'unreachable';
  return new ProbeError(probe, kind, `wallet ${wallet}: ${errorMessage(err)}`);
}

/** POSTs `body` and answers the status and text, within `timeoutMs` and MAX_ANSWER_BYTES. */
function post(
  w: WalletEndpoint,
  probe: DecredProbe,
  body: string,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(transportError(probe, w.name, err));
    };
    const req = httpsRequest(
      w.url,
      {
        method: 'POST',
        agent: w.agent,
        headers: {
          authorization: w.authorization,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) {
            fail(
              new ProbeError(
                probe,
                'malformed',
                `wallet ${w.name}: answer larger than ${MAX_ANSWER_BYTES} bytes`,
              ),
            );
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', fail);
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    const timer = setTimeout(() => {
      fail(new ProbeError(probe, 'timeout', `wallet ${w.name}: no answer within ${timeoutMs} ms`));
      req.destroy();
    }, timeoutMs);
    req.on('error', fail);
    req.end(body);
  });
}

function zodIssues(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(answer)'}: ${i.message}`)
    .join('; ');
}

/**
 * One JSON-RPC 1.0 call to a wallet; the result checked with `schema`. Throws a `ProbeError`
 * (unreachable, timeout, tls, auth, http, rpc, malformed).
 */
export async function walletCall<S extends z.ZodTypeAny>(
  w: WalletEndpoint,
  probe: DecredProbe,
  params: readonly unknown[],
  schema: S,
  options: { readonly id: number; readonly timeoutMs: number },
): Promise<z.output<S>> {
  const body = JSON.stringify({ jsonrpc: '1.0', id: options.id, method: probe, params });
  const res = await post(w, probe, body, options.timeoutMs);
  const where = `wallet ${w.name}`;
  if (res.status === 401)
    throw new ProbeError(
      probe,
      'auth',
      `${where}: HTTP 401, the wallet refused the username or password`,
    );
  if (res.status < 200 || res.status > 299)
    throw new ProbeError(
      probe,
      'http',
      `${where}: HTTP ${res.status}: ${JSON.stringify(res.text.slice(0, 80))}`,
    );
  let json: unknown;
  try {
    json = JSON.parse(res.text);
  } catch {
    throw new ProbeError(
      probe,
      'malformed',
      `${where}: not JSON: ${JSON.stringify(res.text.slice(0, 80))}`,
    );
  }
  const env = DcrRpcEnvelopeSchema.safeParse(json);
  if (!env.success)
    throw new ProbeError(
      probe,
      'malformed',
      `${where}: not a JSON-RPC answer: ${zodIssues(env.error)}`,
    );
  if (env.data.id !== options.id)
    throw new ProbeError(
      probe,
      'malformed',
      `${where}: answer to id ${JSON.stringify(env.data.id)}, not ${options.id}`,
    );
  if (env.data.error !== null && env.data.error !== undefined)
    throw new ProbeError(
      probe,
      'rpc',
      `${where}: error ${env.data.error.code ?? '?'}: ${env.data.error.message ?? ''}`,
    );
  const result = schema.safeParse(env.data.result);
  if (!result.success)
    throw new ProbeError(probe, 'malformed', `${where}: ${zodIssues(result.error)}`);
  return result.data as z.output<S>;
}

/**
 * Which of the compared values differ: the wallets whose value is not the strict majority's
 * (more than half of those compared) are true; without a strict majority every wallet is
 * true, unless all agree. One wallet alone never drifts.
 */
export function driftOf(values: ReadonlyMap<string, string>): Map<string, boolean> {
  const tally = new Map<string, number>();
  for (const v of values.values()) tally.set(v, (tally.get(v) ?? 0) + 1);
  let majority: string | undefined;
  for (const [v, n] of tally) if (n * 2 > values.size) majority = v;
  const out = new Map<string, boolean>();
  for (const [wallet, v] of values)
    out.set(wallet, tally.size > 1 && (majority === undefined || v !== majority));
  return out;
}

type L = 'chain_id' | 'wallet';

/** The Decred watchers' metrics, one set per registry, one series per chain and wallet. */
export class DecredWatchMetrics {
  readonly up: Gauge<L>;
  readonly daemonConnected: Gauge<L>;
  readonly unlocked: Gauge<L>;
  readonly voting: Gauge<L>;
  readonly spv: Gauge<L>;
  readonly voteBits: Gauge<L>;
  readonly voteVersion: Gauge<L>;
  readonly blockHeight: Gauge<L>;
  readonly tickets: Gauge<L | 'status'>;
  readonly liveTicketsDrift: Gauge<L>;
  readonly voteChoice: Gauge<L | 'agenda' | 'choice'>;
  readonly voteChoiceDrift: Gauge<L | 'agenda'>;
  readonly treasuryPolicyDrift: Gauge<L | 'key'>;
  readonly tspendPolicyDrift: Gauge<L | 'tspend'>;
  readonly probeErrors: Counter<L | 'probe' | 'kind'>;

  constructor(registry: Registry) {
    const p = 'vigil_watch_decred_';
    const gauge = <E extends string = never>(name: string, help: string, extra: E[] = []) =>
      new Gauge<L | E>({
        name: `${p}${name}`,
        help,
        labelNames: ['chain_id', 'wallet', ...extra],
        registers: [registry],
      });
    this.up = gauge('up', '1 when every probe of the wallet answered usably in the last poll.');
    this.daemonConnected = gauge(
      'daemon_connected',
      "walletinfo daemonconnected: 1 when the wallet's dcrd answered its ping.",
    );
    this.unlocked = gauge('unlocked', 'walletinfo unlocked: 1 when the wallet can sign votes.');
    this.voting = gauge(
      'voting',
      'walletinfo voting: 1 when the wallet was started with enablevoting.',
    );
    this.spv = gauge('spv', 'walletinfo spv: 1 for an SPV wallet (which cannot vote).');
    this.voteBits = gauge('vote_bits', 'walletinfo votebits.');
    this.voteVersion = gauge('vote_version', 'walletinfo voteversion.');
    this.blockHeight = gauge('block_height', 'getstakeinfo blockheight: the wallet’s tip.');
    this.tickets = gauge(
      'tickets',
      "getstakeinfo's ticket counts by status (live, immature, unspent, voted, revoked, missed, expired, unspentexpired, ownmempool); missed only grows.",
      ['status'],
    );
    this.liveTicketsDrift = gauge(
      'live_tickets_drift',
      "1 when the wallet's live-ticket count differs from the other voting wallets' (no majority: every wallet).",
    );
    this.voteChoice = gauge(
      'vote_choice',
      "getvotechoices: 1 for the wallet's choice on each agenda.",
      ['agenda', 'choice'],
    );
    this.voteChoiceDrift = gauge(
      'vote_choice_drift',
      "1 when the wallet's choice on the agenda differs from the other voting wallets'.",
      ['agenda'],
    );
    this.treasuryPolicyDrift = gauge(
      'treasury_policy_drift',
      "1 when the wallet's policy for the treasury key differs from the other voting wallets'.",
      ['key'],
    );
    this.tspendPolicyDrift = gauge(
      'tspend_policy_drift',
      "1 when the wallet's policy for the treasury spend differs from the other voting wallets'.",
      ['tspend'],
    );
    this.probeErrors = new Counter({
      name: `${p}probe_errors_total`,
      help: 'Wallet calls without a usable answer, by probe (the JSON-RPC method) and kind (unreachable, timeout, tls, auth, http, rpc, malformed).',
      labelNames: ['chain_id', 'wallet', 'probe', 'kind'],
      registers: [registry],
    });
  }
}

/** The one metrics set of a registry (several watchers share it, one chain_id each). */
export const decredWatchMetrics = perRegistry((r) => new DecredWatchMetrics(r));

/** What one wallet said in one poll; a probe that failed leaves its part undefined. */
export interface WalletReading {
  readonly info?: WalletInfo;
  readonly stake?: StakeInfo;
  readonly choices?: VoteChoices;
  /** Treasury key → the wallet-wide policy. */
  readonly treasury?: ReadonlyMap<string, Policy>;
  /** tspend hash → policy. */
  readonly tspend?: ReadonlyMap<string, Policy>;
}

export interface DecredPollReport {
  readonly errors: ReadonlyArray<{ readonly wallet: string; readonly error: ProbeError }>;
  readonly wallets: ReadonlyMap<string, WalletReading>;
  /** Wallet → drift, for the wallets compared. */
  readonly liveDrift: ReadonlyMap<string, boolean>;
  /** Agenda (or key, or tspend hash) → wallet → drift. */
  readonly choiceDrift: ReadonlyMap<string, ReadonlyMap<string, boolean>>;
  readonly treasuryDrift: ReadonlyMap<string, ReadonlyMap<string, boolean>>;
  readonly tspendDrift: ReadonlyMap<string, ReadonlyMap<string, boolean>>;
}

export interface DecredWatcherOptions {
  readonly log?: WatchLog;
}

/** The series of one gauge this watcher set last poll, to remove the ones not set again. */
class SeriesSet<T extends string> {
  private last = new Map<string, Partial<Record<T, string>>>();
  constructor(private readonly gauge: Gauge<T>) {}
  replace(series: ReadonlyArray<[Partial<Record<T, string>>, number]>): void {
    const next = new Map<string, Partial<Record<T, string>>>();
    for (const [labels, value] of series) {
      this.gauge.set(labels, value);
      next.set(JSON.stringify(labels), labels);
    }
    for (const [k, labels] of this.last) if (!next.has(k)) this.gauge.remove(labels);
    this.last = next;
  }
}

const TRANSPORT_KINDS: ReadonlySet<ProbeErrorKind> = new Set([
  'unreachable',
  'timeout',
  'tls',
  'auth',
]);

function withoutTspend(r: WalletReading): WalletReading {
  const { tspend: _dropped, ...rest } = r;
  return rest;
}

/** Per key (agenda, treasury key, tspend), the values of the wallets that have one. */
function compareByKey(
  readings: ReadonlyArray<[string, ReadonlyMap<string, string> | undefined]>,
  missing: string | undefined,
): Map<string, Map<string, boolean>> {
  const answered = readings.filter((r): r is [string, ReadonlyMap<string, string>] => !!r[1]);
  const keys = new Set(answered.flatMap(([, m]) => [...m.keys()]));
  const out = new Map<string, Map<string, boolean>>();
  for (const key of [...keys].sort()) {
    const values = new Map<string, string>();
    for (const [wallet, m] of answered) {
      const v = m.get(key) ?? missing;
      if (v !== undefined) values.set(wallet, v);
    }
    out.set(key, driftOf(values));
  }
  return out;
}

export class DecredWatcher {
  private readonly metrics: DecredWatchMetrics;
  private readonly wallets: readonly WalletEndpoint[];
  private readonly labels: { chain_id: string };
  private readonly series: {
    readonly tickets: SeriesSet<L | 'status'>;
    readonly liveDrift: SeriesSet<L>;
    readonly voteChoice: SeriesSet<L | 'agenda' | 'choice'>;
    readonly choiceDrift: SeriesSet<L | 'agenda'>;
    readonly treasuryDrift: SeriesSet<L | 'key'>;
    readonly tspendDrift: SeriesSet<L | 'tspend'>;
  };
  private readonly lastMissed = new Map<string, number>();
  private nextId = 1;
  private readonly loop: PollLoop;

  /** Reads every wallet's CA and password file first: throws an `InputError` for a bad one. */
  constructor(
    readonly config: DecredWatchConfig,
    registry: Registry,
    private readonly options: DecredWatcherOptions = {},
  ) {
    this.loop = new PollLoop(() => this.poll(), config.pollMs);
    this.wallets = config.wallets.map(openWallet);
    this.metrics = decredWatchMetrics(registry);
    this.labels = { chain_id: config.name };
    const m = this.metrics;
    this.series = {
      tickets: new SeriesSet(m.tickets),
      liveDrift: new SeriesSet(m.liveTicketsDrift),
      voteChoice: new SeriesSet(m.voteChoice),
      choiceDrift: new SeriesSet(m.voteChoiceDrift),
      treasuryDrift: new SeriesSet(m.treasuryPolicyDrift),
      tspendDrift: new SeriesSet(m.tspendPolicyDrift),
    };
    for (const w of this.wallets) {
      m.up.set({ ...this.labels, wallet: w.name }, 0);
      for (const probe of DECRED_PROBES)
        for (const kind of DECRED_PROBE_ERROR_KINDS)
          m.probeErrors.inc({ ...this.labels, wallet: w.name, probe, kind }, 0);
    }
  }

  /** One poll of every wallet. Never throws: failures are in the report and the metrics. */
  async poll(): Promise<DecredPollReport> {
    const errors: Array<{ wallet: string; error: ProbeError }> = [];
    const lastError = new Map<string, ProbeError>();
    const call = async <S extends z.ZodTypeAny>(
      w: WalletEndpoint,
      probe: DecredProbe,
      params: readonly unknown[],
      schema: S,
    ): Promise<z.output<S> | undefined> => {
      try {
        return await walletCall(w, probe, params, schema, {
          id: this.nextId++,
          timeoutMs: this.config.timeoutMs,
        });
      } catch (err) {
        const error =
          err instanceof ProbeError
            ? err
            : new ProbeError(probe, 'malformed', `wallet ${w.name}: ${errorMessage(err)}`);
        errors.push({ wallet: w.name, error });
        lastError.set(w.name, error);
        this.metrics.probeErrors.inc({
          ...this.labels,
          wallet: w.name,
          probe,
          kind: error.kind,
        });
        return undefined;
      }
    };

    const read = async (w: WalletEndpoint): Promise<[string, WalletReading]> => {
      const info = await call(w, 'walletinfo', [], WalletInfoSchema);
      // A wallet that cannot be reached, or refuses the TLS handshake or the password, would
      // refuse the other calls alike: they are not made (nor counted) this poll.
      const refused = lastError.get(w.name);
      if (info === undefined && refused !== undefined && TRANSPORT_KINDS.has(refused.kind))
        return [w.name, {}];
      const stake = await call(w, 'getstakeinfo', [], StakeInfoSchema);
      const choices = await call(w, 'getvotechoices', [], VoteChoicesSchema);
      const treasuryList = await call(w, 'treasurypolicy', [], TreasuryPolicyListSchema);
      const tspendList = await call(w, 'tspendpolicy', [], TSpendPolicyListSchema);
      const treasury =
        treasuryList &&
        new Map(treasuryList.filter((e) => e.ticket === undefined).map((e) => [e.key, e.policy]));
      const tspend = tspendList && new Map(tspendList.map((e) => [e.hash, e.policy]));
      return [
        w.name,
        {
          ...(info ? { info } : {}),
          ...(stake ? { stake } : {}),
          ...(choices ? { choices } : {}),
          ...(treasury ? { treasury } : {}),
          ...(tspend ? { tspend } : {}),
        },
      ];
    };
    const readings = new Map(await Promise.all(this.wallets.map(read)));

    // A tspend one wallet lists and another does not: ask the other by hash.
    const allTspends = new Set(
      [...readings.values()].flatMap((r) => (r.tspend ? [...r.tspend.keys()] : [])),
    );
    await Promise.all(
      this.wallets.map(async (w) => {
        const r = readings.get(w.name)!;
        if (!r.tspend) return;
        const known = new Map(r.tspend);
        const missing = [...allTspends].filter((h) => !known.has(h)).slice(0, MAX_TSPEND_LOOKUPS);
        for (const hash of missing) {
          const e = await call(w, 'tspendpolicy', [hash], TSpendPolicyEntrySchema);
          if (e === undefined) {
            readings.set(w.name, withoutTspend(r));
            return;
          }
          if (e.hash !== hash) {
            const error = new ProbeError(
              'tspendpolicy',
              'malformed',
              `wallet ${w.name}: asked for tspend ${hash}, answered ${e.hash}`,
            );
            errors.push({ wallet: w.name, error });
            this.metrics.probeErrors.inc({
              ...this.labels,
              wallet: w.name,
              probe: 'tspendpolicy',
              kind: 'malformed',
            });
            readings.set(w.name, withoutTspend(r));
            return;
          }
          known.set(hash, e.policy);
        }
        readings.set(w.name, { ...r, tspend: known });
      }),
    );

    return this.publish(readings, errors);
  }

  private publish(
    readings: ReadonlyMap<string, WalletReading>,
    errors: Array<{ wallet: string; error: ProbeError }>,
  ): DecredPollReport {
    const m = this.metrics;
    const chain = this.labels;
    const failed = new Set(errors.map((e) => e.wallet));
    const list = [...readings];
    const tickets: Array<[Partial<Record<L | 'status', string>>, number]> = [];
    for (const [wallet, r] of list) {
      const l = { ...chain, wallet };
      m.up.set(l, failed.has(wallet) ? 0 : 1);
      const flags: Array<[Gauge<L>, number | undefined]> = [
        [m.daemonConnected, r.info && Number(r.info.daemonconnected)],
        [m.unlocked, r.info && Number(r.info.unlocked)],
        [m.voting, r.info && Number(r.info.voting)],
        [m.spv, r.info && Number(r.info.spv)],
        [m.voteBits, r.info?.votebits],
        [m.voteVersion, r.info?.voteversion],
        [m.blockHeight, r.stake?.blockheight],
      ];
      // A probe that failed says nothing: its series go rather than stay at an old value.
      for (const [g, v] of flags)
        if (v === undefined) g.remove(l);
        else g.set(l, v);
      if (r.stake) {
        const s = r.stake;
        const counts: Record<TicketStatus, number> = {
          live: s.live,
          immature: s.immature,
          unspent: s.unspent,
          voted: s.voted,
          revoked: s.revoked,
          missed: s.missed,
          expired: s.expired,
          unspentexpired: s.unspentexpired,
          ownmempool: s.ownmempooltix,
        };
        for (const status of TICKET_STATUSES) tickets.push([{ ...l, status }, counts[status]]);
        const before = this.lastMissed.get(wallet);
        if (before !== undefined && s.missed > before)
          this.options.log?.warn(
            { chain: this.config.name, wallet, missed: s.missed, before },
            'the wallet counts more missed votes',
          );
        this.lastMissed.set(wallet, s.missed);
      }
    }
    this.series.tickets.replace(tickets);

    const liveDrift = driftOf(
      new Map(list.flatMap(([w, r]) => (r.stake ? [[w, String(r.stake.live)]] : []))),
    );
    this.series.liveDrift.replace(
      [...liveDrift].map(([wallet, d]) => [{ ...chain, wallet }, Number(d)]),
    );

    const choiceDrift = compareByKey(
      list.map(([w, r]) => [
        w,
        r.choices && new Map(r.choices.choices.map((c) => [c.agendaid, c.choiceid])),
      ]),
      ABSENT_CHOICE,
    );
    this.series.voteChoice.replace(
      list.flatMap(([wallet, r]) =>
        (r.choices?.choices ?? []).map((c): [Partial<Record<string, string>>, number] => [
          { ...chain, wallet, agenda: c.agendaid, choice: c.choiceid },
          1,
        ]),
      ),
    );
    // A wallet without a policy for a treasury key abstains (methods.go treasuryPolicy answers
    // "abstain" when asked for such a key).
    const treasuryDrift = compareByKey(
      list.map(([w, r]) => [w, r.treasury]),
      'abstain',
    );
    const tspendDrift = compareByKey(
      list.map(([w, r]) => [w, r.tspend]),
      undefined,
    );
    const flatten = <K extends string>(
      byKey: Map<string, Map<string, boolean>>,
      label: K,
    ): Array<[Partial<Record<L | K, string>>, number]> =>
      [...byKey].flatMap(([key, drift]) =>
        [...drift].map(([wallet, d]): [Partial<Record<L | K, string>>, number] => [
          { ...chain, wallet, [label]: key } as Partial<Record<L | K, string>>,
          Number(d),
        ]),
      );
    this.series.choiceDrift.replace(flatten(choiceDrift, 'agenda'));
    this.series.treasuryDrift.replace(flatten(treasuryDrift, 'key'));
    this.series.tspendDrift.replace(flatten(tspendDrift, 'tspend'));

    return {
      errors,
      wallets: readings,
      liveDrift,
      choiceDrift,
      treasuryDrift,
      tspendDrift,
    };
  }

  /** Polls every pollMs until stop(); a poll never overlaps the next. */
  start(): void {
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
    for (const w of this.wallets) w.agent.destroy();
  }
}
