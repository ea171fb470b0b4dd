/**
 * Issue 11: `vigil` starts fast because no command loads its heavy modules (HTTP server, etcd's
 * gRPC client, SQLite, logging, schemas) until it runs. Checked by the modules a real CLI
 * process resolves, not by timing (bench/startup.ts measures the time).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CLI_ENTRY } from '../helpers/paths.js';

const HEAVY =
  /\/node_modules\/(fastify|@fastify|etcd3|@grpc|better-sqlite3|pino|prom-client|zod|yaml|@peculiar|libp2p)\//;

let dir: string;
let register: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-startup-'));
  // A module resolve hook that records every module the process loads.
  writeFileSync(
    join(dir, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.VIGIL_TRACE_FILE, r.url + '\\n');
  return r;
}
`,
  );
  register = join(dir, 'register.mjs');
  writeFileSync(
    register,
    `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});
`,
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

function loadedBy(args: string[]): string[] {
  const trace = join(dir, `trace-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(trace, '');
  const r = spawnSync(process.execPath, ['--import', register, CLI_ENTRY, ...args], {
    encoding: 'utf8',
    cwd: dir,
    env: { ...process.env, VIGIL_TRACE_FILE: trace },
  });
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(trace, 'utf8').split('\n').filter(Boolean);
}

describe('vigil start', () => {
  it("--help, a command's --help and `keys generate` load no heavy module", () => {
    for (const args of [
      ['--help'],
      ['agent', '--help'],
      ['state', 'import', '--help'],
      ['keys', 'generate', '--out', join(dir, 'k', 'priv_validator_key.json')],
    ]) {
      const loaded = loadedBy(args);
      assert.ok(
        loaded.some((u) => u.endsWith('/cli/commands.js')),
        'the trace saw no Vigil module',
      );
      assert.deepEqual(
        loaded.filter((u) => HEAVY.test(u)),
        [],
        `vigil ${args.join(' ')}`,
      );
    }
  });

  it('a command still loads what it needs when it runs', () => {
    const loaded = loadedBy(['systemd-unit']);
    assert.ok(loaded.some((u) => u.endsWith('/render/services.js')));
  });
});
