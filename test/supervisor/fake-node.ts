/**
 * A stand-in for a node that signs by itself (cardano-node's forging): a real process that,
 * while it holds its credential, appends one "produced" line per tick to a file, stamped with
 * CLOCK_MONOTONIC nanoseconds (shared by every process of the host, so two nodes' lines can be
 * compared). Like cardano-node it reads the credential at start and on SIGHUP only, so moving
 * the file away does nothing until the SIGHUP is handled; `stopDelayMs` makes stopping slow
 * (starting is immediate, so a successor that starts too early shows up as an overlap). It writes `forging` or `idle` to a status file for the recipe's confirmation check.
 *
 *   node fake-node.js '{"credential": …, "produced": …, "status": …, "everyMs": 10,
 *                       "stopDelayMs": 0, "pidFile": …}'
 */
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';

interface Args {
  credential: string;
  produced: string;
  status: string;
  everyMs: number;
  stopDelayMs: number;
  pidFile?: string;
}

const args = JSON.parse(process.argv[2]!) as Args;
let holding = existsSync(args.credential);
const writeStatus = () => writeFileSync(args.status, holding ? 'forging' : 'idle');
writeStatus();
setInterval(() => {
  if (holding) appendFileSync(args.produced, `${process.hrtime.bigint()}\n`);
}, args.everyMs);
process.on('SIGHUP', () => {
  const reload = () => {
    holding = existsSync(args.credential);
    writeStatus();
  };
  if (existsSync(args.credential)) reload();
  else setTimeout(reload, args.stopDelayMs);
});
process.on('SIGTERM', () => process.exit(0));
// Last: a SIGHUP that arrives before the handler is installed kills the process.
if (args.pidFile) writeFileSync(args.pidFile, String(process.pid));
