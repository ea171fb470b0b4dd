/**
 * A registry node process from its config file (src/registry/config.ts): what `vigil registry
 * run` starts, and the short-lived nodes `vigil registry submit` and `validators` use.
 */
import './polyfill.js';
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { InputError, VigilError, errorMessage } from '../errors.js';
import { EtcdClient } from '../etcd/client.js';
import { loadEd25519Seed } from '../keys/key-file.js';
import {
  httpUrlOf,
  registryValidatorSet,
  validatorAddresses,
  viewPathOf,
  type RegistryConfig,
} from './config.js';
import type { CurrentSet } from './current-set.js';
import { startRegistryHttp, type RegistryHttp } from './http.js';
import { ed25519FromPeerId, peerIdFromEd25519 } from './peer-id.js';
import { RegistryError, type RecordContent, type ValidatorSet } from './record.js';
import { RegistryPeer, RegistryValidator } from './service.js';
import { EtcdRegistryCells } from './store-etcd.js';
import { SqliteRegistryCells } from './store-sqlite.js';
import { RegistryStore, type RegistryCells } from './store.js';
import type { Submitted } from './submit.js';
import { Ed25519Key } from '../keys/ed25519.js';
import { join } from 'node:path';
import { DiagLogLevel, diag, type DiagLogger } from '@opentelemetry/api';
import type { RenewEvent } from './renew.js';
import { startRegistryTelemetry, type RegistryTelemetry } from './telemetry.js';

/** The OpenTelemetry SDK's own complaints (a failed export, …) into the node's log. */
function otelDiagToPino(logger: Logger): DiagLogger {
  const warn = (message: string, ...args: unknown[]) =>
    logger.warn({ detail: args.map((a) => errorMessage(a)).join('; ') }, `otel: ${message}`);
  const none = () => undefined;
  return { error: warn, warn, info: none, debug: none, verbose: none };
}

/** How often a node dials the bootstrap peers it is not connected to (after a restart, a partition). */
const REDIAL_MS = 5000;

export interface RunningRegistryNode {
  readonly node: RegistryPeer;
  readonly http: RegistryHttp | undefined;
  readonly metrics: Registry;
  stop(): Promise<void>;
}

/** The node's seed, read once (mode-checked), with its peer id. */
function identityOf(c: RegistryConfig): { seed: Uint8Array; peerId: string } {
  const seed = loadEd25519Seed(c.identity.keyFile);
  return { seed, peerId: peerIdFromEd25519(Ed25519Key.fromSeed(seed).publicKey) };
}

/**
 * The config's connection allow-list: the node adds the validators of the current set to it
 * (service.ts), so a validator added by a set change gets in and a removed one no longer does.
 */
function connectionAllowList(c: RegistryConfig): string[] | undefined {
  return c.connectionAllowList ? [...new Set(c.connectionAllowList)] : undefined;
}

/** The registry store a validator writes through: etcd across validators, or SQLite on one host. */
/**
 * A short-lived node with this config's identity, listening nowhere and keeping its view in
 * memory: what `submit` and `validators` dial the network with. The seed is wiped once the
 * node holds its key.
 */
async function transientPeer(c: RegistryConfig, set: ValidatorSet): Promise<RegistryPeer> {
  const { seed } = identityOf(c);
  const allowList = connectionAllowList(c);
  try {
    return await RegistryPeer.start({
      seed,
      listen: [],
      validators: set,
      viewPath: ':memory:',
      metrics: new Registry(),
      ...(allowList ? { allowList } : {}),
    });
  } finally {
    seed.fill(0);
  }
}

