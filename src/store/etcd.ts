/**
 * The distributed engine: watermarks in an etcd cluster (3 or 5 members), one key per scope.
 *
 * Each update is one transaction: "if the key still holds the record bytes I decided on (and,
 * when fenced, the role's leader key was created at my token) then put the new record, else
 * give me the current record". The first attempt uses the record this process saw last, so an
 * uncontended decision costs one round trip; a lost race returns the winner's record in the
 * same answer and `decide` runs again on it. etcd answers a transaction only after a quorum has
 * it in its log, which is the durability the guard needs.
 *
 * The compare is on the value, not on mod_revision: revisions start over in a rebuilt cluster
 * and repeat after a restore from a snapshot, so "the key is still at revision 22" can be true
 * of a different record. Equal bytes are the same record, whatever its history, and `decide`
 * depends on nothing else. Every answer also names the cluster that gave it; the store keeps
 * the first one it saw and, when another answers, drops its cache and refuses from then on
 * (StoreIdentityError) until the agent is restarted — see docs/ARCHITECTURE.md, Decisions.
 *
 * Any error, timeout or lost quorum ends in StoreUnavailableError: the guard refuses.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { InputError, StoreIdentityError, StoreUnavailableError, errorMessage } from '../errors.js';
import type { Watermark } from '../guard/watermark.js';
import {
  EtcdCallError,
  EtcdClient,
  outcomeUnknown,
  type Compare,
  type KeyValue,
  type TxnOp,
} from '../etcd/client.js';
import { decodeRecord, encodeRecord } from './record-codec.js';
import {
  FencedError,
  parseScopeId,
  scopeId,
  type OpenStoreOptions,
  type StoreIdentity,
  type StoreUpdate,
  type UpdateOptions,
  type WatermarkScope,
  type WatermarkStore,
} from './types.js';

const endpoint = z
  .string()
  .regex(
    /^(https?:\/\/)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/,
    'expected host:port or http(s)://host:port',
  );

export const EtcdStoreConfigSchema = z
  .object({
    /** Required, so this schema can sit in a discriminated union of store engines. */
    engine: z.literal('etcd'),
    endpoints: z.array(endpoint).min(1),
    /** Mutual TLS: the cluster CA, and this agent's client certificate and key. */
    tls: z
      .object({ ca: z.string().min(1), cert: z.string().min(1), key: z.string().min(1) })
      .strict()
      .optional(),
    /** Every Vigil key lives under this prefix; several fleets may share one cluster. */
    prefix: z
      .string()
      .regex(/^\/.*\/$/, 'must start and end with "/"')
      .default('/vigil/v1/'),
    timeouts: z
      .object({
        /** One call to one member. */
        callMs: z.number().int().min(50).max(60_000).default(1000),
        /** A whole update, retries included; past it the guard refuses. */
        updateMs: z.number().int().min(100).max(120_000).default(3000),
      })
      .strict()
      .default({ callMs: 1000, updateMs: 3000 }),
    /** Extra attempts after a lost race or a failed call, within `timeouts.updateMs`. */
    retries: z.number().int().min(0).max(50).default(8),
  })
  .strict();

export type EtcdStoreConfig = z.output<typeof EtcdStoreConfigSchema>;
/** What `openEtcdStore` takes: the config, with `engine` optional. */
export type EtcdStoreConfigInput = Omit<z.input<typeof EtcdStoreConfigSchema>, 'engine'> & {
  engine?: 'etcd';
};

/** Where a role's leader key lives; the lease module and the fence check must agree. */
export function leaderKey(prefix: string, role: string): string {
  return `${prefix}leaders/${encodeURIComponent(role)}`;
}

export function watermarkKey(prefix: string, id: string): string {
  return `${prefix}watermarks/${id}`;
}

/** The store's identity: one key, created once by `vigil state init`, never rewritten. */
export function identityKey(prefix: string): string {
  return `${prefix}identity`;
}

const StoredIdentitySchema = z
  .object({ storeId: z.uuid(), engine: z.literal('etcd'), createdAt: z.string() })
  .strict();

