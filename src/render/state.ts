/**
 * Secrets made once at plan time and kept in the state directory, so a re-plan with the same
 * state is byte-identical and hosts keep their VPN and p2p identities across plans.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, VigilError, errorMessage } from '../errors.js';
import { peerIdFromEd25519 } from '../registry/peer-id.js';

export interface WireguardKeys {
  readonly privateKey: string;
  readonly publicKey: string;
}

export interface CometbftNodeKey {
  /** node_key.json exactly as CometBFT reads it. */
  readonly json: string;
  /** hex of the first 20 bytes of sha256(ed25519 public key). */
  readonly id: string;
}

// Not node:crypto's generateKeyPairSync + export({ format: 'jwk' }): on Node 20 a garbage
// collection inside the JWK export can deadlock on a key-generation job's mutex (seen here:
// a planning test hung forever in KeyGenJob's destructor under ExportJWKEdKey).
export function newWireguardKeys(): WireguardKeys {
  const secret = x25519.utils.randomSecretKey();
  // Clamped as `wg genkey` prints it (WireGuard clamps on use either way).
  secret[0] = secret[0]! & 248;
  secret[31] = (secret[31]! & 127) | 64;
  return {
    privateKey: Buffer.from(secret).toString('base64'),
    publicKey: Buffer.from(x25519.getPublicKey(secret)).toString('base64'),
  };
}

export interface SubstrateNodeKey {
  /** The secret as the node reads it from its key file. */
  readonly secretHex: string;
  /** Its libp2p peer id, for `/p2p/<id>` addresses. */
  readonly peerId: string;
}

export function cometbftNodeId(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest().subarray(0, 20).toString('hex');
}

export function newCometbftNodeKey(): CometbftNodeKey {
  const seed = Buffer.from(ed25519.utils.randomSecretKey());
  return nodeKeyFromParts(seed, Buffer.from(ed25519.getPublicKey(seed)));
}

function nodeKeyFromParts(seed: Buffer, pub: Buffer): CometbftNodeKey {
  const json =
    JSON.stringify({
      priv_key: {
        type: 'tendermint/PrivKeyEd25519',
        value: Buffer.concat([seed, pub]).toString('base64'),
      },
    }) + '\n';
  return { json, id: cometbftNodeId(pub) };
}

export function parseCometbftNodeKey(text: string, file: string): CometbftNodeKey {
  let value: unknown;
  try {
    value = (JSON.parse(text) as { priv_key?: { value?: unknown } }).priv_key?.value;
  } catch (err) {
    throw new InputError(`${file}: not JSON: ${errorMessage(err)}`);
  }
  const raw = typeof value === 'string' ? Buffer.from(value, 'base64') : Buffer.alloc(0);
  if (raw.length !== 64) throw new InputError(`${file}: priv_key.value is not 64 bytes`);
  return { json: text, id: cometbftNodeId(raw.subarray(32)) };
}

/** Files in the state directory; each secret is created on first use and then only read. */
export class PlanState {
  constructor(readonly dir: string) {}

  private readOrCreate(rel: string, create: () => string): string {
    const path = join(this.dir, rel);
    if (existsSync(path)) return readFileSync(path, 'utf8');
    const text = create();
    try {
      mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
      writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      throw new VigilError(
        'STATE_UNWRITABLE',
        `cannot write ${path}: ${errorMessage(err)}`,
        'check the --state directory is writable',
      );
    }
    return text;
  }

  wireguard(host: string): WireguardKeys {
    const text = this.readOrCreate(
      `wireguard/${host}.json`,
      () => JSON.stringify(newWireguardKeys()) + '\n',
    );
    const keys = JSON.parse(text) as WireguardKeys;
    if (
      typeof keys.privateKey !== 'string' ||
      typeof keys.publicKey !== 'string' ||
      Buffer.from(keys.privateKey, 'base64').length !== 32
    )
      throw new InputError(`${join(this.dir, 'wireguard', host + '.json')} is damaged`);
    return keys;
  }

  cometbftNodeKey(host: string): CometbftNodeKey {
    const rel = `cometbft/${host}.node_key.json`;
    const text = this.readOrCreate(rel, () => newCometbftNodeKey().json);
    return parseCometbftNodeKey(text, join(this.dir, rel));
  }

