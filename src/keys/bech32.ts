/**
 * Bech32 (BIP-173), the encoding of Cosmos addresses (`cosmosvalcons1…`), on `@scure/base`
 * (audited, and of the same family as the @noble and @scure libraries Vigil already uses). This
 * module only adds Vigil's errors: a typed InputError with a hint for every defect. Only the
 * original bech32 checksum: Cosmos does not use bech32m.
 */
import { bech32 } from '@scure/base';
import { InputError, errorMessage } from '../errors.js';

/** BIP-173's length limit; Cosmos addresses and legacy pubkeys stay well within it. */
const MAX_LENGTH = 90;

function checkHrp(hrp: string): void {
  if (hrp.length === 0 || !/^[\x21-\x7e]+$/.test(hrp)) {
    throw new InputError(
      `bech32 prefix ${JSON.stringify(hrp)} is not 1 or more printable ASCII characters`,
      'use a chain prefix such as cosmosvalcons',
      'INVALID_BECH32_PREFIX',
    );
  }
  if (hrp !== hrp.toLowerCase()) {
    throw new InputError(
      `bech32 prefix ${JSON.stringify(hrp)} is not lower case`,
      `use ${hrp.toLowerCase()}`,
      'INVALID_BECH32_PREFIX',
    );
  }
}

export function bech32Encode(hrp: string, bytes: Uint8Array): string {
  checkHrp(hrp);
  try {
    return bech32.encode(hrp, bech32.toWords(bytes), MAX_LENGTH);
  } catch (err) {
    throw new InputError(
      `bech32: ${errorMessage(err)}`,
      'use a shorter prefix',
      'INVALID_BECH32_PREFIX',
    );
  }
}

/** Decodes and checks a bech32 string; throws InputError on any defect (BIP-173's rules). */
export function bech32Decode(text: string): { prefix: string; bytes: Uint8Array } {
  try {
    const { prefix, words } = bech32.decode(text as `${string}1${string}`, MAX_LENGTH);
    return { prefix, bytes: bech32.fromWords(words) };
  } catch (err) {
    throw new InputError(`bech32: ${errorMessage(err)}`);
  }
}
