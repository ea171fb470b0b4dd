/**
 * Bech32 and CometBFT consensus addresses, against published vectors: BIP-173's own test
 * vectors for the encoding, and Cosmos Hub validators whose public key, hex address and
 * `cosmosvalcons` address were published together.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bech32Decode, bech32Encode } from '../../src/keys/bech32.js';
import {
  consensusAddressBech32,
  consensusAddressHex,
  cosmosSdkPublicKeyJson,
  legacyBech32PublicKey,
} from '../../src/keys/consensus-address.js';
import { InputError } from '../../src/errors.js';

const b64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

describe('bech32 (BIP-173 test vectors)', () => {
  // https://github.com/bitcoin/bips/blob/master/bip-0173.mediawiki#test-vectors
  const VALID = [
    'A12UEL5L',
    'a12uel5l',
    'an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs',
    'abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw',
    '11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j',
    'split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w',
    '?1ezyfcl',
  ];
  const INVALID = [
    '\x201nwldj5', // HRP character out of range
    '\x7f1axkwrx',
    '\x801eym55h',
    'an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx', // too long
    'pzry9x0s0muk', // no separator
    '1pzry9x0s0muk', // empty HRP
    'x1b4n0q5v', // invalid data character
    'li1dgmt3', // checksum too short
    'de1lg7wt\xff', // invalid character in checksum
    'A1G7SGD8', // checksum computed over the upper-case HRP
    '10a06t8', // empty HRP
    '1qzzfhee', // empty HRP
  ];

  it('accepts every valid vector', () => {
    for (const s of VALID) assert.doesNotThrow(() => bech32Decode(s), s);
  });

  it('refuses every invalid vector and a flipped character', () => {
    for (const s of INVALID) assert.throws(() => bech32Decode(s), InputError, JSON.stringify(s));
    assert.throws(() => bech32Decode('abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxx'), /checksum/);
  });

  it('encodes bytes to the vectors (data values 0..31 regrouped to bytes)', () => {
    assert.equal(bech32Encode('a', new Uint8Array()), 'a12uel5l');
    assert.equal(bech32Encode('?', new Uint8Array()), '?1ezyfcl');
    // The 32 five-bit values 0..31 are exactly these 20 bytes.
    const bytes = bech32Decode('abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw').bytes;
    assert.equal(Buffer.from(bytes).toString('hex'), '00443214c74254b635cf84653a56d7c675be77df');
    assert.equal(bech32Encode('abcdef', bytes), 'abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw');
  });

  it('refuses an upper-case or empty prefix when encoding', () => {
    assert.throws(() => bech32Encode('Cosmosvalcons', new Uint8Array(20)), /lower case/);
    assert.throws(() => bech32Encode('', new Uint8Array(20)), /prefix/);
  });
});

describe('consensus addresses (published Cosmos Hub vectors)', () => {
  // hyphacoop/cosmos-genesis-tinkerer genesis_theta_local.py (commit e76a45c): LOCAL_PUBKEY,
  // LOCAL_ADDRESS, LOCAL_CONS_ADDRESS and COINBASE_PUBKEY, COINBASE_ADDRESS,
  // COINBASE_CONS_ADDRESS; cosmos/gaia docs (cosmoshub-4 upgrade test instructions): "Certus
  // One" cOQZ… → B00A… → cosmosvalcons1kq9xx…
  const VECTORS = [
    {
      pub: 'qwiUMxz3llsy45fPvM0a8+XQeAJLvrX3QAEJmRMEEoU=',
      hex: 'D5AB5E458FD9F9964EF50A80451B6F3922E6A4AA',
      valcons: 'cosmosvalcons16k44u3v0m8uevnh4p2qy2xm08y3wdf92xsc3ve',
    },
    {
      pub: 'NK3/1mb/ToXmxlcyCK8HYyudDn4sttz1sXyyD+42x7I=',
      hex: 'F8C01C0681578AA700D736D675C9992065F65E3E',
      valcons: 'cosmosvalcons1lrqpcp5p2792wqxhxmt8tjveypjlvh378gkddu',
    },
    {
      pub: 'cOQZvh/h9ZioSeUMZB/1Vy1Xo5x2sjrVjlE/qHnYifM=',
      hex: 'B00A6323737F321EB0B8D59C6FD497A14B60938A',
      valcons: 'cosmosvalcons1kq9xxgmn0uepav9c6kwxl4yh599kpyu28e7ee6',
    },
  ];

  it('the hex address and cosmosvalcons address of each public key', () => {
    for (const v of VECTORS) {
      assert.equal(consensusAddressHex(b64(v.pub)), v.hex);
      assert.equal(consensusAddressBech32('cosmosvalcons', b64(v.pub)), v.valcons);
      const decoded = bech32Decode(v.valcons);
      assert.equal(decoded.prefix, 'cosmosvalcons');
      assert.equal(Buffer.from(decoded.bytes).toString('hex').toUpperCase(), v.hex);
    }
  });

  it('the legacy Amino bech32 public key', () => {
    // usetech-llc/cosmos_api_dotnet src/CosmosApi.Test/TestData/ValidatorSets.cs (the Cosmos
    // Hub's validator set at height 1, from api.cosmos.network/validatorsets/1): each address
    // with its cosmosvalconspub key. Certus One's key there is cOQZ… above.
    const PAIRS = [
      {
        valcons: 'cosmosvalcons1qqqqrezrl53hujmpdch6d805ac75n220ku09rl',
        valconspub:
          'cosmosvalconspub1zcjduepq7mft6gfls57a0a42d7uhx656cckhfvtrlmw744jv4q0mvlv0dypskehfk8',
      },
      {
        valcons: 'cosmosvalcons1kq9xxgmn0uepav9c6kwxl4yh599kpyu28e7ee6',
        valconspub:
          'cosmosvalconspub1zcjduepqwrjpn0slu86e32zfu5xxg8l42uk40guuw6er44vw2yl6s7wc38est6l0ux',
      },
    ];
    for (const p of PAIRS) {
      const amino = bech32Decode(p.valconspub).bytes;
      assert.equal(Buffer.from(amino.subarray(0, 5)).toString('hex'), '1624de6420');
      const pub = amino.subarray(5);
      assert.equal(legacyBech32PublicKey('cosmosvalcons', pub), p.valconspub);
      assert.equal(consensusAddressBech32('cosmosvalcons', pub), p.valcons);
    }
    assert.equal(
      legacyBech32PublicKey('cosmosvalcons', b64('cOQZvh/h9ZioSeUMZB/1Vy1Xo5x2sjrVjlE/qHnYifM=')),
      PAIRS[1]!.valconspub,
    );
  });

  it('the Cosmos SDK JSON public key', () => {
    const pub = b64(VECTORS[0]!.pub);
    assert.deepEqual(JSON.parse(cosmosSdkPublicKeyJson(pub)), {
      '@type': '/cosmos.crypto.ed25519.PubKey',
      key: VECTORS[0]!.pub,
    });
  });
});
