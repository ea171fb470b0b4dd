/**
 * `vigil registry set-propose | set-sign | set-commit | set-show` as real processes on a
 * SQLite registry (the one-host setup): a change needs a quorum of the current set's
 * signatures, a stale or edited proposal is refused, and `registry run` accepts a validator
 * added by the change while still refusing a key in no set.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { peerIdFromEd25519 } from '../../src/registry/peer-id.js';
import { tempDir } from '../helpers/guard-fixtures.js';
import { CLI_ENTRY } from '../helpers/paths.js';
import { keyOf } from './fixtures.js';
import { seedOf } from './network-fixture.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

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
    child.on('exit', (code) => {
      clearTimeout(timer);
      setImmediate(() => resolve({ code, stdout, stderr }));
    });
  });
}

const id = (tag: number) => peerIdFromEd25519(keyOf(tag).publicKey);

describe('vigil registry set-* (processes, SQLite)', { timeout: 120_000 }, () => {
  let dir: string;
  let cleanup: () => void;
  const configs = new Map<number, string>();
  before(() => {
    ({ dir, cleanup } = tempDir('vigil-registry-set-cli-'));
    for (const tag of [100, 101, 102, 103]) {
      const keyFile = join(dir, `${tag}.key`);
      writeFileSync(keyFile, Buffer.from(seedOf(tag)).toString('hex') + '\n', { mode: 0o600 });
      chmodSync(keyFile, 0o600);
      const path = join(dir, `v${tag}.yaml`);
      // YAML is a superset of JSON.
      writeFileSync(
        path,
        JSON.stringify({
          role: 'validator',
          identity: { keyFile },
          dataDir: join(dir, `data-${tag}`),
          validators: { members: [100, 101, 102].map((t) => ({ peerId: id(t) })) },
          store: { engine: 'sqlite', path: join(dir, 'registry.db') },
          log: { level: 'error', format: 'json' },
        }),
      );
      configs.set(tag, path);
    }
  });
  after(() => cleanup?.());

  it('a quorum of the current set signs and commits a change; one validator alone cannot', async () => {
    const c = (tag: number) => configs.get(tag)!;
    assert.equal((await vigil(['registry', 'init', '-c', c(100)])).code, 0);
    const file = join(dir, 'add-103.json');
    const proposed = await vigil([
      'registry',
      'set-propose',
      '-c',
      c(100),
      '--add',
      id(103),
      '--out',
      file,
    ]);
    assert.equal(proposed.code, 0, proposed.stderr);
    assert.match(proposed.stdout, /proposal for epoch 1 .*: 4 validators, quorum 3/);

    // The added validator cannot sign (it is not in the current set), nor run yet.
    const outsider = await vigil(['registry', 'set-sign', '-c', c(103), file]);
    assert.notEqual(outsider.code, 0);
    assert.match(outsider.stderr, /REGISTRY_UNKNOWN_SIGNER/);
    const early = await vigil(['registry', 'run', '-c', c(103)]);
    assert.equal(early.code, 1);
    assert.match(
      early.stderr,
      /\[REGISTRY_CONFIG\]: .* is not in validators\.members, nor in the validator set of epoch 0/,
    );

    assert.equal((await vigil(['registry', 'set-sign', '-c', c(100), file])).code, 0);
    const alone = await vigil(['registry', 'set-commit', '-c', c(100), file]);
    assert.notEqual(alone.code, 0);
    assert.match(alone.stderr, /REGISTRY_NO_QUORUM/);

    // An edited readable field is caught before anything is signed.
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { quorum: number };
    writeFileSync(join(dir, 'edited.json'), JSON.stringify({ ...doc, quorum: 1 }));
    const edited = await vigil(['registry', 'set-sign', '-c', c(101), join(dir, 'edited.json')]);
    assert.match(edited.stderr, /REGISTRY_PROPOSAL/);

    const second = await vigil(['registry', 'set-sign', '-c', c(101), file]);
    assert.match(second.stdout, /2 signature\(s\) so far/);
    const committed = await vigil(['registry', 'set-commit', '-c', c(101), file]);
    assert.equal(committed.code, 0, committed.stderr);
    assert.match(committed.stdout, /validator set epoch 1 committed/);
    assert.match(
      (await vigil(['registry', 'set-commit', '-c', c(102), file])).stdout,
      /epoch 1 was already committed/,
    );
    // The same proposal can no longer be signed: it is not on top of the current set.
    assert.match(
      (await vigil(['registry', 'set-sign', '-c', c(102), file])).stderr,
      /REGISTRY_EPOCH_STALE/,
    );

    const shown = await vigil(['registry', 'set-show', '-c', c(102), '--json']);
    const sets = JSON.parse(shown.stdout) as Array<{
      epoch: string;
      members: string[];
      quorum: number;
      signedBy: string[];
    }>;
    assert.deepEqual(
      sets.map((s) => [s.epoch, s.members.length, s.quorum, s.signedBy.length]),
      [
        ['0', 3, 2, 0],
        ['1', 4, 3, 2],
      ],
    );
    assert.ok(sets[1]!.members.includes(id(103)));
  });
});
