/**
 * Substrate block headers and the BABE / Aura pre-runtime digests that claim a slot.
 *
 * Layout (polkadot-sdk `sp_runtime::generic::Header`): parent_hash (32 bytes), number
 * (`#[codec(compact)]`), state_root (32), extrinsics_root (32), digest (`Vec<DigestItem>`).
 * `sp_runtime::generic::DigestItem` tags: Other = 0, Consensus = 4, Seal = 5, PreRuntime = 6,
 * RuntimeEnvironmentUpdated = 8; the engine-tagged items carry a 4-byte `ConsensusEngineId`
 * and a `Vec<u8>`.
 *
 * What a block author signs: `sc_consensus_babe::verification::check_header` and
 * `sc_consensus_aura::standalone::check_header_slot_and_seal` pop the seal (the last digest
 * item) and verify its signature over `header.hash()` of what remains, the "pre-hash":
 * blake2_256 of the SCALE header without the seal. So a header to be sealed is signed as
 * `headerHash(encodeHeader(unsealed))`, and a block's published hash is `headerHash` of the
 * sealed header.
 */
import { blake2b } from '@noble/hashes/blake2.js';
import { createCodec, createDecoder, type Codec, type Decoder } from 'scale-ts';
import { InputError } from '../../errors.js';
import {
  U32_MAX,
  boundedVector,
  canonicalCompact,
  concat,
  decodeExact,
  fixedBytes,
  fixedUint,
  lengthPrefixedBytes,
  malformed,
  taggedUnion,
} from './scale.js';

export type DigestItem =
  | {
      readonly kind: 'preRuntime' | 'consensus' | 'seal';
      /** 4 ASCII bytes, e.g. 'BABE', 'aura'. */
      readonly engine: string;
      readonly data: Uint8Array;
    }
  | { readonly kind: 'other'; readonly data: Uint8Array }
  | { readonly kind: 'runtimeEnvironmentUpdated' };

export interface SubstrateHeader {
  readonly parentHash: Uint8Array;
  readonly number: bigint;
  readonly stateRoot: Uint8Array;
  readonly extrinsicsRoot: Uint8Array;
  readonly digest: readonly DigestItem[];
}

const DIGEST_TAGS = {
  other: 0,
  consensus: 4,
  seal: 5,
  preRuntime: 6,
  runtimeEnvironmentUpdated: 8,
} as const;

/** `ConsensusEngineId` is `[u8; 4]`; engines in use are ASCII, and only ASCII round-trips as a string. */
const engineId: Codec<string> = (() => {
  const raw = fixedBytes(4, 'consensus engine id');
  return createCodec(
    (engine: string) => {
      if (
        typeof engine !== 'string' ||
        engine.length !== 4 ||
        [...engine].some((c) => c.charCodeAt(0) > 0x7f)
      ) {
        throw new InputError(
          `a consensus engine id is 4 ASCII characters, got ${JSON.stringify(engine)}`,
        );
      }
      return raw.enc(new Uint8Array(Buffer.from(engine, 'latin1')));
    },
    createDecoder((input) => {
      const bytes = raw.dec(input);
      if (bytes.some((b) => b > 0x7f)) {
        malformed(
          `consensus engine id 0x${Buffer.from(bytes).toString('hex')} is not ASCII; no known engine uses such an id`,
        );
      }
      return Buffer.from(bytes).toString('latin1');
    }),
  );
})();

const payload = lengthPrefixedBytes('digest item data');

