/**
 * `vigil registry` as real processes: three `registry run` validators writing through a real
 * three-member etcd cluster (one member each, as in examples/registry/), two `registry run`
 * peers; submissions with `registry submit`, reads with `registry get|list`, the validator set
 * with `registry validators`; a spoofing submission against the validator processes; bad
 * config files; SIGTERM. Every wait is a bounded poll.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { multiaddr } from '@multiformats/multiaddr';
import { Registry } from 'prom-client';
import { peerIdFromEd25519 } from '../../src/registry/peer-id.js';
import { createRegistryNode } from '../../src/registry/node.js';
import { encodeSubmission, signSubmission, validatorSet } from '../../src/registry/record.js';
import { registryKey } from '../../src/registry/store-etcd.js';
import { submitToValidator } from '../../src/registry/submit.js';
import { EtcdTestCluster, etcdSkip, freePort } from '../helpers/etcd-cluster.js';
import { tempDir } from '../helpers/guard-fixtures.js';
import { CLI_ENTRY } from '../helpers/paths.js';
import { keyOf } from './fixtures.js';
import { liveContent, seedOf } from './network-fixture.js';

const skip = etcdSkip();
const PREFIX = '/vigil-registry-cli/';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `vigil …` to completion; fails the test if it is still running after `ms`. */
function vigil(args: readonly string[], ms = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_ENTRY, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`vigil ${args.join(' ')}: still running after ${ms} ms\n${stderr}`));
    }, ms);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // Let the pipes drain.
      setImmediate(() => resolve({ code, signal, stdout, stderr }));
    });
  });
}

interface NodeProc {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly lines: Array<Record<string, unknown>>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  http: string;
  peerId: string;
}

/** Starts `vigil registry run --config <config>` and waits for its "started" line (bounded). */
async function startNode(name: string, config: string, ms = 60_000): Promise<NodeProc> {
  const proc = spawn(process.execPath, [CLI_ENTRY, 'registry', 'run', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    proc.once('exit', (code, signal) => r({ code, signal })),
  );
  const node: NodeProc = { name, proc, lines, exited, http: '', peerId: '' };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name}: no "started" line within ${ms} ms\n${stderr}`)),
      ms,
    );
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before starting\n${stderr}`));
    });
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      lines.push(rec);
      if (typeof rec.msg === 'string' && /^registry (validator|peer) started$/.test(rec.msg)) {
        node.http = String(rec.http);
        node.peerId = String(rec.peerId);
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return node;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every 200 ms until it answers something other than undefined; fails after `ms`. */
async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms = 30_000,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(200);
  }
  assert.fail(`not within ${ms} ms: ${what}${last ? ` (last error: ${String(last)})` : ''}`);
}

