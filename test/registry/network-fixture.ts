/** A registry network of real libp2p nodes on loopback, for the network tests. */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { Ed25519Key } from '../../src/keys/ed25519.js';
import { RegistryStore } from '../../src/registry/store.js';
import { SqliteRegistryCells } from '../../src/registry/store-sqlite.js';
import {
  RegistryPeer,
  RegistryValidator,
  type RegistryPeerOptions,
  type RegistryValidatorOptions,
} from '../../src/registry/service.js';
import type { RecordContent, ValidatorSet } from '../../src/registry/record.js';
import { GOSSIP_TOPIC } from '../../src/registry/distribution.js';
import { EtcdTestCluster, sleep } from '../helpers/etcd-cluster.js';
import { tempDir } from '../helpers/guard-fixtures.js';
import { openEtcdStore } from '../../src/store/etcd.js';
import { SET, keyOf } from './fixtures.js';

/** The seed keyOf(tag) is made from (fixtures.ts). */
export function seedOf(tag: number): Uint8Array {
  const seed = new Uint8Array(32).fill(tag);
  seed[0] = 0xa5;
  return seed;
}

export interface Network {
  readonly validators: RegistryValidator[];
  readonly peers: RegistryPeer[];
  readonly validatorAddrs: string[];
  readonly metrics: Map<string, Registry>;
  close(): Promise<void>;
}

export interface NetworkOptions {
  readonly dir: string;
  readonly peers: number;
  /** Peer key tags: 1.. by default. */
  readonly peerTag?: number;
  readonly set?: ValidatorSet;
  readonly allowList?: (peerId: string) => boolean;
  readonly ratePoints?: number;
  /** More options for every validator (e.g. dhtQueueLimit, onDhtPutFailed). */
  readonly validatorOptions?: Partial<RegistryValidatorOptions>;
  /** More options for every peer (e.g. renew). */
  readonly peerOptions?: Partial<RegistryPeerOptions>;
}

const LOOPBACK = ['/ip4/127.0.0.1/tcp/0'];

/** Three validators (keys 100..102, one SQLite registry file) and `peers` peers. */
export async function startNetwork(o: NetworkOptions): Promise<Network> {
  const path = join(o.dir, 'registry.db');
  await new SqliteRegistryCells({ path, create: true }).close();
  const set = o.set ?? SET;
  const validators: RegistryValidator[] = [];
  const peers: RegistryPeer[] = [];
  const metrics = new Map<string, Registry>();
  const common = {
    listen: LOOPBACK,
    validators: set,
    ...(o.allowList ? { allowList: o.allowList } : {}),
  };
  try {
    for (let i = 0; i < 3; i++) {
      const reg = new Registry();
      const v = await RegistryValidator.start({
        ...common,
        seed: seedOf(100 + i),
        bootstrap: validators.flatMap((x) => x.addresses.slice(0, 1)),
        viewPath: join(o.dir, `v${i}-view.db`),
        metrics: reg,
        store: new RegistryStore(new SqliteRegistryCells({ path }), { validators: set }),
        countersignStatePath: join(o.dir, `v${i}-countersigned.db`),
        ...(o.ratePoints ? { ratePoints: o.ratePoints } : {}),
        ...o.validatorOptions,
      });
      metrics.set(v.peerId, reg);
      validators.push(v);
    }
    const validatorAddrs = validators.map((v) => v.addresses[0]!);
    for (let i = 0; i < o.peers; i++) {
      const reg = new Registry();
      const p = await RegistryPeer.start({
        ...common,
        seed: seedOf((o.peerTag ?? 1) + i),
        bootstrap: validatorAddrs,
        viewPath: join(o.dir, `p${i}-view.db`),
        metrics: reg,
        ...o.peerOptions,
      });
      metrics.set(p.peerId, reg);
      peers.push(p);
    }
    return {
      validators,
      peers,
      validatorAddrs,
      metrics,
      close: async () => {
        for (const n of [...peers, ...validators]) await n.stop().catch(() => undefined);
      },
    };
  } catch (err) {
    for (const n of [...peers, ...validators]) await n.stop().catch(() => undefined);
    throw err;
  }
}

