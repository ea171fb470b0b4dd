// A `vigil watch` child process for the per-chain CLI tests: started on a config file, found by
// the URL it logs, polled until its metrics show what the test waits for, and always stopped
// with SIGTERM, which must exit 0.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { CLI_ENTRY } from '../helpers/paths.js';

export interface RunningWatch {
  readonly url: string;
  /** The /metrics text once `ready` holds (or after 50 polls 100 ms apart: the assertions say why). */
  metricsWhen(ready: (text: string) => boolean): Promise<string>;
  healthz(): Promise<unknown>;
}

export async function withWatchProcess(
  configFile: string,
  chain: string,
  body: (watch: RunningWatch) => Promise<void>,
): Promise<void> {
  const child = spawn(process.execPath, [CLI_ENTRY, 'watch', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    let url: string | undefined;
    for await (const line of createInterface({ input: child.stdout })) {
      const entry = JSON.parse(line) as { msg: string; url?: string; chains?: string[] };
      if (entry.msg.startsWith('watching')) {
        url = entry.url;
        assert.deepEqual(entry.chains, [chain]);
        break;
      }
    }
    assert.ok(url, stderr);
    const base = url;
    await body({
      url: base,
      async metricsWhen(ready) {
        let text = '';
        for (let i = 0; i < 50; i++) {
          text = await (await fetch(base + '/metrics')).text();
          if (ready(text)) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        return text;
      },
      async healthz() {
        return (await fetch(base + '/healthz')).json() as Promise<unknown>;
      },
    });
  } finally {
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
  }
}
