/**
 * The agent's log format. JSON lines (pino's own) unless a person is reading: when stdout is a
 * terminal, and `log.format` is `auto` (the default), each record is printed on one readable
 * line instead: local time, level, message, then the fields as key=value. `log.format: json`
 * or `pretty` decides regardless of the terminal. Anything not a terminal (a pipe, a file,
 * journald) gets the JSON unchanged: the devnet, the tests and log shippers parse it.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type LogFormat = 'auto' | 'json' | 'pretty';

export interface LogOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

export function wantsPretty(format: LogFormat, out: LogOutput): boolean {
  return format === 'pretty' || (format === 'auto' && out.isTTY === true);
}

const LEVELS: Record<number, { name: string; color: string }> = {
  10: { name: 'TRACE', color: '90' },
  20: { name: 'DEBUG', color: '36' },
  30: { name: 'INFO', color: '32' },
  40: { name: 'WARN', color: '33' },
  50: { name: 'ERROR', color: '31' },
  60: { name: 'FATAL', color: '35' },
};

/** pino's bookkeeping, shown by the line's layout or not at all. */
const OMITTED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'v']);

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

function localTime(ms: number): string {
  const d = new Date(ms);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
  );
}

/** A value as one shell-like word: bare when it can be, JSON-quoted otherwise. */
function word(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=\\]+$/.test(value) ? value : JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  return JSON.stringify(value);
}

/**
 * One pino JSON line as a readable line. A line that is not a pino record is returned as it
 * came. An error's stack follows on indented lines, as the only multi-line output.
 */
export function formatLogLine(line: string, opts: { color?: boolean } = {}): string {
  let record: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return line;
    record = parsed as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = LEVELS[record.level as number] ?? { name: String(record.level), color: '0' };
  const label = level.name.padEnd(5);
  const parts = [
    typeof record.time === 'number' ? localTime(record.time) : '',
    opts.color ? `\x1b[${level.color}m${label}\x1b[0m` : label,
    typeof record.msg === 'string' ? record.msg : '',
  ].filter((p) => p !== '');
  let stack = '';
  for (const [key, value] of Object.entries(record)) {
    if (OMITTED.has(key) || value === undefined) continue;
    const err = value as { message?: unknown; stack?: unknown } | null;
    if (key === 'err' && err !== null && typeof err === 'object' && 'message' in err) {
      parts.push(`err=${word(err.message)}`);
      if (typeof err.stack === 'string')
        stack = err.stack
          .split('\n')
          .slice(1)
          .map((l) => `    ${l.trim()}\n`)
          .join('');
      continue;
    }
    parts.push(`${key}=${word(value)}`);
  }
  return `${parts.join(' ')}\n${stack}`;
}

/** A pino destination that writes each record to `out` formatted by {@link formatLogLine}. */
export function prettyDestination(
  out: LogOutput,
  opts: { color?: boolean } = {},
): DestinationStream {
  return {
    write(chunk: string) {
      // pino writes one record per call, newline-terminated.
      for (const line of chunk.split('\n')) if (line !== '') out.write(formatLogLine(line, opts));
    },
  };
}

/**
 * The agent's logger: pino at `level`, with `base` on every record, as JSON or readable lines
 * on `out` (default: stdout) as `format` and the terminal decide.
 */
export function createAgentLogger(
  options: { level: string; format: LogFormat; base: Record<string, unknown> },
  out: LogOutput = process.stdout,
): Logger {
  const pinoOptions = { level: options.level, base: options.base };
  if (wantsPretty(options.format, out)) {
    const color = out.isTTY === true && !process.env.NO_COLOR;
    return pino(pinoOptions, prettyDestination(out, { color }));
  }
  // JSON: exactly pino's default destination when writing to stdout.
  return out === process.stdout
    ? pino(pinoOptions)
    : pino(pinoOptions, { write: (s: string) => out.write(s) });
}
