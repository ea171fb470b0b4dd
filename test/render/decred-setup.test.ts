/**
 * Issue 12: Decred wallets voted defaults (the choices went to a file nothing read) and started
 * locked after every reboot. The rendered setup script is run here with sh, curl and jq against
 * a dcrwallet stand-in on loopback that speaks the wallet's JSON-RPC over TLS with basic auth
 * (methods and parameters as in decred/dcrwallet rpc/jsonrpc/types/methods.go; answers shaped
 * like dcrwallet's: walletinfo {daemonconnected, unlocked, voting, ...}, getvotechoices
 * {version, choices: [{agendaid, agendadescription, choiceid, choicedescription}]}).
 *
 * The stand-in takes its method signatures, result fields and policy words from the list
 * recorded from dcrwallet release-v2.0.6 (upstream-node-flags.json), and refuses a call that
 * does not fit them as dcrwallet would; the rendered dcrd.conf, dcrwallet.conf and unit command
 * lines are checked against the dcrd and dcrwallet options recorded from the same release.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { initCa, issueCert } from '../../src/etcd/pki.js';
import {
  DCRWALLET_SETTING_METHODS,
  DCRWALLET_SETUP_CONFIG,
  DCRWALLET_SETUP_SCRIPT,
  DCRWALLET_SETUP_UNIT,
  WALLET_PASSPHRASE_FILE,
  type DcrwalletSetup,
} from '../../src/render/decred.js';
import { chainUnits } from '../../src/render/chains.js';
import { TopologySchema } from '../../src/topology/schema.js';
import { artifact, baseInput } from '../topology/fixtures.js';
import { hostSetup, planExample, removeDir, requireTool, tempDir } from './helpers.js';

type OptionKind = 'switch' | 'value' | 'values';
interface RpcParam {
  name: string;
  type: 'string' | 'int64';
  optional?: boolean;
}
const recorded = (
  JSON.parse(readFileSync('test/render/upstream-node-flags.json', 'utf8')) as {
    decred: {
      release: string;
      iniSection: string;
      dcrd: { flags: Record<string, OptionKind> };
      dcrwallet: { flags: Record<string, OptionKind> };
      dcrwalletJsonRpc: {
        methods: Record<string, { params: RpcParam[]; result?: string[]; choice?: string[] }>;
        policies: string[];
        treasuryKeyHexLength: number;
        tspendHashHexLength: number;
      };
    };
  }
).decred;
const rpcSpec = recorded.dcrwalletJsonRpc;

/** Why dcrwallet would refuse these parameters (dcrjson's positional unmarshalling and the
 * handlers' own checks), or undefined when it would take them. */
function refusal(method: string, params: unknown[]): string | undefined {
  const sig = rpcSpec.methods[method];
  if (!sig) return undefined; // answered 'Method not found' below
  const required = sig.params.filter((p) => !p.optional).length;
  if (params.length < required || params.length > sig.params.length)
    return `wrong number of params (expected ${required} to ${sig.params.length}, received ${params.length})`;
  for (const [i, p] of sig.params.entries()) {
    const v = params[i];
    if (v === undefined) continue;
    if (p.type === 'string' ? typeof v !== 'string' : !Number.isInteger(v))
      return `parameter #${i + 1} '${p.name}' must be type ${p.type}`;
  }
  if (method === 'settreasurypolicy' || method === 'settspendpolicy') {
    const length =
      method === 'settreasurypolicy' ? rpcSpec.treasuryKeyHexLength : rpcSpec.tspendHashHexLength;
    if (!new RegExp(`^[0-9a-f]{${length}}$`).test(params[0] as string))
      return `${sig.params[0]!.name} must be ${length} hex characters`;
    if (!rpcSpec.policies.includes(params[1] as string))
      return `unknown policy ${String(params[1])}`;
  }
  return undefined;
}

const dir = tempDir('dcrwallet-setup');
after(() => removeDir(dir));

interface Call {
  method: string;
  params: unknown[];
}