function writeSeed(path: string, tag: number): void {
  writeFileSync(path, Buffer.from(seedOf(tag)).toString('hex') + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** YAML is a superset of JSON: the configs are written as JSON documents. */
function writeConfig(path: string, doc: Record<string, unknown>): string {
  writeFileSync(path, JSON.stringify(doc, null, 2) + '\n');
  return path;
}

describe('vigil registry (processes, etcd)', { skip, timeout: 300_000 }, () => {
  let dir: string;
  let cleanup: () => void;
  let cluster: EtcdTestCluster;
  const nodes: NodeProc[] = [];
  const V = [100, 101, 102];
  const P = [1, 2];
  const OUTSIDER = 3;
  const id = (tag: number) => peerIdFromEd25519(keyOf(tag).publicKey);
  const configs = new Map<number, string>();
  let validatorAddrs: string[];

  before(async () => {
    ({ dir, cleanup } = tempDir('vigil-registry-cli-'));
    cluster = await EtcdTestCluster.start({ size: 3 });
    const ports = await Promise.all(V.map(() => freePort()));
    // Fixed HTTP ports, so `get|list --config` find each node's listener from its file.
    const httpPorts = new Map<number, number>();
    for (const t of [...V, ...P, OUTSIDER]) httpPorts.set(t, await freePort());
    validatorAddrs = V.map((t, i) => `/ip4/127.0.0.1/tcp/${ports[i]}/p2p/${id(t)}`);
    const common = (tag: number) => {
      const keyFile = join(dir, `${tag}.key`);
      writeSeed(keyFile, tag);
      return {
        identity: { keyFile },
        dataDir: join(dir, `data-${tag}`),
        bootstrap: validatorAddrs,
        validators: { members: V.map((t) => ({ peerId: id(t) })) },
        http: { host: '127.0.0.1', port: httpPorts.get(tag)! },
        log: { level: 'info', format: 'json' },
        record: {
          role: 'worker',
          capabilities: ['oracle'],
          addresses: ['/ip4/127.0.0.1/tcp/4001'],
        },
      };
    };
    V.forEach((tag, i) => {
      const endpoints = [cluster.endpoints[i]!, ...cluster.endpoints.filter((_, j) => j !== i)];
      configs.set(
        tag,
        writeConfig(join(dir, `v${i}.yaml`), {
          role: 'validator',
          ...common(tag),
          listen: [`/ip4/127.0.0.1/tcp/${ports[i]}`],
          store: { engine: 'etcd', endpoints, prefix: PREFIX },
          // The two peers may submit; the outsider has a valid key and config but is not admitted.
          admission: { mode: 'allowList', peers: P.map(id) },
        }),
      );
    });
    for (const tag of [...P, OUTSIDER])
      configs.set(
        tag,
        writeConfig(join(dir, `p${tag}.yaml`), {
          role: 'peer',
          ...common(tag),
          listen: ['/ip4/127.0.0.1/tcp/0'],
        }),
      );
  });

  after(async () => {
    for (const n of nodes)
      if (n.proc.exitCode === null && n.proc.signalCode === null)
        process.kill(n.proc.pid!, 'SIGKILL');
    await cluster?.close();
    cleanup?.();
  });

  it('init creates the store identity on the etcd cluster, once', async () => {
    const first = await vigil(['registry', 'init', '--config', configs.get(V[0]!)!]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`etcd store under ${PREFIX} ready: store [0-9a-f-]{36}`));
    const again = await vigil(['registry', 'init', '--config', configs.get(V[1]!)!]);
    assert.equal(again.code, 0, again.stderr);
    // The same store identity: the second init found it and changed nothing.
    assert.equal(again.stdout.split('store ').pop(), first.stdout.split('store ').pop());
  });

  it('three validators and two peers start and report ready per component', async () => {
    const started = await Promise.all([
      ...V.map((t, i) => startNode(`v${i}`, configs.get(t)!)),
      ...P.map((t) => startNode(`p${t}`, configs.get(t)!)),
    ]);
    nodes.push(...started);
    for (const n of nodes) {
      const body = await eventually(`${n.name} /readyz is 200`, async () => {
        const res = await fetch(`${n.http}/readyz`);
        return res.status === 200
          ? ((await res.json()) as { components: Record<string, { ok: boolean }> })
          : undefined;
      });
      const expected = n.name.startsWith('v')
        ? ['dht', 'gossip', 'store', 'submission']
        : ['dht', 'gossip'];
      assert.deepEqual(Object.keys(body.components).sort(), expected);
      const metrics = await (await fetch(`${n.http}/metrics`)).text();
      assert.match(metrics, /^vigil_registry_peers \d+$/m);
      if (n.name.startsWith('v')) assert.match(metrics, /vigil_registry_submissions_total/);
    }
    const probe = await vigil([
      'registry',
      'validators',
      '--config',
      configs.get(P[0]!)!,
      '--json',
    ]);
    assert.equal(probe.code, 0, probe.stderr);
    const set = JSON.parse(probe.stdout) as {
      epoch: string;
      quorum: number;
      validators: Array<{ peerId: string; reachable: boolean }>;
    };
    assert.equal(set.quorum, 2);
    assert.equal(set.epoch, '0');
    assert.deepEqual(
      set.validators.map((v) => [v.peerId, v.reachable]),
      V.map((t) => [id(t), true]),
    );
  });

  it('a peer submits with the CLI; every node returns the record with a quorum of countersignatures', async () => {
    const p = P[0]!;
    const r = await vigil([
      'registry',
      'submit',
      '--config',
      configs.get(p)!,
      '--capability',
      'oracle',
      '--capability',
      'archive',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      peerId: id(p),
      seq: '1',
      duplicate: false,
      epoch: '0',
    });
    // It went through etcd: the record is under the registry prefix on the cluster.
    const c = cluster.client();
    try {
      const { kv } = await c.get(registryKey(PREFIX, id(p)));
      assert.ok(kv, 'the record is stored in etcd');
    } finally {
      c.close();
    }
    const validatorIds = V.map(id);
    for (const n of nodes) {
      const rec = await eventually(`${n.name} has seq 1 with a quorum`, async () => {
        const g = await vigil(['registry', 'get', id(p), '--url', n.http, '--json']);
        if (g.code !== 0) return undefined;
        const j = JSON.parse(g.stdout) as {
          seq: string;
          countersignedBy: string[];
          capabilities: string[];
        };
        return j.seq === '1' && j.countersignedBy.length >= 2 ? j : undefined;
      });
      assert.deepEqual(rec.capabilities, ['archive', 'oracle']);
      for (const v of rec.countersignedBy) assert.ok(validatorIds.includes(v), v);
    }
    // A second submission replaces it (seq 2) and keeps the flags; `list` shows it.
    const r2 = await vigil(['registry', 'submit', '--config', configs.get(p)!, '--role', 'relay']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(r2.stdout, `committed ${id(p)} seq 2, validator-set epoch 0\n`);
    await eventually('p2 lists seq 2', async () => {
      const l = await vigil(['registry', 'list', '--config', configs.get(P[1]!)!, '--json']);
      const rows = JSON.parse(l.stdout) as Array<{ peerId: string; seq: string; role: string }>;
      const row = rows.find((x) => x.peerId === id(p));
      return row?.seq === '2' && row.role === 'relay' ? true : undefined;
    });
    const text = await vigil(['registry', 'get', id(p), '--config', configs.get(V[2]!)!]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^seq: +2$/m);
    assert.match(text.stdout, /^countersigned: [23] of quorum 2$/m);
  });

  it('a spoofing submission is refused with its code; a peer not admitted is refused by the CLI', async () => {
    // p2's libp2p identity sends p1's genuine self-signed record to a validator process.
    const spoofer = await createRegistryNode({
      seed: seedOf(P[1]!),
      listen: [],
      validators: validatorSet(V.map((t) => keyOf(t).publicKey)),
      metrics: new Registry(),
    });
    try {
      const victim = keyOf(P[0]!);
      const bytes = encodeSubmission(
        signSubmission(liveContent(victim, { prevSeq: 2n, flags: 0 }), victim),
      );
      await assert.rejects(
        submitToValidator(spoofer, multiaddr(validatorAddrs[1]!), bytes),
        (err: { code?: string }) => err.code === 'REGISTRY_SUBJECT_MISMATCH',
      );
    } finally {
      await spoofer.stop();
    }
    const get = await vigil(['registry', 'get', id(P[0]!), '--url', nodes[1]!.http, '--json']);
    assert.equal((JSON.parse(get.stdout) as { seq: string }).seq, '2', 'nothing was committed');
    const outsider = await vigil(['registry', 'submit', '--config', configs.get(OUTSIDER)!]);
    assert.equal(outsider.code, 1);
    assert.match(outsider.stderr, /^vigil: error \[REGISTRY_NOT_ADMITTED\]: .* is not admitted/m);
    assert.doesNotMatch(outsider.stderr, /\n\s+at /, 'no stack trace');
  });

  it('bad config files give precise errors and exit codes', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      [
        'role: validatr',
        'identity: { keyFile: ./nope.key }',
        'dataDir: ./d',
        'validators:',
        '  members: [{ peerId: 12D3KooWnotapeer }]',
        '  quorum: 2',
        'http: { host: 127.0.0.1, port: 70000 }',
        '',
      ].join('\n'),
    );
    const r = await vigil(['registry', 'run', '--config', bad]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\[CONFIG_INVALID\]/);
    assert.match(r.stderr, /bad\.yaml:1:7: role: expected `validator` or `peer`/);
    assert.match(r.stderr, /bad\.yaml:5:\d+: validators\.members\[0\]\.peerId: .*not the peer id/);
    assert.match(r.stderr, /bad\.yaml:6:\d+: validators\.quorum: the quorum \(2\) is larger/);
    assert.match(r.stderr, /bad\.yaml:7:\d+: http\.port: /);

    // A validator without a store; a peer with one.
    const noStore = writeConfig(join(dir, 'nostore.yaml'), {
      role: 'validator',
      identity: { keyFile: './k' },
      dataDir: './d',
      validators: { members: [{ peerId: id(100) }] },
    });
    const r2 = await vigil(['registry', 'run', '--config', noStore]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /nostore\.yaml:1:1: store: a validator needs `store`/);

    // A key file readable by others is refused before it is read.
    const loose = join(dir, 'loose.key');
    writeSeed(loose, 50);
    chmodSync(loose, 0o644);
    const looseCfg = writeConfig(join(dir, 'loose.yaml'), {
      role: 'peer',
      identity: { keyFile: loose },
      dataDir: join(dir, 'loose'),
      validators: { members: [{ peerId: id(100) }] },
    });
    const r3 = await vigil(['registry', 'run', '--config', looseCfg]);
    assert.equal(r3.code, 1);
    assert.match(
      r3.stderr,
      /\[KEY_FILE_INVALID\]: key file .*loose\.key: is accessible by group or others \(mode 644\) \(run: chmod 600/,
    );

    // A validator whose key is not in the set.
    const stray = writeConfig(join(dir, 'stray.yaml'), {
      role: 'validator',
      identity: { keyFile: join(dir, `${P[0]}.key`) },
      dataDir: join(dir, 'stray'),
      validators: { members: V.map((t) => ({ peerId: id(t) })) },
      store: { engine: 'sqlite', path: join(dir, 'stray.db') },
    });
    const r4 = await vigil(['registry', 'run', '--config', stray]);
    assert.equal(r4.code, 1);
    assert.match(
      r4.stderr,
      /\[REGISTRY_CONFIG\]: this validator's key \(peer id 12D3KooW\w+\) is not in validators\.members/,
    );

    // Submit with nowhere to send it.
    const nowhere = writeConfig(join(dir, 'nowhere.yaml'), {
      role: 'peer',
      identity: { keyFile: join(dir, `${P[0]}.key`) },
      dataDir: join(dir, 'nowhere'),
      validators: { members: [{ peerId: id(100) }] },
    });
    const r5 = await vigil(['registry', 'submit', '--config', nowhere]);
    assert.equal(r5.code, 1);
    assert.match(r5.stderr, /\[REGISTRY_CONFIG\]: no validator address to submit to/);

    for (const x of [r, r2, r3, r4, r5])
      assert.doesNotMatch(x.stderr, /\n\s+at /, 'no stack trace');
  });

  it('SIGTERM stops every node cleanly (exit 0)', async () => {
    for (const n of [...nodes].reverse()) {
      process.kill(n.proc.pid!, 'SIGTERM');
      const timeout = sleep(30_000).then(() => 'timeout' as const);
      const done = await Promise.race([n.exited, timeout]);
      assert.notEqual(done, 'timeout', `${n.name} still running 30 s after SIGTERM`);
      assert.deepEqual(done, { code: 0, signal: null }, n.name);
      assert.ok(
        n.lines.some((l) => l.msg === 'stopped'),
        `${n.name} logged "stopped"`,
      );
    }
  });
});
