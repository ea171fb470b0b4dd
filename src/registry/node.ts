/**
 * The libp2p node every registry process runs, validator or peer (issue 15, items 5 and 7).
 *
 * - TCP, Noise (encrypted, authenticated with the node's own Ed25519 identity: its peer id is
 *   the subject of its records), Yamux.
 * - identify; ping with `maxOutboundStreams` raised, since its default of 1 collides with the
 *   DHT's own pings of the same peer.
 * - gossipsub without per-message signatures (StrictNoSign) and with the message id taken from
 *   the record bytes: a record authenticates itself (subject + validator quorum), and the same
 *   record published by two validators is one message, not two.
 * - a private kad-DHT (protocol `/vigil/registry/kad/1.0.0`, so it never joins the public
 *   IPFS DHT) with a validator and a selector for the `/vigil-registry/<peer id>` keys, and
 *   `passthroughMapper` so loopback and LAN addresses are kept.
 * - a connection gater: with an allow-list, only listed peers get in or are dialled.
 *
 * Metrics: the registry's own metrics and libp2p's (@libp2p/prometheus-metrics: connections,
 * streams, bytes per protocol, DHT queries) go to the prom-client Registry the caller gives,
 * never the global one. See libp2pMetricsFor for why only one node per process gets libp2p's.
 */
import './polyfill.js';
import { createHash } from 'node:crypto';
import { noise } from '@libp2p/noise';
import { yamux } from '@libp2p/yamux';
import { tcp } from '@libp2p/tcp';
import { identify } from '@libp2p/identify';
import { ping } from '@libp2p/ping';
import { gossipsub, type GossipSub } from '@libp2p/gossipsub';
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import type { ConnectionGater, PeerId } from '@libp2p/interface';
import { prometheusMetrics } from '@libp2p/prometheus-metrics';
import { createLibp2p, type Libp2p } from 'libp2p';
import { Gauge, type Registry } from 'prom-client';
import { InputError } from '../errors.js';
import { decodeRecord, verifyRecord, type AcceptRules, type ValidatorSet } from './record.js';
import { ed25519FromPeerId } from './peer-id.js';
import {
  decodeSetRecord,
  genesisBody,
  verifySetRecord,
  ValidatorSetChain,
} from './validator-set.js';

export const KAD_PROTOCOL = '/vigil/registry/kad/1.0.0';
/** The DHT key namespace (the first path segment kad-dht picks a validator and selector by). */
export const DHT_NAMESPACE = 'vigil-registry';
/** This host's own addresses, exempt from per-host limits meant for remote peers. */
const LOOPBACK_NETS = ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128'];
/** A gossipsub RPC may batch several records plus control messages; one record is ≤ LIMITS.envelopeBytes (about 12.7 KiB). */
const MAX_GOSSIP_RPC_BYTES = 256 * 1024;

export type RegistryLibp2p = Libp2p<{
  identify: ReturnType<ReturnType<typeof identify>>;
  ping: ReturnType<ReturnType<typeof ping>>;
  pubsub: GossipSub;
  dht: KadDHT;
}>;

/** The DHT key namespace of validator-set records: `/vigil-registry-set/<epoch>`. */
export const DHT_SET_NAMESPACE = 'vigil-registry-set';

export function setDhtKey(epoch: bigint): Uint8Array {
  return new TextEncoder().encode(`/${DHT_SET_NAMESPACE}/${epoch}`);
}

/** The epoch a set DHT key names, or undefined. */
export function epochOfSetDhtKey(key: Uint8Array): bigint | undefined {
  const m = /^\/vigil-registry-set\/([1-9]\d{0,19})$/.exec(new TextDecoder().decode(key));
  return m ? BigInt(m[1]!) : undefined;
}

/**
 * The DHT's validator of set records: the key names the record's epoch, and the record is the
 * next epoch after one this node holds, signed by a quorum of that set and bound to it (the
 * chain rules of validator-set.ts). A record for an epoch after the next cannot be checked
 * yet and is refused, as is one that does not verify. Throwing refuses the record.
 */