export async function openRegistryCells(
  c: RegistryConfig,
  options: { create?: boolean } = {},
): Promise<RegistryCells> {
  const s = c.store;
  if (!s) throw new InputError('this node has no `store`: only validators open the registry store');
  if (s.engine === 'sqlite')
    return new SqliteRegistryCells({
      path: s.path,
      busyTimeoutMs: s.busyTimeoutMs,
      ...(options.create ? { create: true } : {}),
    });
  const client = new EtcdClient({
    endpoints: s.endpoints,
    ...(s.tls ? { tls: s.tls } : {}),
    callTimeoutMs: s.timeouts.callMs,
  });
  try {
    return await EtcdRegistryCells.open(client, {
      prefix: s.prefix,
      retries: s.retries,
      updateMs: s.timeouts.updateMs,
    });
  } catch (err) {
    client.close();
    throw err;
  }
}

/**
 * Creates the registry store a validator config names, once, like `vigil state init`: the
 * SQLite file, or the store identity under the etcd prefix. Answers what it did.
 */
export async function initRegistryStore(c: RegistryConfig): Promise<string> {
  const s = c.store;
  if (!s)
    throw new InputError('a peer has no store to initialise; run this with a validator config');
  if (s.engine === 'sqlite') {
    const cells = new SqliteRegistryCells({ path: s.path, create: true });
    await cells.close();
    return `registry database ${s.path} ready`;
  }
  const { openEtcdStore } = await import('../store/etcd.js');
  const store = await openEtcdStore(s, { create: true });
  try {
    return `etcd store under ${s.prefix} ready: store ${store.identity.storeId}`;
  } finally {
    await store.close();
  }
}

const graceMs = (c: RegistryConfig) => c.validators.epochGraceSeconds * 1000;

/**
 * A validator not in the genesis set (validators.members) may run only if a set change
 * committed in the store made it a member (src/registry/validator-set.ts).
 */
async function checkAddedBySetChange(
  c: RegistryConfig,
  genesis: ValidatorSet,
  peerId: string,
): Promise<void> {
  let epoch: bigint | undefined;
  try {
    const store = new RegistryStore(await openRegistryCells(c), { validators: genesis });
    try {
      epoch = await store.refreshSets();
      if (store.chain.isMember(ed25519FromPeerId(peerId))) return;
    } finally {
      await store.close();
    }
  } catch {
    // No store to read: the genesis set is all there is to go by.
  }
  throw new InputError(
    `this validator's key (peer id ${peerId}) is not in validators.members${epoch !== undefined ? `, nor in the validator set of epoch ${epoch} committed in the store` : ''}`,
    `add it with a set change (\`vigil registry set-propose --add ${peerId}\`, set-sign by a quorum, set-commit), or use role: peer`,
    'REGISTRY_CONFIG',
  );
}

