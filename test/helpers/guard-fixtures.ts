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
import type { DutyFamily } from '../../src/guard/watermark.js';
import type { KeyBinding } from '../../src/keys/binding.js';
import { Ed25519Key } from '../../src/keys/ed25519.js';
import { KeyRing } from '../../src/keys/keyring.js';
import { Sr25519Key } from '../../src/keys/sr25519.js';
import { encodeGrandpaSignPayload } from '../../src/protocols/substrate/grandpa.js';
import {
  encodeBabePreDigest,
  encodeHeader,
  type DigestItem,
} from '../../src/protocols/substrate/header.js';
import {
  GuardedSigner,
  type AuthorizationRequest,
  type SignRequest,
} from '../../src/signer/guarded-signer.js';
import { LocalWatermarks } from '../../src/signer/local-watermark.js';
import { SqliteWatermarkStore } from '../../src/store/sqlite.js';

export const CHAIN = 'test-chain-1';
/** A second chain the rig's CometBFT key also serves. */
export const CHAIN2 = 'test-chain-2';

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

/**
 * An unsealed Substrate header for `slot` with a BABE secondary-plain pre-digest, as a BABE
 * author asks to seal it. `content` varies the block: two contents at one slot conflict.
 */
export function babeHeader(
  slot: bigint,
  content: string | number = 'a',
  number = 1n,
  /** Further digest items after the pre-digest (an `other` item pads a header to a size). */
  extraDigest: DigestItem[] = [],
): Uint8Array {
  return encodeHeader({
    parentHash: sha256(`parent|${content}`),
    number,
    stateRoot: sha256(`state|${content}`),
    extrinsicsRoot: sha256(`extrinsics|${content}`),
    digest: [
      {
        kind: 'preRuntime',
        engine: 'BABE',
        data: encodeBabePreDigest({ type: 'secondaryPlain', authorityIndex: 0, slot }),
      },
      ...extraDigest,
    ],
  });
}

/** GRANDPA's signed payload for a vote; `content` picks the target block. */
export function grandpaVote(
  setId: bigint,
  round: bigint,
  stage: 'propose' | 'prevote' | 'precommit',
  content: string | number = 'a',
): Uint8Array {
  return encodeGrandpaSignPayload({
    stage,
    targetHash: sha256(`target|${content}`),
    targetNumber: 100n,
    round,
    setId,
  });
}

/** Requests for the rig's keys: the CometBFT key `k1`, the GRANDPA key `g1`, the BABE key `s1`. */
export const req = {
  comet(s: CometSpec, extra: Partial<SignRequest> = {}): SignRequest {
    return {
      chainId: s.chainId ?? CHAIN,
      keyId: 'k1',
      payload: cometSignBytes(s),
      claims: { family: 'cometbft' },
      ...extra,
    };
  },
  slot(
    slot: bigint,
    content: string | number = 'a',
    extra: Partial<SignRequest> = {},
  ): SignRequest {
    return {
      chainId: CHAIN,
      keyId: 's1',
      payload: babeHeader(slot, content),
      claims: { family: 'slot' },
      ...extra,
    };
  },
  grandpa(
    setId: bigint,
    round: bigint,
    stage: 'propose' | 'prevote' | 'precommit',
    content: string | number = 'a',
    extra: Partial<SignRequest> = {},
  ): SignRequest {
    return {
      chainId: CHAIN,
      keyId: 'g1',
      payload: grandpaVote(setId, round, stage, content),
      claims: { family: 'grandpa' },
      ...extra,
    };
  },
  /** Asks for slot `slot` with the authorization-only key `auth1`. */
  authorizeSlot(
    slot: bigint,
    nodeId: string,
    extra: Partial<AuthorizationRequest> = {},
  ): AuthorizationRequest {
    return {
      chainId: CHAIN,
      keyId: 'auth1',
      family: 'slot',
      slot,
      nodeId,
      ...extra,
    } as AuthorizationRequest;
  },
};

/** A binding serving `chains` (default: the test chain) for tests that build key rings. */
export function binding(
  protocol: KeyBinding['protocol'],
  chains: readonly string[] = [CHAIN],
  duty: Extract<DutyFamily, 'slot' | 'grandpa'> = 'slot',
): KeyBinding {
  const set = new Set(chains);
  switch (protocol) {
    case 'cometbft':
    case 'babe':
      return { protocol, chains: set };
    case 'grandpa':
      return { protocol, chains: set, blockNumber: 'u32' };
    case 'aura':
      return { protocol, chains: set, scheme: 'sr25519' };
    case 'authorize':
      return { protocol, chains: set, duty };
  }
}

/** A deterministic sr25519 key from a one-byte tag. */
export function srKeyFromTag(tag: number): Sr25519Key {
  return Sr25519Key.fromSeed(new Uint8Array(32).fill(tag));
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
  /** The CometBFT key `k1`. */
  readonly key: Ed25519Key;
  /** The GRANDPA key `g1`. */
  readonly grandpaKey: Ed25519Key;
  /** The BABE key `s1`. */
  readonly babeKey: Sr25519Key;
  close(): Promise<void>;
}

/**
 * A GuardedSigner over a real SQLite store, with one key per protocol, as an operator binds them:
 * `k1` (CometBFT, `keyFromTag(7)`, chains CHAIN and CHAIN2), `g1` (GRANDPA, `keyFromTag(8)`),
 * `s1` (BABE, `srKeyFromTag(10)`), and the authorization-only `auth1` (slot duties, public key of
 * `keyFromTag(9)`) and `auth2` (GRANDPA duties, `keyFromTag(11)`), all on CHAIN unless noted.
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
  const grandpaKey = keyFromTag(8);
  const babeKey = srKeyFromTag(10);
  const keys = new KeyRing();
  keys.add({
    id: 'k1',
    scopeKeyId: key.publicKeyHex,
    signer: key,
    binding: binding('cometbft', [CHAIN, CHAIN2]),
  });
  keys.add({
    id: 'g1',
    scopeKeyId: grandpaKey.publicKeyHex,
    signer: grandpaKey,
    binding: binding('grandpa'),
  });
  keys.add({
    id: 's1',
    scopeKeyId: babeKey.publicKeyHex,
    signer: babeKey,
    binding: binding('babe'),
  });
  keys.add({
    id: 'auth1',
    scopeKeyId: keyFromTag(9).publicKeyHex,
    binding: binding('authorize', [CHAIN], 'slot'),
  });
  keys.add({
    id: 'auth2',
    scopeKeyId: keyFromTag(11).publicKeyHex,
    binding: binding('authorize', [CHAIN], 'grandpa'),
  });
  const signer = new GuardedSigner({ store, keys, local, agentId });
  return {
    signer,
    store,
    local,
    keys,
    key,
    grandpaKey,
    babeKey,
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
