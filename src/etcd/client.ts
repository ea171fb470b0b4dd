/**
 * Our own small face over the `etcd3` package: only the calls Vigil makes, each with its own
 * deadline, and errors that name the endpoint and the call that failed.
 *
 * Why not use etcd3's higher layers: the package is unmaintained, its Lease object reports a
 * lost lease late (up to 2×TTL), and its pool retries behind a circuit breaker that can keep a
 * recovered cluster "open" for seconds. So there is one etcd3 connection per endpoint with every
 * retry policy disabled; failing over between endpoints, and deciding what is safe to retry, is
 * done here and by the callers, where the meaning of each call is known.
 */
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { Etcd3, type IOptions } from 'etcd3';
import type * as RPC from 'etcd3';
import { VigilError, errorMessage } from '../errors.js';

export interface EtcdTlsFiles {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface EtcdClientOptions {
  /** `host:port` or `https://host:port`; the scheme only says whether TLS is used. */
  readonly endpoints: readonly string[];
  readonly tls?: EtcdTlsFiles;
  /** Deadline of one call on one endpoint. */
  readonly callTimeoutMs: number;
  readonly dialTimeoutMs?: number;
}

/** An etcd call that failed or whose outcome is unknown. Carries where and what. */
export class EtcdCallError extends VigilError {
  constructor(
    readonly endpoint: string,
    readonly call: string,
    detail: string,
    /**
     * True only when the request certainly did not reach a member (nothing was applied): a
     * failure before it was written (see NOT_SENT) or a closed client. False means the outcome
     * is unknown — a write may have been applied with only its answer lost; callers resolve
     * that by reading what is stored, never by assuming it failed.
     */
    readonly notSent: boolean,
    options?: { cause?: unknown },
  ) {
    super(
      'ETCD_CALL_FAILED',
      `etcd ${endpoint}: ${call} failed: ${detail}`,
      'check that a quorum of etcd members is up and reachable, and the TLS files match the cluster CA',
      options,
    );
  }
}

export interface KeyValue {
  readonly key: string;
  readonly value: Buffer;
  readonly createRevision: bigint;
  readonly modRevision: bigint;
  readonly lease: bigint;
}

export type Compare =
  | { readonly key: string; readonly target: 'mod' | 'create'; readonly revision: bigint }
  | { readonly key: string; readonly target: 'version'; readonly version: bigint }
  /** Equal bytes. etcd fails a value compare on a missing key; test absence with version 0. */
  | { readonly key: string; readonly target: 'value'; readonly value: Buffer };

/**
 * Which cluster answered. Every etcd response header names it; a restore from a snapshot with
 * a new `--initial-cluster-token`, or another cluster behind the same endpoints, changes it,
 * while revisions may repeat. Callers that cache what they read compare it on every answer.
 */
export interface Answered {
  readonly clusterId: bigint;
}

export type TxnOp =
  | { readonly put: { key: string; value: Buffer | string; lease?: bigint } }
  | { readonly get: { key: string } }
  | { readonly delete: { key: string } };

export interface TxnResult extends Answered {
  readonly succeeded: boolean;
  readonly revision: bigint;
  /** One entry per op of the branch that ran; `get` ops yield their key-value (or undefined). */
  readonly gets: Array<KeyValue | undefined>;
}

export interface MemberInfo {
  readonly id: string;
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

export interface EndpointStatus {
  readonly endpoint: string;
  readonly memberId: string;
  readonly leaderId: string;
  readonly version: string;
  readonly dbSize: bigint;
  readonly raftTerm: bigint;
  readonly raftIndex: bigint;
}

/** A pass-through fault policy: one attempt, no breaker. etcd3 only calls `execute`. */
const NO_RETRY = {
  execute: <T>(fn: (ctx: { signal: AbortSignal; attempt: number }) => T | Promise<T>) =>
    Promise.resolve().then(() => fn({ signal: new AbortController().signal, attempt: 0 })),
} as unknown as NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

function stripScheme(endpoint: string): string {
  return endpoint.replace(/^[a-z]+:\/\//, '');
}

/**
 * Failures that can only happen before a request was written to a member, so nothing of it was
 * applied. Everything else — a connection reset or dropped after the request went out, a
 * deadline that passed while the member held it, "etcdserver: request timed out" — leaves the
 * outcome unknown: the member may have applied it and only the answer was lost.
 *
 * From @grpc/grpc-js 1.14 (build/src/picker.js, load-balancer-pick-first.js,
 * load-balancing-call.js, subchannel-call.js):
 * - "No connection established": the picker failed the call because no connection to the
 *   member exists (connect refused, TLS handshake or certificate failure, unreachable host);
 * - "Waiting for LB pick": the deadline passed before a connection was picked for the call;
 * - "Stream refused by server": HTTP/2 REFUSED_STREAM, the server's promise that it did not
 *   process the stream (RFC 9113 §8.7).
 * "Connection dropped" (UNAVAILABLE too) is NOT here: grpc-js reports it for a connection lost
 * at any time, after the request was sent as well.
 */
const NOT_SENT =
  /No connection established|Waiting for LB pick|Stream refused by server|ECONNREFUSED|client (?:has been )?closed/i;

/** True for an error whose request may have been applied by etcd although no answer came. */
export function outcomeUnknown(err: unknown): boolean {
  return err instanceof EtcdCallError && !err.notSent;
}

function toKeyValue(kv: RPC.IKeyValue): KeyValue {
  return {
    key: kv.key.toString(),
    value: kv.value,
    createRevision: BigInt(kv.create_revision),
    modRevision: BigInt(kv.mod_revision),
    lease: BigInt(kv.lease || 0),
  };
}

function toMemberInfo(m: RPC.IMember): MemberInfo {
  return {
    id: BigInt(m.ID).toString(16),
    name: m.name,
    peerUrls: m.peerURLs,
    clientUrls: m.clientURLs,
    isLearner: m.isLearner,
  };
}

export class EtcdClient {
  private readonly conns: Array<{ endpoint: string; etcd: Etcd3 }>;
  /** Index of the endpoint that answered last; calls start there. */
  private preferred = 0;
  private closed = false;

  constructor(private readonly opts: EtcdClientOptions) {
    if (opts.endpoints.length === 0) throw new Error('etcd client needs at least one endpoint');
    const credentials = opts.tls
      ? {
          rootCertificate: readFileSync(opts.tls.ca),
          ...(opts.tls.key ? { privateKey: readFileSync(opts.tls.key) } : {}),
          ...(opts.tls.cert ? { certChain: readFileSync(opts.tls.cert) } : {}),
        }
      : undefined;
    this.conns = opts.endpoints.map((endpoint) => ({
      endpoint,
      etcd: new Etcd3({
        hosts: stripScheme(endpoint),
        ...(credentials ? { credentials } : {}),
        dialTimeout: opts.dialTimeoutMs ?? opts.callTimeoutMs,
        faultHandling: { global: NO_RETRY, host: () => NO_RETRY },
        grpcOptions: {
          // Reconnect quickly when a member comes back instead of backing off for seconds.
          'grpc.initial_reconnect_backoff_ms': 100,
          'grpc.max_reconnect_backoff_ms': 1000,
        },
      }),
    }));
  }

  get endpoints(): readonly string[] {
    return this.opts.endpoints;
  }

  /** Runs `fn` on one endpoint with a deadline; the error names that endpoint. */
  async onEndpoint<T>(
    index: number,
    call: string,
    fn: (etcd: Etcd3, options: { deadline: Date }) => Promise<T>,
    timeoutMs = this.opts.callTimeoutMs,
  ): Promise<T> {
    const conn = this.conns[index]!;
    if (this.closed) throw new EtcdCallError(conn.endpoint, call, 'client closed', true);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Date(Date.now() + timeoutMs);
    try {
      // The grpc deadline ends the call server-side; the timer guards against a hung channel.
      const result = await Promise.race([
        fn(conn.etcd, { deadline }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${timeoutMs} ms`)),
            timeoutMs + 50,
          );
        }),
      ]);
      this.preferred = index;
      return result;
    } catch (err) {
      if (err instanceof EtcdCallError) throw err;
      const detail = errorMessage(err);
      throw new EtcdCallError(conn.endpoint, call, detail, NOT_SENT.test(detail), { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs `fn` on the preferred endpoint, moving on to the next one when the request was
   * certainly not sent, or for any failure of a read (`idempotent`). An ambiguous failure of a
   * write is returned to the caller, who knows whether the call may be repeated; the next
   * call starts at the next endpoint, so a member that hangs (frozen, black-holed: the TCP
   * connect succeeds, nothing answers) cannot hold every retry.
   */
  async call<T>(
    call: string,
    fn: (etcd: Etcd3, options: { deadline: Date }) => Promise<T>,
    timeoutMs?: number,
    idempotent = false,
  ): Promise<T> {
    let last: EtcdCallError | undefined;
    const start = this.preferred;
    for (let i = 0; i < this.conns.length; i++) {
      const index = (start + i) % this.conns.length;
      try {
        return await this.onEndpoint(index, call, fn, timeoutMs);
      } catch (err) {
        if (!(err instanceof EtcdCallError)) throw err;
        last = err;
        if (!err.notSent && !idempotent) {
          this.preferred = (index + 1) % this.conns.length;
          throw err;
        }
      }
    }
    throw last!;
  }

  /** A linearizable read of one key (etcd's default; never `serializable`). */
  async get(key: string): Promise<{ kv: KeyValue | undefined; revision: bigint } & Answered> {
    const res = await this.call(
      `get ${key}`,
      (etcd, o) => etcd.kv.range({ key: Buffer.from(key) }, o),
      undefined,
      true,
    );
    return {
      kv: res.kvs[0] ? toKeyValue(res.kvs[0]) : undefined,
      revision: BigInt(res.header.revision),
      clusterId: BigInt(res.header.cluster_id),
    };
  }

  async getPrefix(prefix: string): Promise<KeyValue[]> {
    return (await this.rangePrefix(prefix)).kvs;
  }

  /** Every key under `prefix`, with the cluster that answered. */
  async rangePrefix(prefix: string): Promise<{ kvs: KeyValue[] } & Answered> {
    const end = Buffer.from(prefix);
    end[end.length - 1]!++;
    const res = await this.call(
      `get ${prefix}*`,
      (etcd, o) => etcd.kv.range({ key: Buffer.from(prefix), range_end: end }, o),
      undefined,
      true,
    );
    return { kvs: res.kvs.map(toKeyValue), clusterId: BigInt(res.header.cluster_id) };
  }

  async txn(
    what: string,
    compare: readonly Compare[],
    success: readonly TxnOp[],
    failure: readonly TxnOp[] = [],
  ): Promise<TxnResult> {
    const toOp = (op: TxnOp): RPC.IRequestOp => {
      if ('put' in op) {
        return {
          request_put: {
            key: Buffer.from(op.put.key),
            value: Buffer.from(op.put.value),
            ...(op.put.lease !== undefined ? { lease: op.put.lease.toString() } : {}),
          },
        };
      }
      if ('get' in op) return { request_range: { key: Buffer.from(op.get.key) } };
      return { request_delete_range: { key: Buffer.from(op.delete.key) } };
    };
    const req: RPC.ITxnRequest = {
      compare: compare.map((c) =>
        c.target === 'value'
          ? { key: Buffer.from(c.key), target: 'Value', result: 'Equal', value: c.value }
          : c.target === 'version'
            ? {
                key: Buffer.from(c.key),
                target: 'Version',
                result: 'Equal',
                version: c.version.toString(),
              }
            : c.target === 'mod'
              ? {
                  key: Buffer.from(c.key),
                  target: 'Mod',
                  result: 'Equal',
                  mod_revision: c.revision.toString(),
                }
              : {
                  key: Buffer.from(c.key),
                  target: 'Create',
                  result: 'Equal',
                  create_revision: c.revision.toString(),
                },
      ),
      success: success.map(toOp),
      failure: failure.map(toOp),
    };
    const res = await this.call(what, (etcd, o) => etcd.kv.txn(req, o));
    return {
      succeeded: res.succeeded,
      revision: BigInt(res.header.revision),
      clusterId: BigInt(res.header.cluster_id),
      gets: res.responses.map((r) =>
        r.response_range?.kvs?.[0] ? toKeyValue(r.response_range.kvs[0]) : undefined,
      ),
    };
  }

  async put(key: string, value: Buffer | string, lease?: bigint): Promise<bigint> {
    const res = await this.call(`put ${key}`, (etcd, o) =>
      etcd.kv.put(
        {
          key: Buffer.from(key),
          value: Buffer.from(value),
          ...(lease !== undefined ? { lease: lease.toString() } : {}),
        },
        o,
      ),
    );
    return BigInt(res.header.revision);
  }

  async leaseGrant(ttlSeconds: number): Promise<{ id: bigint; ttlSeconds: number }> {
    const res = await this.call('lease grant', (etcd, o) =>
      etcd.leaseClient.leaseGrant({ TTL: ttlSeconds }, o),
    );
    if (res.error) throw new EtcdCallError('?', 'lease grant', res.error, false);
    return { id: BigInt(res.ID), ttlSeconds: Number(res.TTL) };
  }

  async leaseRevoke(id: bigint): Promise<void> {
    await this.call('lease revoke', (etcd, o) =>
      etcd.leaseClient.leaseRevoke({ ID: id.toString() }, o),
    );
  }

  /** Remaining TTL in seconds, or -1 when the lease no longer exists. */
  async leaseTimeToLive(id: bigint): Promise<number> {
    const res = await this.call(
      'lease ttl',
      (etcd, o) => etcd.leaseClient.leaseTimeToLive({ ID: id.toString() }, o),
      undefined,
      true,
    );
    return Number(res.TTL);
  }

  /**
   * One keepalive round trip on a fresh stream, with a deadline. Resolves with the TTL etcd
   * granted (0 or less: the lease is gone). A stream per renewal costs little at our rate
   * (a few per second) and means a late answer can never be mistaken for a newer one.
   */
  async leaseKeepAliveOnce(id: bigint, timeoutMs?: number): Promise<number> {
    return this.call(
      'lease keepalive',
      async (etcd, o) => {
        const stream = (await etcd.leaseClient.leaseKeepAlive(o)) as unknown as Duplex;
        try {
          return await new Promise<number>((resolve, reject) => {
            stream.once('data', (res: RPC.ILeaseKeepAliveResponse) => resolve(Number(res.TTL)));
            stream.once('error', reject);
            stream.once('end', () => reject(new Error('keepalive stream ended')));
            stream.write({ ID: id.toString() });
          });
        } finally {
          stream.removeAllListeners();
          stream.on('error', () => undefined);
          stream.end();
        }
      },
      timeoutMs,
    );
  }

  async memberList(): Promise<MemberInfo[]> {
    return (await this.members()).members;
  }

  /** The members (linearizable: only a member in a quorum answers), with the cluster's id. */
  async members(): Promise<{ members: MemberInfo[] } & Answered> {
    const res = await this.call(
      'member list',
      (etcd, o) => etcd.cluster.memberList({ linearizable: true } as RPC.IMemberListRequest, o),
      undefined,
      true,
    );
    return { members: res.members.map(toMemberInfo), clusterId: BigInt(res.header.cluster_id) };
  }

  /**
   * Adds a member (as a raft learner with `isLearner`). Not idempotent: after an unknown
   * outcome the caller looks for the peer URLs in the member list (src/etcd/resize.ts).
   */
  async memberAdd(
    peerUrls: readonly string[],
    isLearner: boolean,
  ): Promise<{ member: MemberInfo } & Answered> {
    const res = await this.call('member add', (etcd, o) =>
      etcd.cluster.memberAdd({ peerURLs: [...peerUrls], isLearner }, o),
    );
    return { member: toMemberInfo(res.member), clusterId: BigInt(res.header.cluster_id) };
  }

  /** Promotes a learner; etcd refuses one that has not caught up with the leader yet. */
  async memberPromote(idHex: string): Promise<void> {
    await this.call('member promote', (etcd, o) =>
      etcd.cluster.memberPromote({ ID: BigInt(`0x${idHex}`).toString() }, o),
    );
  }

  async memberRemove(idHex: string): Promise<void> {
    await this.call('member remove', (etcd, o) =>
      etcd.cluster.memberRemove({ ID: BigInt(`0x${idHex}`).toString() }, o),
    );
  }

  /** Moves raft leadership; etcd accepts it only on the leader's own endpoint. */
  async moveLeader(endpointIndex: number, targetIdHex: string): Promise<void> {
    await this.onEndpoint(endpointIndex, 'move leader', (etcd, o) =>
      etcd.maintenance.moveLeader({ targetID: BigInt(`0x${targetIdHex}`).toString() }, o),
    );
  }

  /** Status of every configured endpoint; a failed one is reported, not thrown. */
  async statusAll(): Promise<Array<EndpointStatus | { endpoint: string; error: string }>> {
    return Promise.all(
      this.conns.map(async (conn, index) => {
        try {
          const s = await this.onEndpoint(index, 'status', (etcd, o) => etcd.maintenance.status(o));
          return {
            endpoint: conn.endpoint,
            memberId: BigInt(s.header.member_id).toString(16),
            leaderId: BigInt(s.leader).toString(16),
            version: s.version,
            dbSize: BigInt(s.dbSize),
            raftTerm: BigInt(s.raftTerm),
            raftIndex: BigInt(s.raftIndex),
          };
        } catch (err) {
          return { endpoint: conn.endpoint, error: errorMessage(err) };
        }
      }),
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.conns) c.etcd.close();
  }
}
