import { Command, InvalidArgumentError } from 'commander';
import { join } from 'node:path';
import { loadDevnetFile } from '../devnet/devnet-file.js';
import { runDevnet } from '../devnet/devnet.js';
import type { TickOutcome } from '../devnet/duty-network.js';
import { packageRoot } from '../package-root.js';

/** Who got the position signed; CometBFT votes are identical, so several nodes may. */
function signedBy(o: TickOutcome): string {
  if (!o.author) return 'MISSED';
  const who = o.signers && o.signers.length > 1 ? o.signers.join(',') : o.author;
  return `signed for ${who}${o.proposer ? ` (proposal by ${o.proposer})` : ''}`;
}

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError('expected a positive number of seconds');
  return n;
}

export function upCommand(): Command {
  return new Command('up')
    .description(
      'start a local HA devnet: several nodes share one key through their own agents; Ctrl-C stops it',
    )
    .argument('[devnet]', 'devnet file (YAML); default: examples/devnet/devnet.yaml')
    .option('--work-dir <dir>', 'where keys, configs and the store are kept', '.vigil/devnet')
    .option('--duration <seconds>', 'stop by itself after this long', seconds)
    .option('--json', 'print the final report as JSON')
    .action(
      async (
        file: string | undefined,
        opts: { workDir: string; duration?: number; json?: boolean },
      ) => {
        const devnet = loadDevnetFile(
          file ?? join(packageRoot(), 'examples', 'devnet', 'devnet.yaml'),
        );
        const abort = new AbortController();
        const onSignal = () => abort.abort();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        const say = (line: string) => {
          if (!opts.json) process.stdout.write(`${line}\n`);
        };
        say(
          `vigil up: devnet ${devnet.name} on the ${devnet.store} store (work dir ${opts.workDir}); Ctrl-C to stop`,
        );
        const report = await runDevnet({
          file: devnet,
          workDir: opts.workDir,
          signal: abort.signal,
          ...(opts.duration !== undefined ? { durationMs: opts.duration * 1000 } : {}),
          onAgent: (e) => say(`  ${e}`),
          onTick: (o, t) =>
            say(
              `${new Date().toISOString().slice(11, 19)}  ${o.chainId}  ${o.label}  ` +
                `${signedBy(o)}  refused ${o.refused}  down ${o.unreachable}` +
                `  | signed ${t.signed}  missed ${t.missed}  equivocations ${t.equivocations}`,
            ),
        }).finally(() => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        });
        if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        else {
          say(
            `\nstopped: ${report.ticks} positions, ${report.signed} signed, ${report.missed} missed, ` +
              `${report.refusals} refusals, ${report.equivocations} equivocations, ${report.invalidSignatures} invalid signatures`,
          );
        }
        if (report.equivocations > 0 || report.invalidSignatures > 0) process.exitCode = 2;
      },
    );
}
