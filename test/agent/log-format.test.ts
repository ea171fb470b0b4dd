/**
 * Issue 11: readable agent logs when stdout is a terminal, JSON everywhere else, and
 * `log.format` to decide regardless.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ConfigError } from '../../src/config/yaml-file.js';
import { loadAgentConfig } from '../../src/agent/config.js';
import { createAgentLogger, formatLogLine, type LogFormat } from '../../src/agent/log-format.js';
import { CLI_ENTRY } from '../helpers/paths.js';

let dir: string;
const savedTz = process.env.TZ;
const savedNoColor = process.env.NO_COLOR;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-log-format-'));
  process.env.TZ = 'UTC';
  delete process.env.NO_COLOR;
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
  if (savedNoColor !== undefined) process.env.NO_COLOR = savedNoColor;
});

/** A stream that says it is (or is not) a terminal and keeps what it was given. */
function fakeStdout(isTTY: boolean): Writable & { isTTY: boolean; text(): string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  }) as Writable & { isTTY: boolean; text(): string };
  w.isTTY = isTTY;
  w.text = () => chunks.join('');
  return w;
}

function logWith(format: LogFormat, isTTY: boolean): string {
  const out = fakeStdout(isTTY);
  const log = createAgentLogger({ level: 'info', format, base: { agent: 'host-a' } }, out);
  log.info({ socketPath: '/run/vigil/api.sock', keys: ['validator'] }, 'agent ready');
  log.debug('not shown at info');
  return out.text();
}

/** Escape characters made visible, for patterns. */
const visible = (text: string) => text.replaceAll('\x1b', '<ESC>');

const TIME = Date.UTC(2026, 0, 2, 3, 4, 5, 67);

describe('formatLogLine', () => {
  it('prints time, level, message and the fields as key=value on one line', () => {
    const line = JSON.stringify({
      level: 40,
      time: TIME,
      pid: 42,
      hostname: 'h',
      agent: 'host-a',
      condition: 'store',
      reason: 'etcd: deadline exceeded',
      n: 3,
      ok: false,
      keys: ['a', 'b'],
      msg: 'not ready: store',
    });
    assert.equal(
      formatLogLine(line),
      '2026-01-02 03:04:05.067 WARN  not ready: store agent=host-a condition=store ' +
        'reason="etcd: deadline exceeded" n=3 ok=false keys=["a","b"]\n',
    );
    assert.ok(
      formatLogLine(line, { color: true }).startsWith(
        '2026-01-02 03:04:05.067 \x1b[33mWARN \x1b[0m not ready: store agent=host-a',
      ),
    );
  });

  it("prints an error's message inline and its stack indented below", () => {
    const line = JSON.stringify({
      level: 50,
      time: TIME,
      err: { type: 'Error', message: 'disk full', stack: 'Error: disk full\n    at a (x.js:1:1)' },
      msg: 'error while stopping',
    });
    assert.equal(
      formatLogLine(line),
      '2026-01-02 03:04:05.067 ERROR error while stopping err="disk full"\n    at a (x.js:1:1)\n',
    );
  });

  it('passes anything that is not a pino record through unchanged', () => {
    assert.equal(formatLogLine('plain text'), 'plain text');
    assert.equal(formatLogLine('[1,2]'), '[1,2]');
  });
});

describe('createAgentLogger', () => {
  it('auto: readable lines on a terminal, in colour', () => {
    const text = visible(logWith('auto', true));
    assert.match(
      text,
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} <ESC>\[32mINFO <ESC>\[0m agent ready agent=host-a socketPath=\/run\/vigil\/api\.sock keys=\["validator"\]\n$/,
    );
  });

  it('auto: pino JSON, unchanged, on anything that is not a terminal', () => {
    const text = logWith('auto', false);
    const lines = text.trim().split('\n');
    assert.equal(lines.length, 1);
    const record = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(record), ['level', 'time', 'agent', 'socketPath', 'keys', 'msg']);
    assert.equal(record.level, 30);
    assert.equal(record.msg, 'agent ready');
  });

  it('log.format json and pretty override the terminal check; NO_COLOR drops the colour', () => {
    assert.doesNotThrow(() => JSON.parse(logWith('json', true)));
    assert.match(logWith('pretty', false), / INFO {2}agent ready agent=host-a /);
    process.env.NO_COLOR = '1';
    try {
      assert.doesNotMatch(visible(logWith('pretty', true)), /<ESC>/);
    } finally {
      delete process.env.NO_COLOR;
    }
  });
});

