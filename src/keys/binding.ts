/**
 * Every key is bound to one protocol and to the chains it serves. The binding decides which
 * door a request may come through, which parser reads its bytes, which duty family (and so
 * which watermark) it moves, and which signature scheme the key uses. A request for another
 * protocol or an unconfigured chain is refused before the store is touched, so a key can never
 * be made to sign one protocol's message through another protocol's door.
 */
import type { DutyFamily } from '../guard/watermark.js';
import type { SignatureScheme } from './signing-key.js';

/**
 * - `cometbft`: CometBFT consensus (canonical vote/proposal sign bytes), Ed25519.
 * - `grandpa`: Substrate GRANDPA votes (SCALE `(message, round, set_id)`), Ed25519.
 * - `babe`: Substrate BABE block seals (the header's hash; slot from the BABE pre-digest), sr25519.
 * - `aura`: Substrate Aura block seals (slot from the Aura pre-digest), sr25519 or Ed25519.
 * - `authorize`: no private key here; a node that signs by itself asks permission for a duty.
 */
export const KEY_PROTOCOLS = ['cometbft', 'grandpa', 'babe', 'aura', 'authorize'] as const;
export type KeyProtocol = (typeof KEY_PROTOCOLS)[number];

/** The duties an authorization-only key can be granted. */
export const AUTHORIZED_DUTIES = ['slot', 'grandpa'] as const;
export type AuthorizedDuty = (typeof AUTHORIZED_DUTIES)[number];

export type GrandpaBlockNumber = 'u32' | 'u64';

export type KeyBinding =
  | {
      readonly protocol: 'cometbft';
      readonly chains: ReadonlySet<string>;
    }
  | {
      readonly protocol: 'grandpa';
      readonly chains: ReadonlySet<string>;
      /** The chain's block number type: u32 for Polkadot, Kusama and Westend. */
      readonly blockNumber: GrandpaBlockNumber;
    }
  | { readonly protocol: 'babe'; readonly chains: ReadonlySet<string> }
  | {
      readonly protocol: 'aura';
      readonly chains: ReadonlySet<string>;
      readonly scheme: SignatureScheme;
    }
  | {
      readonly protocol: 'authorize';
      readonly chains: ReadonlySet<string>;
      readonly duty: AuthorizedDuty;
    };

/** The watermark family a binding moves. */
export function familyOf(binding: KeyBinding): DutyFamily {
  switch (binding.protocol) {
    case 'cometbft':
      return 'cometbft';
    case 'grandpa':
      return 'grandpa';
    case 'babe':
    case 'aura':
      return 'slot';
    case 'authorize':
      return binding.duty;
  }
}

/** The scheme of the private key a signing protocol uses; undefined for `authorize`. */
export function schemeOf(binding: KeyBinding): SignatureScheme | undefined {
  switch (binding.protocol) {
    case 'cometbft':
    case 'grandpa':
      return 'ed25519';
    case 'babe':
      return 'sr25519';
    case 'aura':
      return binding.scheme;
    case 'authorize':
      return undefined;
  }
}

/**
 * Only CometBFT sign bytes name their chain. A GRANDPA vote or a block seal signed for one
 * chain (or a duty a node signs after asking) is just as valid on any other chain that has this
 * authority, so such a key serves exactly one chain: two chains' watermarks would otherwise
 * guard one signature space, and the same position could be granted twice.
 */
export function signedBytesNameTheChain(protocol: KeyProtocol): boolean {
  return protocol === 'cometbft';
}
