import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ENTRY } from '../helpers/paths.js';

const DEVNET = `name: cli-chaos
chains:
  - family: cometbft
    chainId: cli-cmt
    blockMs: 300
    nodes: 2
    conflictingProposals: true
`;

test('vigil chaos prints a report, writes it as JSON (--json-out) or prints only JSON (--json), and refuses etcd faults on SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-chaos-cli-'));
  try {
    const file = join(dir, 'devnet.yaml');
    writeFileSync(file, DEVNET);
    const json = join(dir, 'report.json');
    const args = [CLI_ENTRY, 'chaos', file, '--work-dir', join(dir, 'work')];
    const r = spawnSync(
      process.execPath,
      [...args, '--duration', '4', '--interval', '300', '--max-fault', '600', '--json-out', json],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /chaos report \(seed 1, 4 s, sqlite store\)/);
    assert.match(r.stdout, /EQUIVOCATIONS {5}0/);
    assert.doesNotMatch(r.stdout, /etcd-kill/);
    const report = JSON.parse(readFileSync(json, 'utf8')) as {
      faults: number;
      devnet: { equivocations: number; chains: Record<string, { family: string }> };
    };
    assert.equal(report.devnet.equivocations, 0);
    assert.equal(report.devnet.chains['cli-cmt']!.family, 'cometbft');

    // --json: standard output is the JSON report and nothing else, as with `vigil up --json`.
    const j = spawnSync(
      process.execPath,
      [...args, '--duration', '2', '--interval', '300', '--max-fault', '600', '--json'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(j.status, 0, j.stderr);
    const printed = JSON.parse(j.stdout) as typeof report & { seed: number };
    assert.equal(printed.seed, 1);
    assert.equal(printed.devnet.equivocations, 0);
    assert.doesNotMatch(j.stdout, /chaos report/);

    const bad = spawnSync(process.execPath, [...args, '--duration', '1', '--kinds', 'etcd-kill'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /CHAOS_FAULT_NEEDS_ETCD/);
    assert.match(bad.stderr, /sqlite store/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