/** A fresh record content for `subject`, issued now, valid one hour. */
export function liveContent(subject: Ed25519Key, over: Partial<RecordContent> = {}): RecordContent {
  const now = Date.now();
  return {
    subjectKey: subject.publicKey,
    prevSeq: 0n,
    issuedAtMs: now,
    expiresAtMs: now + 3_600_000,
    flags: 1,
    role: 'worker',
    capabilities: ['oracle'],
    addresses: ['/ip4/127.0.0.1/tcp/4001'],
    ...over,
  };
}

/**
 * One peer submitting new versions of its record back to back (30 ms apart), each to another
 * validator first, counting what happens: an answered seq other than the next one is a
 * failure, and the first refusal ends the run (the next version would replace an unknown one).
 */
export class Submitter {
  committed = 0n;
  readonly failures: string[] = [];
  private stopped = false;
  private done: Promise<void> | undefined;

  constructor(
    readonly peer: RegistryPeer,
    private readonly validators: () => string[],
  ) {}

  start(): void {
    this.done = (async () => {
      for (let i = 0; !this.stopped; i++) {
        const content = liveContent(this.peer.key, {
          prevSeq: this.committed,
          addresses: [`/ip4/127.0.0.1/tcp/${4000 + (i % 1000)}`],
        });
        const vs = this.validators();
        const order = [...vs.slice(i % vs.length), ...vs.slice(0, i % vs.length)];
        try {
          const r = await this.peer.submitOwn(content, order);
          if (r.seq !== this.committed + 1n)
            this.failures.push(`seq ${r.seq} answered, ${this.committed + 1n} expected`);
          this.committed = r.seq;
        } catch (err) {
          this.failures.push((err as Error).message);
          return;
        }
        await sleep(30);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

/** Polls `probe` every 25 ms until true; fails after `ms`. */
export async function until(what: string, probe: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (probe()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`not within ${ms} ms: ${what}`);
}

export const keyOfTag = keyOf;

/**
 * Until every validator knows every other node is subscribed to the records topic. A record a
 * validator publishes before it knows a new neighbour's subscription reaches that neighbour
 * through the view exchange the subscription starts (distribution.ts), not through gossip, so
 * tests that count deliveries by source start once the subscriptions are known.
 */
export async function subscriptionsKnown(net: Network, ms = 10_000): Promise<void> {
  const everyone = [...net.validators, ...net.peers];
  await until(
    'every validator sees every node subscribed to the records topic',
    () =>
      net.validators.every((v) => {
        const subs = new Set(
          v.node.services.pubsub.getSubscribers(GOSSIP_TOPIC).map((p) => p.toString()),
        );
        return everyone.every((n) => n === v || subs.has(n.peerId));
      }),
    ms,
  );
}

/** The value of a counter in `reg` for the given labels (summed over the others). */
export async function counterValue(
  reg: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = reg.getSingleMetric(name);
  if (!m) return 0;
  const got = await m.get();
  return got.values
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((a, v) => a + v.value, 0);
}

/** What `etcdRegistrySuite` gives a describe block once its `before` hook has run. */
export interface EtcdRegistrySuite {
  readonly dir: string;
  readonly cluster: EtcdTestCluster;
}

/**
 * Registers, in the calling describe block, hooks for a temp dir and a one-member etcd cluster
 * with Vigil's store initialised under `prefix`, both removed after the block; read the fields
 * inside a test (they are set by the `before` hook).
 */
export function etcdRegistrySuite(prefix: string, tmpName: string): EtcdRegistrySuite {
  const s: { dir?: string; cluster?: EtcdTestCluster; cleanup?: () => void } = {};
  before(async () => {
    const t = tempDir(tmpName);
    s.dir = t.dir;
    s.cleanup = t.cleanup;
    s.cluster = await EtcdTestCluster.start({ size: 1 });
    await (await openEtcdStore(s.cluster.storeConfig({ prefix }), { create: true })).close();
  });
  after(async () => {
    await s.cluster?.close();
    s.cleanup?.();
  });
  return {
    get dir() {
      return s.dir!;
    },
    get cluster() {
      return s.cluster!;
    },
  };
}