export function dhtSetRecordValidator(chain: () => ValidatorSetChain, nowMs: () => number) {
  return (key: Uint8Array, value: Uint8Array): void => {
    const epoch = epochOfSetDhtKey(key);
    if (epoch === undefined)
      throw new InputError('not a validator-set DHT key', undefined, 'REGISTRY_DHT_KEY');
    const r = decodeSetRecord(value);
    if (r.epoch !== epoch)
      throw new InputError(
        `a DHT set record under epoch ${epoch} is for epoch ${r.epoch}`,
        undefined,
        'REGISTRY_DHT_KEY',
      );
    const c = chain();
    const prev = c.at(epoch - 1n);
    if (!prev)
      throw new InputError(
        `validator-set epoch ${epoch} does not follow the epoch this node holds (${c.head.epoch})`,
        'fetch the epochs in order',
        'REGISTRY_UNKNOWN_EPOCH',
      );
    const prevBody =
      epoch === 1n ? genesisBody(prev) : decodeSetRecord(c.records()[Number(epoch) - 2]!).bodyBytes;
    verifySetRecord(value, prev, prevBody, nowMs());
  };
}

/** Deterministic: the highest epoch wins, then the most signatures, then the first. */
export function dhtSetRecordSelector(_key: Uint8Array, records: Uint8Array[]): number {
  let best = 0;
  let bestEpoch = -1n;
  let bestSigs = -1;
  records.forEach((bytes, i) => {
    let r;
    try {
      r = decodeSetRecord(bytes);
    } catch {
      return;
    }
    if (r.epoch > bestEpoch || (r.epoch === bestEpoch && r.signatures.length > bestSigs)) {
      best = i;
      bestEpoch = r.epoch;
      bestSigs = r.signatures.length;
    }
  });
  return best;
}

export function dhtKey(subject: string): Uint8Array {
  return new TextEncoder().encode(`/${DHT_NAMESPACE}/${subject}`);
}

/** The subject a DHT key names, or undefined if it is not a registry key. */
export function subjectOfDhtKey(key: Uint8Array): string | undefined {
  const text = new TextDecoder().decode(key);
  const prefix = `/${DHT_NAMESPACE}/`;
  if (!text.startsWith(prefix)) return undefined;
  const subject = text.slice(prefix.length);
  try {
    ed25519FromPeerId(subject);
  } catch {
    return undefined;
  }
  return subject;
}

export interface RegistryNodeOptions {
  /** The node's 32-byte Ed25519 seed: its libp2p identity and the key that signs its record. */
  readonly seed: Uint8Array;
  /** Multiaddrs to listen on, e.g. `/ip4/127.0.0.1/tcp/0`. */
  readonly listen: readonly string[];
  readonly validators: ValidatorSet;
  /** The rules records are checked under now (the node's validator-set chain); default: `validators`. */
  readonly rules?: () => AcceptRules;
  /** The node's chain of validator sets, for the set records' DHT validator (default: genesis). */
  readonly setChain?: () => ValidatorSetChain;
  /**
   * Peers allowed to connect (both ways): a list of peer ids, or a hook asked at each
   * connection; undefined lets anyone in.
   */
  readonly allowList?: readonly string[] | ((peerId: string) => boolean);
  readonly metrics: Registry;
  /** libp2p's own metrics into `metrics` too (default true; see libp2pMetricsFor). */
  readonly libp2pMetrics?: boolean;
  readonly nowMs?: () => number;
}

let libp2pMetricsClaimed = false;

/**
 * @libp2p/prometheus-metrics for the node, or undefined. Two facts of that package decide the
 * options: without `preserveExistingMetrics` it clears prom-client's *global* registry (even
 * when given its own), which would wipe every other metric of the process; and it keeps its
 * metric objects in one module-level map keyed by name, so a second node in the same process
 * would get the first node's objects back (registered in the first node's registry, computed
 * from the first node's components) and report nothing of its own. So the first node of a
 * process that asks gets libp2p's metrics and later ones do not; one node per process is the
 * daemon's case, several are tests and the benchmark. Default process metrics are left to
 * whoever serves the registry (a second collectDefaultMetrics on one registry throws).
 */
function libp2pMetricsFor(registry: Registry, wanted: boolean) {
  if (!wanted || libp2pMetricsClaimed) return undefined;
  libp2pMetricsClaimed = true;
  return prometheusMetrics({
    registry,
    preserveExistingMetrics: true,
    collectDefaultMetrics: false,
  });
}

/** A gater that lets only `allow` peers in or out (noise has authenticated them by then). */
export function allowListGater(
  allow: readonly string[] | ((peerId: string) => boolean),
): ConnectionGater {
  const allowed = typeof allow === 'function' ? allow : (p: string) => allow.includes(p);
  const deny = (peer: PeerId) => !allowed(peer.toString());
  return {
    denyDialPeer: deny,
    denyInboundEncryptedConnection: deny,
    denyOutboundEncryptedConnection: deny,
  };
}