/** A wallet that keeps what it is told, like dcrwallet: locked until walletpassphrase. */
async function fakeWallet(opts: { passphrase: string; password: string; ignoreChoices?: boolean }) {
  const pki = mkdtempSync(join(dir, 'pki-'));
  await initCa(join(pki, 'ca'));
  const issued = await issueCert(join(pki, 'ca'), {
    name: 'dcrwallet',
    kind: 'server',
    ips: ['127.0.0.1'],
    outDir: join(pki, 'tls'),
  });
  const calls: Call[] = [];
  const state = { unlocked: false, choices: new Map<string, string>() };
  const auth = `Basic ${Buffer.from(`vigil:${opts.password}`).toString('base64')}`;
  const server: Server = createServer(
    { cert: readFileSync(issued.cert), key: readFileSync(issued.key) },
    (req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        if (req.headers.authorization !== auth) {
          res.writeHead(401).end();
          return;
        }
        const { id, method, params } = JSON.parse(body) as Call & { id: string };
        calls.push({ method, params });
        const ok = (result: unknown) => res.end(JSON.stringify({ result, error: null, id }));
        const fail = (code: number, message: string) =>
          res.end(JSON.stringify({ result: null, error: { code, message }, id }));
        const refused = refusal(method, params);
        if (refused !== undefined) return fail(-8, refused);
        switch (method) {
          case 'walletinfo':
            return ok({
              daemonconnected: true,
              spv: false,
              unlocked: state.unlocked,
              cointype: 42,
              txfee: 0.0001,
              votebits: 1,
              votebitsextended: '',
              voteversion: 10,
              voting: true,
              vsp: '',
              manualtickets: false,
              birthhash: '',
              birthheight: 0,
            });
          case 'walletpassphrase':
            if (params[0] !== opts.passphrase)
              return fail(-14, 'invalid passphrase for master private key');
            assert.equal(params[1], 0);
            state.unlocked = true;
            return ok(null);
          case 'setvotechoice':
            if (!opts.ignoreChoices) state.choices.set(params[0] as string, params[1] as string);
            return ok(null);
          case 'settreasurypolicy':
          case 'settspendpolicy':
            return ok(null);
          case 'getvotechoices':
            return ok({
              version: 10,
              choices: [...state.choices].map(([agendaid, choiceid]) => ({
                agendaid,
                agendadescription: '',
                choiceid,
                choicedescription: '',
              })),
            });
          default:
            return fail(-32601, 'Method not found');
        }
      });
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { calls, state, server, port, ca: issued.ca };
}

