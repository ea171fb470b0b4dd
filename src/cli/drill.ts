/**
 * `vigil drill failover`: a disaster-recovery drill for an exclusive role. Dry run by default
 * (checks and the steps it would take); `--execute` moves the role to the standby through the
 * agents' handover API, verifies it produced, and moves it back (unless `--no-return`).
 * Exit 0 passed (or a clean dry run), 2 refused or a check failed, 130 interrupted, 1 usage.
 */
import { Command, Option } from 'commander';
import { InputError } from '../errors.js';

interface Options {
  role: string;
  config: string[];
  url: string[];
  tokenFile?: string;
  standby?: string;
  execute?: boolean;
  return: boolean;
  json?: boolean;
  timeout: string;
  holdOff: string;
  poll: string;
  expectGrants?: boolean;
  verifyRun?: string;
  lock?: string;
}

function ms(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || n < min || n > max)
    throw new InputError(
      `${flag} ${text}: give milliseconds between ${min} and ${max}`,
      undefined,
      'USAGE',
    );
  return n;
}

const collect = (v: string, prev: string[]) => [...prev, v];

function failoverCommand(): Command {
  return new Command('failover')
    .description(
      'move an exclusive role to its standby and back under the guard, verify the standby produced, report the switch times (dry run unless --execute)',
    )
    .requiredOption('--role <role>', "the exclusive role, as in the agents' `supervisors:`")
    .option(
      '--config <file>',
      "an agent's config, reached on its signing listener (repeat per agent)",
      collect,
      [],
    )
    .option('--url <url>', "an agent's signing API over TCP (repeat per agent)", collect, [])
    .option('--token-file <file>', 'bearer token for the --url agents (mode 0600)')
    .option('--standby <agent>', 'the agent to move the role to, when several could')
    .option('--execute', 'act: hand the role over and back (default: dry run, changes nothing)')
    .option('--no-return', 'leave the role on the standby')
    .option('--json', 'machine-readable report')
    .option('--timeout <ms>', 'bound of every wait: handover, activation, verification', '30000')
    .option(
      '--hold-off <ms>',
      'how long a handed-over holder waits for its successor before campaigning again',
      '10000',
    )
    .option('--poll <ms>', 'how often the agents are polled while waiting', '25')
    .option(
      '--expect-grants',
      'the standby must get an authorization or signature granted under its fence',
    )
    .option(
      '--verify-run <command>',
      'shell command that exits 0 once the new holder produces (env VIGIL_DRILL_ROLE, VIGIL_DRILL_ACTIVE)',
    )
    .addOption(
      new Option(
        '--lock <file>',
        'lock file: one drill at a time (default /run/lock/vigil-drill.lock, else in the temp dir)',
      ),
    )
    .action(async (o: Options) => {
      const timeoutMs = ms('--timeout', o.timeout, 100, 600_000);
      const holdOffMs = ms('--hold-off', o.holdOff, 0, 300_000);
      const pollMs = ms('--poll', o.poll, 5, 10_000);
      if (o.config.length + o.url.length === 0)
        throw new InputError(
          'name the agents of the role: --config <file> or --url <url>, once per agent',
          'e.g. vigil drill failover --role cardano/mainnet/POOL-producer --config a.yaml --config b.yaml',
          'USAGE',
        );
      if (o.url.length && o.tokenFile === undefined && o.url.some((u) => u.startsWith('http:')))
        throw new InputError(
          '--url over plain http needs --token-file: the signing API is authenticated',
          undefined,
          'USAGE',
        );
      const [{ existsSync, readFileSync, statSync }, { tmpdir }, { join }] = await Promise.all([
        import('node:fs'),
        import('node:os'),
        import('node:path'),
      ]);
      const [{ configListeners }, { loadAgentConfig }, drill, lockMod, report] = await Promise.all([
        import('../status/fetch.js'),
        import('../agent/config.js'),
        import('../drill/failover.js'),
        import('../drill/lock.js'),
        import('../drill/report.js'),
      ]);
      const { openDrillAgent } = await import('../drill/observe.js');
      const agents = [];
      for (const file of o.config) {
        const config = loadAgentConfig(file);
        // The signing listeners only: the read-only metrics listener serves no role API.
        const listener = configListeners(config).find((l) => l.via !== 'metricsListen');
        if (!listener)
          throw new InputError(
            `${file}: the agent has no signing listener (listen.socket or listen.tcp)`,
            undefined,
            'USAGE',
          );
        agents.push(
          openDrillAgent(config.agent.id, listener.where, listener.endpoint(), timeoutMs),
        );
      }
      let token: string | undefined;
      if (o.tokenFile !== undefined) {
        if ((statSync(o.tokenFile).mode & 0o077) !== 0)
          throw new InputError(
            `${o.tokenFile} is readable by group or others`,
            `chmod 600 ${o.tokenFile}`,
            'USAGE',
          );
        token = readFileSync(o.tokenFile, 'utf8').trim();
      }
      for (const u of o.url) {
        let url: URL;
        try {
          url = new URL(u);
        } catch {
          throw new InputError(`--url ${u} is not a URL`, 'e.g. https://10.77.0.2:7710', 'USAGE');
        }
        agents.push(
          openDrillAgent(
            url.origin,
            url.origin,
            { url: url.origin, ...(token ? { token } : {}) },
            timeoutMs,
          ),
        );
      }
      const names = new Set(agents.map((a) => a.name));
      if (names.size !== agents.length)
        throw new InputError(
          'two of the agents given have the same id',
          'give each agent once',
          'USAGE',
        );

      const lockPath =
        o.lock ?? join(existsSync('/run/lock') ? '/run/lock' : tmpdir(), 'vigil-drill.lock');
      // A dry run takes no lock, but says when a drill is running.
      const lockedBy = lockMod.lockHolder(lockPath);
      let lock: { release(): void } | undefined;
      if (o.execute && lockedBy === undefined) lock = lockMod.acquireDrillLock(lockPath, o.role);

      const abort = new AbortController();
      const onSigint = () => {
        process.stderr.write(
          'interrupted: no new step starts; waiting for the role to land on one holder\n',
        );
        abort.abort();
      };
      process.once('SIGINT', onSigint);
      process.once('SIGTERM', onSigint);
      try {
        const r = await drill.runDrill({
          role: o.role,
          agents,
          execute: o.execute === true,
          returnBack: o.return,
          timeoutMs,
          holdOffMs,
          pollMs,
          expectGrants: o.expectGrants === true,
          ...(o.verifyRun !== undefined ? { verifyRun: o.verifyRun } : {}),
          ...(o.standby !== undefined ? { standby: o.standby } : {}),
          ...(lockedBy !== undefined ? { lockedBy } : {}),
          signal: abort.signal,
          progress: (line) => {
            if (!o.json) process.stderr.write(`${line}\n`);
          },
        });
        process.stdout.write(o.json ? JSON.stringify(r, null, 2) + '\n' : report.formatDrill(r));
        process.exitCode = report.drillExitCode(r);
      } finally {
        process.off('SIGINT', onSigint);
        process.off('SIGTERM', onSigint);
        lock?.release();
        for (const a of agents) a.client.close();
      }
    });
}

export function drillCommand(): Command {
  return new Command('drill').description('disaster-recovery drills').addCommand(failoverCommand());
}