  /**
   * A Substrate node's libp2p key: the 32-byte Ed25519 secret in hex, the form
   * `--node-key-file` reads (substrate/client/cli/src/params/node_key_params.rs). Made once at
   * plan time, because an authority refuses to start without one (NetworkKeyNotFound) and
   * its peer id must stay stable for the peers that name it.
   */
  substrateNodeKey(host: string): SubstrateNodeKey {
    const rel = `substrate/${host}.node_key`;
    const text = this.readOrCreate(
      rel,
      () => Buffer.from(ed25519.utils.randomSecretKey()).toString('hex') + '\n',
    );
    const hex = text.trim();
    if (!/^[0-9a-f]{64}$/.test(hex))
      throw new InputError(`${join(this.dir, rel)} is damaged: expected 64 hex digits`);
    return {
      secretHex: hex,
      peerId: peerIdFromEd25519(ed25519.getPublicKey(Buffer.from(hex, 'hex'))),
    };
  }

  /** A random password for a local RPC (dcrd ↔ dcrwallet); hex so no config quoting issues. */
  secret(name: string): string {
    return this.readOrCreate(`secrets/${name}`, () => randomBytes(24).toString('hex')).trim();
  }

  /**
   * Each host's VPN address, allocated the first time the host is planned and recorded in
   * vpn/addresses.json. A recorded address is never moved or handed to another host, even
   * after its host leaves the topology: deleting a removed host's line is what frees it.
   * New hosts get the lowest free address (.1 upwards), so a first plan numbers hosts in
   * file order.
   */
  vpnAddresses(cidr: string, hosts: readonly string[]): Map<string, string> {
    const rel = 'vpn/addresses.json';
    const path = join(this.dir, rel);
    const base = cidr.split('/')[0]!.split('.').slice(0, 3).join('.');
    let recorded: Record<string, string> = {};
    if (existsSync(path)) {
      let doc: { cidr?: unknown; hosts?: unknown };
      try {
        doc = JSON.parse(readFileSync(path, 'utf8')) as typeof doc;
      } catch (err) {
        throw new InputError(`${path} is damaged: ${errorMessage(err)}`);
      }
      if (typeof doc.hosts !== 'object' || doc.hosts === null || typeof doc.cidr !== 'string')
        throw new InputError(`${path} is damaged: it needs "cidr" and "hosts"`);
      if (doc.cidr !== cidr)
        throw new VigilError(
          'VPN_CIDR_CHANGED',
          `vpn.cidr is ${cidr} but ${path} records addresses in ${doc.cidr}`,
          `put vpn.cidr back to ${doc.cidr}, or delete ${path} to renumber every host (every host's WireGuard config then changes)`,
        );
      recorded = doc.hosts as Record<string, string>;
      const seen = new Set<string>();
      for (const [host, addr] of Object.entries(recorded)) {
        const last =
          typeof addr === 'string' && addr.startsWith(`${base}.`)
            ? addr.slice(base.length + 1)
            : '';
        if (!/^\d{1,3}$/.test(last) || Number(last) < 1 || Number(last) > 253 || seen.has(addr))
          throw new InputError(`${path} is damaged: ${host} has ${String(addr)}`);
        seen.add(addr);
      }
    }
    const used = new Set(Object.values(recorded));
    const next = { ...recorded };
    let ordinal = 1;
    let changed = !existsSync(path);
    for (const host of hosts) {
      if (next[host] !== undefined) continue;
      while (ordinal <= 253 && used.has(`${base}.${ordinal}`)) ordinal++;
      if (ordinal > 253)
        throw new VigilError(
          'VPN_FULL',
          `no free VPN address in ${cidr} for ${host}: ${used.size} are recorded in ${path}`,
          'delete the lines of hosts that are gone for good from that file to free their addresses',
        );
      next[host] = `${base}.${ordinal}`;
      used.add(next[host]);
      changed = true;
    }
    if (changed) {
      const sorted = Object.fromEntries(
        Object.entries(next).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      );
      const text = JSON.stringify({ cidr, hosts: sorted }, null, 2) + '\n';
      try {
        mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
        writeFileSync(`${path}.tmp`, text, { mode: 0o600 });
        renameSync(`${path}.tmp`, path);
      } catch (err) {
        throw new VigilError(
          'STATE_UNWRITABLE',
          `cannot write ${path}: ${errorMessage(err)}`,
          'check the --state directory is writable',
        );
      }
    }
    return new Map(hosts.map((h) => [h, next[h]!]));
  }

  /** etcd's initial-cluster-token: stable per fleet. */
  clusterToken(fleet: string): string {
    return this.readOrCreate(
      `secrets/etcd-cluster-token`,
      () => `${fleet}-${randomBytes(6).toString('hex')}`,
    ).trim();
  }
}
