/**
 * The admin side of a validator-set change (`vigil registry set-propose | set-sign |
 * set-commit | set-show`, src/cli/registry.ts).
 *
 * Why a proposal file passed between operators rather than a protocol that gathers the
 * signatures over libp2p: a set change is rare and deliberate, each validator's operator
 * should see what they sign (set-sign prints the change and checks it follows the set
 * committed in the store), the validators' keys never sign anything a remote peer asked for,
 * and no new network surface is opened. The store's transaction is the one arbiter: of two
 * proposals for one epoch, the first committed wins and the other is refused.
 *
 * The proposal file is JSON (not secret; written 0644):
 *   { format: "vigil-registry-set-proposal/v1", epoch, quorum, members: [peer id],
 *     issuedAt, body: hex, signatures: [{ peerId, signature: hex }] }
 * Only `body` and `signatures` are read back; the other fields are for the operator's eyes
 * and are checked against the body.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { InputError } from '../errors.js';
import { Ed25519Key } from '../keys/ed25519.js';
import { loadEd25519Seed } from '../keys/key-file.js';
import { registryValidatorSet, viewPathOf, type RegistryConfig } from './config.js';
import { openRegistryCells } from './daemon.js';
import { ed25519FromPeerId, peerIdFromEd25519 } from './peer-id.js';
import { RegistryError, inSet, type EpochSet } from './record.js';
import { RegistryStore } from './store.js';
import { RegistryView } from './view.js';
import {
  ValidatorSetChain,
  decodeSetBody,
  decodeSetRecord,
  encodeSetRecord,
  proposeNextSet,
  setDigest,
  setRecord,
  signSetBody,
  type SetBody,
} from './validator-set.js';

export const PROPOSAL_FORMAT = 'vigil-registry-set-proposal/v1';

const hexBytes = z
  .string()
  .regex(/^([0-9a-f]{2})+$/, 'lower-case hex')
  .transform((h) => new Uint8Array(Buffer.from(h, 'hex')));

const ProposalSchema = z.object({
  format: z.literal(PROPOSAL_FORMAT),
  body: hexBytes,
  signatures: z
    .array(z.object({ peerId: z.string(), signature: hexBytes }).strict())
    .max(64)
    .default([]),
  epoch: z.string().optional(),
  quorum: z.number().optional(),
  members: z.array(z.string()).optional(),
  issuedAt: z.string().optional(),
});

export interface Proposal {
  readonly body: SetBody;
  readonly bodyBytes: Uint8Array;
  readonly signatures: ReadonlyArray<{ validator: Uint8Array; signature: Uint8Array }>;
}

function proposalJson(p: Proposal): string {
  return `${JSON.stringify(
    {
      format: PROPOSAL_FORMAT,
      epoch: p.body.epoch.toString(),
      quorum: p.body.quorum,
      members: p.body.members.map(peerIdFromEd25519),
      issuedAt: new Date(p.body.issuedAtMs).toISOString(),
      body: Buffer.from(p.bodyBytes).toString('hex'),
      signatures: p.signatures.map((s) => ({
        peerId: peerIdFromEd25519(s.validator),
        signature: Buffer.from(s.signature).toString('hex'),
      })),
    },
    null,
    2,
  )}\n`;
}

export function readProposal(file: string): Proposal {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InputError(
      `cannot read the set proposal ${file}: ${(err as Error).message}`,
      'pass the file `vigil registry set-propose --out` wrote',
      'REGISTRY_PROPOSAL',
    );
  }
  const parsed = ProposalSchema.safeParse(raw);
  if (!parsed.success)
    throw new InputError(
      `${file} is not a set proposal: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      undefined,
      'REGISTRY_PROPOSAL',
    );
  const bodyBytes = parsed.data.body;
  const body = decodeSetBody(bodyBytes);
  const signatures = parsed.data.signatures.map((s) => {
    if (s.signature.length !== 64)
      throw new InputError(`${file}: a signature is 64 bytes`, undefined, 'REGISTRY_PROPOSAL');
    return { validator: ed25519FromPeerId(s.peerId), signature: s.signature };
  });
  // The readable fields must say what the body says: an operator reads those.
  const d = parsed.data;
  if (
    (d.epoch !== undefined && d.epoch !== body.epoch.toString()) ||
    (d.quorum !== undefined && d.quorum !== body.quorum) ||
    (d.members !== undefined &&
      d.members.join(',') !== body.members.map(peerIdFromEd25519).join(','))
  )
    throw new InputError(
      `${file}: the readable epoch, quorum or members do not match the signed body`,
      'the file was edited by hand; propose again',
      'REGISTRY_PROPOSAL',
    );
  return { body, bodyBytes, signatures };
}

export function writeProposal(file: string, p: Proposal): void {
  writeFileSync(file, proposalJson(p), { mode: 0o644 });
}

/** The store a validator's config names, with its set records read. */
async function openStore(c: RegistryConfig): Promise<RegistryStore> {
  if (!c.store)
    throw new InputError(
      'set changes go through the registry store: run this with a validator config',
      undefined,
      'REGISTRY_CONFIG',
    );
  const store = new RegistryStore(await openRegistryCells(c), {
    validators: registryValidatorSet(c),
  });
  try {
    await store.refreshSets();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

/** A proposal for the next epoch, on top of the set committed in the store. */
export async function proposeSetChange(
  c: RegistryConfig,
  change: { add: readonly string[]; remove: readonly string[]; quorum?: number },
  nowMs = Date.now(),
): Promise<Proposal> {
  const store = await openStore(c);
  try {
    const bodyBytes = proposeNextSet(store.chain, {
      add: change.add.map(ed25519FromPeerId),
      remove: change.remove.map(ed25519FromPeerId),
      ...(change.quorum !== undefined ? { quorum: change.quorum } : {}),
      issuedAtMs: nowMs,
    });
    return { body: decodeSetBody(bodyBytes), bodyBytes, signatures: [] };
  } finally {
    await store.close();
  }
}

/**
 * This validator's signature added to `p`, after checking the proposal follows the set
 * committed in the store and that this validator is in that set (it signs nothing else).
 */
export async function signSetChange(c: RegistryConfig, p: Proposal): Promise<Proposal> {
  const store = await openStore(c);
  let head: EpochSet;
  try {
    head = store.chain.head;
    if (p.body.epoch !== head.epoch + 1n)
      throw new RegistryError(
        'REGISTRY_EPOCH_STALE',
        `the proposal is for epoch ${p.body.epoch}; the store is at epoch ${head.epoch}`,
        'propose again on top of the current set',
      );
    if (Buffer.compare(p.body.prevDigest, setDigest(store.chain.headBody())) !== 0)
      throw new RegistryError(
        'REGISTRY_EPOCH_CONFLICT',
        'the proposal does not follow the validator set committed in the store',
        'propose again on top of the current set',
      );
  } finally {
    await store.close();
  }
  const seed = loadEd25519Seed(c.identity.keyFile);
  const key = Ed25519Key.fromSeed(seed);
  seed.fill(0);
  if (!inSet(head, key.publicKey))
    throw new RegistryError(
      'REGISTRY_UNKNOWN_SIGNER',
      `this node (${peerIdFromEd25519(key.publicKey)}) is not in the validator set of epoch ${head.epoch}`,
      'a set change is signed by the validators of the current set',
    );
  const mine = signSetBody(p.bodyBytes, key);
  return {
    ...p,
    signatures: [
      ...p.signatures.filter((s) => Buffer.compare(s.validator, key.publicKey) !== 0),
      mine,
    ],
  };
}

/** Commits `p` through the store: refused without a quorum of the current set. */
export async function commitSetChange(
  c: RegistryConfig,
  p: Proposal,
): Promise<{ epoch: bigint; duplicate: boolean }> {
  const store = await openStore(c);
  try {
    return await store.commitSet(encodeSetRecord(setRecord(p.bodyBytes, p.signatures)));
  } finally {
    await store.close();
  }
}

export interface SetJson {
  epoch: string;
  quorum: number;
  members: string[];
  issuedAt: string | null;
  signedBy: string[];
}

/**
 * The chain of validator sets: from the store for a validator, else from the node's view
 * (what it learned from the network; the file a running node keeps is read alongside it).
 */
export async function showSets(c: RegistryConfig): Promise<SetJson[]> {
  const genesis = registryValidatorSet(c);
  let records: readonly Uint8Array[];
  if (c.store) {
    const store = await openStore(c);
    try {
      records = store.chain.records();
    } finally {
      await store.close();
    }
  } else {
    const view = new RegistryView(viewPathOf(c));
    try {
      const chain = new ValidatorSetChain(genesis);
      for (const b of view.sets()) chain.offer(b, Date.now());
      records = chain.records();
    } finally {
      view.close();
    }
  }
  return [
    {
      epoch: '0',
      quorum: genesis.quorum,
      members: genesis.members.map(peerIdFromEd25519),
      issuedAt: null,
      signedBy: [],
    },
    ...records.map((b) => {
      const r = decodeSetRecord(b);
      return {
        epoch: r.epoch.toString(),
        quorum: r.quorum,
        members: r.members.map(peerIdFromEd25519),
        issuedAt: new Date(r.issuedAtMs).toISOString(),
        signedBy: r.signatures.map((s) => peerIdFromEd25519(s.validator)),
      };
    }),
  ];
}
