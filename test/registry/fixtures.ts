/** Keys, contents and signed records for the registry tests. */
import assert from 'node:assert/strict';
import { Ed25519Key } from '../../src/keys/ed25519.js';
import { peerIdFromEd25519 } from '../../src/registry/peer-id.js';
import type { RegistryStore } from '../../src/registry/store.js';
import {
  RegistryError,
  countersign,
  encodeRecord,
  encodeSubmission,
  signSubmission,
  validatorSet,
  withCommit,
  type RecordContent,
  type SignedRecord,
  type ValidatorSet,
} from '../../src/registry/record.js';

/** A deterministic Ed25519 key per tag (tags 1..255). */
export function keyOf(tag: number): Ed25519Key {
  const seed = new Uint8Array(32).fill(tag);
  seed[0] = 0xa5;
  return Ed25519Key.fromSeed(seed);
}

/** Validator keys: tags 100.. */
export const validatorKeys = (n: number) => Array.from({ length: n }, (_, i) => keyOf(100 + i));

export function setOf(keys: readonly Ed25519Key[], quorum?: number): ValidatorSet {
  return validatorSet(
    keys.map((k) => k.publicKey),
    quorum,
  );
}

export const NOW = 1_800_000_000_000;

export function content(subject: Ed25519Key, over: Partial<RecordContent> = {}): RecordContent {
  return {
    subjectKey: subject.publicKey,
    prevSeq: 0n,
    issuedAtMs: NOW,
    expiresAtMs: NOW + 3_600_000,
    flags: 1,
    role: 'worker',
    capabilities: ['oracle', 'storage'],
    addresses: ['/ip4/127.0.0.1/tcp/4001', '/dns4/node.example.org/udp/4001/quic-v1'],
    ...over,
  };
}

/** The encoded submission of `subject` with `over`. */
export function submission(subject: Ed25519Key, over: Partial<RecordContent> = {}): Uint8Array {
  return encodeSubmission(signSubmission(content(subject, over), subject));
}

/** A committed record at prevSeq + 1, countersigned by `signers`. */
export function signedRecord(
  subject: Ed25519Key,
  signers: readonly Ed25519Key[],
  over: Partial<RecordContent> = {},
): { record: SignedRecord; bytes: Uint8Array } {
  const s = signSubmission(content(subject, over), subject);
  const bare = withCommit(s, s.content.prevSeq + 1n);
  const record = withCommit(
    s,
    bare.seq,
    signers.map((v) => countersign(bare, v)),
  );
  return { record, bytes: encodeRecord(record) };
}

export const VALIDATORS = validatorKeys(3);
export const SET = setOf(VALIDATORS);

/**
 * Submits `subject`'s record on top of whatever is committed, retrying when another writer got
 * there first; answers the seq it was committed at. `tag` keeps each submission's content
 * distinct from every other's.
 */
export async function submitOnTop(
  store: RegistryStore,
  subject: Ed25519Key,
  tag: number,
): Promise<bigint> {
  const peerId = peerIdFromEd25519(subject.publicKey);
  for (let attempt = 0; attempt < 500; attempt++) {
    const cur = await store.get(peerId);
    try {
      const r = await store.submit(
        submission(subject, { prevSeq: cur?.seq ?? 0n, issuedAtMs: NOW + tag }),
      );
      assert.equal(r.duplicate, false);
      return r.seq;
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'REGISTRY_SEQ_STALE') continue;
      throw err;
    }
  }
  throw new Error(`submission ${tag} never committed`);
}