function parseIdentity(value: Buffer, key: string): StoreIdentity {
  let json: unknown;
  try {
    json = JSON.parse(value.toString());
  } catch {
    json = undefined;
  }
  const parsed = StoredIdentitySchema.safeParse(json);
  if (!parsed.success) {
    throw new StoreIdentityError(
      `etcd key ${key} does not hold a Vigil store identity`,
      'someone wrote over it; find out who, and restore the key from a backup of the cluster',
    );
  }
  return parsed.data;
}

interface Cached {
  readonly watermark: Watermark | undefined;
  /** The record exactly as stored (what the next compare checks); undefined: no key. */
  readonly value: Buffer | undefined;
}

const hex = (id: bigint) => id.toString(16);

export class EtcdWatermarkStore implements WatermarkStore {
  readonly engine = 'etcd' as const;
  private readonly cache = new Map<string, Cached>();
  /** The cluster every cached record and every decision so far came from: the first to answer. */
  private pinnedCluster: bigint | undefined;
  /** Set once another cluster answered; from then on every call refuses with it. */
  private otherCluster: { answered: bigint; what: string } | undefined;

  /** The identity read from the cluster; undefined while an agent that started without a
   * quorum has not reached one yet (see openEtcdStore's `identityLater`). */
  private known: StoreIdentity | undefined;
  private loading: Promise<StoreIdentity> | undefined;

  constructor(
    readonly client: EtcdClient,
    readonly config: EtcdStoreConfig,
    identity: StoreIdentity | undefined,
  ) {
    this.known = identity;
  }

  /**
   * The identity the store was opened with. Throws StoreUnavailableError while it has not been
   * read (the agent started without a quorum), and starts reading it, so that the next
   * request after the cluster is back finds it.
   */
  get identity(): StoreIdentity {
    if (this.known !== undefined) return this.known;
    void this.loadIdentity().catch(() => undefined);
    throw new StoreUnavailableError(
      `etcd store (${this.client.endpoints.join(', ')}): the store identity has not been read yet: no quorum answered since the agent started`,
      'a quorum of etcd members must be up and reachable; the agent retries by itself',
    );
  }

