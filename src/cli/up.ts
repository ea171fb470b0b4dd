import { Command, InvalidArgumentError } from 'commander';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DevnetControl } from '../devnet/devnet.js';
import { packageRoot } from '../package-root.js';
import { defaultWorkDir } from '../devnet/work-dir.js';

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError('expected a positive number of seconds');
  return n;
}

/** Clear the screen and home the cursor: the view is redrawn in place. */
const REDRAW = '\x1b[H\x1b[2J';

export function upCommand(): Command {
  return new Command('up')
    .description(
      'start a local HA devnet: several nodes share one key through their own agents; Ctrl-C stops it',
    )
    .argument('[devnet]', 'devnet file (YAML); default: examples/devnet/devnet.yaml')
    .option(
      '--work-dir <dir>',
      'where keys, configs and the store are kept (default: .vigil/<devnet name>)',
    )
    .option('--duration <seconds>', 'stop by itself after this long', seconds)
    .option('--json', 'print only the final report, as JSON, on standard output')
    .option('--json-out <file>', 'also write the final report as JSON to this file')
    .option(
      '--plain',
      'one line per position instead of the live view (the default off a terminal)',
    )
    .action(
      async (
        file: string | undefined,
        opts: {
          workDir?: string;
          duration?: number;
          json?: boolean;
          jsonOut?: string;
          plain?: boolean;
        },
      ) => {
        // Loaded when run, not at every `vigil` start (see bench/startup.ts).
        const [{ loadDevnetFile }, { runDevnet }, view] = await Promise.all([
          import('../devnet/devnet-file.js'),
          import('../devnet/devnet.js'),
          import('../devnet/live-view.js'),
        ]);
        const { applyTick, newLiveState, noteEvent, probeAgent, renderLiveView, signedBy } = view;
        const devnet = loadDevnetFile(
          file ?? join(packageRoot(), 'examples', 'devnet', 'devnet.yaml'),
        );
        const workDir = opts.workDir ?? defaultWorkDir('up', devnet.name);
        const abort = new AbortController();
        const onSignal = () => abort.abort();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        // The agents run in process groups of their own (devnet/agent-process.ts), so a closed
        // terminal's SIGHUP reaches only this process: stop them as for Ctrl-C.
        process.once('SIGHUP', onSignal);
        const live = !opts.json && !opts.plain && process.stdout.isTTY === true;
        const say = (line: string) => {
          if (!opts.json && !live) process.stdout.write(`${line}\n`);
        };
        const state = newLiveState(devnet.name, devnet.store, devnet.chains);
        let control: DevnetControl | undefined;
        let poller: NodeJS.Timeout | undefined;
        const draw = () => {
          if (live) process.stdout.write(`${REDRAW}${renderLiveView(state)}\n`);
        };
        // Agents are asked directly (not through the node proxies, which faults may cut).
        const poll = async () => {
          if (!control) return;
          const views = await Promise.all(
            control.members.map((m) =>
              probeAgent(
                m.agent?.socketPath !== undefined ? { socketPath: m.agent.socketPath } : undefined,
                m.agent?.child.pid,
              ),
            ),
          );
          control.members.forEach((m, i) => state.agents.set(m.name, views[i]!));
          draw();
        };
        say(
          `vigil up: devnet ${devnet.name} on the ${devnet.store} store (work dir ${workDir}); Ctrl-C to stop`,
        );
        if (live) process.stdout.write(`${REDRAW}vigil up: starting devnet ${devnet.name}…\n`);
        const report = await runDevnet({
          file: devnet,
          workDir,
          signal: abort.signal,
          ...(opts.duration !== undefined ? { durationMs: opts.duration * 1000 } : {}),
          onAgent: (e) => {
            say(`  ${e}`);
            noteEvent(state, e);
          },
          onStarted: (c) => {
            control = c;
            if (live) poller = setInterval(() => void poll(), 1000);
            void poll();
          },
          onTick: (o, t) => {
            applyTick(state, o, t);
            draw();
            say(
              `${new Date().toISOString().slice(11, 19)}  ${o.chainId}  ${o.label}  ` +
                `${o.author ? `signed for ${signedBy(o)}` : 'MISSED'}  refused ${o.refused}  down ${o.unreachable}` +
                `  | signed ${t.signed}  missed ${t.missed}  equivocations ${t.equivocations}`,
            );
          },
        }).finally(() => {
          clearInterval(poller);
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          process.off('SIGHUP', onSignal);
        });
        const json = `${JSON.stringify(report, null, 2)}\n`;
        if (opts.jsonOut !== undefined) writeFileSync(opts.jsonOut, json);
        if (opts.json) process.stdout.write(json);
        else {
          process.stdout.write(
            `\nstopped: ${report.ticks} positions, ${report.signed} signed, ${report.missed} missed, ` +
              `${report.refusals} refusals, ${report.equivocations} equivocations, ${report.invalidSignatures} invalid signatures\n`,
          );
          const { formatSignerMetrics } = await import('../devnet/signer-metrics.js');
          process.stdout.write("signer metrics (each agent's /metrics at the end):\n");
          for (const [name, m] of Object.entries(report.agentMetrics))
            process.stdout.write(
              `  ${name}  ${'error' in m ? `unreadable: ${m.error}` : formatSignerMetrics(m)}\n`,
            );
        }
        if (report.equivocations > 0 || report.invalidSignatures > 0) process.exitCode = 2;
      },
    );
}
