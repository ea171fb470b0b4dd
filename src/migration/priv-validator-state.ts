/**
 * The sign-state files of the signers operators migrate from, read into one neutral shape and
 * written back exactly as each signer writes them:
 *
 * - CometBFT FilePV `priv_validator_state.json` (libs/json MarshalIndent, two-space indent, no
 *   final newline): `height` int64 as a decimal string, `round` int32 as a number, `step` int8
 *   0–3, then `signature` (base64) and `signbytes` (upper-case hex), both omitted when empty.
 * - tmkms' consensus state file (serde_json, compact, no final newline): `height` and `round` as
 *   decimal strings, `step` as a number with tmkms' own numbering (0 proposal, 1 prevote,
 *   2 precommit), `block_id` always present (`null`, or {hash, parts: {total, hash}} with hex
 *   hashes; older tendermint-rs wrote `part_set_header` instead of `parts`).
 * - Horcrux sign state (`priv_validator_state.json`, `<chain>_priv_validator_state.json`, and each
 *   cosigner's `<chain>_share_sign_state.json`, all the same struct). The long-lived layout is
 *   libs/json MarshalIndent: `height` and `round` (int64) as strings, `step` 1–3 like FilePV,
 *   `nonce_public` (older: `ephemeral_public`), `signature` base64, `signbytes` hex; some builds
 *   also write `FilePath` and `vote_ext_signature`. Newer v3 builds write encoding/json with
 *   numbers, `block_id`, `pol_round`, `timestamp` and base64 `sign_bytes`, and still read the
 *   older layout, which is why that older layout is what we write back.
 *
 * The neutral step uses Vigil's (and FilePV's) numbering: 0 nothing signed yet at (height, round),
 * 1 proposal, 2 prevote, 3 precommit.
 */
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { InputError } from '../errors.js';
import { formatPath } from '../config/yaml-file.js';
import { MAX_POSITION } from '../guard/position.js';
import { ProtoReader, WIRE_BYTES, WIRE_VARINT } from '../protocols/cometbft/proto.js';
import {
  SignedMsgType,
  parseSignBytes,
  type ParsedSignBytes,
} from '../protocols/cometbft/sign-bytes.js';

import { STATE_FORMATS, type StateFormat } from './state-formats.js';

export { STATE_FORMATS, type StateFormat };

/** What every format says about the last thing signed, in Vigil's terms. */
export interface SignState {
  readonly height: bigint;
  readonly round: bigint;
  /** 0 nothing yet at (height, round), 1 proposal, 2 prevote, 3 precommit. */
  readonly step: bigint;
  readonly signature?: Uint8Array;
  readonly signBytes?: Uint8Array;
}

export interface ParsedStateFile {
  readonly format: StateFormat;
  /** Which layout of the format the file used, for messages (e.g. `horcrux-v3`). */
  readonly layout: string;
  readonly state: SignState;
}

export const STEP_NAMES = ['none', 'proposal', 'prevote', 'precommit'] as const;

export function stepName(step: bigint): string {
  return STEP_NAMES[Number(step)] ?? `step ${step}`;
}

export class StateFileError extends InputError {
  constructor(source: string, problems: readonly string[], hint?: string) {
    super(
      problems.length === 1
        ? `${source}: ${problems[0]}`
        : `${source}:\n${problems.map((p) => `  ${p}`).join('\n')}`,
      hint ?? 'nothing was changed',
      'STATE_FILE_INVALID',
    );
  }
}

const INT64_MAX = MAX_POSITION;
const INT32_MAX = 0x7fffffff;

const decimalString = (what: string, max: bigint) =>
  z.string().transform((s, ctx) => {
    if (!/^(0|[1-9][0-9]{0,18})$/.test(s)) {
      ctx.addIssue({
        code: 'custom',
        message: `${what} must be a decimal integer string (no sign, no leading zeros), got ${JSON.stringify(s)}`,
      });
      return z.NEVER;
    }
    const v = BigInt(s);
    if (v > max) {
      ctx.addIssue({ code: 'custom', message: `${what} must be at most ${max}, got ${s}` });
      return z.NEVER;
    }
    return v;
  });