const digestItem: Codec<DigestItem> = (() => {
  const engineItem =
    (kind: 'preRuntime' | 'consensus' | 'seal'): Decoder<DigestItem> =>
    (input) => ({ kind, engine: engineId.dec(input), data: payload.dec(input) });
  const variants = new Map<number, Decoder<DigestItem>>([
    [DIGEST_TAGS.other, (input) => ({ kind: 'other', data: payload.dec(input) })],
    [DIGEST_TAGS.consensus, engineItem('consensus')],
    [DIGEST_TAGS.seal, engineItem('seal')],
    [DIGEST_TAGS.preRuntime, engineItem('preRuntime')],
    [DIGEST_TAGS.runtimeEnvironmentUpdated, () => ({ kind: 'runtimeEnvironmentUpdated' })],
  ]);
  return taggedUnion('digest item', variants, (item) => {
    if (typeof item !== 'object' || item === null)
      throw new InputError('a digest item must be an object');
    switch (item.kind) {
      case 'other':
        return [DIGEST_TAGS.other, payload.enc(item.data)];
      case 'consensus':
      case 'seal':
      case 'preRuntime':
        return [
          DIGEST_TAGS[item.kind],
          concat([engineId.enc(item.engine), payload.enc(item.data)]),
        ];
      case 'runtimeEnvironmentUpdated':
        return [DIGEST_TAGS.runtimeEnvironmentUpdated, new Uint8Array(0)];
      default:
        throw new InputError(
          `unknown digest item kind ${JSON.stringify((item as { kind: unknown }).kind)}`,
        );
    }
  });
})();

const headerCodec: Codec<SubstrateHeader> = (() => {
  const hash = (what: string) => fixedBytes(32, what);
  const parentHash = hash('parent hash');
  // Polkadot, Kusama and Westend number blocks with u32; a larger number is not a header of theirs.
  const number = canonicalCompact(U32_MAX, 'block number');
  const stateRoot = hash('state root');
  const extrinsicsRoot = hash('extrinsics root');
  const digest = boundedVector(digestItem, 'digest');
  return createCodec<SubstrateHeader>(
    (h: SubstrateHeader) => {
      if (typeof h !== 'object' || h === null) throw new InputError('a header must be an object');
      return concat([
        parentHash.enc(h.parentHash),
        number.enc(h.number),
        stateRoot.enc(h.stateRoot),
        extrinsicsRoot.enc(h.extrinsicsRoot),
        digest.enc(h.digest as DigestItem[]),
      ]);
    },
    createDecoder((input) => ({
      parentHash: parentHash.dec(input),
      number: number.dec(input),
      stateRoot: stateRoot.dec(input),
      extrinsicsRoot: extrinsicsRoot.dec(input),
      digest: digest.dec(input),
    })),
  );
})();

/** Strict: exactly one canonical header, no trailing bytes. */
export function decodeHeader(bytes: Uint8Array): SubstrateHeader {
  return decodeExact('Substrate header', headerCodec, bytes);
}

export function encodeHeader(header: SubstrateHeader): Uint8Array {
  return headerCodec.enc(header);
}

/**
 * blake2b-256 of a SCALE-encoded header (`sp_runtime::traits::BlakeTwo256`). The input must be
 * one well-formed header: hashing arbitrary bytes here would let a caller have any 32 bytes
 * signed as a block.
 */
export function headerHash(encoded: Uint8Array): Uint8Array {
  decodeHeader(encoded);
  return blake2b(encoded, { dkLen: 32 });
}

/**
 * What a slot author's seal covers, from one parse of `encoded`: the slot its pre-digest claims
 * and the header's hash (what the seal signs).
 */
export function unsealedHeaderToSeal(
  encoded: Uint8Array,
  engine: SlotEngine,
): { readonly slot: bigint; readonly hash: Uint8Array } {
  const slot = slotOfUnsealedHeader(decodeHeader(encoded), engine);
  return { slot, hash: blake2b(encoded, { dkLen: 32 }) };
}

export type SlotEngine = 'babe' | 'aura';

const ENGINE_IDS: Record<SlotEngine, string> = { babe: 'BABE', aura: 'aura' };

/** The slot a header to be sealed claims: exactly one pre-runtime digest of that engine, no seal yet. */
export function slotOfUnsealedHeader(header: SubstrateHeader, engine: SlotEngine): bigint {
  const id = ENGINE_IDS[engine];
  if (id === undefined)
    throw new InputError(`slot engine must be babe or aura, got ${String(engine)}`);
  const seals = header.digest.filter((item) => item.kind === 'seal');
  if (seals.length > 0) {
    throw new InputError(
      `header #${header.number} is already sealed; only an unsealed header can be signed`,
    );
  }
  const pre = header.digest.filter(
    (item): item is Extract<DigestItem, { engine: string }> =>
      item.kind === 'preRuntime' && item.engine === id,
  );
  if (pre.length !== 1) {
    throw new InputError(
      `header #${header.number} has ${pre.length} ${id} pre-runtime digests; exactly one must claim the slot`,
    );
  }
  const data = pre[0]!.data;
  return engine === 'babe' ? decodeBabePreDigest(data).slot : decodeAuraPreDigest(data);
}

