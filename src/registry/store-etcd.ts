/**
 * The registry on the validators' etcd cluster: one key per subject under the store's prefix
 * (`<prefix>registry/records/<peer id>`), written like src/store/etcd.ts writes watermarks —
 * one transaction comparing the stored value with the one the decision was made on (absence
 * as version 0) and the store's identity key with the one read at open, so a write lands only
 * on the initialised store and only on top of what was read; a lost race returns the winner's
 * value in the same answer and the decision runs again on it. Every answer's cluster id is
 * pinned on first sight; another cluster answering is a StoreIdentityError.
 */
import { StoreIdentityError, StoreUnavailableError } from '../errors.js';
import { EtcdCallError, outcomeUnknown, type Compare, type EtcdClient } from '../etcd/client.js';
import { identityKey } from '../store/etcd.js';
import { RegistryError } from './record.js';
import type { RegistryCells } from './store.js';

export function registryKey(prefix: string, subject: string): string {
  return `${prefix}registry/records/${subject}`;
}

/** The key of a validator-set record: the epoch zero-padded, so keys sort in epoch order. */
export function validatorSetKey(prefix: string, epoch: bigint): string {
  return `${validatorSetPrefix(prefix)}${epoch.toString().padStart(20, '0')}`;
}

export function validatorSetPrefix(prefix: string): string {
  return `${prefix}registry/validator-sets/`;
}

export interface EtcdRegistryOptions {
  /** The store's prefix (EtcdStoreConfig.prefix), e.g. '/vigil/v1/'. */
  readonly prefix: string;
  /** Attempts after a lost race or a failed call. */
  readonly retries?: number;
  /** A whole update, retries included. */
  readonly updateMs?: number;
}

export class EtcdRegistryCells implements RegistryCells {
  readonly engine = 'etcd' as const;
  private readonly cache = new Map<string, Buffer | undefined>();
  private pinnedCluster: bigint | undefined;

  private constructor(
    readonly client: EtcdClient,
    private readonly options: EtcdRegistryOptions,
    /** The identity key's bytes as read at open: every write compares them. */
    private readonly identity: Buffer,
  ) {}

  /** The store's prefix; the records live under registryKey(prefix, ''). */
  get prefix(): string {
    return this.options.prefix;
  }

  /** Reads the store's identity (the store must have been initialised: `vigil state init`). */
  static async open(client: EtcdClient, options: EtcdRegistryOptions): Promise<EtcdRegistryCells> {
    const key = identityKey(options.prefix);
    let answer;
    try {
      answer = await client.get(key);
    } catch (err) {
      throw wrap(err, 'open');
    }
    if (answer.kv === undefined)
      throw new StoreIdentityError(
        `no initialised Vigil store under ${options.prefix} (the key ${key} is missing)`,
        'initialise the store once with `vigil state init`',
      );
    const cells = new EtcdRegistryCells(client, options, answer.kv.value);
    cells.checkCluster(answer.clusterId);
    return cells;
  }

  private checkCluster(id: bigint): void {
    this.pinnedCluster ??= id;
    if (id !== this.pinnedCluster) {
      this.cache.clear();
      throw new StoreIdentityError(
        `etcd cluster ${id.toString(16)} answered, but this registry opened cluster ${this.pinnedCluster.toString(16)}`,
        'the cluster was rebuilt or restored, or the endpoints reach another one; restart after checking',
      );
    }
  }

  async update<T>(
    subject: string,
    decide: (current: Uint8Array | undefined) => { write?: Uint8Array; result: T },
  ): Promise<T> {
    const key = registryKey(this.options.prefix, subject);
    const idKey = identityKey(this.options.prefix);
    const attempts = (this.options.retries ?? 16) + 1;
    const giveUpAt = Date.now() + (this.options.updateMs ?? 5000);
    let lastProblem = 'no attempt was made';
    for (let attempt = 1; attempt <= attempts && Date.now() < giveUpAt; attempt++) {
      /** What this attempt writes and answers if the write committed. */
      let attempted: { written: Buffer; result: T } | undefined;
      try {
        const fresh = !this.cache.has(subject);
        if (fresh) await this.read(key, subject);
        const current = this.cache.get(subject);
        let plan: { write?: Uint8Array; result: T };
        try {
          plan = decide(current === undefined ? undefined : new Uint8Array(current));
        } catch (err) {
          // A refusal decided on a cached value may be about a value replaced since by
          // another writer: decide it again on a fresh read before answering it.
          if (fresh) throw err;
          this.cache.delete(subject);
          attempt--;
          continue;
        }
        const compare: Compare[] = [
          current === undefined
            ? { key, target: 'version', version: 0n }
            : { key, target: 'value', value: current },
          { key: idKey, target: 'value', value: this.identity },
        ];
        const written = plan.write ? Buffer.from(plan.write) : undefined;
        if (written) attempted = { written, result: plan.result };
        const res = await this.client.txn(
          `registry update ${key}`,
          compare,
          written ? [{ put: { key, value: written } }] : [],
          [{ get: { key } }, { get: { key: idKey } }],
        );
        this.checkCluster(res.clusterId);
        if (res.succeeded) {
          if (written) this.cache.set(subject, written);
          return plan.result;
        }
        const [kv, id] = res.gets;
        if (id === undefined || !id.value.equals(this.identity))
          throw new StoreIdentityError(
            `the store identity ${idKey} changed under the registry`,
            'the cluster was wiped or re-initialised; nothing was written',
          );
        this.cache.set(subject, kv?.value);
        lastProblem = `lost ${attempt} race(s) to other writers`;
      } catch (err) {
        if (!(err instanceof EtcdCallError)) throw err;
        // It may or may not have applied: forget the cached value; the next compare decides.
        this.cache.delete(subject);
        lastProblem = err.message;
        if (outcomeUnknown(err) && attempted) {
          // Settle a lost answer from what is stored: our exact bytes mean it committed, and
          // it is answered as committed (not as a duplicate of itself). Otherwise the next
          // attempt compares the value read, so a late-applying write and a retry cannot both
          // pass.
          try {
            if ((await this.read(key, subject))?.equals(attempted.written)) return attempted.result;
          } catch (readErr) {
            if (!(readErr instanceof EtcdCallError)) throw readErr;
            lastProblem = `${err.message}; then reading it back: ${readErr.message}`;
          }
        }
      }
    }
    throw new StoreUnavailableError(
      `etcd registry: update of ${subject} not confirmed after ${attempts} attempt(s); last problem: ${lastProblem}`,
      'nothing was committed; a quorum of etcd members must be up',
    );
  }