/** JSON numbers beyond 2^53 were already rounded by the parser, so they cannot be trusted. */
const exactInteger = (what: string, max: number) =>
  z
    .number()
    .refine(Number.isSafeInteger, `${what} must be an integer small enough to read exactly`)
    .refine((n) => n >= 0, `${what} must not be negative`)
    .refine((n) => n <= max, `${what} must be at most ${max}`)
    .transform((n) => BigInt(n));

const step = (max: number) =>
  z
    .number()
    .int(`step must be an integer`)
    .min(0, 'step must not be negative')
    .max(max, `step must be between 0 and ${max}`)
    .transform((n) => BigInt(n));

const base64 = (what: string) =>
  z
    .string()
    .regex(
      /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/,
      `${what} must be standard base64`,
    )
    .transform((s) => new Uint8Array(Buffer.from(s, 'base64')));

const hex = (what: string) =>
  z
    .string()
    .regex(/^(?:[0-9a-fA-F]{2})*$/, `${what} must be hex bytes`)
    .transform((s) => new Uint8Array(Buffer.from(s, 'hex')));

const FilePvSchema = z
  .object({
    // CometBFT writes a string; some tools that edit the file write a number.
    height: z.union([
      decimalString('height', INT64_MAX),
      exactInteger('height', Number.MAX_SAFE_INTEGER),
    ]),
    round: exactInteger('round', INT32_MAX),
    step: step(3),
    signature: base64('signature').optional(),
    signbytes: hex('signbytes').optional(),
  })
  .strict();

const hash32Hex = z
  .string()
  .regex(/^(?:|[0-9a-fA-F]{64})$/, 'expected an empty string or a 32-byte hash in hex');

const TmkmsPartsSchema = z
  .object({
    total: z.union([
      z.number().int().min(0).max(0xffffffff),
      z.string().regex(/^(0|[1-9][0-9]{0,9})$/, 'total must be a decimal integer'),
    ]),
    hash: hash32Hex,
  })
  .strict();

const TmkmsSchema = z
  .object({
    height: decimalString('height', INT64_MAX),
    round: decimalString('round', BigInt(INT32_MAX)),
    step: step(2),
    block_id: z.union([
      z.null(),
      z
        .object({
          hash: hash32Hex,
          parts: TmkmsPartsSchema.optional(),
          part_set_header: TmkmsPartsSchema.optional(),
        })
        .strict()
        .refine((b) => (b.parts === undefined) !== (b.part_set_header === undefined), {
          message: 'block_id needs exactly one of `parts` or `part_set_header`',
        }),
    ]),
  })
  .strict();

const HorcruxLegacySchema = z
  .object({
    height: decimalString('height', INT64_MAX),
    round: decimalString('round', INT64_MAX),
    step: step(3),
    nonce_public: z.union([z.null(), base64('nonce_public')]).optional(),
    ephemeral_public: z.union([z.null(), base64('ephemeral_public')]).optional(),
    signature: base64('signature').optional(),
    // HexBytes in released builds, plain []byte (base64) in a few development builds.
    signbytes: z.string().optional(),
    vote_ext_signature: base64('vote_ext_signature').optional(),
    FilePath: z.string().optional(),
  })
  .strict();

const HorcruxV3Schema = z
  .object({
    height: exactInteger('height', Number.MAX_SAFE_INTEGER),
    round: exactInteger('round', Number.MAX_SAFE_INTEGER),
    step: step(3),
    block_id: z.unknown().optional(),
    // Not needed for the watermark; timestamp is Unix nanoseconds, beyond exact JSON numbers.
    pol_round: z.number().optional(),
    timestamp: z.number().optional(),
    sign_bytes: base64('sign_bytes').optional(),
    signature: base64('signature').optional(),
    vote_ext_signature: base64('vote_ext_signature').optional(),
  })
  .strict();

function zodProblems(error: z.ZodError): string[] {
  return error.issues.map((i) => `${formatPath(i.path) || '(top level)'}: ${i.message}`);
}