export type BabePreDigest =
  | {
      readonly type: 'primary';
      readonly authorityIndex: number;
      readonly slot: bigint;
      readonly vrfOutput: Uint8Array;
      readonly vrfProof: Uint8Array;
    }
  | { readonly type: 'secondaryPlain'; readonly authorityIndex: number; readonly slot: bigint }
  | {
      readonly type: 'secondaryVRF';
      readonly authorityIndex: number;
      readonly slot: bigint;
      readonly vrfOutput: Uint8Array;
      readonly vrfProof: Uint8Array;
    };

/**
 * `sp_consensus_babe::digests::PreDigest`: Primary = 1, SecondaryPlain = 2, SecondaryVRF = 3;
 * each starts with authority_index (u32) and slot (u64); the VRF variants end with a
 * `VrfSignature` = pre-output (32 bytes) then proof (64 bytes).
 */
const babePreDigest: Codec<BabePreDigest> = (() => {
  const authority = fixedUint(4, 'BABE authority index');
  const slot = fixedUint(8, 'BABE slot');
  const vrfOutput = fixedBytes(32, 'BABE VRF pre-output');
  const vrfProof = fixedBytes(64, 'BABE VRF proof');
  const withVrf =
    (type: 'primary' | 'secondaryVRF'): Decoder<BabePreDigest> =>
    (input) => ({
      type,
      authorityIndex: Number(authority.dec(input)),
      slot: slot.dec(input),
      vrfOutput: vrfOutput.dec(input),
      vrfProof: vrfProof.dec(input),
    });
  const authorityEnc = (n: number) => {
    if (!Number.isInteger(n))
      throw new InputError(`BABE authority index must be an integer, got ${n}`);
    return authority.enc(BigInt(n));
  };
  return taggedUnion<BabePreDigest>(
    'BABE pre-digest',
    new Map<number, Decoder<BabePreDigest>>([
      [1, withVrf('primary')],
      [
        2,
        (input) => ({
          type: 'secondaryPlain',
          authorityIndex: Number(authority.dec(input)),
          slot: slot.dec(input),
        }),
      ],
      [3, withVrf('secondaryVRF')],
    ]),
    (d) => {
      if (typeof d !== 'object' || d === null)
        throw new InputError('a BABE pre-digest must be an object');
      const head = [authorityEnc(d.authorityIndex), slot.enc(d.slot)];
      switch (d.type) {
        case 'primary':
          return [1, concat([...head, vrfOutput.enc(d.vrfOutput), vrfProof.enc(d.vrfProof)])];
        case 'secondaryPlain':
          return [2, concat(head)];
        case 'secondaryVRF':
          return [3, concat([...head, vrfOutput.enc(d.vrfOutput), vrfProof.enc(d.vrfProof)])];
        default:
          throw new InputError(
            `unknown BABE pre-digest type ${JSON.stringify((d as { type: unknown }).type)}`,
          );
      }
    },
  );
})();

export function decodeBabePreDigest(data: Uint8Array): BabePreDigest {
  return decodeExact('BABE pre-digest', babePreDigest, data);
}

export function encodeBabePreDigest(d: BabePreDigest): Uint8Array {
  return babePreDigest.enc(d);
}

/** `sp_consensus_aura`: the pre-runtime digest under `*b"aura"` is the SCALE `Slot`, a u64. */
const auraSlot = fixedUint(8, 'Aura slot');

/** The slot (u64). */
export function decodeAuraPreDigest(data: Uint8Array): bigint {
  return decodeExact('Aura pre-digest', auraSlot, data);
}

export function encodeAuraPreDigest(slot: bigint): Uint8Array {
  return auraSlot.enc(slot);
}
