/**
 * A separate OS process acting as one guard client: it opens its own SqliteWatermarkStore,
 * LocalWatermarks and GuardedSigner on the given files, and runs a list of requests.
 *
 *   node guard-driver.js <store.db> <local.db> <agentId> [--barrier]
 *
 * stdin: one line of JSON, a WireRequest[]. With --barrier the driver then prints `ready` and
 * waits for a `go` line, so several drivers start their requests together.
 * stdout: one JSON WireResult per line, written synchronously as soon as each result is
 * released (a crash test counts a line as a signature the client received), then `done`.
 */
import { writeSync } from 'node:fs';
import { openSignerRig } from './guard-fixtures.js';
import { fromWire, toWire, type WireRequest } from './guard-wire.js';

/**
 * Lines of stdin, read from 'data' events. (readline's async iterator here sometimes never
 * yielded a line that had arrived, which hung the multi-process property test.)
 */
function stdinLines(): () => Promise<string> {
  let buffered = '';
  const lines: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  let ended = false;
  const deliver = () => {
    while (lines.length > 0 && waiting.length > 0) waiting.shift()!(lines.shift()!);
    if (ended) while (waiting.length > 0) waiting.shift()!('');
  };
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      lines.push(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
    deliver();
  });
  process.stdin.on('end', () => {
    ended = true;
    deliver();
  });
  return () =>
    new Promise((resolve) => {
      waiting.push(resolve);
      deliver();
    });
}

async function main(): Promise<void> {
  const [storePath, localPath, agentId] = process.argv.slice(2);
  const barrier = process.argv.includes('--barrier');
  if (!storePath || !localPath || !agentId) {
    throw new Error('usage: guard-driver <store.db> <local.db> <agentId> [--barrier]');
  }
  const nextLine = stdinLines();
  const requests = JSON.parse(await nextLine()) as WireRequest[];
  const rig = openSignerRig(storePath, localPath, agentId);
  if (barrier) {
    writeSync(1, 'ready\n');
    if ((await nextLine()).trim() !== 'go') throw new Error('expected go');
  }
  for (let i = 0; i < requests.length; i++) {
    const call = fromWire(requests[i]!);
    const result =
      call.op === 'sign' ? await rig.signer.sign(call.req) : await rig.signer.authorize(call.req);
    writeSync(1, JSON.stringify(toWire(i, result)) + '\n');
  }
  await rig.close();
  writeSync(1, 'done\n');
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `guard-driver: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(2);
});
