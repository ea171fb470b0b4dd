/**
 * Builders for guard tests: CometBFT sign bytes, rule requests, and a GuardedSigner on a real
 * SQLite file in a temp dir.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseSignBytes,
  proposalSignBytes,
  SignedMsgType,
  voteSignBytes,
  type BlockId,
  type Timestamp,
} from '../../src/protocols/cometbft/sign-bytes.js';
import type { RuleRequest } from '../../src/guard/index.js';
import type { CometStepName } from '../../src/guard/cometbft.js';
import { Ed25519Key } from '../../src/keys/ed25519.js';
import { KeyRing } from '../../src/keys/keyring.js';
import { GuardedSigner } from '../../src/signer/guarded-signer.js';
import { LocalWatermarks } from '../../src/signer/local-watermark.js';
import { SqliteWatermarkStore } from '../../src/store/sqlite.js';

export const CHAIN = 'test-chain-1';

export const sha256 = (b: Uint8Array | string): Uint8Array =>
  new Uint8Array(createHash('sha256').update(b).digest());

export function blockId(tag: number): BlockId {
  return {
    hash: new Uint8Array(32).fill(tag),
    partSetHeader: { total: 1, hash: new Uint8Array(32).fill(tag + 1) },
  };
}

export const TS: Timestamp = { seconds: 1_700_000_000n, nanos: 5 };

export interface CometSpec {
  readonly height: bigint;
  readonly round?: bigint;
  readonly step: CometStepName;
  /** undefined → nil vote (proposals always get a block id unless `nil`). */
  readonly block?: number;
  readonly nil?: boolean;
  readonly timestamp?: Timestamp;
  readonly chainId?: string;
  readonly polRound?: bigint;
}

/** Canonical sign bytes for a CometBFT proposal, prevote or precommit. */
export function cometSignBytes(s: CometSpec): Uint8Array {
  const chainId = s.chainId ?? CHAIN;
  const round = s.round ?? 0n;
  const timestamp = s.timestamp ?? TS;
  const bid = s.nil ? undefined : blockId(s.block ?? 1);
  if (s.step === 'proposal') {
    return proposalSignBytes({
      height: s.height,
      round,
      polRound: s.polRound ?? -1n,
      ...(bid ? { blockId: bid } : {}),
      timestamp,
      chainId,
    });
  }
  return voteSignBytes({
    type: s.step === 'prevote' ? SignedMsgType.Prevote : SignedMsgType.Precommit,
    height: s.height,
    round,
    ...(bid ? { blockId: bid } : {}),
    timestamp,
    chainId,
  });
}

/** A cometbft rule request whose declared position is the one in the bytes unless overridden. */
export function cometRule(
  s: CometSpec,
  override: Partial<{
    height: bigint;
    round: bigint;
    step: CometStepName;
    chainId: string;
    withExtension: boolean;
  }> = {},
): RuleRequest {
  const signBytes = cometSignBytes(s);
  return {
    family: 'cometbft',
    chainId: override.chainId ?? s.chainId ?? CHAIN,
    height: override.height ?? s.height,
    round: override.round ?? s.round ?? 0n,
    step: override.step ?? s.step,
    signBytes,
    parsed: parseSignBytes(signBytes),
    payloadHash: sha256(signBytes),
    withExtension: override.withExtension ?? false,
  };
}

export function slotRule(slot: bigint, payload: string, mode: 'sign' | 'authorize' = 'sign') {
  return { family: 'slot', slot, payloadHash: sha256(payload), mode } as const;
}

export function grandpaRule(
  setId: bigint,
  round: bigint,
  stage: 'propose' | 'prevote' | 'precommit',
  payload: string,
  mode: 'sign' | 'authorize' = 'sign',
) {
  return { family: 'grandpa', setId, round, stage, payloadHash: sha256(payload), mode } as const;
}

/** A deterministic key from a one-byte tag. */
export function keyFromTag(tag: number): Ed25519Key {
  return Ed25519Key.fromSeed(new Uint8Array(32).fill(tag));
}

export function tempDir(prefix = 'vigil-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface SignerRig {
  readonly signer: GuardedSigner;
  readonly store: SqliteWatermarkStore;
  readonly local: LocalWatermarks;
  readonly keys: KeyRing;
  readonly key: Ed25519Key;
  close(): Promise<void>;
}

/**
 * A GuardedSigner over a real SQLite store. Key id `k1` signs with `keyFromTag(7)`; `auth1` is an
 * authorization-only key with the public key of `keyFromTag(9)`.
 */
export function openSignerRig(
  storePath: string,
  localPath: string,
  agentId = 'agent-test',
  busyTimeoutMs?: number,
): SignerRig {
  const store = SqliteWatermarkStore.open({
    path: storePath,
    create: true,
    ...(busyTimeoutMs !== undefined ? { busyTimeoutMs } : {}),
  });
  const local = new LocalWatermarks(localPath);
  local.bindStore(store.identity);
  const key = keyFromTag(7);
  const keys = new KeyRing();
  keys.add({ id: 'k1', scopeKeyId: key.publicKeyHex, signer: key });
  keys.add({ id: 'auth1', scopeKeyId: keyFromTag(9).publicKeyHex });
  const signer = new GuardedSigner({ store, keys, local, agentId });
  return {
    signer,
    store,
    local,
    keys,
    key,
    async close() {
      local.close();
      await store.close();
    },
  };
}

/** CometBFT's priv_validator_key.json for `keyFromTag(tag)`, written owner-only. */
export function writePrivValidatorKey(path: string, tag: number): Ed25519Key {
  const seed = new Uint8Array(32).fill(tag);
  const key = Ed25519Key.fromSeed(seed);
  const pub = key.publicKey;
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
  const address = createHash('sha256')
    .update(pub)
    .digest()
    .subarray(0, 20)
    .toString('hex')
    .toUpperCase();
  writeFileSync(
    path,
    JSON.stringify({
      address,
      pub_key: { type: 'tendermint/PubKeyEd25519', value: b64(pub) },
      priv_key: {
        type: 'tendermint/PrivKeyEd25519',
        value: b64(new Uint8Array([...seed, ...pub])),
      },
    }),
    { mode: 0o600 },
  );
  chmodSync(path, 0o600);
  return key;
}
