/**
 * `npm run test:vm` (on demand, never in CI: scripts/run-tests.mjs runs *.test.js only): one
 * rendered host booted for real. A debootstrapped Debian 12 image (test/vm/image.ts) boots
 * under qemu-system-x86_64 with the host's rendered cloud-init user data as a NoCloud seed;
 * the Vigil release tarball `npm run release` makes, and the other artifacts the plan pins,
 * are served over HTTP from this machine (10.0.2.2 from the guest) with their real sha256 in
 * a VM copy of the topology; `vigil apply --push-only` then delivers the host's bundle over
 * SSH, so the bundle's install.sh runs on a real Debian host. Checked over SSH: cloud-init
 * finished without errors, the bootstrap then the fleet nftables ruleset is loaded, every unit
 * the bundle enables is enabled, the installed vigil reports the built version, a second push
 * changes nothing.
 *
 * Software emulation (TCG) by default: nested KVM hangs on the machine this was written on
 * although /dev/kvm exists. VIGIL_VM_KVM=1 uses KVM.
 *
 * Environment: VIGIL_VM_CACHE (default ~/.cache/vigil-vm), VIGIL_VM_MIRROR (default
 * http://deb.debian.org/debian), VIGIL_VM_TOPOLOGY (default
 * examples/topologies/cosmos-sentries.yaml), VIGIL_VM_HOST (default validator),
 * VIGIL_VM_TIMEOUT_MIN (whole test, default 75), VIGIL_VM_KEEP=1 keeps the run's disk.
 *
 * The chain node: the examples pin upstream release binaries (gaiad from GitHub here) that
 * this machine cannot download. The VM topology pins a stand-in in their place — a shell
 * script that logs the arguments the rendered unit gives it and sleeps — served with its real
 * sha256, so what is proven is the path the real binary takes (verified fetch, install, user,
 * unit enabled and started with the rendered flags), not that gaiad syncs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, stringify } from 'yaml';
import { buildRelease } from '../../src/release/build.js';
import { buildImage, run } from './image.js';

const ROOT = process.cwd();
const CLI = join(ROOT, 'bin', 'vigil.js');
const env = process.env;
const CACHE = env.VIGIL_VM_CACHE ?? join(homedir(), '.cache', 'vigil-vm');
const MIRROR = env.VIGIL_VM_MIRROR ?? 'http://deb.debian.org/debian';
const TOPOLOGY = resolve(env.VIGIL_VM_TOPOLOGY ?? 'examples/topologies/cosmos-sentries.yaml');
const HOST = env.VIGIL_VM_HOST ?? 'validator';
const TIMEOUT_MS = Number(env.VIGIL_VM_TIMEOUT_MIN ?? 75) * 60_000;
const KVM = env.VIGIL_VM_KVM === '1';
/** The guest's root disk, in GB (the image is 5G): the `disk:` the VM's host asks for. */
const VM_DISK_GB = 4;
/** What the guest sees of this machine in QEMU's user networking. */
const GUEST_GATEWAY = '10.0.2.2';

const log = (line: string) => console.log(`[vm ${new Date().toISOString().slice(11, 19)}] ${line}`);
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createNetServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? res(a.port) : rej(new Error('no port'))));
    });
  });
}

/** A child process with a deadline, never blocking the event loop (the artifact server runs in it). */
function runAsync(
  cmd: string,
  args: string[],
  opts: { timeoutMs: number; env?: NodeJS.ProcessEnv; input?: string },
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { env: opts.env ?? env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      rej(e);
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      res({ status, stdout, stderr });
    });
  });
}

interface Served {
  readonly path: string;
  readonly file: string;
}

/** Serves the artifacts by path; every request is recorded (the guest's downloads are a check). */
function serveArtifacts(
  files: Map<string, Served>,
  requests: string[],
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const f = files.get(req.url ?? '');
    requests.push(`${req.method} ${req.url} ${f ? 200 : 404}`);
    if (!f || req.method !== 'GET') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    createReadStream(f.file).pipe(res);
  });
  return new Promise((res, rej) => {
    server.on('error', rej);
    // The guest reaches it as 10.0.2.2, which QEMU's slirp maps to this machine's loopback.
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      if (typeof a === 'object' && a) res({ server, port: a.port });
      else rej(new Error('no port'));
    });
  });
}

interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** `dport` numbers of an nftables text, single ports and sets alike. */
export function dports(text: string): Set<number> {
  const out = new Set<number>();
  for (const m of text.matchAll(/dport\s+(\{[^}]*\}|\d+)/g))
    for (const n of m[1]!.matchAll(/\d+/g)) out.add(Number(n[0]));
  return out;
}

/** Units the bundle's install.sh enables (`'systemctl' 'enable' '--now' …` lines). */
export function enabledUnits(installSh: string): string[] {
  const units: string[] = [];
  for (const line of installSh.split('\n')) {
    const m = line.match(/'systemctl' 'enable' '--now' (.*)$/);
    if (m) for (const u of m[1]!.matchAll(/'([^']+)'/g)) units.push(u[1]!);
  }
  return units;
}

test(
  'one rendered host boots in a VM, cloud-init finishes and the pushed bundle installs',
  { timeout: TIMEOUT_MS },
  async () => {
    const started = Date.now();
    const deadline = started + TIMEOUT_MS - 60_000;
    const runDir = join(CACHE, 'runs', new Date().toISOString().replace(/[:.]/g, '-'));
    mkdirSync(runDir, { recursive: true });
    log(`run directory ${runDir}`);
    const checks: Check[] = [];
    const check = (name: string, ok: boolean, detail: string) => {
      checks.push({ name, ok, detail });
      log(`${ok ? 'PASS' : 'FAIL'} ${name}: ${detail}`);
    };
    const timings: Record<string, number> = {};
    const time = (name: string, since: number) => {
      timings[name] = Math.round((Date.now() - since) / 1000);
    };

    let qemu: ChildProcess | undefined;
    let agent: ChildProcess | undefined;
    let server: Server | undefined;
    const cleanup = () => {
      // By pid, whatever happened: nothing of this run outlives it.
      if (qemu?.pid && qemu.exitCode === null && qemu.signalCode === null) qemu.kill('SIGKILL');
      if (agent?.pid && agent.exitCode === null && agent.signalCode === null) agent.kill('SIGTERM');
      server?.closeAllConnections();
      server?.close();
    };
    const onSignal = (sig: NodeJS.Signals) => {
      log(`${sig}: stopping qemu, the ssh agent and the artifact server`);
      cleanup();
      process.exit(130);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    process.once('exit', cleanup);

    try {
      // 1. The image (cached).
      let t = Date.now();
      const image = buildImage({ cacheDir: CACHE, mirror: MIRROR, log });
      time('image', t);
      log(
        image.cached
          ? `image from cache: ${image.disk}`
          : `image built: debootstrap ${image.debootstrapSeconds.toFixed(0)} s, image ${image.imageSeconds.toFixed(0)} s`,
      );

      // 2. The release tarball, built from this checkout as `npm run release` builds it.
      t = Date.now();
      const release = buildRelease({ root: ROOT, outDir: join(runDir, 'release') });
      time('release', t);
      log(
        `release ${basename(release.tarball)} sha256 ${release.sha256} (${(release.bytes / 1048576).toFixed(1)} MiB)`,
      );

      // 3. The other artifacts the plan pins, and the server for all of them.
      const artifacts = join(runDir, 'artifacts');
      mkdirSync(artifacts);
      const nodeStandIn = join(artifacts, 'node-stand-in');
      writeFileSync(
        nodeStandIn,
        '#!/bin/sh\n# Stand-in for the chain node binary (the upstream release cannot be downloaded here).\n' +
          'echo "vigil VM test stand-in for the chain node, started as: $0 $*"\nexec sleep infinity\n',
        { mode: 0o755 },
      );
      const genesis = join(artifacts, 'genesis.json');
      const requests: string[] = [];
      const served = new Map<string, Served>();
      const serve = (file: string) => {
        const path = `/${basename(file)}`;
        served.set(path, { path, file });
        return path;
      };
      const s = await serveArtifacts(served, requests);
      server = s.server;
      const base = `http://${GUEST_GATEWAY}:${s.port}`;
      log(`artifact server on 127.0.0.1:${s.port} (${base} from the guest)`);

      // 4. The VM copy of the topology: our SSH key, the guest's view of us as the SSH source,
      //    a free port for SSH (forwarded as-is), every artifact pinned to what we serve.
      const sshPort = await freePort();
      const key = join(runDir, 'id_ed25519');
      run(
        'ssh-keygen',
        ['-q', '-t', 'ed25519', '-N', '', '-C', 'vigil-vm-test', '-f', key],
        30_000,
      );
      const topo = parse(readFileSync(TOPOLOGY, 'utf8')) as Record<string, any>;
      topo.ssh = {
        ...topo.ssh,
        port: sshPort,
        keys: [readFileSync(`${key}.pub`, 'utf8').trim()],
        allowFrom: [`${GUEST_GATEWAY}/32`],
      };
      // The VM's one disk is what the host gets: no cloud volume exists to attach, so the host
      // asks for no more than the image holds (lint warns that this is below the chain's need).
      for (const h of topo.hosts as Array<Record<string, any>>)
        if (h.name === HOST) h.disk = VM_DISK_GB;
      const pin = (a: Record<string, any>, file: string) => {
        a.url = `${base}${serve(file)}`;
        a.sha256 = sha256(file);
      };
      const agentArtifact = topo.vigil.agent as Record<string, any>;
      pin(agentArtifact, release.tarball);
      agentArtifact.version = release.manifest.version;
      agentArtifact.binary = `${basename(release.tarball, '.tar.gz')}/bin/vigil`;
      const pinned: string[] = [basename(release.tarball)];
      for (const chain of topo.chains as Array<Record<string, any>>) {
        for (const field of ['binary', 'dcrd', 'dcrwallet']) {
          if (!chain[field]) continue;
          // One stand-in per binary name: vigil-fetch installs a plain file as bin/<binary>.
          const standIn = join(artifacts, `${chain.name}-${field}`);
          writeFileSync(standIn, readFileSync(nodeStandIn), { mode: 0o755 });
          pin(chain[field], standIn);
          chain[field].binary = basename(chain[field].binary);
          pinned.push(basename(standIn));
        }
        if (chain.genesis) {
          writeFileSync(
            genesis,
            JSON.stringify({ chain_id: chain.chainId, initial_height: '1' }) + '\n',
          );
          pin(chain.genesis, genesis);
          pinned.push(basename(genesis));
        }
      }
      // Grafana's tarball is the monitor's; this test boots one host and pins nothing unused.
      if (topo.monitoring?.grafana) delete topo.monitoring.grafana;
      const topologyFile = join(runDir, 'topology.yaml');
      writeFileSync(topologyFile, stringify(topo));

      // 5. The plan, as an operator renders it.
      t = Date.now();
      const plan = join(runDir, 'plan');
      const state = join(runDir, 'state');
      run(process.execPath, [CLI, 'plan', topologyFile, '--out', plan, '--state', state], 120_000);
      time('plan', t);
      const hostDir = join(plan, 'hosts', HOST);
      assert.ok(existsSync(join(hostDir, 'cloud-init.yaml')), `the plan has no host ${HOST}`);
      const installSh = readFileSync(join(hostDir, 'bundle', 'install.sh'), 'utf8');
      const renderedNft = readFileSync(join(hostDir, 'files', 'etc__nftables.conf'), 'utf8');

      // 6. The NoCloud seed: the rendered user data, unchanged.
      const seedDir = join(runDir, 'seed');
      mkdirSync(seedDir);
      writeFileSync(join(seedDir, 'user-data'), readFileSync(join(hostDir, 'cloud-init.yaml')));
      writeFileSync(
        join(seedDir, 'meta-data'),
        `instance-id: vigil-vm-${basename(runDir)}\nlocal-hostname: ${HOST}\n`,
      );
      const seed = join(runDir, 'seed.iso');
      run(
        'genisoimage',
        [
          '-quiet',
          '-output',
          seed,
          '-volid',
          'cidata',
          '-joliet',
          '-rock',
          join(seedDir, 'user-data'),
          join(seedDir, 'meta-data'),
        ],
        60_000,
      );
      const disk = join(runDir, 'disk.qcow2');
      run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', image.disk, disk], 60_000);

      // 7. Boot.
      const serial = join(runDir, 'serial.log');
      const qemuArgs = [
        ...(KVM ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg']),
        '-m',
        '2048',
        '-smp',
        '2',
        '-nodefaults',
        '-display',
        'none',
        '-no-reboot',
        '-serial',
        `file:${serial}`,
        '-kernel',
        image.kernel,
        '-initrd',
        image.initrd,
        '-append',
        'root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1',
        '-drive',
        `file=${disk},if=virtio,format=qcow2`,
        '-drive',
        `file=${seed},if=virtio,format=raw,readonly=on`,
        '-netdev',
        `user,id=net0,hostfwd=tcp:127.0.0.1:${sshPort}-:${sshPort}`,
        '-device',
        'virtio-net-pci,netdev=net0',
        '-device',
        'virtio-rng-pci',
      ];
      log(`qemu-system-x86_64 ${qemuArgs.join(' ')}`);
      const bootStart = Date.now();
      qemu = spawn('qemu-system-x86_64', qemuArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
      let qemuErr = '';
      qemu.stderr!.on('data', (d: Buffer) => (qemuErr += d.toString()));
      const serialText = () => (existsSync(serial) ? readFileSync(serial, 'utf8') : '');
      const alive = () => qemu!.exitCode === null && qemu!.signalCode === null;

      const knownHosts = join(runDir, 'known_hosts.test');
      const ssh = (command: string, timeoutMs = 300_000) =>
        runAsync(
          'ssh',
          [
            '-F',
            'none',
            '-i',
            key,
            '-o',
            'IdentitiesOnly=yes',
            '-o',
            'BatchMode=yes',
            '-o',
            `UserKnownHostsFile=${knownHosts}`,
            '-o',
            'StrictHostKeyChecking=accept-new',
            '-o',
            'ConnectTimeout=20',
            '-p',
            String(sshPort),
            'ops@127.0.0.1',
            command,
          ],
          { timeoutMs },
        );

      // Per-command deadlines are generous: under TCG on a busy machine one `cloud-init status`
      // took over a minute.
      // sshd listens on the topology's port once cloud-init's write_files has put its drop-in
      // in place (before ssh.service first starts), behind the bootstrap firewall: an SSH answer
      // there means the user data ran. Progress comes from the serial log.
      let lastNote = 0;
      for (;;) {
        assert.ok(
          alive(),
          `qemu exited (${qemu.exitCode ?? qemu.signalCode}): ${qemuErr.trim()}\n${serialText().slice(-3000)}`,
        );
        const text = serialText();
        assert.ok(!/Kernel panic/.test(text), `the guest kernel panicked:\n${text.slice(-3000)}`);
        assert.ok(
          Date.now() < deadline,
          `no SSH on the topology's port before the deadline:\n${text.slice(-3000)}`,
        );
        const r = await ssh('true', 120_000);
        if (r.status === 0) break;
        if (Date.now() - lastNote > 60_000) {
          lastNote = Date.now();
          const last =
            text
              .trim()
              .split('\n')
              .filter((l) => l.trim())
              .pop() ?? '(serial log empty)';
          log(
            `waiting for SSH (${Math.round((Date.now() - bootStart) / 1000)} s): ${last.slice(0, 160)}`,
          );
        }
        await sleep(10_000);
      }
      time('boot to ssh', bootStart);
      log(`SSH answers after ${timings['boot to ssh']} s`);

      // 8. cloud-init: done, no errors. cloud-init 22.4 reports `status: error` as soon as one
      //    stage has failed, with later stages still to run (so does `status --wait`): the
      //    end is result.json, written when the final stage is over.
      lastNote = 0;
      for (;;) {
        assert.ok(alive(), `qemu exited during cloud-init:\n${serialText().slice(-3000)}`);
        assert.ok(
          Date.now() < deadline,
          `cloud-init still running at the deadline:\n${serialText().slice(-3000)}`,
        );
        const st = await ssh('test -e /run/cloud-init/result.json', 300_000);
        if (st.status === 0) break;
        if (Date.now() - lastNote > 60_000) {
          lastNote = Date.now();
          const last =
            serialText()
              .split('\n')
              .filter((l) => /cloud-init\[/.test(l))
              .pop() ?? '';
          log(
            `cloud-init running (${Math.round((Date.now() - bootStart) / 1000)} s): ${last.slice(0, 160)}`,
          );
        }
        await sleep(15_000);
      }
      const ci = await ssh('cloud-init status --long', 300_000);
      time('boot to cloud-init done', bootStart);
      const result = await ssh('sudo cat /run/cloud-init/result.json');
      let ciErrors = 'unreadable';
      try {
        const parsed = JSON.parse(result.stdout) as { v1?: { errors?: unknown[] } };
        ciErrors = JSON.stringify(parsed.v1?.errors ?? 'missing');
      } catch {
        /* reported below */
      }
      check(
        'cloud-init finished',
        ci.status === 0 && /status: done/.test(ci.stdout) && ciErrors === '[]',
        `exit ${ci.status}; ${ci.stdout.trim().replace(/\n/g, ' | ')}; result.json errors ${ciErrors}`,
      );
      const bootRules = await ssh('sudo nft list ruleset');
      if (bootRules.status !== 0)
        log(`sudo nft list ruleset: exit ${bootRules.status}: ${bootRules.stderr.trim()}`);
      check(
        'bootstrap firewall loaded by cloud-init',
        /table inet vigil/.test(bootRules.stdout) &&
          new RegExp(
            `ip saddr ${GUEST_GATEWAY.replace(/\./g, '\\.')} tcp dport ${sshPort} accept`,
          ).test(bootRules.stdout),
        `table inet vigil, SSH ${sshPort} from ${GUEST_GATEWAY} only: ${dports(bootRules.stdout).size} dport(s) ${[...dports(bootRules.stdout)].join(',')}`,
      );

      // 9. The bundle, pushed by `vigil apply --push-only` with an SSH agent holding our key. The
      //    machine's address is what `terraform output -json` would report; a script prints it.
      const agentSock = join(runDir, 'agent.sock');
      agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
      for (let i = 0; i < 50 && !existsSync(agentSock); i++) await sleep(100);
      const agentEnv = { ...env, SSH_AUTH_SOCK: agentSock };
      const added = await runAsync('ssh-add', [key], { timeoutMs: 30_000, env: agentEnv });
      assert.equal(added.status, 0, `ssh-add: ${added.stderr}`);
      const terraform = join(runDir, 'terraform-output.sh');
      writeFileSync(
        terraform,
        `#!/bin/sh\n[ "$1" = output ] || exit 1\necho '${JSON.stringify({ public_ipv4: { value: { [HOST]: '127.0.0.1' } } })}'\n`,
        { mode: 0o755 },
      );
      const push = (label: string) =>
        runAsync(
          process.execPath,
          [CLI, 'apply', '--out', plan, '--push-only', '--hosts', HOST, '--state', state],
          {
            timeoutMs: Math.max(60_000, deadline - Date.now()),
            env: { ...agentEnv, VIGIL_TERRAFORM: terraform },
          },
        ).then((r) => {
          writeFileSync(
            join(runDir, `${label}.log`),
            `exit ${r.status}\n${r.stdout}\n--- stderr\n${r.stderr}`,
          );
          return r;
        });
      t = Date.now();
      const first = await push('push-1');
      time('first push', t);
      check(
        'vigil apply --push-only installed the bundle',
        first.status === 0 && /pushed 1 host\(s\); changed: /.test(first.stdout),
        `exit ${first.status} in ${timings['first push']} s; ${first.stdout.trim().split('\n').slice(-2).join(' | ')}${first.status === 0 ? '' : `\n${first.stderr.trim().split('\n').slice(-20).join('\n')}`}`,
      );

      // 10. What the bundle made of the host.
      const rules = await ssh('sudo nft list ruleset');
      const want = dports(renderedNft);
      const have = dports(rules.stdout);
      const missing = [...want].filter((p) => !have.has(p));
      const nftActive = await ssh('sudo systemctl is-active nftables');
      check(
        'fleet nftables ruleset loaded',
        /table inet vigil/.test(rules.stdout) &&
          missing.length === 0 &&
          nftActive.stdout.trim() === 'active',
        `nftables.service ${nftActive.stdout.trim() || nftActive.stderr.trim()}; rendered dports ${[...want].join(',')}; missing from the live ruleset: ${missing.join(',') || 'none'}`,
      );
      const units = enabledUnits(installSh);
      const enabled = await ssh(`sudo systemctl is-enabled ${units.join(' ')}`);
      const states = enabled.stdout.trim().split('\n');
      check(
        'units the bundle enables are enabled',
        units.length > 0 && states.length === units.length && states.every((x) => x === 'enabled'),
        units.map((u, i) => `${u}=${states[i] ?? '?'}`).join(' ') +
          (enabled.stderr.trim() ? `; stderr: ${enabled.stderr.trim()}` : ''),
      );
      const active = await ssh(`sudo systemctl is-active ${units.join(' ')}`);
      log(
        `(for the record) active: ${units.map((u, i) => `${u}=${active.stdout.trim().split('\n')[i] ?? '?'}`).join(' ')}`,
      );
      const version = await ssh('/opt/vigil/bin/vigil --version');
      check(
        'installed vigil is the built release',
        version.status === 0 && version.stdout.trim() === release.manifest.version,
        `/opt/vigil/bin/vigil --version → ${version.stdout.trim() || version.stderr.trim()} (built ${release.manifest.version})`,
      );
      const fetched = pinned.filter((p) => requests.includes(`GET /${p} 200`));
      check(
        'the guest downloaded every pinned artifact from this machine',
        fetched.length === pinned.length,
        `${fetched.length}/${pinned.length}: ${requests.join('; ')}`,
      );
      const nodeLog = await ssh(
        'sudo journalctl -b --no-pager -o cat -u "*-node.service" | grep stand-in | tail -n 3',
      );
      log(`(for the record) chain node unit: ${nodeLog.stdout.trim() || '(no stand-in output)'}`);
      const failed = await ssh('systemctl --failed --no-legend --plain');
      log(`(for the record) failed units: ${failed.stdout.trim().replace(/\n/g, ' | ') || 'none'}`);

      t = Date.now();
      const second = await push('push-2');
      time('second push', t);
      check(
        'a second push changes nothing',
        second.status === 0 && /every host was up to date/.test(second.stdout),
        `exit ${second.status} in ${timings['second push']} s; ${second.stdout.trim().split('\n').pop()}`,
      );

      const shutdown = await ssh('sudo systemctl poweroff', 30_000);
      void shutdown;
      for (let i = 0; i < 60 && alive(); i++) await sleep(1000);
      time('total', started);
      log(`timings (s): ${JSON.stringify(timings)}`);
      const failedChecks = checks.filter((c) => !c.ok);
      log(
        `${checks.length - failedChecks.length} passed, ${failedChecks.length} failed (VM checks)`,
      );
      assert.deepEqual(failedChecks, [], 'every VM check passes');
    } finally {
      cleanup();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('exit', cleanup);
      if (env.VIGIL_VM_KEEP !== '1') rmSync(join(runDir, 'disk.qcow2'), { force: true });
      log(`serial log and push logs kept in ${runDir}`);
    }
  },
);
