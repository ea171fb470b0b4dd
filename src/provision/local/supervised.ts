/**
 * Supervised producers in a local fleet. The rendered watchdog.yaml starts and stops the node's
 * systemd unit (`systemctl start|stop <unit>`, `! systemctl is-active --quiet <unit>`,
 * `systemctl kill --signal=SIGKILL <unit>`); namespaces have no systemd, so each of those
 * actions is translated one for one to local-unit-main.ts, which runs the unit's simulated
 * process. Any other action is refused rather than guessed at. Paths move under the host root.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { LocalFleetError } from './exec.js';
import { startInNetns, waitFor, type StartedProcess } from './processes.js';
import type { RunRecordFile } from './run-record.js';

export const LOCAL_UNIT_MAIN = fileURLToPath(new URL('./local-unit-main.js', import.meta.url));
const CLI_ENTRY = fileURLToPath(new URL('../../cli/run.js', import.meta.url));

type Action = Record<string, unknown>;

/** Pure: one rendered action → its local form (argv of local-unit-main, or a pid file). */
export function translateAction(
  action: Action,
  unitsDir: string,
  node = process.execPath,
  hostRoot?: string,
): Action {
  const unitCmd = (verb: string, unit: string) => ({
    run: [node, LOCAL_UNIT_MAIN, verb, unitsDir, unit],
  });
  const run = action.run as string[] | undefined;
  if (run?.[0] === 'systemctl' && (run[1] === 'start' || run[1] === 'stop') && run.length === 3)
    return unitCmd(run[1], run[2]!);
  // `systemctl start --no-block <unit>`: the local start returns once spawned anyway.
  if (run?.[0] === 'systemctl' && run[1] === 'start' && run[2] === '--no-block' && run.length === 4)
    return unitCmd('start', run[3]!);
  const moveFile = action.moveFile as { from: string; to: string } | undefined;
  if (moveFile && hostRoot !== undefined)
    return { moveFile: { from: join(hostRoot, moveFile.from), to: join(hostRoot, moveFile.to) } };
  if (run?.length === 3 && run[0] === 'sh' && run[1] === '-c') {
    // A Cardano hot standby's stop check first asks the node's forging metric, which the
    // simulated producer serves: kept as rendered, with systemd's answer replaced.
    const forging =
      /^(curl --silent --fail --max-time \d+ http:\/\/[0-9.]+:\d+\/metrics \| grep -Eq '[^']+') \|\| \{ s=\$\(systemctl show --property=ActiveState --value (\S+)\)/.exec(
        run[2]!,
      );
    if (forging) {
      const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
      return {
        run: [
          'sh',
          '-c',
          `${forging[1]} || ${[node, LOCAL_UNIT_MAIN, 'inactive', unitsDir, forging[2]!].map(q).join(' ')}`,
        ],
        ...('pollMs' in action ? { pollMs: action.pollMs } : {}),
      };
    }
    // A Cardano SIGHUP sent only to a node that accepts on its local socket (render/services.ts
    // cardanoSighup): the socket moved under the host root, the signal sent by pid file.
    const hup = /systemctl kill --signal=SIGHUP ([A-Za-z0-9@._:-]+)/.exec(run[2]!);
    const socket = /--unix-socket (\S+) /.exec(run[2]!);
    if (hup && socket && hostRoot !== undefined) {
      const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
      return {
        run: [
          'sh',
          '-c',
          run[2]!
            .replace(socket[0], `--unix-socket ${q(join(hostRoot, socket[1]!))} `)
            .replace(hup[0], `kill -HUP "$(cat ${q(join(unitsDir, `${hup[1]!}.pid`))})"`),
        ],
        ...('timeoutMs' in action ? { timeoutMs: action.timeoutMs } : {}),
      };
    }
    // The rendered stop check asks systemd for the unit's ActiveState.
    const m =
      /^! systemctl is-active --quiet (\S+)$/.exec(run[2]!) ??
      /systemctl show --property=ActiveState --value (\S+)\)/.exec(run[2]!);
    if (m)
      return {
        ...unitCmd('inactive', m[1]!),
        ...('pollMs' in action ? { pollMs: action.pollMs } : {}),
      };
  }
  if (typeof action.systemdUnit === 'string' && typeof action.signal === 'string')
    return { signal: action.signal, pidFile: join(unitsDir, `${action.systemdUnit}.pid`) };
  throw new LocalFleetError(
    `the rendered watchdog action ${JSON.stringify(action)} has no local equivalent`,
    'a local fleet runs systemctl start/stop/kill and stop checks of the node units, and key-file moves',
  );
}

/** Writes the host's watchdog.yaml in its local form; returns its path and socket. */
export function prepareWatchdog(
  renderedYaml: string,
  hostRoot: string,
  unitsDir: string,
): { configFile: string; socket: string } {
  const doc = parse(renderedYaml) as Record<string, unknown>;
  const list = (key: string) =>
    Array.isArray(doc[key])
      ? (doc[key] as Action[]).map((a) => translateAction(a, unitsDir, process.execPath, hostRoot))
      : undefined;
  const socket = join(hostRoot, String(doc.socket));
  const local: Record<string, unknown> = {
    ...doc,
    socket,
    activate: list('activate'),
    deactivate: list('deactivate'),
    confirm: translateAction(doc.confirm as Action, unitsDir, process.execPath, hostRoot),
    ...(doc.kill ? { kill: list('kill') } : {}),
  };
  mkdirSync(dirname(socket), { recursive: true, mode: 0o750 });
  const configFile = join(hostRoot, 'etc/vigil/watchdog.yaml');
  mkdirSync(dirname(configFile), { recursive: true });
  writeFileSync(configFile, stringify(local), { mode: 0o600 });
  return { configFile, socket };
}

export async function startWatchdog(
  record: RunRecordFile,
  netns: string,
  prepared: { configFile: string; socket: string },
  logFile: string,
): Promise<StartedProcess> {
  const proc = startInNetns(
    record,
    netns,
    'vigil watchdog',
    [process.execPath, CLI_ENTRY, 'watchdog', '--config', prepared.configFile],
    logFile,
  );
  await waitFor(`the Vigil watchdog in ${netns}`, () => existsSync(prepared.socket), proc);
  return proc;
}

/** The file local-unit-main.ts starts a unit from. */
export function writeUnitFile(
  unitsDir: string,
  unit: string,
  argv: string[],
  logFile: string,
  conflicts: readonly string[] = [],
) {
  mkdirSync(unitsDir, { recursive: true, mode: 0o700 });
  const spec = { argv, logFile, ...(conflicts.length > 0 ? { conflicts } : {}) };
  writeFileSync(join(unitsDir, `${unit}.json`), JSON.stringify(spec, null, 2) + '\n', {
    mode: 0o600,
  });
}
