import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDevnet } from '../../src/devnet/devnet.js';
import { CLI_ENTRY } from '../helpers/paths.js';

test('vigil up runs the default devnet and reports no equivocation (--json on stdout, --json-out to a file)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-up-'));
  try {
    const r = spawnSync(
      process.execPath,
      [
        CLI_ENTRY,
        'up',
        '--work-dir',
        join(dir, 'work'),
        '--duration',
        '3.5',
        '--json',
        '--json-out',
        join(dir, 'report.json'),
      ],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as {
      agents: number;
      ticks: number;
      signed: number;
      signatures: number;
      equivocations: number;
      invalidSignatures: number;
      chains: Record<string, { family: string; signed: number; signatures: number }>;
      agentMetrics: Record<
        string,
        {
          error?: string;
          granted: number;
          lastSigned: Array<{ chainId: string; position: string; secondsAgo: number }>;
          refusals: Record<string, number>;
        }
      >;
    };
    assert.equal(report.agents, 3);
    assert.ok(report.ticks >= 4, `only ${report.ticks} positions ran`);
    assert.equal(report.equivocations, 0);
    assert.equal(report.invalidSignatures, 0);
    assert.ok(report.signed >= 1);
    const slot = report.chains['devnet-slot']!;
    const cometbft = report.chains['devnet-cometbft']!;
    // Three nodes try every slot with different blocks: exactly one signature per signed slot.
    assert.equal(slot.signatures, slot.signed);
    // CometBFT nodes ask for the same votes: several nodes may get the one signature.
    assert.equal(cometbft.family, 'cometbft');
    assert.ok(cometbft.signed >= 1, `no CometBFT height signed: ${JSON.stringify(cometbft)}`);
    assert.ok(cometbft.signatures >= cometbft.signed);
    // The signer metrics of every agent, read from its real /metrics before it stopped.
    assert.deepEqual(Object.keys(report.agentMetrics).sort(), ['node-1', 'node-2', 'node-3']);
    const metrics = Object.values(report.agentMetrics);
    for (const m of metrics) assert.equal(m.error, undefined, JSON.stringify(m));
    // One slot signature per signed slot, each granted by exactly one agent.
    const slotSigners = metrics.filter((m) =>
      m.lastSigned.some((l) => l.chainId === 'devnet-slot'),
    );
    assert.ok(slotSigners.length >= 1, JSON.stringify(report.agentMetrics));
    assert.ok(metrics.reduce((n, m) => n + m.granted, 0) >= slot.signatures + cometbft.signed);
    for (const m of slotSigners)
      assert.match(m.lastSigned.find((l) => l.chainId === 'devnet-slot')!.position, /^slot \d+$/);
    // The other nodes asked for the same slots and were refused (conflict), counted by reason.
    assert.ok(
      metrics.reduce((n, m) => n + Object.values(m.refusals).reduce((a, b) => a + b, 0), 0) >= 1,
      JSON.stringify(report.agentMetrics),
    );
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')), report);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('killing the agent that signs lets another node take over, still without equivocation', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-failover-'));
  try {
    const killed: string[] = [];
    const authors: Array<{ tick: bigint; author?: string }> = [];
    const report = await runDevnet({
      file: {
        name: 'failover',
        store: 'sqlite',
        chains: [{ family: 'slot', chainId: 'fo', slotMs: 250, nodes: 2 }],
      },
      workDir: dir,
      durationMs: 3000,
      onStarted: (control) => {
        setTimeout(() => {
          // A crash, not a shutdown: the node still points at its dead agent.
          control.killAgent(control.members[0]!);
          killed.push(control.members[0]!.name);
        }, 1000);
      },
      onTick: (o) => authors.push({ tick: o.tick, ...(o.author ? { author: o.author } : {}) }),
    });
    assert.deepEqual(killed, ['node-1']);
    assert.equal(report.equivocations, 0);
    const late = authors.slice(-3);
    assert.ok(
      late.length === 3 && late.every((a) => a.author === 'node-2'),
      `last ticks: ${JSON.stringify(late.map((a) => a.author))}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Ctrl-C in a terminal (SIGINT to the whole process group) still reads every agent’s metrics before stopping it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-up-int-'));
  try {
    // A group of its own, signalled as a whole: what a terminal does on Ctrl-C.
    const child = spawn(
      process.execPath,
      [CLI_ENTRY, 'up', '--work-dir', join(dir, 'work'), '--json'],
      {
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    // Running once the agents are up and a few positions were asked for (bounded wait).
    for (let i = 0; i < 150 && !/signed for/.test(stderr + stdout); i++)
      await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1500));
    process.kill(-child.pid!, 'SIGINT');
    const code = await exited;
    assert.equal(code, 0, stderr);
    const report = JSON.parse(stdout) as {
      agentMetrics: Record<string, { error?: string }>;
    };
    assert.deepEqual(Object.keys(report.agentMetrics).sort(), ['node-1', 'node-2', 'node-3']);
    for (const [name, m] of Object.entries(report.agentMetrics))
      assert.equal(m.error, undefined, `${name}: ${JSON.stringify(m)}`);
    assert.deepEqual(processesUnder(dir), [], 'agents left running');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Pids of processes whose command line names `dir` (agents of a devnet there). */
function processesUnder(dir: string): number[] {
  const r = spawnSync('pgrep', ['-f', dir], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

test('Ctrl-C on vigil chaos stops its agents and still prints the report', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-chaos-int-'));
  try {
    const child = spawn(
      process.execPath,
      [CLI_ENTRY, 'chaos', '--work-dir', join(dir, 'work'), '--duration', '60', '--json'],
      { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    for (let i = 0; i < 150 && processesUnder(dir).length < 3; i++)
      await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 2000));
    process.kill(-child.pid!, 'SIGINT');
    const code = await exited;
    assert.ok(code === 0 || code === 2, `exit ${code}: ${stderr}`);
    const report = JSON.parse(stdout) as { devnet: { equivocations: number } };
    assert.equal(report.devnet.equivocations, 0);
    assert.deepEqual(processesUnder(dir), [], 'agents left running');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