export async function startRegistryNodeFromConfig(
  c: RegistryConfig,
  logger: Logger,
): Promise<RunningRegistryNode> {
  const set = registryValidatorSet(c);
  const { seed, peerId } = identityOf(c);
  const validatorIds = c.validators.members.map((m) => m.peerId);
  if (c.role === 'validator' && !validatorIds.includes(peerId))
    await checkAddedBySetChange(c, set, peerId);
  const metrics = new Registry();
  const allowList = connectionAllowList(c);
  const bootstrap = [
    ...new Set([...c.bootstrap, ...[...validatorAddresses(c).values()].flat()]),
  ].filter((a) => !a.endsWith(`/p2p/${peerId}`));
  // Spans of this node (and of nothing else: one node per process) go to the collector.
  let telemetry: RegistryTelemetry | undefined;
  if (c.telemetry) {
    diag.setLogger(otelDiagToPino(logger), DiagLogLevel.WARN);
    telemetry = startRegistryTelemetry(c.telemetry.otlp, { peerId, role: c.role });
    logger.info({ url: telemetry.url }, 'registry spans exported over OTLP/HTTP');
  }
  const common = {
    seed,
    listen: c.listen,
    bootstrap,
    validators: set,
    epochGraceMs: graceMs(c),
    viewPath: viewPathOf(c),
    metrics,
    ...(allowList ? { allowList } : {}),
    onError: (err: unknown) => logger.debug({ err: errorMessage(err) }, 'registry network error'),
    onDhtPutFailed: (subject: string, err: unknown) =>
      logger.warn({ subject, err: errorMessage(err) }, 'registry DHT put failed'),
    ...(c.record.renew.enabled
      ? {
          renew: {
            at: c.record.renew.at,
            jitter: c.record.renew.jitter,
            lifetimeMs: c.record.lifetimeHours * 3_600_000,
          },
          onRenew: (e: RenewEvent) =>
            e.result === 'renewed'
              ? logger.info(
                  { fromSeq: String(e.fromSeq), seq: String(e.seq) },
                  'own registry record renewed',
                )
              : logger.warn(
                  {
                    result: e.result,
                    fromSeq: String(e.fromSeq),
                    code: e.code,
                    err: e.error,
                    retryInMs: e.retryInMs,
                  },
                  'own registry record not renewed; retrying',
                ),
        }
      : {}),
  };
  let node: RegistryPeer;
  try {
    if (c.role === 'validator') {
      const cells = await openRegistryCells(c);
      try {
        node = await RegistryValidator.start({
          ...common,
          store: new RegistryStore(cells, { validators: set, epochGraceMs: graceMs(c) }),
          countersignStatePath: join(c.dataDir, 'countersigned.db'),
          ...(c.admission.mode === 'allowList'
            ? // The validators of the current set are always admitted, as they may connect.
              { admissionList: c.admission.peers }
            : {}),
          ratePoints: c.rateLimit.submissions,
          rateWindowS: c.rateLimit.windowSeconds,
        });
      } catch (err) {
        await cells.close().catch(() => undefined);
        throw err;
      }
    } else {
      node = await RegistryPeer.start(common);
    }
  } catch (err) {
    await telemetry?.shutdown().catch(() => undefined);
    throw err;
  } finally {
    seed.fill(0);
  }
  let http: RegistryHttp | undefined;
  try {
    if (c.http)
      http = await startRegistryHttp({
        node,
        role: c.role,
        validators: set,
        metrics,
        host: c.http.host,
        port: c.http.port,
      });
  } catch (err) {
    await node.stop().catch(() => undefined);
    await telemetry?.shutdown().catch(() => undefined);
    throw new VigilError(
      'REGISTRY_HTTP_LISTEN',
      `cannot listen on ${c.http!.host}:${c.http!.port}: ${errorMessage(err)}`,
      'choose another http.port, or stop what holds it',
    );
  }
  // Reconnect to bootstrap peers we lost (they restarted, or a partition healed): the sync on
  // connect (distribution.ts) then brings either side up to date. Bounded: one dial each.
  // The validators of the current set too, at their records' addresses (one added by a set
  // change is in no bootstrap list); a validator removed by one is not redialled.
  const redial = setInterval(() => {
    const connected = new Set(node.node.getPeers().map(String));
    const removed = new Set(node.currentSet().removed);
    void node.dialValidators();
    for (const a of bootstrap) {
      const id = a.slice(a.lastIndexOf('/p2p/') + 5);
      if (connected.has(id) || removed.has(id)) continue;
      node.node
        .dial(multiaddr(a), { signal: AbortSignal.timeout(REDIAL_MS) })
        .catch((err) =>
          logger.debug({ peer: id, err: errorMessage(err) }, 'bootstrap dial failed'),
        );
    }
  }, REDIAL_MS);
  redial.unref();
  return {
    node,
    http,
    metrics,
    stop: async () => {
      clearInterval(redial);
      await http?.close();
      try {
        await node.stop();
      } finally {
        // After the node: its last spans are in the batch this exports.
        await telemetry
          ?.shutdown()
          .catch((err) =>
            logger.warn({ err: errorMessage(err) }, 'registry spans: the last export failed'),
          );
      }
    },
  };
}

/** Where a short-lived node learned the current validator set from. */
export type SetSource = 'http' | 'network' | 'config';

/**
 * The set records the node's own HTTP listener serves (`/registry/validators`), when the config
 * has one and the node answers; none otherwise. They are verified by whoever takes them.
 */