  /** Reads the identity once (concurrent callers share the read); never creates it. */
  private loadIdentity(): Promise<StoreIdentity> {
    if (this.known !== undefined) return Promise.resolve(this.known);
    this.loading ??= (async () => {
      try {
        const key = identityKey(this.config.prefix);
        const { kv, clusterId } = await this.client.get(key);
        this.checkCluster(clusterId, 'the identity read');
        this.known = await loadIdentity(this.client, this.config, {}, kv);
        return this.known;
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  leaderKey(role: string): string {
    return leaderKey(this.config.prefix, role);
  }

  private clusterCheck: ((clusterIdHex: string) => void) | undefined;

  /**
   * Called with the first cluster id that answers, before anything from it is trusted (the
   * agent's local watermark remembers it across restarts); if it throws, nothing is pinned.
   */
  verifyClusterWith(check: (clusterIdHex: string) => void): void {
    this.clusterCheck = check;
  }

  /** The etcd cluster id this store trusts, once one has answered. */
  get clusterId(): bigint | undefined {
    return this.pinnedCluster;
  }

  /**
   * Every answer the store acts on passes here first. The first cluster to answer is pinned;
   * an answer from any other drops the whole cache (nothing read from the old cluster may
   * decide anything) and puts the store in a refusing state that only a restart clears, after
   * the operator has made the watermarks whole (README: restoring the etcd guard cluster).
   */
  private checkCluster(answered: bigint, what: string): void {
    if (this.otherCluster === undefined) {
      if (this.pinnedCluster === undefined) {
        // May throw (a cluster other than the one the agent's watermarks were built against):
        // nothing is pinned then, and every call asks again.
        this.clusterCheck?.(hex(answered));
        this.pinnedCluster = answered;
      }
      if (answered === this.pinnedCluster) return;
      this.cache.clear();
      this.otherCluster = { answered, what };
    }
    throw new StoreIdentityError(
      `etcd store (${this.client.endpoints.join(', ')}): ${this.otherCluster.what} was answered by etcd cluster ${hex(this.otherCluster.answered)}, ` +
        `but this agent's watermarks came from cluster ${hex(this.pinnedCluster!)}: the cluster was rebuilt or restored from a snapshot, or the endpoints reach another cluster`,
      'nothing was signed, and this agent refuses until it is restarted; first bring the watermarks up to everything signed since the snapshot (`vigil state import`), see README "Restoring the etcd guard cluster from a snapshot"',
    );
  }

  async update<T>(
    scope: WatermarkScope,
    decide: (current: Watermark | undefined) => StoreUpdate<T>,
    options?: UpdateOptions,
  ): Promise<T> {
    const id = scopeId(scope);
    const key = watermarkKey(this.config.prefix, id);
    const fence = options?.fence;
    const fenceKey = fence ? this.leaderKey(fence.role) : undefined;
    const giveUpAt = Date.now() + this.config.timeouts.updateMs;
    const attempts = this.config.retries + 1;
    let lastProblem = 'no attempt was made';
    // Nothing is decided on a store whose identity was never read.
    if (this.known === undefined) {
      try {
        await this.loadIdentity();
      } catch (err) {
        throw this.wrap(err, `update ${id}`);
      }
    }

    for (let attempt = 1; attempt <= attempts && Date.now() < giveUpAt; attempt++) {
      let current = this.cache.get(id);
      /** The record this attempt writes and the answer it gives if that write committed. */
      let written: Buffer | undefined;
      let committed: { value: T } | undefined;
      try {
        if (this.otherCluster) this.checkCluster(this.otherCluster.answered, 'an earlier call');
        if (current === undefined) current = await this.read(key, id);
        if (fence && fence.clusterId !== this.pinnedCluster) {
          throw new FencedError(
            fence,
            fence.clusterId === undefined
              ? 'the token names no etcd cluster'
              : `the token was issued by etcd cluster ${hex(fence.clusterId)}, this store's is ${hex(this.pinnedCluster!)}`,
          );
        }
        const plan = decide(current.watermark);
        const compare: Compare[] = [
          current.value === undefined
            ? { key, target: 'version', version: 0n }
            : { key, target: 'value', value: current.value },
        ];
        if (fence) compare.push({ key: fenceKey!, target: 'create', revision: fence.token });
        written = plan.write ? Buffer.from(encodeRecord(plan.write)) : undefined;
        committed = { value: plan.result };
        const success: TxnOp[] = written ? [{ put: { key, value: written } }] : [];
        const failure: TxnOp[] = [{ get: { key } }];
        if (fenceKey) failure.push({ get: { key: fenceKey } });
        // A read-only plan (refuse, replay) still goes through the compare: it confirms, in
        // one round trip, that the cached record it was based on is the current one.
        const res = await this.client.txn(`update ${key}`, compare, success, failure);
        // Committed or not, an answer from another cluster decides nothing here.
        this.checkCluster(res.clusterId, `update ${id}`);
        if (res.succeeded) {
          if (plan.write) this.cache.set(id, { watermark: plan.write, value: written });
          return plan.result;
        }
        const [kv, leader] = res.gets;
        if (fence && leader?.createRevision !== fence.token) {
          throw new FencedError(
            fence,
            leader
              ? `etcd's leader key ${fenceKey} was created at revision ${leader.createRevision}`
              : `etcd's leader key ${fenceKey} does not exist`,
          );
        }
        this.cache.set(id, {
          watermark: kv ? decodeRecord(kv.value.toString(), key) : undefined,
          value: kv?.value,
        });
        lastProblem = `lost ${attempt} race(s) to other writers`;
      } catch (err) {
        if (!(err instanceof EtcdCallError)) throw err;
        // The write may or may not have applied: forget what we thought the record was.
        this.cache.delete(id);
        lastProblem = err.message;
        if (outcomeUnknown(err) && written !== undefined) {
          // Settle it from what is stored, not from the lost answer. Our exact bytes (they
          // name this agent and the time of the decision) mean the grant committed: answer
          // it as granted, with the signature it recorded. Another record means it never will
          // (watermarks only rise, so the compare on the older record cannot pass again); the
          // older record still there means it may yet apply, late: the next attempt compares
          // that same record, so at most one of the two transactions can pass, and if ours
          // did, the next attempt finds it and answers it as the replay it is.
          try {
            const stored = await this.read(key, id);
            if (stored.value?.equals(written)) return committed!.value;
          } catch (readErr) {
            if (!(readErr instanceof EtcdCallError)) throw readErr;
            lastProblem = `${err.message}; then reading it back: ${readErr.message}`;
          }
        }
      }
    }
    throw new StoreUnavailableError(
      `etcd store (${this.client.endpoints.join(', ')}): update ${id} not confirmed after ${attempts} attempt(s) within ${this.config.timeouts.updateMs} ms; last problem: ${lastProblem}`,
      'nothing was signed; check the etcd cluster (`vigil cluster status`): a quorum of members must be up',
    );
  }

  private async read(key: string, id: string): Promise<Cached> {
    const { kv, clusterId } = await this.client.get(key);
    this.checkCluster(clusterId, `read ${id}`);
    const entry: Cached = {
      watermark: kv ? decodeRecord(kv.value.toString(), key) : undefined,
      value: kv?.value,
    };
    this.cache.set(id, entry);
    return entry;
  }

  async get(scope: WatermarkScope): Promise<Watermark | undefined> {
    const id = scopeId(scope);
    try {
      return (await this.read(watermarkKey(this.config.prefix, id), id)).watermark;
    } catch (err) {
      throw this.wrap(err, `read ${id}`);
    }
  }

  async list(): Promise<Array<{ scope: WatermarkScope; watermark: Watermark }>> {
    try {
      const prefix = watermarkKey(this.config.prefix, '');
      const { kvs, clusterId } = await this.client.rangePrefix(prefix);
      this.checkCluster(clusterId, 'list');
      return kvs.map((kv) => ({
        scope: parseScopeId(kv.key.slice(prefix.length)),
        watermark: decodeRecord(kv.value.toString(), kv.key),
      }));
    } catch (err) {
      throw this.wrap(err, 'list');
    }
  }

  /** A linearizable read of the identity key: only a member in a quorum can answer it, and
   * only a cluster still holding this store's identity passes. */
  async ping(): Promise<void> {
    const key = identityKey(this.config.prefix);
    let kv;
    try {
      await this.loadIdentity();
      const answer = await this.client.get(key);
      this.checkCluster(answer.clusterId, 'ping');
      kv = answer.kv;
    } catch (err) {
      throw this.wrap(err, 'ping');
    }
    const now = kv ? parseIdentity(kv.value, key).storeId : '(none)';
    if (now !== this.identity.storeId) {
      throw new StoreIdentityError(
        `the etcd store's identity ${key} is now ${now}, not ${this.identity.storeId} as when this agent opened it`,
        'the cluster was wiped, rebuilt or replaced under this agent; nothing is signed until an operator settles which store is the true one',
      );
    }
  }

  async close(): Promise<void> {
    this.client.close();
  }

  private wrap(err: unknown, what: string): Error {
    if (!(err instanceof EtcdCallError)) return err as Error;
    return new StoreUnavailableError(
      `etcd store: ${what} failed: ${errorMessage(err)}`,
      'a quorum of etcd members must be up and reachable',
      { cause: err },
    );
  }
}

/** Every watermark under `prefix`. */
export async function listEtcdWatermarks(
  client: EtcdClient,
  prefix: string,
): Promise<Array<{ scope: WatermarkScope; watermark: Watermark }>> {
  const under = watermarkKey(prefix, '');
  const kvs = await client.getPrefix(under);
  return kvs.map((kv) => ({
    scope: parseScopeId(kv.key.slice(under.length)),
    watermark: decodeRecord(kv.value.toString(), kv.key),
  }));
}

/** The identity stored under `prefix`, if the store was initialised. */
export async function readEtcdIdentity(
  client: EtcdClient,
  prefix: string,
): Promise<StoreIdentity | undefined> {
  const key = identityKey(prefix);
  const { kv } = await client.get(key);
  return kv ? parseIdentity(kv.value, key) : undefined;
}

export function etcdClientFor(config: EtcdStoreConfig): EtcdClient {
  return new EtcdClient({
    endpoints: config.endpoints,
    ...(config.tls ? { tls: config.tls } : {}),
    callTimeoutMs: config.timeouts.callMs,
  });
}

/**
 * Reads the store's identity key; with `create`, writes a fresh one if there is none, in a
 * transaction that only succeeds while the key has never existed (create_revision 0), so two
 * racing initialisations agree on the first.
 */
async function loadIdentity(
  client: EtcdClient,
  config: EtcdStoreConfig,
  options: OpenStoreOptions,
  /** The identity key as already read, if it was. */
  read?: KeyValue,
): Promise<StoreIdentity> {
  const key = identityKey(config.prefix);
  const where = `prefix ${config.prefix} on etcd (${client.endpoints.join(', ')})`;
  let kv = read ?? (await client.get(key)).kv;
  if (kv === undefined && options.create === true) {
    const older = await client.getPrefix(watermarkKey(config.prefix, ''));
    if (older.length > 0 && options.adoptExisting !== true) {
      throw new StoreIdentityError(
        `the watermark store under ${where} holds ${older.length} watermark(s) written by a Vigil from before store identities, and has no identity`,
        'if it is the true store (the one the agents last signed with, not an old copy), give it an identity once with `vigil state init --config <agent.yaml> --adopt-existing`',
      );
    }
    const fresh: StoreIdentity = {
      storeId: randomUUID(),
      engine: 'etcd',
      createdAt: new Date().toISOString(),
    };
    const res = await client.txn(
      `init ${key}`,
      [{ key, target: 'create', revision: 0n }],
      [{ put: { key, value: JSON.stringify(fresh) } }],
      [{ get: { key } }],
    );
    if (res.succeeded) return fresh;
    kv = res.gets[0];
  }
  if (kv === undefined) {
    throw new StoreIdentityError(
      `no initialised Vigil watermark store under ${where} (the key ${key} is missing)`,
      'an agent never creates its store: initialise it once with `vigil state init --config <agent.yaml>`; if a store existed there, the cluster or prefix was wiped: restore it rather than start a new one',
    );
  }
  return parseIdentity(kv.value, key);
}

/**
 * Validates `config` (InputError on bad input), connects, and reads the store's identity
 * (StoreIdentityError if it was never initialised, unless `options.create`). With
 * `identityLater` (the agent) a cluster that does not answer is not an error: the store
 * refuses everything as unavailable until a quorum answers and the identity is read.
 */
export async function openEtcdStore(
  config: EtcdStoreConfigInput,
  options: OpenStoreOptions & { readonly identityLater?: boolean } = {},
): Promise<EtcdWatermarkStore> {
  const { client, config: parsed } = connectEtcd(config);
  try {
    return new EtcdWatermarkStore(client, parsed, await loadIdentity(client, parsed, options));
  } catch (err) {
    if (err instanceof EtcdCallError && options.identityLater === true && !options.create)
      return new EtcdWatermarkStore(client, parsed, undefined);
    client.close();
    if (!(err instanceof EtcdCallError)) throw err;
    throw new StoreUnavailableError(
      `etcd store: cannot read the store identity: ${errorMessage(err)}`,
      'a quorum of etcd members must be up and reachable when the store is opened',
      { cause: err },
    );
  }
}

/**
 * Validates `config` (InputError on bad input) and sets up a client that connects on first
 * use, without reading the store's identity: for diagnostics (`vigil cluster status`) that must
 * work on an uninitialised or quorum-less cluster. Signing goes through openEtcdStore.
 */
export function connectEtcd(config: EtcdStoreConfigInput): {
  client: EtcdClient;
  config: EtcdStoreConfig;
} {
  const result = EtcdStoreConfigSchema.safeParse({ ...config, engine: 'etcd' });
  if (!result.success)
    throw new InputError(`invalid etcd store config:\n${z.prettifyError(result.error)}`);
  const parsed = result.data;
  const useTls = parsed.tls !== undefined;
  const plain = parsed.endpoints.filter((e) => e.startsWith('http://'));
  if (useTls && plain.length > 0) {
    throw new InputError(
      `invalid etcd store config: tls is set but ${plain.join(', ')} use http://`,
      'use https:// endpoints (or host:port) with tls, or remove tls',
    );
  }
  const secure = parsed.endpoints.filter((e) => e.startsWith('https://'));
  if (!useTls && secure.length > 0) {
    throw new InputError(
      `invalid etcd store config: ${secure.join(', ')} use https:// but no tls files are set`,
      'add tls: { ca, cert, key } (the members require a client certificate)',
    );
  }
  try {
    return { client: etcdClientFor(parsed), config: parsed };
  } catch (err) {
    throw new StoreUnavailableError(
      `etcd store: cannot set up the client: ${errorMessage(err)}`,
      'check the TLS file paths and permissions',
      { cause: err },
    );
  }
}
