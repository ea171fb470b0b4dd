/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4), the lines
 * `vigil status` needs: samples with their labels and values. prom-client writes this format
 * but has no reader. Comments (`# HELP`, `# TYPE`, others) and blank lines are skipped; any
 * other line that is not a well-formed sample is an error naming its line, never a guess.
 */
import { VigilError } from '../errors.js';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export class MetricsFormatError extends VigilError {
  constructor(where: string, line: number, why: string, text: string) {
    super(
      'METRICS_FORMAT',
      `${where}: line ${line} of the metrics is not Prometheus text format (${why}): ${text.slice(0, 120)}`,
    );
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/**
 * Prometheus reads values with Go's strconv.ParseFloat (prometheus/prometheus
 * model/textparse/promparse.go), which takes NaN and Inf in any case; prom-client writes a NaN
 * gauge as `Nan` (prom-client lib/util.js, getValueAsString), e.g. the event loop lag before
 * its first sample.
 */
function parseValue(text: string): number | undefined {
  const special = text.toLowerCase();
  if (special === 'nan') return NaN;
  if (special === '+inf' || special === 'inf') return Infinity;
  if (special === '-inf') return -Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return undefined;
  return Number(text);
}

/** Parses one sample line; answers the reason when it is malformed. */
function parseSample(line: string): Sample | string {
  const name = METRIC_NAME.exec(line)?.[0];
  if (name === undefined) return 'no metric name';
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const label = LABEL_NAME.exec(line.slice(i))?.[0];
      if (label === undefined) return 'bad label name';
      i += label.length;
      if (line[i] !== '=' || line[i + 1] !== '"') return `label ${label} has no quoted value`;
      i += 2;
      let value = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) return `label ${label}: unterminated value`;
        i++;
        if (c === '"') break;
        if (c === '\\') {
          const e = line[i++];
          if (e === 'n') value += '\n';
          else if (e === '\\' || e === '"') value += e;
          else return `label ${label}: bad escape \\${e ?? ''}`;
        } else value += c;
      }
      if (Object.hasOwn(labels, label)) return `label ${label} given twice`;
      labels[label] = value;
      while (line[i] === ' ') i++;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') return 'expected , or } after a label';
    }
  }
  const rest = line.slice(i);
  if (!/^[ \t]/.test(rest)) return 'no space before the value';
  const fields = rest.trim().split(/[ \t]+/);
  if (fields.length > 2) return 'text after the timestamp';
  const value = parseValue(fields[0]!);
  if (value === undefined) return `bad value ${JSON.stringify(fields[0])}`;
  if (fields[1] !== undefined && !/^-?\d+$/.test(fields[1])) return 'bad timestamp';
  return { name, labels, value };
}

/** Every sample of an exposition; `where` names its source in errors. */
export function parsePrometheusText(text: string, where: string): Sample[] {
  const samples: Sample[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '' || line.startsWith('#')) return;
    const parsed = parseSample(line);
    if (typeof parsed === 'string') throw new MetricsFormatError(where, index + 1, parsed, line);
    samples.push(parsed);
  });
  return samples;
}