function runSetup(
  setup: DcrwalletSetup,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const script = join(dir, 'setup.sh');
  writeFileSync(script, DCRWALLET_SETUP_SCRIPT, { mode: 0o755 });
  const cfg = join(dir, 'setup.json');
  writeFileSync(cfg, JSON.stringify(setup));
  return new Promise((resolve) => {
    const child = spawn('sh', [script, cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function setupFor(port: number, ca: string, passphrase: string | undefined): DcrwalletSetup {
  const walletConf = join(dir, 'dcrwallet.conf');
  writeFileSync(walletConf, '[Application Options]\nusername=vigil\npassword=rpc-secret\n');
  const passphraseFile = join(dir, 'wallet-passphrase');
  writeFileSync(passphraseFile, passphrase === undefined ? '' : `${passphrase}\n`, { mode: 0o600 });
  return {
    url: `https://127.0.0.1:${port}`,
    caFile: ca,
    username: 'vigil',
    walletConf,
    passphraseFile,
    waitSeconds: 10,
    voteChoices: { maxblocksize: 'yes', reverttreasurypolicy: 'no' },
    treasuryPolicies: { ['02' + 'ab'.repeat(32)]: 'no' },
    tspendPolicies: { ['cd'.repeat(32)]: 'abstain' },
  };
}

const tools = () => requireTool('jq') && requireTool('curl');

test('unlocks the wallet, applies every choice and policy, and checks them back', async (t) => {
  if (!tools()) return t.skip('jq or curl is missing');
  const wallet = await fakeWallet({
    passphrase: 'correct horse "battery"',
    password: 'rpc-secret',
  });
  try {
    const r = await runSetup(setupFor(wallet.port, wallet.ca, 'correct horse "battery"'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /unlocked, voting, 2 choice\(s\) applied/);
    assert.ok(wallet.state.unlocked);
    const by = (m: string) => wallet.calls.filter((c) => c.method === m).map((c) => c.params);
    assert.deepEqual(by('walletpassphrase'), [['correct horse "battery"', 0]]);
    assert.deepEqual(by('setvotechoice'), [
      ['maxblocksize', 'yes'],
      ['reverttreasurypolicy', 'no'],
    ]);
    assert.deepEqual(by('settreasurypolicy'), [['02' + 'ab'.repeat(32), 'no']]);
    assert.deepEqual(by('settspendpolicy'), [['cd'.repeat(32), 'abstain']]);
  } finally {
    wallet.server.close();
  }
});

test('refuses, and changes nothing, without the passphrase file', async (t) => {
  if (!tools()) return t.skip('jq or curl is missing');
  const wallet = await fakeWallet({ passphrase: 'p', password: 'rpc-secret' });
  try {
    const r = await runSetup(setupFor(wallet.port, wallet.ca, undefined));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /wallet-passphrase is missing/);
    assert.equal(wallet.calls.length, 0);
  } finally {
    wallet.server.close();
  }
});

test('fails on a wrong passphrase, and when the wallet does not keep the choices', async (t) => {
  if (!tools()) return t.skip('jq or curl is missing');
  const wrong = await fakeWallet({ passphrase: 'right', password: 'rpc-secret' });
  try {
    const r = await runSetup(setupFor(wrong.port, wrong.ca, 'wrong'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /walletpassphrase: .*invalid passphrase/);
    assert.equal(wrong.calls.filter((c) => c.method === 'setvotechoice').length, 0);
  } finally {
    wrong.server.close();
  }
  const forgetful = await fakeWallet({
    passphrase: 'p',
    password: 'rpc-secret',
    ignoreChoices: true,
  });
  try {
    const r = await runSetup(setupFor(forgetful.port, forgetful.ca, 'p'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /vote choices did not take/);
  } finally {
    forgetful.server.close();
  }
});

test('a wallet whose TLS certificate is not the pinned one is never sent the passphrase', async (t) => {
  if (!tools()) return t.skip('jq or curl is missing');
  const wallet = await fakeWallet({ passphrase: 'p', password: 'rpc-secret' });
  try {
    const otherCa = mkdtempSync(join(dir, 'other-ca-'));
    await initCa(otherCa);
    const setup = { ...setupFor(wallet.port, join(otherCa, 'ca.crt'), 'p'), waitSeconds: 2 };
    const r = await runSetup(setup);
    assert.equal(r.code, 1);
    assert.equal(wallet.calls.length, 0);
  } finally {
    wallet.server.close();
  }
});

test('every voting wallet host gets the setup, enabled after the wallet, with the topology choices', () => {
  const state = tempDir('decred-setup-plan');
  try {
    const { plan, files } = planExample('decred-solo', state);
    const wallets = plan!.hosts.filter((h) => h.role === 'voting-wallet');
    assert.ok(wallets.length >= 3);
    for (const host of wallets) {
      const cc = hostSetup(files!, host.name) as {
        runcmd: Array<string | string[]>;
        packages: string[];
        write_files: Array<{ path: string; content: string; permissions: string }>;
      };
      const cfg = cc.write_files.find((f) => f.path === DCRWALLET_SETUP_CONFIG)!;
      assert.equal(cfg.permissions, '0600');
      const setup = JSON.parse(cfg.content) as DcrwalletSetup;
      assert.deepEqual(
        setup.voteChoices,
        Object.fromEntries(
          Object.entries(
            (host.chain as { voteChoices: Record<string, string> }).voteChoices,
          ).sort(),
        ),
      );
      // The passphrase is the operator's file: named, never rendered anywhere on the host.
      assert.equal(setup.passphraseFile, WALLET_PASSPHRASE_FILE);
      assert.ok(!cc.write_files.some((f) => f.path === WALLET_PASSPHRASE_FILE), host.name);
      const flat = cc.runcmd.map((c) => (Array.isArray(c) ? c.join(' ') : c));
      const wallet = flat.indexOf('systemctl enable --now dcrwallet.service');
      const setupAt = flat.indexOf(`systemctl enable --now ${DCRWALLET_SETUP_UNIT}`);
      assert.ok(wallet >= 0 && setupAt > wallet, flat.join('\n'));
      assert.ok(cc.packages.includes('jq'));
    }
  } finally {
    removeDir(state);
  }
});

/** `key=value` lines of a go-flags INI file, checked against the recorded options. */
function checkIni(text: string, flags: Record<string, OptionKind>, label: string): number {
  const lines = text.split('\n').filter((l) => l.trim() !== '' && !/^[;#]/.test(l));
  assert.equal(lines[0], `[${recorded.iniSection}]`, `${label}: the options' section`);
  const seen = new Map<string, number>();
  for (const line of lines.slice(1)) {
    const m = /^([a-z0-9.]+)=(.*)$/.exec(line);
    assert.ok(m, `${label}: ${line} is not key=value in [${recorded.iniSection}]`);
    const [, key, value] = m as unknown as [string, string, string];
    const kind = flags[key];
    assert.ok(kind, `${label}: ${key} is not an option of ${recorded.release}`);
    // A namespaced option (ticketbuyer.*, vsp.*) is read from its group's own section.
    assert.ok(!key.includes('.'), `${label}: ${key} belongs in its group's section`);
    // go-flags reads a bool from an INI value with strconv.ParseBool; Vigil writes 1.
    if (kind === 'switch') assert.equal(value, '1', `${label}: ${key}`);
    else assert.notEqual(value, '', `${label}: ${key} has no value`);
    seen.set(key, (seen.get(key) ?? 0) + 1);
    if (kind !== 'values') assert.equal(seen.get(key), 1, `${label}: ${key} given twice`);
  }
  return seen.size;
}

test('dcrd.conf, dcrwallet.conf and both command lines use only options of dcrd and dcrwallet release-v2.0.6', () => {
  const state = tempDir('decred-options');
  try {
    const { plan, files } = planExample('decred-solo', state);
    // The example pins the release the options were recorded from.
    for (const c of plan!.topology.chains)
      if (c.kind === 'decred') {
        assert.equal(`release-${c.dcrd.version}`, recorded.release);
        assert.equal(`release-${c.dcrwallet.version}`, recorded.release);
      }
    const wallets = plan!.hosts.filter((h) => h.chain?.kind === 'decred');
    assert.ok(wallets.length >= 3);
    let keys = 0;
    for (const host of wallets) {
      const file = (path: string) => files!.get(`hosts/${host.name}/files/${path}`)!;
      keys += checkIni(
        file('etc__decred__dcrd.conf'),
        recorded.dcrd.flags,
        `${host.name} dcrd.conf`,
      );
      keys += checkIni(
        file('etc__decred__dcrwallet.conf'),
        recorded.dcrwallet.flags,
        `${host.name} dcrwallet.conf`,
      );
      for (const unit of chainUnits(plan!, host)) {
        const flags = unit.name === 'dcrd.service' ? recorded.dcrd : recorded.dcrwallet;
        const words = unit.execStart.split(/\s+/).slice(1);
        assert.ok(words.length > 0);
        for (const w of words) {
          const m = /^--([a-z0-9.]+)(=(.+))?$/.exec(w);
          assert.ok(m, `${unit.name}: ${w} is not a --flag`);
          const kind = flags.flags[m[1]!];
          assert.ok(kind, `${unit.name}: --${m[1]!} is not a flag of ${recorded.release}`);
          assert.equal(kind === 'switch', m[3] === undefined, `${unit.name}: ${w}`);
        }
      }
    }
    assert.ok(keys >= wallets.length * 15, `only ${keys} keys checked`);
  } finally {
    removeDir(state);
  }
});

test('the setup script calls only recorded dcrwallet methods and reads only recorded fields', () => {
  const called = new Set(
    [...DCRWALLET_SETUP_SCRIPT.matchAll(/\brpc ([a-z]+) /g)].map((m) => m[1]!),
  );
  for (const method of Object.values(DCRWALLET_SETTING_METHODS)) {
    assert.ok(DCRWALLET_SETUP_SCRIPT.includes(`:${method}`), method);
    called.add(method);
  }
  assert.deepEqual([...called].sort(), Object.keys(rpcSpec.methods).sort());
  // Each setting is one call of [name, value]: the method's two required parameters.
  for (const method of Object.values(DCRWALLET_SETTING_METHODS))
    assert.equal(rpcSpec.methods[method]!.params.filter((p) => !p.optional).length, 2, method);
  for (const field of ['unlocked', 'voting'])
    assert.ok(rpcSpec.methods.walletinfo!.result!.includes(field), field);
  assert.ok(rpcSpec.methods.getvotechoices!.result!.includes('choices'));
  for (const field of ['agendaid', 'choiceid'])
    assert.ok(rpcSpec.methods.getvotechoices!.choice!.includes(field), field);
  // The words the topology takes for treasury and tspend policies are words dcrwallet takes.
  const decredFleet = (policy: string) =>
    TopologySchema.safeParse({
      ...baseInput(),
      spread: false,
      chains: [
        {
          name: 'dcr',
          kind: 'decred',
          network: 'mainnet',
          dcrd: artifact('dcrd'),
          dcrwallet: artifact('dcrwallet'),
          treasuryPolicies: { ['02' + 'ab'.repeat(32)]: policy },
          tspendPolicies: { ['cd'.repeat(rpcSpec.tspendHashHexLength / 2)]: policy },
        },
      ],
    }).success;
  for (const policy of ['yes', 'no', 'abstain']) {
    assert.ok(rpcSpec.policies.includes(policy), policy);
    assert.ok(decredFleet(policy), policy);
  }
  assert.equal(decredFleet('maybe'), false);
  assert.equal(('02' + 'ab'.repeat(32)).length, rpcSpec.treasuryKeyHexLength);
});

test('the wallet stand-in refuses what dcrwallet refuses', () => {
  assert.equal(refusal('walletpassphrase', ['p', 0]), undefined);
  assert.match(refusal('walletpassphrase', ['p'])!, /wrong number of params/);
  assert.match(refusal('walletpassphrase', ['p', '0'])!, /must be type int64/);
  assert.match(refusal('setvotechoice', ['a', 'b', 'c', 'd'])!, /wrong number/);
  assert.match(refusal('settspendpolicy', ['ab', 'yes'])!, /64 hex/);
  assert.match(refusal('settreasurypolicy', ['02' + 'ab'.repeat(32), 'maybe'])!, /unknown policy/);
});
