/**
 * Request bodies of the agent's HTTP API. Positions travel as decimal strings: JSON numbers
 * lose precision above 2^53 and heights are 64-bit.
 */
import { z } from 'zod';
import { MAX_POSITION } from '../guard/position.js';

/** Longer than any 63-bit decimal; bounds the work BigInt does on hostile input. */
const MAX_POSITION_DIGITS = 19;

// The pipe stops at the first failed check: `BigInt` only ever sees ASCII digits. (Zod runs
// every check of one schema even after one fails, so a refine next to the regex threw on
// "1e3" and "٣" and answered 500.)
const position = z
  .string({
    error: (i) =>
      typeof i.input === 'number'
        ? 'expected a decimal integer string, e.g. "42", not a JSON number (they lose precision above 2^53)'
        : 'expected a decimal integer string, e.g. "42"',
  })
  .max(MAX_POSITION_DIGITS, 'must be at most 2^63-1')
  .regex(
    /^(0|[1-9][0-9]*)$/,
    'expected ASCII decimal digits without sign, spaces, exponent or leading zeros, e.g. "42"',
  )
  .pipe(
    z.string().transform((s, ctx) => {
      const value = BigInt(s);
      if (value > MAX_POSITION) {
        ctx.issues.push({ code: 'custom', message: 'must be at most 2^63-1', input: s });
        return z.NEVER;
      }
      return value;
    }),
  )
  .meta({ description: 'unsigned 63-bit integer as a decimal string' });

// The length is checked on the decoded bytes: a bound on the string's length that allows for
// an optional "0x" let one byte more through when the prefix was absent.
const hex = (max: number) =>
  z
    .string()
    .max(2 + max * 2, `at most ${max} bytes`)
    .regex(/^(0x)?([0-9a-fA-F]{2})*$/, 'expected hex bytes, optionally 0x-prefixed')
    .pipe(
      z.string().transform((s, ctx) => {
        const bytes = new Uint8Array(Buffer.from(s.startsWith('0x') ? s.slice(2) : s, 'hex'));
        if (bytes.length > max) {
          ctx.issues.push({
            code: 'custom',
            message: `at most ${max} bytes, got ${bytes.length}`,
            input: s,
          });
          return z.NEVER;
        }
        return bytes;
      }),
    );

/** Largest payload the API signs; CometBFT sign bytes are a few hundred bytes. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

const id = (what: string) => z.string().min(1).max(256).meta({ description: what });
const common = {
  chainId: id('chain id (CometBFT chain_id, genesis hash, network name)'),
  keyId: id('configured key id, or the public key in hex'),
  role: id(
    'an exclusive role this agent supervises: granted only while it holds the role, fenced in the store',
  ).optional(),
};

const slotPosition = z.object({ slot: position }).strict();
const grandpaPosition = z
  .object({ setId: position, round: position, stage: z.enum(['propose', 'prevote', 'precommit']) })
  .strict();

const CLAIMED_POSITION =
  'optional: where the caller believes the payload is; the guard reads the position from the payload itself and refuses the request when this differs';

/**
 * A signing request. `family` must be the one of the key's protocol (cometbft; grandpa; slot
 * for babe and aura keys): a key is never used through another protocol's door.
 */
export const SignBodySchema = z.discriminatedUnion('family', [
  z
    .object({
      family: z.literal('cometbft'),
      ...common,
      position: z
        .object({
          height: position,
          round: position,
          step: z.enum(['proposal', 'prevote', 'precommit']),
        })
        .strict()
        .optional()
        .meta({ description: CLAIMED_POSITION }),
      payload: hex(MAX_PAYLOAD_BYTES).meta({
        description:
          'canonical sign bytes (CanonicalVote or CanonicalProposal), length-prefixed, as CometBFT signs them',
      }),
      extension: hex(MAX_PAYLOAD_BYTES)
        .optional()
        .meta({ description: 'vote extension to sign with a non-nil precommit' }),
    })
    .strict(),
  z
    .object({
      family: z.literal('slot'),
      ...common,
      position: slotPosition.optional().meta({ description: CLAIMED_POSITION }),
      payload: hex(MAX_PAYLOAD_BYTES).meta({
        description:
          'the SCALE-encoded Substrate header to seal, without its seal; the slot is read from its BABE or Aura pre-runtime digest and the key signs the header hash',
      }),
    })
    .strict(),
  z
    .object({
      family: z.literal('grandpa'),
      ...common,
      position: grandpaPosition.optional().meta({ description: CLAIMED_POSITION }),
      payload: hex(MAX_PAYLOAD_BYTES).meta({
        description:
          "the SCALE-encoded (message, round, set_id) GRANDPA's voter signs; set id, round and stage are read from it",
      }),
    })
    .strict(),
]);

const nodeId = z
  .string()
  .min(1)
  .max(256)
  .meta({ description: 'stable id of the asking node; a retry by the same node is granted again' });

export const AuthorizeBodySchema = z.discriminatedUnion('family', [
  z
    .object({
      family: z.literal('slot'),
      ...common,
      position: slotPosition,
      nodeId,
      payload: hex(MAX_PAYLOAD_BYTES).optional(),
    })
    .strict(),
  z
    .object({
      family: z.literal('grandpa'),
      ...common,
      position: grandpaPosition,
      nodeId,
      payload: hex(MAX_PAYLOAD_BYTES).optional(),
    })
    .strict(),
]);

export type SignBody = z.output<typeof SignBodySchema>;
export type AuthorizeBody = z.output<typeof AuthorizeBodySchema>;