describe('log.format in the agent config', () => {
  const config = (log: string) => {
    const file = join(dir, `agent-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(
      file,
      ['agent: { id: c, dataDir: data }', 'store: { engine: sqlite, path: s.db }', log, ''].join(
        '\n',
      ),
    );
    return file;
  };

  it('defaults to auto and accepts json and pretty', () => {
    assert.equal(loadAgentConfig(config('')).log.format, 'auto');
    assert.equal(loadAgentConfig(config('log: { level: info }')).log.format, 'auto');
    assert.equal(loadAgentConfig(config('log: { format: json }')).log.format, 'json');
    assert.equal(loadAgentConfig(config('log: { format: pretty }')).log.format, 'pretty');
  });

  it('names the file, line and allowed values for anything else', () => {
    assert.throws(
      () => loadAgentConfig(config('log: { format: text }')),
      (err: unknown) =>
        err instanceof ConfigError &&
        /log\.format/.test(err.message) &&
        /pretty/.test(err.message) &&
        /:3/.test(err.message),
    );
  });
});

describe('vigil agent on a real terminal', () => {
  it('logs readable lines in a pseudo-terminal and JSON into a pipe', async (t) => {
    if (spawnSync('script', ['--version']).error) {
      console.error('\n*** SKIPPING the pseudo-terminal check: `script` is not installed ***\n');
      t.skip('script (util-linux) is not installed');
      return;
    }
    const agentDir = mkdtempSync(join(dir, 'agent-'));
    const file = join(agentDir, 'agent.yaml');
    writeFileSync(
      file,
      'agent: { id: tty-agent, dataDir: data }\nstore: { engine: sqlite, path: store.db }\n',
    );
    const init = spawnSync(process.execPath, [CLI_ENTRY, 'state', 'init', '--config', file], {
      encoding: 'utf8',
    });
    assert.equal(init.status, 0, init.stderr);
    const env = { ...process.env, NO_COLOR: '' };

    // In a pseudo-terminal (util-linux `script`), stopped with Ctrl-C as an operator would.
    // `script -c` runs the command through $SHELL. `exec` makes the agent the terminal's
    // foreground process itself: otherwise dash (SHELL=/bin/sh, as on CI) waits as its parent,
    // takes the same Ctrl-C and reports 130 although the agent stopped cleanly with 0.
    const command = `exec ${[process.execPath, CLI_ENTRY, 'agent', '--config', file]
      .map((a) => `'${a}'`)
      .join(' ')}`;
    const tty = spawn('script', ['-qfec', command, '/dev/null'], {
      env: { ...env, SHELL: '/bin/sh' },
    });
    let shown = '';
    const exited = new Promise<string>((resolve) =>
      tty.on('exit', (code, signal) => resolve(`${code ?? signal}`)),
    );
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no 'agent ready' in:\n${shown}`)), 60_000);
      tty.stdout.on('data', (d: Buffer) => {
        shown += d.toString();
        if (shown.includes('agent ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    // Signal handlers are in place before the start: a Ctrl-C right after `agent ready` is a
    // clean stop (exit 0, "stopping", "agent stopped"), never a kill half-way.
    tty.stdin.write('\x03');
    assert.match(await exited, /^0$/, shown);
    const lines = shown
      .split(/\r?\n/)
      .filter((l) => /\b(agent ready|stopping|agent stopped)\b/.test(l));
    assert.ok(
      lines.some((l) => /agent stopped/.test(l)),
      `a clean stop logs "agent stopped":\n${shown}`,
    );
    for (const line of lines) {
      assert.match(
        visible(line),
        /^(\^C)?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} <ESC>\[32mINFO <ESC>\[0m (agent ready|stopping|agent stopped) agent=tty-agent/,
      );
    }
    assert.doesNotMatch(shown, /"level":/);

    // Into a pipe: JSON lines, as every log reader expects.
    const piped = spawn(process.execPath, [CLI_ENTRY, 'agent', '--config', file], { env });
    let out = '';
    await new Promise<void>((resolve) => {
      piped.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('agent ready')) resolve();
      });
    });
    const done = new Promise<void>((resolve) => piped.on('exit', () => resolve()));
    piped.kill('SIGINT');
    await done;
    const records = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; agent: string; level: number });
    assert.equal(records[0]!.msg, 'agent ready');
    assert.equal(records[0]!.agent, 'tty-agent');
    assert.equal(records[0]!.level, 30);
  });
});
