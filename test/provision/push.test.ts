/**
 * `vigil apply`'s push against a real sshd on 127.0.0.1, started by this test with its own
 * host key, and a real ssh-agent holding a key made here. The bundle installs into a scratch
 * root (the installer's VIGIL_ROOT), systemctl is a stub that records its calls.
 *
 * Skips loudly when OpenSSH's server or client is missing, except under CI (CI=true).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  writeFileSync,
  appendFileSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { planFleet } from '../../src/render/fleet.js';
import { INSTALLED_LIST, ManifestSchema } from '../../src/render/bundle.js';
import type { TopologyInput } from '../../src/topology/schema.js';
import { parse, stringify } from 'yaml';
import {
  KNOWN_HOSTS_FILE,
  endpointsFile,
  pushBundles,
  readManifest,
  terraformAddresses,
  type PushOptions,
} from '../../src/provision/push.js';
import { VigilError } from '../../src/errors.js';
import { EXAMPLES_DIR, removeDir, tempDir } from '../render/helpers.js';

const SSHD = '/usr/sbin/sshd';

function sshAvailable(): boolean {
  const missing = [SSHD, 'ssh', 'ssh-agent', 'ssh-add', 'ssh-keygen', 'tar'].filter(
    (t) => spawnSync(t, ['-V'], { encoding: 'utf8' }).error !== undefined,
  );
  if (missing.length === 0) return true;
  if (process.env.CI === 'true') throw new Error(`CI needs OpenSSH: missing ${missing.join(', ')}`);
  console.error(
    `\n*** SKIPPING push tests: ${missing.join(', ')} not installed (CI would fail) ***\n`,
  );
  return false;
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolvePort(port));
    });
  });
}

/** Until something accepts on the port, at most `tries` attempts 100 ms apart. */
async function waitForPort(port: number, tries = 100): Promise<void> {
  for (let i = 0; i < tries; i++) {
    const ok = await new Promise<boolean>((res) => {
      const c = connect(port, '127.0.0.1');
      c.on('connect', () => {
        c.destroy();
        res(true);
      });
      c.on('error', () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

async function waitForFile(path: string, tries = 100): Promise<void> {
  for (let i = 0; i < tries && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(existsSync(path), `${path} never appeared`);
}

function keygen(file: string): void {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('push over SSH', { skip: !sshAvailable() }, () => {
  let work: string;
  let port: number;
  let sshd: ChildProcess | undefined;
  let agent: ChildProcess | undefined;
  let env: NodeJS.ProcessEnv;
  let opts: PushOptions;
  const calls = () =>
    existsSync(join(work, 'systemctl.log'))
      ? readFileSync(join(work, 'systemctl.log'), 'utf8').split('\n').filter(Boolean)
      : [];

  async function startSshd(hostKey: string): Promise<void> {
    const config = join(work, 'sshd_config');
    writeFileSync(
      config,
      [
        `ListenAddress 127.0.0.1`,
        `HostKey ${hostKey}`,
        `AuthorizedKeysFile ${join(work, 'authorized_keys')}`,
        `PidFile ${join(work, 'sshd.pid')}`,
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        'PermitRootLogin prohibit-password',
        `AllowUsers ${userInfo().username}`,
        'LogLevel ERROR',
        '',
      ].join('\n'),
    );
    // sshd run as root wants its privilege-separation directory.
    if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    sshd = spawn(SSHD, ['-D', '-e', '-f', config, '-p', String(port)], { stdio: 'ignore' });
    await waitForPort(port);
  }

  async function stopSshd(): Promise<void> {
    if (!sshd || sshd.exitCode !== null) return;
    const exited = new Promise((r) => sshd!.once('exit', r));
    sshd.kill('SIGTERM');
    await exited;
  }

  before(async () => {
    work = tempDir('push');
    port = await freePort();
    keygen(join(work, 'hostkey'));
    keygen(join(work, 'hostkey2'));
    keygen(join(work, 'operator'));
    writeFileSync(join(work, 'authorized_keys'), readFileSync(join(work, 'operator.pub'), 'utf8'), {
      mode: 0o600,
    });
    await startSshd(join(work, 'hostkey'));
    const sock = join(work, 'agent.sock');
    agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    await waitForFile(sock);
    env = { ...process.env, SSH_AUTH_SOCK: sock };
    const add = spawnSync('ssh-add', [join(work, 'operator')], { env, encoding: 'utf8' });
    assert.equal(add.status, 0, add.stderr);

    const stub = join(work, 'systemctl');
    writeFileSync(stub, `#!/bin/sh\necho "$*" >> ${join(work, 'systemctl.log')}\n`, {
      mode: 0o755,
    });
    const out = join(work, 'plan');
    const plan = planFleet(join(EXAMPLES_DIR, 'cosmos-sentries.yaml'), {
      out,
      state: join(work, 'state'),
    });
    assert.ok(plan.plan);
    opts = {
      out,
      state: join(work, 'state'),
      addresses: new Map(plan.plan.hosts.map((h, i) => [h.name, `127.0.0.${i + 1}`])),
      hosts: ['validator'],
      env,
      sshUser: userInfo().username,
      sshPort: port,
      remoteRoot: join(work, 'root'),
      remoteSystemctl: stub,
    };
  });

  after(async () => {
    await stopSshd();
    if (agent && agent.exitCode === null) agent.kill('SIGTERM');
    removeDir(work);
  });

  it('installs every file with its mode and sha256, pins the host key, sets endpoints', async () => {
    // The validator is 127.0.0.1; its peers' addresses only go into the endpoints file.
    const [r] = await pushBundles(opts);
    const m = ManifestSchema.parse(
      JSON.parse(readFileSync(join(opts.out, 'hosts/validator/bundle/manifest.json'), 'utf8')),
    );
    assert.ok(m.files.length >= 10);
    assert.equal(r!.changed.length, m.files.length + 1, r!.changed.join('\n'));
    for (const f of m.files) {
      const path = join(opts.remoteRoot!, f.path);
      assert.equal(sha256(path), f.sha256, f.path);
      assert.equal((statSync(path).mode & 0o7777).toString(8).padStart(4, '0'), f.mode, f.path);
    }
    const endpoints = readFileSync(join(opts.remoteRoot!, 'etc/wireguard/wg0.endpoints'), 'utf8');
    assert.equal(endpoints.trim().split('\n').length, m.wireguard.peers.length);
    for (const p of m.wireguard.peers)
      assert.ok(
        endpoints.includes(`${p.publicKey} ${opts.addresses.get(p.host)}:${m.wireguard.port}\n`),
      );
    assert.equal(
      statSync(join(opts.remoteRoot!, 'etc/wireguard/wg0.endpoints')).mode & 0o777,
      0o600,
    );
    // Units changed: systemd reloaded once, then running units among them restarted.
    assert.equal(calls()[0], 'daemon-reload');
    assert.ok(calls().includes('try-restart hub-node.service'));
    const known = readFileSync(join(opts.state, KNOWN_HOSTS_FILE), 'utf8');
    assert.ok(
      known.includes(readFileSync(join(work, 'hostkey.pub'), 'utf8').split(' ')[1]!),
      'the host key is pinned in the state directory',
    );
    // The stage in the operator's home is gone.
    assert.equal(
      spawnSync('sh', ['-c', 'ls -d "$HOME"/.vigil-stage.* 2>/dev/null'], { encoding: 'utf8' })
        .stdout,
      '',
    );
  });

  it('a second push changes nothing and restarts nothing', async () => {
    const before = calls().length;
    const [r] = await pushBundles(opts);
    assert.deepEqual(r!.changed, []);
    assert.deepEqual(r!.restarted, []);
    assert.equal(calls().length, before);
  });

  it('restores a drifted file and restarts only the unit that reads it', async () => {
    const agentYaml = join(opts.remoteRoot!, 'etc/vigil/agent.yaml');
    appendFileSync(agentYaml, '# edited by hand\n');
    const before = calls().length;
    const [r] = await pushBundles(opts);
    assert.deepEqual(r!.changed, ['/etc/vigil/agent.yaml']);
    assert.deepEqual(r!.restarted, ['vigil-agent.service']);
    assert.deepEqual(calls().slice(before), ['try-restart vigil-agent.service']);
    assert.equal(
      readFileSync(agentYaml, 'utf8'),
      readFileSync(join(opts.out, 'hosts/validator/files/etc__vigil__agent.yaml'), 'utf8'),
    );
  });

  it('refuses a bundle whose payload no longer matches its manifest, before connecting', async () => {
    const file = join(opts.out, 'hosts/validator/files/etc__nftables.conf');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text + '# tampered\n');
    try {
      await assert.rejects(pushBundles(opts), (e: unknown) => {
        assert.ok(e instanceof VigilError);
        assert.equal(e.code, 'BUNDLE_INVALID');
        return true;
      });
    } finally {
      writeFileSync(file, text);
    }
  });

  it('retries a host that does not answer SSH yet, a bounded number of times', async () => {
    const lines: string[] = [];
    const closed = await freePort();
    await assert.rejects(
      pushBundles({
        ...opts,
        sshPort: closed,
        connectAttempts: 3,
        connectDelayMs: 10,
        log: (l) => lines.push(l),
      }),
      (e: unknown) => e instanceof VigilError && e.code === 'PUSH_FAILED',
    );
    assert.equal(lines.filter((l) => /does not answer SSH yet/.test(l)).length, 2);
  });

  it('prunes what the previous bundle installed and this one does not, stopping units first', async () => {
    // The same fleet without the chain watcher: the validator's bundle loses vigil-watch.service
    // and its config. An operator's own file in the same directory must survive.
    const original = parse(
      readFileSync(join(EXAMPLES_DIR, 'cosmos-sentries.yaml'), 'utf8'),
    ) as TopologyInput;
    const withoutWatch = { ...original, monitoring: { ...original.monitoring, watch: [] } };
    const file = join(work, 'no-watch.yaml');
    writeFileSync(file, stringify(withoutWatch));
    const gone = ManifestSchema.parse(
      JSON.parse(readFileSync(join(opts.out, 'hosts/validator/bundle/manifest.json'), 'utf8')),
    ).files.map((f) => f.path);
    assert.ok(planFleet(file, { out: opts.out, state: opts.state }).plan);
    const kept = readManifest(opts.out, 'validator').files.map((f) => f.path);
    const dropped = gone.filter((p) => !kept.includes(p)).sort();
    assert.ok(dropped.includes('/etc/systemd/system/vigil-watch.service'), dropped.join(', '));
    const mine = join(opts.remoteRoot!, 'etc/vigil/operator-notes.txt');
    writeFileSync(mine, "not the bundle's\n");
    const before = calls().length;
    const [r] = await pushBundles(opts);
    assert.deepEqual([...r!.removed].sort(), dropped);
    assert.deepEqual(r!.stopped, ['vigil-watch.service']);
    // Stopped and disabled before its file went, then systemd reloaded.
    const after = calls().slice(before);
    assert.ok(after.indexOf('disable --now vigil-watch.service') >= 0, after.join('\n'));
    assert.ok(after.indexOf('disable --now vigil-watch.service') < after.indexOf('daemon-reload'));
    for (const p of dropped)
      assert.ok(!existsSync(join(opts.remoteRoot!, p)), `${p} is still there`);
    for (const p of kept) assert.ok(existsSync(join(opts.remoteRoot!, p)), `${p} was removed`);
    assert.ok(existsSync(mine), "the operator's own file was removed");
    // The list of installed paths is root-only and names exactly this bundle's paths.
    const list = join(opts.remoteRoot!, INSTALLED_LIST);
    assert.equal(statSync(list).mode & 0o777, 0o600);
    assert.deepEqual(
      readFileSync(list, 'utf8').trim().split('\n'),
      [...kept, '/etc/wireguard/wg0.endpoints'].sort(),
    );
    // Pruned once: the next push removes nothing.
    const [again] = await pushBundles(opts);
    assert.deepEqual(again!.removed, []);
    assert.deepEqual(again!.changed, []);
    // Back to the example's bundle for the tests below.
    assert.ok(
      planFleet(join(EXAMPLES_DIR, 'cosmos-sentries.yaml'), { out: opts.out, state: opts.state })
        .plan,
    );
    const [back] = await pushBundles(opts);
    assert.deepEqual(back!.removed, []);
    assert.ok(back!.changed.includes('/etc/systemd/system/vigil-watch.service'));
  });

  it('moves sshd to a new port without locking out: new port first, then the recorded one', async () => {
    // The fleet first planned on the port sshd listens on, then moved to one nothing serves.
    const original = parse(
      readFileSync(join(EXAMPLES_DIR, 'cosmos-sentries.yaml'), 'utf8'),
    ) as TopologyInput;
    const state = join(work, 'state-ports');
    const out = join(work, 'plan-ports');
    const planOn = (p: number) => {
      const file = join(work, `ports-${p}.yaml`);
      writeFileSync(
        file,
        stringify({ ...original, ssh: { ...original.ssh, user: userInfo().username, port: p } }),
      );
      const r = planFleet(file, { out, state });
      assert.ok(r.plan);
      return readManifest(out, 'validator');
    };
    assert.deepEqual(planOn(port).ssh.ports, [port]);
    const moved = await freePort();
    const m = planOn(moved);
    assert.deepEqual(m.ssh.ports, [moved, port], 'sshd keeps the old port until a push');
    const sshd = readFileSync(
      join(out, 'hosts/validator/files/etc__ssh__sshd_config.d__50-vigil.conf'),
      'utf8',
    );
    assert.match(sshd, new RegExp(`^Port ${moved}\nPort ${port}$`, 'm'));
    const { sshPort: _p, sshUser: _u, ...noOverride } = opts;
    const lines: string[] = [];
    const [r] = await pushBundles({
      ...noOverride,
      out,
      state,
      connectAttempts: 1,
      log: (l) => lines.push(l),
    });
    assert.ok(r!.changed.includes('/etc/ssh/sshd_config.d/50-vigil.conf'));
    // Recorded: the host now listens on both, so the next plan closes the old port.
    const recorded = JSON.parse(readFileSync(join(state, 'ssh-ports.json'), 'utf8')) as {
      hosts: Record<string, number[]>;
    };
    assert.deepEqual(
      recorded.hosts.validator,
      [moved, port].sort((a, b) => a - b),
    );
    assert.deepEqual(planOn(moved).ssh.ports, [moved]);
    // A host never pushed keeps its seeded port on the list.
    assert.deepEqual(readManifest(out, 'monitor').ssh.ports, [moved, port]);
  });

  it('refuses a host whose key changed, naming ssh-keygen -R', async () => {
    await stopSshd();
    await startSshd(join(work, 'hostkey2'));
    const before = readFileSync(join(opts.remoteRoot!, 'etc/nftables.conf'), 'utf8');
    await assert.rejects(pushBundles(opts), (e: unknown) => {
      assert.ok(e instanceof VigilError);
      assert.equal(e.code, 'HOST_KEY_CHANGED');
      assert.match(e.hint ?? '', new RegExp(`ssh-keygen -R '\\[127\\.0\\.0\\.1\\]:${port}'`));
      return true;
    });
    assert.equal(readFileSync(join(opts.remoteRoot!, 'etc/nftables.conf'), 'utf8'), before);
  });
});

describe('push: what is checked before any connection', () => {
  let work: string;
  let out: string;
  before(() => {
    work = tempDir('push-pre');
    out = join(work, 'plan');
    planFleet(join(EXAMPLES_DIR, 'cosmos-sentries.yaml'), { out, state: join(work, 'state') });
  });
  after(() => removeDir(work));

  it('reads host addresses from terraform output -json', () => {
    const fake = join(work, 'terraform');
    writeFileSync(
      fake,
      `#!/bin/sh\n[ "$1 $2" = "output -json" ] || exit 3\necho '{"public_ipv4":{"sensitive":false,"type":["object",{}],"value":{"validator":"203.0.113.5","monitor":"2001:db8::5"}}}'\n`,
      { mode: 0o755 },
    );
    const a = terraformAddresses(fake, work);
    assert.deepEqual(
      [...a.entries()],
      [
        ['validator', '203.0.113.5'],
        ['monitor', '2001:db8::5'],
      ],
    );
    const broken = join(work, 'terraform-broken');
    writeFileSync(broken, '#!/bin/sh\necho "no state" >&2\nexit 1\n', { mode: 0o755 });
    assert.throws(
      () => terraformAddresses(broken, work),
      (e: unknown) => e instanceof VigilError && e.code === 'TERRAFORM_FAILED',
    );
  });

  it('refuses unknown --hosts, hosts without an address, and a missing agent', async () => {
    const base = {
      out,
      state: join(work, 'state'),
      addresses: new Map([['validator', '203.0.113.5']]),
      env: { ...process.env, SSH_AUTH_SOCK: '/nonexistent' },
    };
    await assert.rejects(pushBundles({ ...base, hosts: ['nope'] }), /--hosts names nope/);
    await assert.rejects(
      pushBundles({ ...base, hosts: ['monitor'] }),
      (e: unknown) => e instanceof VigilError && e.code === 'ADDRESS_UNKNOWN',
    );
    await assert.rejects(
      pushBundles({ ...base, hosts: ['validator'], env: { PATH: process.env.PATH } }),
      (e: unknown) => e instanceof VigilError && e.code === 'NO_SSH_AGENT',
    );
  });

  it('writes IPv6 peer endpoints in brackets and leaves out peers without an address', () => {
    const m = readManifest(out, 'validator');
    const text = endpointsFile(
      m,
      new Map([
        ['monitor', '2001:db8::5'],
        ['sentry-do', '198.51.100.7'],
      ]),
    );
    const lines = text.trim().split('\n');
    assert.equal(lines.length, 2);
    assert.ok(lines.some((l) => l.endsWith(` [2001:db8::5]:${m.wireguard.port}`)));
    assert.ok(lines.some((l) => l.endsWith(` 198.51.100.7:${m.wireguard.port}`)));
  });
});