/**
 * The DHT's record validator: the key must name the record's subject (so nobody files a record
 * under another node), and the record must pass verifyRecord (size, signatures, signers,
 * quorum, expiry). Throwing refuses the record.
 */
export function dhtRecordValidator(
  validators: ValidatorSet | (() => AcceptRules),
  nowMs: () => number,
) {
  return (key: Uint8Array, value: Uint8Array): void => {
    const subject = subjectOfDhtKey(key);
    if (subject === undefined)
      throw new InputError('not a registry DHT key', undefined, 'REGISTRY_DHT_KEY');
    const rules = typeof validators === 'function' ? validators() : validators;
    const rec = verifyRecord(value, { validators: rules, nowMs: nowMs() });
    if (rec.peerId !== subject)
      throw new InputError(
        `a DHT record under ${subject} is ${rec.peerId}'s`,
        undefined,
        'REGISTRY_DHT_KEY',
      );
  };
}

/** Deterministic: the highest seq wins; ties (same seq) go to the most countersignatures, then the first. */
export function dhtRecordSelector(_key: Uint8Array, records: Uint8Array[]): number {
  let best = 0;
  let bestSeq = -1n;
  let bestSigs = -1;
  records.forEach((bytes, i) => {
    let seq: bigint;
    let sigs: number;
    try {
      const r = decodeRecord(bytes);
      seq = r.seq;
      sigs = r.countersignatures.length;
    } catch {
      return;
    }
    if (seq > bestSeq || (seq === bestSeq && sigs > bestSigs)) {
      best = i;
      bestSeq = seq;
      bestSigs = sigs;
    }
  });
  return best;
}

export async function createRegistryNode(o: RegistryNodeOptions): Promise<RegistryLibp2p> {
  if (o.seed.length !== 32) throw new InputError('a registry node seed is 32 bytes');
  const nowMs = o.nowMs ?? Date.now;
  const privateKey = await generateKeyPairFromSeed('Ed25519', o.seed);
  const metrics = libp2pMetricsFor(o.metrics, o.libp2pMetrics ?? true);
  const genesis = new ValidatorSetChain(o.validators);
  const genesisChain = () => genesis;
  const node = (await createLibp2p({
    privateKey,
    ...(metrics ? { metrics } : {}),
    addresses: { listen: [...o.listen] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    ...(o.allowList ? { connectionGater: allowListGater(o.allowList) } : {}),
    // libp2p refuses a 6th inbound connection per second from one host, and more than 10
    // pending: every node of a devnet or test on this machine is that one host. Loopback is
    // exempt (the gater above still applies); other hosts keep the limits.
    connectionManager: { allow: LOOPBACK_NETS },
    services: {
      identify: identify(),
      ping: ping({ maxOutboundStreams: 16 }),
      pubsub: gossipsub({
        globalSignaturePolicy: 'StrictNoSign',
        msgIdFn: (msg) => createHash('sha256').update(msg.data).digest(),
        allowPublishToZeroTopicPeers: true,
        // gossipsub's default, relied on: a publisher sends to every known subscriber, so the
        // subscribers its publish did not reach are the ones it exchanges views with
        // (distribution.ts).
        floodPublish: true,
        fallbackToFloodsub: false,
        maxInboundDataLength: MAX_GOSSIP_RPC_BYTES,
        emitSelf: false,
        // gossipsub's peer score takes -5·(n-10)² for n peers sharing an IP: from 14 nodes on
        // one host it is below the graylist threshold (-80) and their messages are dropped. A
        // loopback peer runs on this host (the devnet, tests, the benchmark), not a Sybil farm.
        scoreParams: { IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1']) },
      }),
      dht: kadDHT({
        protocol: KAD_PROTOCOL,
        clientMode: false,
        peerInfoMapper: passthroughMapper,
        validators: {
          [DHT_NAMESPACE]: dhtRecordValidator(o.rules ?? o.validators, nowMs),
          [DHT_SET_NAMESPACE]: dhtSetRecordValidator(o.setChain ?? genesisChain, nowMs),
        },
        selectors: {
          [DHT_NAMESPACE]: dhtRecordSelector,
          [DHT_SET_NAMESPACE]: dhtSetRecordSelector,
        },
        allowQueryWithZeroPeers: true,
      }),
    },
  })) as unknown as RegistryLibp2p;
  const peers = new Gauge({
    name: 'vigil_registry_peers',
    help: 'libp2p peers this registry node is connected to',
    registers: [o.metrics],
    collect() {
      this.set(node.getPeers().length);
    },
  });
  void peers;
  return node;
}
