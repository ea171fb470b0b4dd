/** Spawns test/helpers/guard-driver.js as separate OS processes. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { WireRequest, WireResult } from './guard-wire.js';

/** The compiled driver next to this compiled helper, whatever the build's outDir. */
export const DRIVER_ENTRY = fileURLToPath(new URL('./guard-driver.js', import.meta.url));

export interface DriverClient {
  readonly storePath: string;
  readonly localPath: string;
  readonly agentId: string;
  readonly requests: readonly WireRequest[];
}

export interface RunningDriver {
  readonly child: ChildProcess;
  /** Every result line received so far, in order. */
  readonly results: WireResult[];
  /** Resolves with the exit code (or signal name) once the process has ended. */
  readonly exited: Promise<number | string>;
  /** Resolves when the driver printed `ready` (barrier mode). */
  readonly ready: Promise<void>;
  stderr(): string;
  /** Calls `fn` after every result line. */
  onResult(fn: (r: WireResult) => void): void;
}

export function startDriver(client: DriverClient, barrier = false): RunningDriver {
  const child = spawn(
    process.execPath,
    [
      DRIVER_ENTRY,
      client.storePath,
      client.localPath,
      client.agentId,
      ...(barrier ? ['--barrier'] : []),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const results: WireResult[] = [];
  const listeners: Array<(r: WireResult) => void> = [];
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((res) => (markReady = res));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line === 'ready') return markReady();
    if (line === 'done' || line === '') return;
    const r = JSON.parse(line) as WireResult;
    results.push(r);
    for (const fn of listeners) fn(r);
  });
  const exited = new Promise<number | string>((res) =>
    child.on('exit', (code, signal) => res(code ?? signal ?? 'unknown')),
  );
  child.stdin!.on('error', () => undefined); // a killed driver closes its stdin early
  child.stdin!.write(JSON.stringify(client.requests) + '\n');
  if (!barrier) child.stdin!.end();
  return {
    child,
    results,
    exited,
    ready,
    stderr: () => err,
    onResult: (fn) => listeners.push(fn),
  };
}

/** Runs all clients at once (they start their requests together) and returns their results. */
export async function runDrivers(clients: readonly DriverClient[]): Promise<WireResult[][]> {
  const drivers = clients.map((c) => startDriver(c, true));
  try {
    await Promise.race([
      Promise.all(drivers.map((d) => d.ready)),
      // Any one driver exiting before it is ready ends the wait: the others would wait for
      // `go` forever (this deadlock once held a CI run until its time limit).
      Promise.race(drivers.map((d) => d.exited)).then((code) => {
        throw new Error(
          `a driver exited (${code}) before it was ready: ${drivers.map((d) => d.stderr()).join('\n')}`,
        );
      }),
    ]);
    for (const d of drivers) d.child.stdin!.end('go\n');
    const codes = await Promise.all(drivers.map((d) => d.exited));
    codes.forEach((code, i) => {
      if (code !== 0) throw new Error(`driver ${i} exited with ${code}: ${drivers[i]!.stderr()}`);
    });
    return drivers.map((d) => d.results);
  } finally {
    for (const d of drivers)
      if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
  }
}