function parseWith<S extends z.ZodType>(source: string, schema: S, doc: unknown): z.output<S> {
  const r = schema.safeParse(doc);
  if (!r.success) throw new StateFileError(source, zodProblems(r.error));
  return r.data;
}

/** Guesses the format from the shape alone; `--format` overrides it. */
export function detectFormat(doc: unknown, source: string): StateFormat {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new StateFileError(source, ['expected a JSON object']);
  }
  const o = doc as Record<string, unknown>;
  if ('priv_key' in o || 'pub_key' in o) {
    throw new StateFileError(
      source,
      ['this is a validator key file (priv_validator_key.json), not a sign state'],
      "pass the signer's state file, usually data/priv_validator_state.json; nothing was changed",
    );
  }
  // `signbytes` (one word) is written by FilePV and by Horcrux's older layout only; FilePV's
  // round is a number, Horcrux's a string. Some tools write FilePV's height as a number too.
  if ('signbytes' in o && typeof o.round === 'number') return 'filepv';
  if (typeof o.height === 'number') return 'horcrux'; // Horcrux v3 writes numbers
  if (typeof o.round === 'number') return 'filepv';
  if ('block_id' in o) return 'tmkms';
  if (typeof o.round === 'string') return 'horcrux';
  const missing = ['height', 'round', 'step'].filter((k) => !(k in o));
  throw new StateFileError(
    source,
    [
      missing.length > 0
        ? `not a sign state file: it has no ${missing.map((k) => `\`${k}\``).join(', ')}`
        : 'cannot tell which signer wrote this file (`round` is neither a number nor a string)',
    ],
    "pass priv_validator_state.json (FilePV, Horcrux) or tmkms' state file, or force --format filepv|tmkms|horcrux",
  );
}

function checkSignedFields(source: string, state: SignState): SignState {
  const problems: string[] = [];
  if (state.signBytes !== undefined && state.signature === undefined) {
    problems.push('signbytes are present but the signature is missing');
  }
  if (state.signature !== undefined && state.signBytes === undefined) {
    problems.push('a signature is present without the signbytes it signs');
  }
  if (state.signature !== undefined && state.signature.length !== 64) {
    problems.push(
      `signature is ${state.signature.length} bytes; Vigil guards Ed25519 keys (64-byte signatures)`,
    );
  }
  if (state.signBytes !== undefined && state.step === 0n) {
    problems.push('step 0 (nothing signed) cannot carry signbytes');
  }
  if (problems.length > 0) throw new StateFileError(source, problems);
  // An empty signature/signbytes pair is how Go writes "none" when omitempty is missing.
  return state;
}

function nonEmpty(b: Uint8Array | undefined): Uint8Array | undefined {
  return b === undefined || b.length === 0 ? undefined : b;
}

function horcruxSignBytes(source: string, text: string | undefined, state: SignState) {
  if (text === undefined || text === '') return undefined;
  const candidates: Uint8Array[] = [];
  if (/^(?:[0-9a-fA-F]{2})+$/.test(text)) candidates.push(new Uint8Array(Buffer.from(text, 'hex')));
  if (/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
    candidates.push(new Uint8Array(Buffer.from(text, 'base64')));
  }
  // Hex digits are also base64 letters: keep the reading whose bytes say this very position.
  for (const c of candidates) {
    try {
      const p = parseSignBytes(c);
      if (p.height === state.height && p.round === state.round) return c;
    } catch {
      // try the other reading
    }
  }
  if (candidates.length === 0) {
    throw new StateFileError(source, ['signbytes: must be hex (or base64) bytes']);
  }
  // Neither reading matches: return one so the position check reports the mismatch precisely.
  return candidates[0];
}

export function parseStateFile(
  text: string,
  source: string,
  format?: StateFormat,
): ParsedStateFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new StateFileError(source, [`not valid JSON (${(err as Error).message})`]);
  }
  // JSON.parse keeps the last of two equal keys; a file saying two heights is not trusted.
  const dup = parseDocument(text, { uniqueKeys: true }).errors.find(
    (e) => e.code === 'DUPLICATE_KEY',
  );
  if (dup) {
    const at = dup.linePos?.[0];
    throw new StateFileError(source, [
      `a key appears twice${at ? ` (line ${at.line}, column ${at.col})` : ''}`,
    ]);
  }
  const fmt = format ?? detectFormat(doc, source);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new StateFileError(source, ['expected a JSON object']);
  }
  switch (fmt) {
    case 'filepv': {
      const f = parseWith(source, FilePvSchema, doc);
      const state = checkSignedFields(source, {
        height: f.height,
        round: f.round,
        step: f.step,
        ...opt('signature', nonEmpty(f.signature)),
        ...opt('signBytes', nonEmpty(f.signbytes)),
      });
      return { format: 'filepv', layout: 'filepv', state };
    }
    case 'tmkms': {
      const t = parseWith(source, TmkmsSchema, doc);
      // tmkms numbers proposal 0, prevote 1, precommit 2; Vigil and FilePV add one.
      const state = { height: t.height, round: t.round, step: t.step + 1n };
      return { format: 'tmkms', layout: 'tmkms', state };
    }
    case 'horcrux': {
      const o = doc as Record<string, unknown>;
      if (typeof o.height === 'number') {
        const h = parseWith(source, HorcruxV3Schema, doc);
        const state = checkSignedFields(source, {
          height: h.height,
          round: h.round,
          step: h.step,
          ...opt('signature', nonEmpty(h.signature)),
          ...opt('signBytes', nonEmpty(h.sign_bytes)),
        });
        return { format: 'horcrux', layout: 'horcrux-v3', state };
      }
      const h = parseWith(source, HorcruxLegacySchema, doc);
      const base = { height: h.height, round: h.round, step: h.step };
      const state = checkSignedFields(source, {
        ...base,
        ...opt('signature', nonEmpty(h.signature)),
        ...opt('signBytes', horcruxSignBytes(source, h.signbytes, base)),
      });
      return { format: 'horcrux', layout: 'horcrux', state };
    }
  }
}

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

export function stepOfParsedSignBytes(p: ParsedSignBytes): bigint {
  if (p.type === SignedMsgType.Proposal) return 1n;
  return p.type === SignedMsgType.Prevote ? 2n : 3n;
}

/**
 * Checks that signbytes say what the file claims: they parse as canonical CometBFT sign bytes
 * for the same height, round and step, on the chain being imported.
 */
export function checkSignBytesMatch(
  source: string,
  state: SignState,
  chainId: string,
): ParsedSignBytes | undefined {
  if (state.signBytes === undefined) return undefined;
  let parsed: ParsedSignBytes;
  try {
    parsed = parseSignBytes(state.signBytes);
  } catch (err) {
    throw new StateFileError(source, [
      `signbytes are not canonical CometBFT sign bytes: ${(err as Error).message}`,
    ]);
  }
  const problems: string[] = [];
  if (parsed.height !== state.height) {
    problems.push(`signbytes are for height ${parsed.height}, the file says ${state.height}`);
  }
  if (parsed.round !== state.round) {
    problems.push(`signbytes are for round ${parsed.round}, the file says ${state.round}`);
  }
  const s = stepOfParsedSignBytes(parsed);
  if (s !== state.step) {
    problems.push(
      `signbytes are a ${stepName(s)}, the file says step ${state.step} (${stepName(state.step)})`,
    );
  }
  if (parsed.chainId !== chainId) {
    problems.push(
      `signbytes are for chain ${JSON.stringify(parsed.chainId)}, not ${JSON.stringify(chainId)}`,
    );
  }
  if (problems.length > 0) {
    throw new StateFileError(
      source,
      problems,
      'is this the state file of this chain and key? nothing was changed',
    );
  }
  return parsed;
}

// ---------------------------------------------------------------------------------------------
// Rendering

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const HEX = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();

/** Go's MarshalIndent(v, "", "  ") of a flat object whose values are already JSON text. */
function goIndent(fields: Array<[string, string]>): string {
  return `{\n${fields.map(([k, v]) => `  ${JSON.stringify(k)}: ${v}`).join(',\n')}\n}`;
}

export function renderFilePv(s: SignState): string {
  if (s.round > BigInt(INT32_MAX)) {
    throw new InputError(`round ${s.round} does not fit FilePV's int32 round`);
  }
  const fields: Array<[string, string]> = [
    ['height', JSON.stringify(String(s.height))],
    ['round', String(s.round)],
    ['step', String(s.step)],
  ];
  if (s.signature?.length) fields.push(['signature', JSON.stringify(b64(s.signature))]);
  if (s.signBytes?.length) fields.push(['signbytes', JSON.stringify(HEX(s.signBytes))]);
  return goIndent(fields);
}

