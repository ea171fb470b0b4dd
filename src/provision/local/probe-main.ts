/**
 * A TCP connect probe run inside a namespace (`node probe-main.js '<json>'`): for each target,
 * `open` (connected), `refused` (RST), `timeout` (nothing answered, what a drop policy
 * gives) or `unreachable`. Prints the results as a JSON array in target order.
 */
import { connect } from 'node:net';

export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
}
export type ProbeResult = 'open' | 'refused' | 'timeout' | 'unreachable';

function probe(t: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = connect({ host: t.host, port: t.port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve('timeout');
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve('open');
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code === 'ECONNREFUSED' ? 'refused' : 'unreachable');
    });
  });
}

if (process.argv[2] !== undefined) {
  const { targets, timeoutMs } = JSON.parse(process.argv[2]) as {
    targets: ProbeTarget[];
    timeoutMs: number;
  };
  void Promise.all(targets.map((t) => probe(t, timeoutMs))).then((r) =>
    process.stdout.write(JSON.stringify(r) + '\n'),
  );
}
