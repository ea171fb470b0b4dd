/**
 * Issue 14 (chain watchers, Decred): the voting-wallet watcher against fake dcrwallets over real
 * TLS with basic auth, answering dcrwallet v5.1.0's shapes (sources cited in ./fake-dcrwallet.ts
 * and src/watch/decred-schemas.ts): walletinfo and getstakeinfo read into metrics; live-ticket
 * parity, vote-choice, treasury and tspend policy drift across wallets; a pinned certificate
 * that is not the wallet's, a wrong password, RPC errors and malformed answers counted as typed
 * probe errors without a crash; password-file modes and the config; `vigil watch` serving a
 * Decred chain.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { ConfigError, parseYaml } from '../../src/config/yaml-file.js';
import { InputError } from '../../src/errors.js';
import { packageRoot } from '../../src/package-root.js';
import {
  DecredWatchSchema,
  WatchConfigSchema,
  loadWatchConfig,
  type DecredWatchInput,
} from '../../src/watch/config.js';
import { DecredWatcher, TICKET_STATUSES, driftOf } from '../../src/watch/decred.js';
import { ProbeError } from '../../src/watch/probe.js';
import { CLI_ENTRY } from '../helpers/paths.js';
import { withWatchProcess } from './watch-process.js';
import { sampleOf } from '../helpers/prometheus-text.js';
import { PI_KEY, healthyState, startFakeDcrwallet, type FakeWallet } from './fake-dcrwallet.js';

const CHAIN = 'decred-mainnet';
const USER = 'vigil';
const PASSWORD = 'correct horse battery staple';
const TSPEND = 'a1c3e7b2f9d4c1e0a5b6c7d8e9f00112233445566778899aabbccddeeff00112';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-watch-decred-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

let fakes: FakeWallet[] = [];
afterEach(async () => {
  await Promise.all(fakes.map((f) => f.close()));
  fakes = [];
});

let seq = 0;
async function wallets(n: number): Promise<FakeWallet[]> {
  const made: FakeWallet[] = [];
  for (let i = 0; i < n; i++) {
    const f = await startFakeDcrwallet({
      dir,
      name: `w${seq++}`,
      username: USER,
      password: PASSWORD,
    });
    fakes.push(f);
    made.push(f);
  }
  return made;
}

function passwordFile(text = PASSWORD + '\n', mode = 0o600): string {
  const file = join(dir, `password-${seq++}`);
  writeFileSync(file, text, { mode });
  chmodSync(file, mode);
  return file;
}

const NAMES = ['alpha', 'beta', 'gamma', 'delta'];

function setup(
  fs: readonly FakeWallet[],
  per: (i: number) => Partial<DecredWatchInput['wallets'][number]> = () => ({}),
  extra: Partial<DecredWatchInput> = {},
) {
  const registry = new Registry();
  const warnings: string[] = [];
  const pw = passwordFile();
  const config = DecredWatchSchema.parse({
    kind: 'decred',
    name: CHAIN,
    timeoutMs: 1000,
    ...extra,
    wallets: fs.map((f, i) => ({
      name: NAMES[i],
      url: f.url,
      caFile: f.caFile,
      username: USER,
      passwordFile: pw,
      ...per(i),
    })),
  });
  const watcher = new DecredWatcher(config, registry, {
    log: { info: () => {}, warn: (_o, msg) => warnings.push(msg) },
  });
  const sample = async (name: string, labels: Record<string, string> = {}) =>
    sampleOf(await registry.metrics(), `vigil_watch_decred_${name}`, {
      chain_id: CHAIN,
      ...labels,
    });
  return { watcher, registry, sample, warnings, config };
}

describe('Decred watcher', () => {
  it('reads walletinfo and getstakeinfo of every wallet over TLS with basic auth', async () => {
    const fs = await wallets(3);
    const { watcher, sample } = setup(fs);
    const r = await watcher.poll();
    assert.deepEqual(r.errors, []);
    for (const wallet of NAMES.slice(0, 3)) {
      assert.equal(await sample('up', { wallet }), 1, wallet);
      assert.equal(await sample('daemon_connected', { wallet }), 1);
      assert.equal(await sample('unlocked', { wallet }), 1);
      assert.equal(await sample('voting', { wallet }), 1);
      assert.equal(await sample('spv', { wallet }), 0);
      assert.equal(await sample('vote_version', { wallet }), 10);
      assert.equal(await sample('vote_bits', { wallet }), 1);
      assert.equal(await sample('block_height', { wallet }), 912_345);
      const t = healthyState().tickets;
      assert.equal(await sample('tickets', { wallet, status: 'live' }), t.live);
      assert.equal(await sample('tickets', { wallet, status: 'immature' }), t.immature);
      assert.equal(await sample('tickets', { wallet, status: 'voted' }), t.voted);
      assert.equal(await sample('tickets', { wallet, status: 'revoked' }), t.revoked);
      // Absent from the answer (omitempty, 0): read as 0.
      assert.equal(await sample('tickets', { wallet, status: 'missed' }), 0);
      assert.equal(await sample('tickets', { wallet, status: 'expired' }), 0);
      assert.equal(await sample('live_tickets_drift', { wallet }), 0);
      for (const agenda of ['blake3pow', 'changesubsidysplitr2']) {
        assert.equal(await sample('vote_choice', { wallet, agenda, choice: 'yes' }), 1);
        assert.equal(await sample('vote_choice_drift', { wallet, agenda }), 0);
      }
      assert.equal(await sample('treasury_policy_drift', { wallet, key: PI_KEY }), 0);
    }
    // What was sent is JSON-RPC 1.0 with the methods and parameters of dcrwallet.
    assert.deepEqual(
      fs[0]!.requests.map((q) => [q.jsonrpc, q.method, q.params]),
      [
        ['1.0', 'walletinfo', []],
        ['1.0', 'getstakeinfo', []],
        ['1.0', 'getvotechoices', []],
        ['1.0', 'treasurypolicy', []],
        ['1.0', 'tspendpolicy', []],
      ],
    );
  });

  it('a locked, non-voting or disconnected wallet reads 0; the counts come back when it recovers', async () => {
    const [a, b, c] = await wallets(3);
    const { watcher, sample } = setup([a!, b!, c!]);
    a!.state.unlocked = false;
    b!.state.voting = false;
    c!.state.daemonconnected = false;
    const r = await watcher.poll();
    assert.deepEqual(r.errors, []);
    assert.equal(await sample('unlocked', { wallet: 'alpha' }), 0);
    assert.equal(await sample('voting', { wallet: 'alpha' }), 1);
    assert.equal(await sample('voting', { wallet: 'beta' }), 0);
    assert.equal(await sample('daemon_connected', { wallet: 'gamma' }), 0);
    assert.equal(await sample('daemon_connected', { wallet: 'beta' }), 1);
    a!.state.unlocked = true;
    await watcher.poll();
    assert.equal(await sample('unlocked', { wallet: 'alpha' }), 1);
  });

  it('missed votes: the count is exported and a rise is logged once', async () => {
    const [a] = await wallets(1);
    const { watcher, sample, warnings } = setup([a!]);
    await watcher.poll();
    await watcher.poll();
    assert.deepEqual(warnings, []);
    a!.state.tickets.missed = 2;
    a!.state.tickets.voted += 5;
    await watcher.poll();
    await watcher.poll();
    assert.equal(await sample('tickets', { wallet: 'alpha', status: 'missed' }), 2);
    assert.deepEqual(warnings, ['the wallet counts more missed votes']);
  });

  it('live-ticket parity: the wallet out of step drifts; two wallets that disagree both do', async () => {
    const [a, b, c] = await wallets(3);
    const { watcher, sample } = setup([a!, b!, c!]);
    c!.state.tickets.live = 38;
    const r = await watcher.poll();
    assert.deepEqual(
      [...r.liveDrift],
      [
        ['alpha', false],
        ['beta', false],
        ['gamma', true],
      ],
    );
    assert.equal(await sample('live_tickets_drift', { wallet: 'gamma' }), 1);
    assert.equal(await sample('live_tickets_drift', { wallet: 'alpha' }), 0);
    // gamma stops answering: alpha and beta agree, gamma is not compared (no series).
    c!.state.raw = { status: 500, body: 'down' };
    await watcher.poll();
    assert.equal(await sample('live_tickets_drift', { wallet: 'gamma' }), undefined);
    assert.equal(await sample('live_tickets_drift', { wallet: 'alpha' }), 0);
    // Two wallets left, disagreeing: no majority, both drift.
    b!.state.tickets.live = 40;
    await watcher.poll();
    assert.equal(await sample('live_tickets_drift', { wallet: 'alpha' }), 1);
    assert.equal(await sample('live_tickets_drift', { wallet: 'beta' }), 1);
    delete c!.state.raw;
    c!.state.tickets.live = 41;
    b!.state.tickets.live = 41;
    await watcher.poll();
    for (const wallet of ['alpha', 'beta', 'gamma'])
      assert.equal(await sample('live_tickets_drift', { wallet }), 0, wallet);
  });

  it('vote-choice drift per agenda; an agenda a wallet does not list is a difference', async () => {
    const [a, b, c] = await wallets(3);
    const { watcher, sample } = setup([a!, b!, c!]);
    b!.state.choices.blake3pow = 'no';
    await watcher.poll();
    assert.equal(await sample('vote_choice_drift', { wallet: 'beta', agenda: 'blake3pow' }), 1);
    assert.equal(await sample('vote_choice_drift', { wallet: 'alpha', agenda: 'blake3pow' }), 0);
    assert.equal(
      await sample('vote_choice_drift', { wallet: 'beta', agenda: 'changesubsidysplitr2' }),
      0,
    );
    assert.equal(
      await sample('vote_choice', { wallet: 'beta', agenda: 'blake3pow', choice: 'no' }),
      1,
    );
    // The old choice's series is gone.
    assert.equal(
      await sample('vote_choice', { wallet: 'beta', agenda: 'blake3pow', choice: 'yes' }),
      undefined,
    );
    b!.state.choices.blake3pow = 'yes';
    delete c!.state.choices.changesubsidysplitr2;
    await watcher.poll();
    assert.equal(await sample('vote_choice_drift', { wallet: 'beta', agenda: 'blake3pow' }), 0);
    assert.equal(
      await sample('vote_choice_drift', { wallet: 'gamma', agenda: 'changesubsidysplitr2' }),
      1,
    );
  });

  it('treasury policy drift per key; a key without policy is abstain; per-ticket policies are left aside', async () => {
    const [a, b, c] = await wallets(3);
    const { watcher, sample, registry } = setup([a!, b!, c!]);
    c!.state.treasury = [];
    a!.state.treasury.push({
      key: PI_KEY,
      policy: 'no',
      ticket: '5b0f2e1d4c3a29180716253443526170809fa0b1c2d3e4f5061728394a5b6c7d',
    });
    const r = await watcher.poll();
    assert.deepEqual(r.errors, []);
    assert.equal(await sample('treasury_policy_drift', { wallet: 'gamma', key: PI_KEY }), 1);
    assert.equal(await sample('treasury_policy_drift', { wallet: 'alpha', key: PI_KEY }), 0);
    c!.state.treasury = [{ key: PI_KEY, policy: 'yes' }];
    await watcher.poll();
    assert.equal(await sample('treasury_policy_drift', { wallet: 'gamma', key: PI_KEY }), 0);
    // Nobody has a policy any more: no series at all.
    for (const f of [a!, b!, c!]) f.state.treasury = [];
    await watcher.poll();
    assert.doesNotMatch(await registry.metrics(), /^vigil_watch_decred_treasury_policy_drift\{/m);
  });

  it('tspend policy drift: a tspend one wallet does not list is asked for by hash', async () => {
    const [a, b, c] = await wallets(3);
    const { watcher, sample } = setup([a!, b!, c!]);
    a!.state.tspends = { [TSPEND]: 'yes' };
    b!.state.tspends = { [TSPEND]: 'yes' };
    c!.state.storedTspend = { [TSPEND]: 'yes' };
    let r = await watcher.poll();
    assert.deepEqual(r.errors, []);
    assert.deepEqual(c!.requests.at(-1), {
      jsonrpc: '1.0',
      method: 'tspendpolicy',
      params: [TSPEND],
    });
    assert.equal(a!.requests.filter((q) => q.method === 'tspendpolicy').length, 1);
    for (const wallet of ['alpha', 'beta', 'gamma'])
      assert.equal(await sample('tspend_policy_drift', { wallet, tspend: TSPEND }), 0, wallet);
    // gamma has no policy for it: it would abstain.
    c!.state.storedTspend = {};
    r = await watcher.poll();
    assert.equal(r.tspendDrift.get(TSPEND)?.get('gamma'), true);
    assert.equal(await sample('tspend_policy_drift', { wallet: 'gamma', tspend: TSPEND }), 1);
    // The list's "" is abstain too: beta agrees with gamma now, alpha is alone.
    b!.state.tspends = { [TSPEND]: '' };
    await watcher.poll();
    assert.equal(await sample('tspend_policy_drift', { wallet: 'alpha', tspend: TSPEND }), 1);
    assert.equal(await sample('tspend_policy_drift', { wallet: 'beta', tspend: TSPEND }), 0);
  });

  it('another wallet’s certificate pinned is a tls probe error; the others are read', async () => {
    const [a, b] = await wallets(2);
    // beta is pinned to alpha's self-signed certificate.
    const { watcher, sample } = setup([a!, b!], (i) => (i === 1 ? { caFile: a!.caFile } : {}));
    const r = await watcher.poll();
    // Refused at the handshake: the other four calls are not made.
    assert.equal(r.errors.length, 1);
    for (const e of r.errors) {
      assert.equal(e.wallet, 'beta');
      assert.ok(e.error instanceof ProbeError);
      assert.equal(e.error.kind, 'tls');
      assert.equal(e.error.code, 'WATCH_PROBE_TLS');
      assert.match(e.error.message, /wallet beta: .*certificate/i);
    }
    assert.equal(b!.requests.length, 0);
    assert.equal(await sample('up', { wallet: 'beta' }), 0);
    assert.equal(await sample('up', { wallet: 'alpha' }), 1);
    assert.equal(
      await sample('probe_errors_total', { wallet: 'beta', probe: 'walletinfo', kind: 'tls' }),
      1,
    );
    assert.equal(await sample('voting', { wallet: 'beta' }), undefined);
    // Nothing to compare beta with: alpha alone does not drift.
    assert.equal(await sample('live_tickets_drift', { wallet: 'alpha' }), 0);
  });

  it('a wrong password is an auth probe error (HTTP 401)', async () => {
    const [a] = await wallets(1);
    const wrong = passwordFile('not the password\n');
    const { watcher, sample } = setup([a!], () => ({ passwordFile: wrong }));
    const r = await watcher.poll();
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]!.error.kind, 'auth');
    assert.match(r.errors[0]!.error.message, /HTTP 401/);
    assert.equal(
      await sample('probe_errors_total', { wallet: 'alpha', probe: 'walletinfo', kind: 'auth' }),
      1,
    );
    // One attempt with the wrong password per poll, not five (dcrwallet logs each one).
    assert.equal(a!.unauthorized, 1);
    assert.equal(a!.requests.length, 0);
    assert.equal(await sample('up', { wallet: 'alpha' }), 0);
  });

  it('RPC errors, HTTP errors, malformed answers, unreachable and slow wallets are typed probe errors; the watcher recovers', async () => {
    const [a] = await wallets(1);
    const { watcher, sample } = setup([a!], () => ({}), { timeoutMs: 500 });
    const noInfo = healthyState();
    const cases: Array<[string, () => void, string, RegExp]> = [
      [
        'an RPC error',
        () =>
          (a!.state.rpcError = { method: 'walletinfo', code: -4, message: 'wallet not loaded' }),
        'rpc',
        /error -4: wallet not loaded/,
      ],
      [
        'walletinfo without unlocked',
        () => {
          delete a!.state.rpcError;
          const { unlocked: _u, ...rest } = {
            daemonconnected: true,
            spv: false,
            unlocked: true,
            votebits: 1,
            voteversion: 10,
            voting: true,
          };
          a!.state.result = { method: 'walletinfo', value: rest };
        },
        'malformed',
        /unlocked: .*expected boolean/,
      ],
      [
        'a flag that is not a boolean',
        () =>
          (a!.state.result = {
            method: 'walletinfo',
            value: { ...noInfo, daemonconnected: 'yes', votebits: 1, voteversion: 10 },
          }),
        'malformed',
        /daemonconnected/,
      ],
      [
        'not JSON',
        () => {
          delete a!.state.result;
          a!.state.raw = { method: 'walletinfo', status: 200, body: '<html>hello</html>' };
        },
        'malformed',
        /not JSON/,
      ],
      [
        'an answer beyond 4 MiB',
        () =>
          (a!.state.raw = {
            method: 'walletinfo',
            status: 200,
            body: `{"result":"${'x'.repeat(5 * 1024 * 1024)}"}`,
          }),
        'malformed',
        /larger than 4194304 bytes/,
      ],
      [
        'an HTTP error',
        () => (a!.state.raw = { method: 'walletinfo', status: 503, body: 'busy' }),
        'http',
        /HTTP 503/,
      ],
      [
        'an answer to another request',
        () => {
          delete a!.state.raw;
          a!.state.wrongId = true;
        },
        'malformed',
        /answer to id 9999999/,
      ],
    ];
    for (const [what, arrange, kind, message] of cases) {
      arrange();
      const r = await watcher.poll();
      const info = r.errors.find((e) => e.error.probe === 'walletinfo');
      assert.ok(info, what);
      assert.equal(info.error.kind, kind, what);
      assert.match(info.error.message, message, what);
      assert.equal(await sample('up', { wallet: 'alpha' }), 0, what);
      // walletinfo said nothing usable: its series are gone, not stale.
      assert.equal(await sample('unlocked', { wallet: 'alpha' }), undefined, what);
    }
    a!.state.wrongId = false;
    // A malformed getstakeinfo: a negative count.
    a!.state.result = { method: 'getstakeinfo', value: { blockheight: 5, immature: -1 } };
    let r = await watcher.poll();
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]!.error.kind, 'malformed');
    assert.equal(await sample('tickets', { wallet: 'alpha', status: 'live' }), undefined);
    assert.equal(await sample('unlocked', { wallet: 'alpha' }), 1);
    // Slow: a timeout.
    delete a!.state.result;
    a!.state.delayMs = 1200;
    r = await watcher.poll();
    assert.equal(r.errors[0]!.error.kind, 'timeout');
    assert.match(r.errors[0]!.error.message, /within 500 ms/);
    delete a!.state.delayMs;
    r = await watcher.poll();
    assert.deepEqual(r.errors, []);
    assert.equal(await sample('up', { wallet: 'alpha' }), 1);
    assert.equal(
      await sample('probe_errors_total', {
        wallet: 'alpha',
        probe: 'walletinfo',
        kind: 'malformed',
      }),
      5,
    );

    // Nothing listens: unreachable.
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    const down = setup([a!], () => ({ url: `https://127.0.0.1:${closed}` }));
    const d = await down.watcher.poll();
    assert.equal(d.errors.length, 1);
    assert.equal(d.errors[0]!.error.kind, 'unreachable');
    assert.equal(d.errors[0]!.error.code, 'WATCH_PROBE_UNREACHABLE');
  });

  it('drift: one wallet never drifts; with a strict majority only the others do; agreement is no drift', () => {
    const wallet = fc.constantFrom('a', 'b', 'c', 'd', 'e');
    fc.assert(
      fc.property(fc.dictionary(wallet, fc.constantFrom('yes', 'no', 'abstain')), (dict) => {
        const values = new Map(Object.entries(dict));
        const drift = driftOf(values);
        assert.deepEqual([...drift.keys()], [...values.keys()]);
        const distinct = new Set(values.values());
        if (distinct.size <= 1) assert.ok([...drift.values()].every((d) => !d));
        const counts = [...distinct].map(
          (v) => [v, [...values.values()].filter((x) => x === v).length] as const,
        );
        const majority = counts.find(([, n]) => n * 2 > values.size)?.[0];
        for (const [w, v] of values) {
          if (distinct.size <= 1) continue;
          assert.equal(drift.get(w), majority === undefined ? true : v !== majority);
        }
      }),
    );
  });
});

describe('Decred watch config and secrets', () => {
  const base = (extra: Record<string, unknown> = {}, wallet: Record<string, unknown> = {}) => ({
    kind: 'decred',
    name: CHAIN,
    wallets: [
      {
        name: 'alpha',
        url: 'https://10.77.0.4:9110/',
        caFile: '/etc/vigil/dcrwallet-alpha.cert',
        username: 'vigil',
        passwordFile: '/etc/vigil/dcrwallet-alpha.password',
        ...wallet,
      },
    ],
    ...extra,
  });

  it('defaults and refusals', () => {
    const c = DecredWatchSchema.parse(base());
    assert.equal(c.pollMs, 30_000);
    assert.equal(c.wallets[0]!.url, 'https://10.77.0.4:9110');
    for (const [bad, wallet] of [
      [{}, { url: 'http://10.77.0.4:9110' }],
      [{}, { caFile: 'rpc.cert' }],
      [{}, { passwordFile: '' }],
      [{}, { name: 'has space' }],
      [{}, { password: 'inline' }],
      [{ pollMs: 10 }, {}],
      [{ wallets: [] }, {}],
    ] as const)
      assert.equal(
        DecredWatchSchema.safeParse(base(bad, wallet)).success,
        false,
        JSON.stringify([bad, wallet]),
      );
    const twice = base();
    twice.wallets.push({ ...twice.wallets[0]!, url: 'https://10.77.0.5:9110' });
    assert.equal(DecredWatchSchema.safeParse(twice).success, false);
  });

  it('a Decred chain in the watch file, next to others; an http:// wallet is a precise error', () => {
    const yaml = (url: string) => `chains:
  - kind: decred
    name: ${CHAIN}
    wallets:
      - name: alpha
        url: ${url}
        caFile: /etc/vigil/a.cert
        username: vigil
        passwordFile: /etc/vigil/a.password
  - kind: cardano
    name: cardano-mainnet
    metricsUrl: http://127.0.0.1:12798/metrics
`;
    const c = parseYaml('watch.yaml', yaml('https://127.0.0.1:9110'), WatchConfigSchema);
    assert.deepEqual(
      c.chains.map((x) => x.kind),
      ['decred', 'cardano'],
    );
    assert.throws(
      () => parseYaml('watch.yaml', yaml('http://127.0.0.1:9110'), WatchConfigSchema),
      (e: unknown) => e instanceof ConfigError && /https:\/\/ URL/.test(e.message),
    );
  });

  it('the example watch file has a Decred chain', () => {
    const c = loadWatchConfig(join(packageRoot(), 'examples', 'watch', 'watch.yaml'));
    const decred = c.chains.find((x) => x.kind === 'decred');
    assert.ok(decred && decred.kind === 'decred' && decred.wallets.length >= 2);
  });

  it('a password file group or others may read, a missing one, or a CA that is not a certificate is refused before any call', async () => {
    const [a] = await wallets(1);
    const make = (wallet: Record<string, string>) =>
      new DecredWatcher(
        DecredWatchSchema.parse({
          kind: 'decred',
          name: CHAIN,
          wallets: [
            {
              name: 'alpha',
              url: a!.url,
              caFile: a!.caFile,
              username: USER,
              passwordFile: passwordFile(),
              ...wallet,
            },
          ],
        }),
        new Registry(),
      );
    const refused = (wallet: Record<string, string>, code: string, message: RegExp) =>
      assert.throws(
        () => make(wallet),
        (e: unknown) => e instanceof InputError && e.code === code && message.test(e.message),
      );
    refused(
      { passwordFile: passwordFile(PASSWORD, 0o644) },
      'WATCH_PASSWORD_FILE_MODE',
      /accessible by group or others \(mode 644\).*chmod 600/,
    );
    refused(
      { passwordFile: passwordFile(PASSWORD, 0o640) },
      'WATCH_PASSWORD_FILE_MODE',
      /mode 640/,
    );
    refused({ passwordFile: join(dir, 'nope') }, 'WATCH_PASSWORD_FILE', /cannot read/);
    refused({ passwordFile: passwordFile('\n') }, 'WATCH_PASSWORD_FILE', /one non-empty line/);
    refused({ caFile: passwordFile('not a certificate') }, 'WATCH_CA_FILE', /cannot use/);
    assert.equal(a!.requests.length, 0);
    // 0400 is fine; the trailing newline is not part of the password.
    const w = make({ passwordFile: passwordFile(PASSWORD + '\n', 0o400) });
    const r = await w.poll();
    assert.deepEqual(r.errors, []);
  });
});

describe('vigil watch (Decred)', () => {
  it('serves the wallets’ metrics; a readable password file stops it with the fix', async () => {
    const [a, b] = await wallets(2);
    const pw = passwordFile();
    const file = join(dir, 'watch.yaml');
    const yaml = (pwFile: string) => `listen: { host: 127.0.0.1, port: 0 }
chains:
  - kind: decred
    name: ${CHAIN}
    pollMs: 1000
    wallets:
      - { name: alpha, url: "${a!.url}", caFile: "${a!.caFile}", username: ${USER}, passwordFile: "${pwFile}" }
      - { name: beta, url: "${b!.url}", caFile: "${b!.caFile}", username: ${USER}, passwordFile: "${pwFile}" }
`;
    writeFileSync(file, yaml(pw));
    await withWatchProcess(file, CHAIN, async (watch) => {
      const text = await watch.metricsWhen(
        (t) => sampleOf(t, 'vigil_watch_decred_up', { chain_id: CHAIN, wallet: 'beta' }) === 1,
      );
      assert.equal(
        sampleOf(text, 'vigil_watch_decred_tickets', {
          chain_id: CHAIN,
          wallet: 'beta',
          status: 'live',
        }),
        41,
      );
      assert.deepEqual(await watch.healthz(), {
        status: 'ok',
        chains: [{ kind: 'decred', name: CHAIN }],
      });
    });

    writeFileSync(file, yaml(passwordFile(PASSWORD, 0o644)));
    const bad = spawn(process.execPath, [CLI_ENTRY, 'watch', '--config', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    bad.stdout.on('data', (d: Buffer) => (out += d.toString()));
    bad.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => bad.once('exit', r));
    assert.notEqual(code, 0);
    assert.match(out, /accessible by group or others/);
    assert.match(out, /chmod 600/);
    assert.doesNotMatch(out, /at .*\.js:\d+/, 'no stack trace');
  });
});

describe('README (Decred)', () => {
  it('names every Decred watcher metric', async () => {
    const readme = readFileSync(join(packageRoot(), 'README.md'), 'utf8');
    const registry = new Registry();
    const [a] = await wallets(1);
    new DecredWatcher(
      DecredWatchSchema.parse({
        kind: 'decred',
        name: CHAIN,
        wallets: [
          {
            name: 'a',
            url: a!.url,
            caFile: a!.caFile,
            username: USER,
            passwordFile: passwordFile(),
          },
        ],
      }),
      registry,
    );
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
    assert.ok(names.length >= 15, names.join(', '));
    for (const name of names)
      assert.ok(readme.includes(`\`${name}`), `README's Decred metrics omit ${name}`);
    assert.equal(TICKET_STATUSES.length, 9);
  });
});