export function renderHorcrux(s: SignState): string {
  const fields: Array<[string, string]> = [
    ['height', JSON.stringify(String(s.height))],
    ['round', JSON.stringify(String(s.round))],
    ['step', String(s.step)],
    ['nonce_public', 'null'],
  ];
  if (s.signature?.length) fields.push(['signature', JSON.stringify(b64(s.signature))]);
  if (s.signBytes?.length) fields.push(['signbytes', JSON.stringify(HEX(s.signBytes))]);
  return goIndent(fields);
}

interface CanonicalBlockId {
  readonly hash: Uint8Array;
  readonly total: number;
  readonly partsHash: Uint8Array;
}

/** Reads the block id out of canonical sign bytes, so tmkms gets back the block it voted for. */
export function blockIdOfSignBytes(signBytes: Uint8Array): CanonicalBlockId | undefined {
  const parsed = parseSignBytes(signBytes);
  if (parsed.blockIdNil) return undefined;
  const field = parsed.kind === 'proposal' ? 5 : 4;
  const outer = new ProtoReader(signBytes);
  outer.uvarint();
  const r = new ProtoReader(signBytes, outer.pos);
  while (!r.done) {
    const { field: f, wire } = r.tag();
    if (f === field && wire === WIRE_BYTES) {
      const range = r.bytesRange();
      const b = new ProtoReader(signBytes, range.start, range.end);
      let hash: Uint8Array = new Uint8Array();
      let total = 0;
      let partsHash: Uint8Array = new Uint8Array();
      while (!b.done) {
        const t = b.tag();
        if (t.field === 1 && t.wire === WIRE_BYTES) hash = b.bytes();
        else if (t.field === 2 && t.wire === WIRE_BYTES) {
          const pr = b.bytesRange();
          const p = new ProtoReader(signBytes, pr.start, pr.end);
          while (!p.done) {
            const pt = p.tag();
            if (pt.field === 1 && pt.wire === WIRE_VARINT) total = p.uvarintNumber(0xffffffff);
            else if (pt.field === 2 && pt.wire === WIRE_BYTES) partsHash = p.bytes();
            else p.skip(pt.wire);
          }
        } else b.skip(t.wire);
      }
      return { hash, total, partsHash };
    }
    r.skip(wire);
  }
  return undefined;
}

export function renderTmkms(s: SignState): string {
  // Vigil's step 0 (nothing signed yet at this round) has no tmkms spelling; tmkms' 0 is "a
  // proposal was signed here", which only makes tmkms more careful at (height, round).
  const tmkmsStep = s.step === 0n ? 0n : s.step - 1n;
  const id = s.signBytes ? blockIdOfSignBytes(s.signBytes) : undefined;
  const blockId = id
    ? { hash: HEX(id.hash), parts: { total: id.total, hash: HEX(id.partsHash) } }
    : { hash: '', parts: { total: 0, hash: '' } };
  return JSON.stringify({
    height: String(s.height),
    round: String(s.round),
    step: Number(tmkmsStep),
    block_id: blockId,
  });
}

export function renderStateFile(s: SignState, format: StateFormat): string {
  switch (format) {
    case 'filepv':
      return renderFilePv(s);
    case 'tmkms':
      return renderTmkms(s);
    case 'horcrux':
      return renderHorcrux(s);
  }
}