async function setRecordsFromHttp(c: RegistryConfig): Promise<Uint8Array[]> {
  const url = httpUrlOf(c);
  if (!url) return [];
  try {
    const res = await fetch(`${url}/registry/validators`, { signal: AbortSignal.timeout(3000) });
    if (!res.ok) return [];
    const body = (await res.json()) as { setRecords?: unknown };
    if (!Array.isArray(body.setRecords)) return [];
    return body.setRecords
      .filter((h): h is string => typeof h === 'string' && /^(?:[0-9a-f]{2})+$/.test(h))
      .map((h) => new Uint8Array(Buffer.from(h, 'hex')));
  } catch {
    return [];
  }
}

/**
 * Brings a short-lived node's chain of validator sets up to date: the set records of the
 * node's own running process (its HTTP listener, if configured), then a view exchange with
 * the first of the current validators, the configured ones and the bootstrap peers that
 * answers (sets come first on that stream). Every set record is verified against the chain
 * from the config's genesis set, whoever sent it. Answers the source of the newest epoch.
 */
async function learnCurrentSet(
  peer: RegistryPeer,
  c: RegistryConfig,
  targets: readonly string[],
): Promise<SetSource> {
  for (const bytes of await setRecordsFromHttp(c)) peer.distribution.accept(bytes, 'sync');
  const fromHttp = peer.currentSet().epoch;
  const synced = await syncFromAny(peer, [
    ...new Set([...peer.validatorTargets(), ...targets, ...c.bootstrap]),
  ]);
  if (peer.currentSet().epoch > fromHttp) return 'network';
  if (fromHttp > 0n) return 'http';
  return synced ? 'network' : 'config';
}

/**
 * Where to submit to: the current validators (connected first, else at their records'
 * addresses), then the configured addresses of those still in the set.
 */
function currentTargets(peer: RegistryPeer, c: RegistryConfig): string[] {
  const current = new Set(peer.currentSet().members);
  const configured = [...validatorAddresses(c)]
    .filter(([id]) => current.has(id))
    .flatMap(([, addrs]) => addrs);
  return [...new Set([...peer.validatorTargets(), ...configured])];
}

export interface SubmitOwnOptions {
  readonly role?: string;
  readonly capabilities?: readonly string[];
  readonly addresses?: readonly string[];
  /** Give up (REGISTRY_UNAVAILABLE or the last refusal) after this long. */
  readonly timeoutMs?: number;
  readonly nowMs?: () => number;
}

export interface SubmittedOwn extends Submitted {
  readonly peerId: string;
  readonly prevSeq: bigint;
  /** The validator-set epoch the submitting node knew. */
  readonly epoch: bigint;
}

/**
 * Builds this node's self-signed record from its config (and the overrides) on top of the
 * version the validators hold, and submits it to the first validator that answers. A
 * short-lived libp2p node with the node's identity does it: it reads the current version by
 * syncing a validator's view (so `prevSeq` is right and the flags are kept), then submits.
 * A REGISTRY_SEQ_STALE answer means the validators' views lag a commit: it syncs and tries
 * again, within `timeoutMs`.
 */