  private async read(key: string, subject: string): Promise<Buffer | undefined> {
    const { kv, clusterId } = await this.client.get(key);
    this.checkCluster(clusterId);
    this.cache.set(subject, kv?.value);
    return kv?.value;
  }

  async get(subject: string): Promise<Uint8Array | undefined> {
    try {
      const v = await this.read(registryKey(this.options.prefix, subject), subject);
      return v === undefined ? undefined : new Uint8Array(v);
    } catch (err) {
      throw wrap(err, `read ${subject}`);
    }
  }

  async list(): Promise<Array<{ subject: string; bytes: Uint8Array }>> {
    const prefix = registryKey(this.options.prefix, '');
    try {
      const { kvs, clusterId } = await this.client.rangePrefix(prefix);
      this.checkCluster(clusterId);
      return kvs.map((kv) => ({
        subject: kv.key.slice(prefix.length),
        bytes: new Uint8Array(kv.value),
      }));
    } catch (err) {
      throw wrap(err, 'list');
    }
  }

  async readSets(): Promise<Uint8Array[]> {
    try {
      const { kvs, clusterId } = await this.client.rangePrefix(
        validatorSetPrefix(this.options.prefix),
      );
      this.checkCluster(clusterId);
      return kvs
        .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
        .map((kv) => new Uint8Array(kv.value));
    } catch (err) {
      throw wrap(err, 'read the validator sets');
    }
  }

  /**
   * One transaction: the epoch's key is absent, the previous epoch's key holds `prev` (from
   * epoch 2; the genesis set is configuration and has no key), and the store identity is the
   * one read at open. A lost answer is settled by the next attempt: our bytes at the key mean
   * it committed (answered as 'duplicate').
   */
  async appendSet(
    epoch: bigint,
    bytes: Uint8Array,
    prev: Uint8Array | undefined,
  ): Promise<'committed' | 'duplicate'> {
    const key = validatorSetKey(this.options.prefix, epoch);
    const prevKey = validatorSetKey(this.options.prefix, epoch - 1n);
    const idKey = identityKey(this.options.prefix);
    const compare: Compare[] = [
      { key, target: 'version', version: 0n },
      { key: idKey, target: 'value', value: this.identity },
    ];
    if (epoch > 1n) {
      if (prev === undefined)
        throw new RegistryError('REGISTRY_EPOCH_STALE', `epoch ${epoch} needs epoch ${epoch - 1n}`);
      compare.push({ key: prevKey, target: 'value', value: Buffer.from(prev) });
    }
    const value = Buffer.from(bytes);
    const attempts = (this.options.retries ?? 16) + 1;
    let lastProblem = 'no attempt was made';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const res = await this.client.txn(
          `registry append ${key}`,
          compare,
          [{ put: { key, value } }],
          [{ get: { key } }, { get: { key: idKey } }],
        );
        this.checkCluster(res.clusterId);
        if (res.succeeded) return 'committed';
        const [kv, id] = res.gets;
        if (id === undefined || !id.value.equals(this.identity))
          throw new StoreIdentityError(
            `the store identity ${idKey} changed under the registry`,
            'the cluster was wiped or re-initialised; nothing was written',
          );
        if (kv === undefined)
          throw new RegistryError(
            'REGISTRY_EPOCH_STALE',
            `validator-set epoch ${epoch} does not follow the committed chain`,
          );
        if (kv.value.equals(value)) return 'duplicate';
        throw new RegistryError(
          'REGISTRY_EPOCH_CONFLICT',
          `another validator-set change was committed for epoch ${epoch} first`,
          'read the current set (`vigil registry set-show`) and propose again on top of it',
        );
      } catch (err) {
        if (!(err instanceof EtcdCallError)) throw err;
        // Applied or not, the next attempt's compare (key absent, or our bytes) settles it.
        lastProblem = err.message;
      }
    }
    throw new StoreUnavailableError(
      `etcd registry: validator-set epoch ${epoch} not confirmed after ${attempts} attempt(s); last problem: ${lastProblem}`,
      'a quorum of etcd members must be up',
    );
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

function wrap(err: unknown, what: string): Error {
  if (!(err instanceof EtcdCallError)) return err as Error;
  return new StoreUnavailableError(
    `etcd registry: ${what} failed: ${err.message}`,
    'a quorum of etcd members must be up and reachable',
    { cause: err },
  );
}
