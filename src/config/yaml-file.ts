/**
 * Loads a YAML file and validates it with a zod schema. Every problem is reported with the
 * file, the line and column, the path inside the document and what was expected, all at once.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import type { z } from 'zod';
import { VigilError, errorMessage } from '../errors.js';

export interface ConfigProblem {
  readonly path: string;
  readonly line?: number;
  readonly column?: number;
  readonly message: string;
}

export class ConfigError extends VigilError {
  constructor(
    readonly file: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super(
      'CONFIG_INVALID',
      `${file} is invalid:\n` +
        problems
          .map(
            (p) =>
              `  ${file}${p.line !== undefined ? `:${p.line}:${p.column}` : ''}: ${p.path || '(top level)'}: ${p.message}`,
          )
          .join('\n'),
    );
  }
}

export function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i === 0 ? '' : '.'}${String(k)}`))
    .join('');
}

function locate(
  doc: Document,
  lines: LineCounter,
  path: readonly PropertyKey[],
): { line?: number; column?: number } {
  // Walk up until a node that exists (a missing key is reported where its parent is).
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n) as unknown[], true);
    if (isNode(node) && node.range) {
      const { line, col } = lines.linePos(node.range[0]);
      return { line, column: col };
    }
  }
  return {};
}

/** Parses YAML text and validates it; `file` names the source in errors. */
export function parseYaml<S extends z.ZodType>(file: string, text: string, schema: S): z.output<S> {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        // Without prettyErrors the parser leaves linePos unset: place the error ourselves.
        const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
        return {
          path: '',
          ...(pos ? { line: pos.line, column: pos.col } : {}),
          message: e.message.split('\n')[0]!,
        };
      }),
    );
  }
  const result = schema.safeParse(doc.toJS({ maxAliasCount: 100 }));
  if (result.success) return result.data;
  throw new ConfigError(
    file,
    result.error.issues.map((issue) => ({
      path: formatPath(issue.path),
      ...locate(doc, lines, issue.path),
      message: issue.message,
    })),
  );
}

export function loadYamlFile<S extends z.ZodType>(file: string, schema: S): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new VigilError('CONFIG_UNREADABLE', `cannot read ${file}: ${errorMessage(err)}`);
  }
  return parseYaml(file, text, schema);
}