export async function submitOwnRecord(
  c: RegistryConfig,
  o: SubmitOwnOptions = {},
): Promise<SubmittedOwn> {
  const set = registryValidatorSet(c);
  const targets = [...validatorAddresses(c).values()].flat();
  if (targets.length === 0)
    throw new InputError(
      'no validator address to submit to',
      'add bootstrap entries ending /p2p/<validator peer id>, or validators.members[].addresses',
      'REGISTRY_CONFIG',
    );
  const nowMs = o.nowMs ?? Date.now;
  const peer = await transientPeer(c, set);
  const peerId = peer.peerId;
  const giveUpAt = Date.now() + (o.timeoutMs ?? 15_000);
  try {
    await learnCurrentSet(peer, c, targets);
    let last: unknown;
    for (let attempt = 0; Date.now() < giveUpAt; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 100 * 2 ** attempt)));
      await syncFromAny(peer, currentTargets(peer, c));
      const cur = peer.view.get(peerId)?.record;
      const now = nowMs();
      const content: RecordContent = {
        subjectKey: peer.key.publicKey,
        prevSeq: cur?.seq ?? 0n,
        issuedAtMs: now,
        expiresAtMs: now + c.record.lifetimeHours * 3_600_000,
        flags: cur?.content.flags ?? c.record.flags,
        role: o.role ?? c.record.role,
        capabilities: [...new Set(o.capabilities ?? c.record.capabilities)].sort(),
        addresses: [...new Set(o.addresses ?? c.record.addresses)],
      };
      try {
        const r = await peer.submitOwn(content, currentTargets(peer, c));
        return { ...r, peerId, prevSeq: content.prevSeq, epoch: peer.currentSet().epoch };
      } catch (err) {
        last = err;
        const code = (err as { code?: string }).code;
        if (code !== 'REGISTRY_SEQ_STALE' && code !== 'REGISTRY_UNAVAILABLE') throw err;
      }
    }
    throw last instanceof Error
      ? last
      : new RegistryError('REGISTRY_UNAVAILABLE', 'no validator answered in time');
  } finally {
    await peer.stop().catch(() => undefined);
  }
}

/**
 * Syncs the view from the first target (a multiaddr, or the peer id of a connected or known
 * peer) that can be dialled; answers whether one was.
 */
async function syncFromAny(peer: RegistryPeer, targets: readonly string[]): Promise<boolean> {
  for (const a of targets) {
    try {
      const target = a.startsWith('/') ? multiaddr(a) : peerIdFromString(a);
      const conn = await peer.node.dial(target, { signal: AbortSignal.timeout(3000) });
      await peer.distribution.syncWith(conn.remotePeer);
      return true;
    } catch {
      // the next one
    }
  }
  return false;
}

export interface ValidatorReach {
  readonly peerId: string;
  readonly addresses: readonly string[];
  readonly reachable: boolean;
  readonly rttMs?: number;
  readonly address?: string;
  readonly error?: string;
}

/**
 * Learns the current validator set (learnCurrentSet) and dials and pings each of its members
 * from a short-lived node with this node's identity: at its configured addresses (a genesis
 * validator) and those of its own record.
 */
export async function probeValidators(
  c: RegistryConfig,
  options: { timeoutMs?: number } = {},
): Promise<{ set: CurrentSet; source: SetSource; validators: ValidatorReach[] }> {
  const addrs = validatorAddresses(c);
  const peer = await transientPeer(c, registryValidatorSet(c));
  try {
    const source = await learnCurrentSet(peer, c, [...addrs.values()].flat());
    const set = peer.currentSet();
    // The configured order for genesis validators still in the set, then the added ones.
    const members = [
      ...c.validators.members.map((m) => m.peerId).filter((id) => set.members.includes(id)),
      ...set.added,
    ];
    const validators = await Promise.all(
      members.map(async (id): Promise<ValidatorReach> => {
        const m = { peerId: id };
        const own = (peer.view.get(id)?.record.content.addresses ?? []).map((a) =>
          a.includes('/p2p/') ? a : `${a}/p2p/${id}`,
        );
        const list = [...new Set([...(addrs.get(id) ?? []), ...own])];
        let error = list.length === 0 ? 'no address configured' : 'not reached';
        for (const a of list) {
          try {
            const signal = AbortSignal.timeout(options.timeoutMs ?? 3000);
            await peer.node.dial(multiaddr(a), { signal });
            const rttMs = await peer.node.services.ping.ping(peerIdFromString(m.peerId), {
              signal,
            });
            return { peerId: m.peerId, addresses: list, reachable: true, rttMs, address: a };
          } catch (err) {
            error = errorMessage(err);
          }
        }
        return { peerId: m.peerId, addresses: list, reachable: false, error };
      }),
    );
    return { set, source, validators };
  } finally {
    await peer.stop().catch(() => undefined);
  }
}
