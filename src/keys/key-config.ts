/**
 * The `keys:` section of an agent config: each key with the one protocol it is bound to and
 * the chains it serves (see binding.ts for why). Written so that a config from before key
 * binding fails with the exact lines to add, never with a silent default.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import {
  AUTHORIZED_DUTIES,
  KEY_PROTOCOLS,
  signedBytesNameTheChain,
  type KeyBinding,
} from './binding.js';

const hexBytes = z
  // Unquoted, YAML reads 0x… as a number: say so instead of "expected string".
  .string({
    error: 'expected a quoted hex string, e.g. "0x8eaf…" (unquoted, YAML reads 0x… as a number)',
  })
  .regex(/^(0x)?([0-9a-fA-F]{2}){1,64}$/, 'expected hex bytes (up to 64), optionally 0x-prefixed')
  .transform((s) => s.replace(/^0x/, '').toLowerCase());

/** A CometBFT chain id (at most 50 characters, as CometBFT allows) or a genesis hash. */
const chainId = z.string().min(1).max(128);

const MIGRATION_HINT =
  'every key now names the protocol it signs for and its chains, e.g. `protocol: cometbft` ' +
  'with `chains: [cosmoshub-4]`, or `protocol: grandpa` with `chains: ["0x91b1…" (genesis hash)]` ' +
  '(see README, "Keys are bound to one protocol")';

export const KeyConfigSchema = z
  .object({
    id: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, dot, dash and underscore only'),
    /** The private key this agent signs with (priv_validator_key.json, a seed file, a keystore file). */
    file: z.string().min(1).optional(),
    /** For authorization-only keys: the node signs itself and asks Vigil first. */
    publicKey: hexBytes.optional(),
    protocol: z.enum(KEY_PROTOCOLS, {
      error: (issue) =>
        issue.input === undefined
          ? `missing: ${MIGRATION_HINT}`
          : `expected one of ${KEY_PROTOCOLS.join(', ')}`,
    }),
    chains: z
      .array(chainId, {
        error: (issue) =>
          issue.input === undefined ? `missing: ${MIGRATION_HINT}` : 'expected a list of chain ids',
      })
      .min(1, 'name at least one chain'),
    /** aura only: the seal's signature scheme (sr25519 on most chains). */
    scheme: z.enum(['sr25519', 'ed25519']).optional(),
    /** grandpa only: the chain's block number type (u32 on Polkadot, Kusama, Westend). */
    blockNumber: z.enum(['u32', 'u64']).optional(),
    /** authorize only: the duty the node asks for. */
    duty: z.enum(AUTHORIZED_DUTIES).optional(),
  })
  .strict()
  .superRefine((k, ctx) => {
    const issue = (path: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: [path], message });
    if (k.protocol === 'authorize') {
      if (k.file !== undefined)
        issue(
          'file',
          'an `authorize` key is one the node signs with itself: give `publicKey`, not `file`',
        );
      if (k.publicKey === undefined) issue('publicKey', 'an `authorize` key needs `publicKey`');
      if (k.duty === undefined)
        issue(
          'duty',
          `an \`authorize\` key needs \`duty\`: one of ${AUTHORIZED_DUTIES.join(', ')}`,
        );
    } else {
      if (k.file === undefined)
        issue('file', `a \`${k.protocol}\` key is one this agent signs with: give its \`file\``);
      if (k.publicKey !== undefined)
        issue(
          'publicKey',
          '`publicKey` is for `authorize` keys; a signing key takes its public key from `file`',
        );
      if (k.duty !== undefined) issue('duty', '`duty` is for `authorize` keys only');
    }
    if (k.scheme !== undefined && k.protocol !== 'aura')
      issue('scheme', `\`scheme\` is for aura keys; ${k.protocol} fixes its own`);
    if (k.blockNumber !== undefined && k.protocol !== 'grandpa')
      issue('blockNumber', '`blockNumber` is for grandpa keys only');
    if (!signedBytesNameTheChain(k.protocol) && k.chains.length !== 1)
      issue(
        'chains',
        `a ${k.protocol} key serves exactly one chain: its signed bytes do not name the chain, so one signature would be valid on all of them`,
      );
    if (new Set(k.chains).size !== k.chains.length) issue('chains', 'a chain is listed twice');
  });

export type KeyConfig = z.output<typeof KeyConfigSchema>;

export function bindingOf(k: KeyConfig): KeyBinding {
  const chains = new Set(k.chains);
  switch (k.protocol) {
    case 'cometbft':
    case 'babe':
      return { protocol: k.protocol, chains };
    case 'grandpa':
      return { protocol: 'grandpa', chains, blockNumber: k.blockNumber ?? 'u32' };
    case 'aura':
      return { protocol: 'aura', chains, scheme: k.scheme ?? 'sr25519' };
    case 'authorize':
      return { protocol: 'authorize', chains, duty: k.duty! };
  }
}

/**
 * Cross-key checks: one key file, or one public key, under two entries would let a second
 * protocol's door reach the same private key. Paths are compared after resolving.
 */
export function duplicateKeyProblems(
  keys: readonly KeyConfig[],
): Array<{ index: number; path: string; message: string }> {
  const problems: Array<{ index: number; path: string; message: string }> = [];
  const ids = new Map<string, number>();
  const files = new Map<string, number>();
  const publicKeys = new Map<string, number>();
  keys.forEach((k, i) => {
    const seenId = ids.get(k.id);
    if (seenId !== undefined)
      problems.push({ index: i, path: 'id', message: `key id ${k.id} is configured twice` });
    ids.set(k.id, i);
    if (k.file !== undefined) {
      // Both sides resolve against the same directory, so "./a" and "a" compare equal.
      const file = resolve(k.file);
      const other = files.get(file);
      if (other !== undefined)
        problems.push({
          index: i,
          path: 'file',
          message: `key file ${k.file} is already configured as key ${keys[other]!.id} (protocol ${keys[other]!.protocol}); one key file is bound to one protocol`,
        });
      files.set(file, i);
    }
    if (k.publicKey !== undefined) {
      const other = publicKeys.get(k.publicKey);
      if (other !== undefined)
        problems.push({
          index: i,
          path: 'publicKey',
          message: `public key ${k.publicKey} is already configured as key ${keys[other]!.id}`,
        });
      publicKeys.set(k.publicKey, i);
    }
  });
  return problems;
}
