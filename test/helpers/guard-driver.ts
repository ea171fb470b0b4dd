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
import { createInterface } from 'node:readline';
import { openSignerRig } from './guard-fixtures.js';
import { fromWire, toWire, type WireRequest } from './guard-wire.js';

async function main(): Promise<void> {
  const [storePath, localPath, agentId] = process.argv.slice(2);
  const barrier = process.argv.includes('--barrier');
  if (!storePath || !localPath || !agentId) {
    throw new Error('usage: guard-driver <store.db> <local.db> <agentId> [--barrier]');
  }
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const first = await lines.next();
  const requests = JSON.parse(String(first.value)) as WireRequest[];
  const rig = openSignerRig(storePath, localPath, agentId);
  if (barrier) {
    writeSync(1, 'ready\n');
    const go = await lines.next();
    if (String(go.value).trim() !== 'go') throw new Error('expected go');
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
