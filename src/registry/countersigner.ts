/**
 * The validator's countersigning loop (issue 15, item 2: "each validator watches the store and
 * adds its countersignature to new records"). One per validator process.
 *
 * It follows the registry in the store:
 *
 * - **etcd**: a watch on `<prefix>registry/records/` on one member, and a re-list of the whole
 *   prefix each time the watch is (re)connected, so nothing committed while it was disconnected
 *   is missed (the watch is created first, the list read after it: together they cover every
 *   revision). A watch that drops or does not connect within `connectMs` is cancelled and
 *   made again on the next member. A re-list every `relistMs` is the backstop.
 * - **SQLite**: its own connection to the registry file, polled every `pollMs` (bounded):
 *   `PRAGMA data_version` says whether another connection committed since the last poll, and
 *   only then is the table read and each row compared with the bytes last seen.
 *
 * For every record version it has not countersigned, in this order: the record decodes
 * (canonical, seq = prevSeq + 1, filed under its own subject); the subject's signature
 * verifies; a flags grant it carries is signed by a quorum of the validator set; it has not
 * expired; this validator never checked another content at this (subject, seq)
 * (REGISTRY_COUNTERSIGN_CONFLICT); its seq is after the last version this validator
 * countersigned for the subject (REGISTRY_SEQ_STALE); its flags are those of that version,
 * unless the version carries a grant for this change (REGISTRY_FLAGS_IMMUTABLE: someone with
 * raw write access to the store cannot change a node's flags with honest validators'
 * countersignatures). Then it writes (subject, seq, sha256(content), flags) to its own local
 * SQLite file (0600, synchronous=FULL, an exclusive lock so a second process cannot share it)
 * *before* countersigning, and countersigns through RegistryStore.countersign with the content
 * it checked, so what it signs is always what it recorded. A refusal is a RegistryError,
 * counted in `vigil_registry_countersign_refusals_total{reason}` and passed to `onRefusal`;
 * the same version is not re-examined (nor re-counted) on every re-list.
 *
 * Validator-set epochs (src/registry/validator-set.ts): it countersigns under the store's
 * current epoch, reads the store's set records every `setPollMs`, and on a new epoch examines
 * every stored record again, so the new set re-countersigns what is stored (a version it
 * already checked is not checked twice: its log row is kept). A key removed from the set
 * countersigns nothing more. A flags grant is accepted from a quorum of any set of the chain:
 * a version committed under an earlier set keeps the grant that set signed.
 *
 * A validator that has no history for a subject (it joined late, or lost its file) takes the
 * flags of the first version it sees. A validator that missed the very version that carried
 * a grant refuses the subject's later versions with the new flags (it cannot tell them from a
 * raw write); the other validators' countersignatures still make the quorum.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Watcher } from 'etcd3';
import { Counter, Gauge, type Registry } from 'prom-client';
import { VigilError, errorMessage } from '../errors.js';
import { verifyEd25519 } from '../keys/ed25519.js';
import { createPrivateFile } from '../store/private-file.js';
import {
  RegistryError,
  decodeRecord,
  encodeRecord,
  subjectMessage,
  verifyFlagsGrantIn,
  type RegistryErrorCode,
  type RegistrySigner,
  type SignedRecord,
} from './record.js';
import { EtcdRegistryCells, registryKey } from './store-etcd.js';
import { SqliteRegistryCells } from './store-sqlite.js';
import type { RegistryStore } from './store.js';

export type RefusalReason =
  'malformed' | 'bad_signature' | 'bad_grant' | 'expired' | 'conflict' | 'stale' | 'flags_changed';

const REASON_OF: Partial<Record<RegistryErrorCode, RefusalReason>> = {
  REGISTRY_RECORD_MALFORMED: 'malformed',
  REGISTRY_RECORD_TOO_LARGE: 'malformed',
  REGISTRY_BAD_SIGNATURE: 'bad_signature',
  REGISTRY_RECORD_EXPIRED: 'expired',
  REGISTRY_COUNTERSIGN_CONFLICT: 'conflict',
  REGISTRY_SEQ_STALE: 'stale',
  REGISTRY_FLAGS_IMMUTABLE: 'flags_changed',
};

export interface CountersignerOptions {
  readonly store: RegistryStore;
  /** This validator's registry key; must be in the store's validator set. */
  readonly signer: RegistrySigner;
  /** The local record of what this validator countersigned (created 0600 if missing). */
  readonly statePath: string;
  /** Metrics go here (never the global registry). */
  readonly metrics: Registry;
  /** SQLite: the poll interval (default 250 ms). */
  readonly pollMs?: number;
  /** How often the store's validator-set records are read (default 1 s). */
  readonly setPollMs?: number;
  /** etcd: the backstop re-list interval (default 30 s). */
  readonly relistMs?: number;
  /** etcd: how long a watch may take to connect before the next member is tried (default 3 s). */
  readonly connectMs?: number;
  /** Pause before a version is tried again after the store did not answer (default 500 ms). */
  readonly retryMs?: number;
  readonly nowMs?: () => number;
  /** Told of each refused version (once per version). */
  readonly onRefusal?: (subject: string, err: RegistryError) => void;
  /** Told of failures of the store or the follow (the loop keeps going). */
  readonly onError?: (err: unknown) => void;
}

/** What this validator countersigned, one row per (subject, seq), never overwritten. */
export class CountersignLog {
  private readonly db: Database.Database;
  private readonly selectAt: Database.Statement<
    [string, bigint],
    { content_sha256: Buffer; flags: number }
  >;
  private readonly selectLast: Database.Statement<
    [string],
    { seq: bigint; content_sha256: Buffer; flags: number }
  >;
  private readonly insert: Database.Statement<[string, bigint, Buffer, number, number]>;

  constructor(readonly path: string) {
    try {
      mkdirSync(dirname(path), { recursive: true });
      createPrivateFile(path);
      this.db = new Database(path, { timeout: 0 });
    } catch (err) {
      throw new VigilError(
        'REGISTRY_COUNTERSIGN_STATE_UNAVAILABLE',
        `cannot open the countersigner's local file ${path}: ${errorMessage(err)}`,
        'the directory must be writable by this user',
        { cause: err },
      );
    }
    try {
      this.db.pragma('locking_mode = EXCLUSIVE');
      this.db.pragma('journal_mode = WAL');
      // The record must be on disk before the countersignature is in the store.
      this.db.pragma('synchronous = FULL');
      this.db.exec(`CREATE TABLE IF NOT EXISTS countersigned (
        subject        TEXT NOT NULL,
        seq            INTEGER NOT NULL,
        content_sha256 BLOB NOT NULL,
        flags          INTEGER NOT NULL,
        at_ms          INTEGER NOT NULL,
        PRIMARY KEY (subject, seq)
      ) STRICT`);
      // The exclusive lock now, so a second countersigner on this file fails at start.
      this.db.exec('BEGIN IMMEDIATE; COMMIT;');
    } catch (err) {
      this.db.close();
      throw new VigilError(
        'REGISTRY_COUNTERSIGN_STATE_UNAVAILABLE',
        `cannot use the countersigner's local file ${path}: ${errorMessage(err)}`,
        'each validator needs its own file; is another countersigner running with this one?',
        { cause: err },
      );
    }
    this.db.defaultSafeIntegers(true);
    this.selectAt = this.db.prepare(
      'SELECT content_sha256, flags FROM countersigned WHERE subject = ? AND seq = ?',
    );
    this.selectLast = this.db.prepare(
      'SELECT seq, content_sha256, flags FROM countersigned WHERE subject = ? ORDER BY seq DESC LIMIT 1',
    );
    this.insert = this.db.prepare(
      'INSERT INTO countersigned (subject, seq, content_sha256, flags, at_ms) VALUES (?, ?, ?, ?, ?)',
    );
  }

  at(subject: string, seq: bigint): { contentSha256: Buffer; flags: number } | undefined {
    const row = this.selectAt.get(subject, seq);
    return row && { contentSha256: row.content_sha256, flags: Number(row.flags) };
  }

  last(subject: string): { seq: bigint; contentSha256: Buffer; flags: number } | undefined {
    const row = this.selectLast.get(subject);
    return row && { seq: row.seq, contentSha256: row.content_sha256, flags: Number(row.flags) };
  }

  record(subject: string, seq: bigint, contentSha256: Buffer, flags: number, atMs: number): void {
    this.insert.run(subject, seq, contentSha256, flags, atMs);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();
const eq = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export class Countersigner {
  private readonly log: CountersignLog;
  private readonly nowMs: () => number;
  private readonly pending = new Map<string, Uint8Array>();
  /** Bytes last seen per subject: a follow enqueues only what changed. */
  private readonly seen = new Map<string, Buffer>();
  /** The version (record without countersignatures) last settled per subject. */
  private readonly settled = new Map<string, string>();
  private draining: Promise<void> | undefined;
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopFollow: (() => Promise<void>) | undefined;
  private readonly countersigned: Counter;
  private readonly refusals: Counter<'reason'>;
  private readonly relists: Counter;
  private readonly watching: Gauge;
  private readonly epochChanges: Counter;
  private examinedEpoch: bigint;

  constructor(private readonly options: CountersignerOptions) {
    const { store, signer } = options;
    if (!store.validators.members.some((m) => eq(m, signer.publicKey)))
      throw new RegistryError(
        'REGISTRY_UNKNOWN_SIGNER',
        `key ${Buffer.from(signer.publicKey).toString('hex')} is not in the registry's validator set`,
        'a countersigner runs with one of the configured validators’ keys',
      );
    this.nowMs = options.nowMs ?? Date.now;
    this.examinedEpoch = store.chain.head.epoch;
    const registers = [options.metrics];
    this.countersigned = new Counter({
      name: 'vigil_registry_countersignatures_total',
      help: 'Record versions this validator countersigned.',
      registers,
    });
    this.refusals = new Counter({
      name: 'vigil_registry_countersign_refusals_total',
      help: 'Record versions this validator refused to countersign, by reason (conflict: another content at a (subject, seq) it already countersigned; flags_changed: flags changed without a quorum grant; stale, malformed, bad_signature, bad_grant, expired).',
      labelNames: ['reason'],
      registers,
    });
    this.relists = new Counter({
      name: 'vigil_registry_follow_relists_total',
      help: 'Full reads of the registry by the countersigner (each etcd watch (re)connection, the backstop, SQLite changes).',
      registers,
    });
    this.watching = new Gauge({
      name: 'vigil_registry_follow_connected',
      help: '1 while the countersigner follows the store (etcd: its watch is connected).',
      registers,
    });
    this.epochChanges = new Counter({
      name: 'vigil_registry_epoch_changes_total',
      help: 'Validator-set epochs this countersigner moved to (each re-examines every record).',
      registers,
    });
    this.log = new CountersignLog(options.statePath);
  }

  /**
   * Reads the store's validator-set records; on a new epoch, every record is examined again,
   * so the new set's members countersign what is stored under the new epoch (re-attestation:
   * no record is left with only the old set's countersignatures).
   */
  private async refreshSets(): Promise<void> {
    if (this.stopped) return;
    try {
      // The store's chain is shared with the publisher, which may have read the new epoch
      // first: compare with the epoch this loop last examined the records under.
      const after = await this.options.store.refreshSets();
      if (after === this.examinedEpoch) return;
      this.examinedEpoch = after;
      this.epochChanges.inc();
      this.seen.clear();
      this.settled.clear();
      await this.relist();
    } catch (err) {
      this.error(err);
    }
  }

  /** Starts following the store. */
  start(): void {
    const setPoll = () => {
      void this.refreshSets().finally(() => this.later(this.options.setPollMs ?? 1000, setPoll));
    };
    this.later(this.options.setPollMs ?? 1000, setPoll);
    const cells = this.options.store.cells;
    if (cells instanceof SqliteRegistryCells) this.stopFollow = this.followSqlite(cells);
    else if (cells instanceof EtcdRegistryCells) this.stopFollow = this.followEtcd(cells);
    else throw new Error(`no countersigner follow for registry engine ${cells.engine}`);
  }

  /** Stops following, lets the version in hand finish, and closes the local file. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.stopFollow?.();
    await this.draining;
    this.watching.set(0);
    this.log.close();
  }

  private later(ms: number, fn: () => void): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, ms);
    this.timers.add(t);
  }

  private error(err: unknown): void {
    this.options.onError?.(err);
  }

  /** A subject's stored bytes, as the follow saw them. */
  private offer(subject: string, bytes: Uint8Array): void {
    const b = Buffer.from(bytes);
    if (this.seen.get(subject)?.equals(b)) return;
    this.seen.set(subject, b);
    this.pending.set(subject, b);
    this.kick();
  }

  private async relist(): Promise<void> {
    this.relists.inc();
    const rows = await this.options.store.cells.list();
    for (const r of rows) this.offer(r.subject, r.bytes);
  }

  private kick(): void {
    if (this.draining || this.stopped) return;
    this.draining = (async () => {
      while (this.pending.size > 0 && !this.stopped) {
        const [subject, bytes] = this.pending.entries().next().value as [string, Uint8Array];
        this.pending.delete(subject);
        try {
          await this.handle(subject, bytes);
        } catch (err) {
          this.error(err);
        }
      }
    })().finally(() => {
      this.draining = undefined;
      if (this.pending.size > 0) this.kick();
    });
  }

  /** Tries a version again later, unless a newer one arrived meanwhile. */
  private retry(subject: string, bytes: Uint8Array): void {
    this.later(this.options.retryMs ?? 500, () => {
      if (!this.pending.has(subject) && this.seen.get(subject)?.equals(bytes)) {
        this.pending.set(subject, bytes);
        this.kick();
      }
    });
  }

  private refuse(subject: string, version: string, err: RegistryError): void {
    this.settled.set(subject, version);
    this.refusals.inc({ reason: REASON_OF[err.code] ?? 'bad_grant' });
    this.options.onRefusal?.(subject, err);
  }

  private async handle(subject: string, bytes: Uint8Array): Promise<void> {
    let rec: SignedRecord;
    try {
      rec = decodeRecord(bytes);
      if (rec.peerId !== subject)
        throw new RegistryError(
          'REGISTRY_RECORD_MALFORMED',
          `the record stored under ${subject} is ${rec.peerId}'s`,
        );
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      const version = `raw:${sha256(bytes).toString('hex')}`;
      if (this.settled.get(subject) !== version) this.refuse(subject, version, err);
      return;
    }
    // The version: the record without countersignatures (others' countersigning changes the
    // bytes, not the version), under the epoch it is examined in (a new epoch examines it again).
    const version = `${this.options.store.chain.head.epoch}:${sha256(encodeRecord({ ...rec, countersignatures: [] })).toString('hex')}`;
    if (this.settled.get(subject) === version) return;
    const chain = this.options.store.chain;
    const epoch = chain.head.epoch;
    // Removed from the set by a change: this key countersigns (and records) nothing from then on.
    if (!chain.isMember(this.options.signer.publicKey)) return;
    try {
      this.check(subject, rec);
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      this.refuse(subject, version, err);
      return;
    }
    const mine = rec.countersignatures.some(
      (c) => (c.epoch ?? 0n) === epoch && eq(c.validator, this.options.signer.publicKey),
    );
    if (!mine) {
      try {
        await this.options.store.countersign(subject, rec.seq, this.options.signer, {
          expectContent: rec.contentBytes,
          epoch,
        });
      } catch (err) {
        if (err instanceof RegistryError) {
          // The record moved on, or was replaced since it was read: the follow brings the
          // version now stored (other bytes than these), which is examined on its own.
          if (
            err.code === 'REGISTRY_SEQ_STALE' ||
            err.code === 'REGISTRY_SEQ_CONFLICT' ||
            err.code === 'REGISTRY_COUNTERSIGN_CONFLICT' ||
            err.code === 'REGISTRY_NOT_FOUND' ||
            err.code === 'REGISTRY_RECORD_MALFORMED'
          )
            return;
          // The set changed meanwhile: the refresh re-offers every record under the new epoch.
          if (err.code === 'REGISTRY_EPOCH_STALE' || err.code === 'REGISTRY_UNKNOWN_EPOCH') {
            void this.refreshSets();
            return;
          }
          if (err.code === 'REGISTRY_RECORD_EXPIRED') {
            this.refuse(subject, version, err);
            return;
          }
        }
        this.error(err);
        this.retry(subject, bytes);
        return;
      }
      this.countersigned.inc();
    }
    this.settled.set(subject, version);
  }

  /**
   * Throws the RegistryError of the first check the version fails; otherwise records it in
   * the local file (if not already there) so it may be countersigned.
   */
  private check(subject: string, rec: SignedRecord): void {
    if (
      !verifyEd25519(rec.content.subjectKey, subjectMessage(rec.contentBytes), rec.subjectSignature)
    )
      throw new RegistryError(
        'REGISTRY_BAD_SIGNATURE',
        `${subject}: the subject's signature on seq ${rec.seq} does not verify`,
        'someone wrote to the registry outside Vigil',
      );
    // Any set of the chain: a version committed under an earlier set keeps the grant that set
    // signed, and is re-countersigned after a change (the store itself takes new grants only
    // from the current set).
    if (rec.flagsGrant) verifyFlagsGrantIn(rec.flagsGrant, this.options.store.chain.all());
    const now = this.nowMs();
    if (now >= rec.content.expiresAtMs)
      throw new RegistryError('REGISTRY_RECORD_EXPIRED', `${subject}: seq ${rec.seq} has expired`);
    const hash = sha256(rec.contentBytes);
    const here = this.log.at(subject, rec.seq);
    if (here && !here.contentSha256.equals(hash))
      throw new RegistryError(
        'REGISTRY_COUNTERSIGN_CONFLICT',
        `${subject}: this validator countersigned another content at seq ${rec.seq}; refusing a second one`,
        'someone wrote to the registry outside Vigil',
      );
    const last = this.log.last(subject);
    // Even a version it countersigned once: the store never goes back, so this is a rollback.
    if (last && rec.seq < last.seq)
      throw new RegistryError(
        'REGISTRY_SEQ_STALE',
        `${subject}: seq ${rec.seq} is before seq ${last.seq}, which this validator countersigned`,
        'someone wrote to the registry outside Vigil',
      );
    if (here) return;
    if (last && last.flags !== rec.content.flags && !rec.flagsGrant)
      throw new RegistryError(
        'REGISTRY_FLAGS_IMMUTABLE',
        `${subject}: seq ${rec.seq} has flags ${rec.content.flags}, the version this validator countersigned (seq ${last.seq}) has ${last.flags}, and it carries no flags grant`,
        'flags change only with a grant signed by a quorum of validators',
      );
    this.log.record(subject, rec.seq, hash, rec.content.flags, now);
  }

  // -------------------------------------------------------------------------------------------
  // Following the store

  private followSqlite(cells: SqliteRegistryCells): () => Promise<void> {
    // Its own connection: data_version changes only for other connections' commits.
    const db = new Database(cells.path, { fileMustExist: true });
    const select = db.prepare<[], { subject: string; record: Buffer }>(
      'SELECT subject, record FROM records',
    );
    let lastVersion: number | undefined;
    const poll = () => {
      try {
        const v = db.pragma('data_version', { simple: true }) as number;
        if (v !== lastVersion) {
          lastVersion = v;
          this.relists.inc();
          for (const row of select.all()) this.offer(row.subject, row.record);
        }
        this.watching.set(1);
      } catch (err) {
        this.watching.set(0);
        this.error(err);
      }
      this.later(this.options.pollMs ?? 250, poll);
    };
    poll();
    return async () => {
      db.close();
    };
  }

  private followEtcd(cells: EtcdRegistryCells): () => Promise<void> {
    const client = cells.client;
    const prefix = registryKey(cells.prefix, '');
    let current: Watcher | undefined;
    let wake: (() => void) | undefined;
    const run = async () => {
      for (let n = 0; !this.stopped; n++) {
        const index = n % client.endpoints.length;
        let watcher: Watcher;
        try {
          watcher = await client.onEndpoint(index, `watch ${prefix}*`, async (etcd) =>
            etcd.watch().prefix(prefix).watcher(),
          );
        } catch (err) {
          this.error(err);
          await sleep(200);
          continue;
        }
        if (this.stopped) {
          await cancel(watcher);
          break;
        }
        current = watcher;
        await new Promise<void>((resolve) => {
          wake = resolve;
          const timeout = setTimeout(resolve, this.options.connectMs ?? 3000);
          watcher.on('connected', () => {
            clearTimeout(timeout);
            this.watching.set(1);
            // The watch covers what is committed from now on; the list, read after it,
            // what was committed before (or while disconnected).
            this.relist().catch((err: unknown) => {
              this.error(err);
              resolve();
            });
          });
          watcher.on('put', (kv) => {
            const key = kv.key.toString();
            if (key.startsWith(prefix)) this.offer(key.slice(prefix.length), kv.value);
          });
          watcher.on('disconnected', (err) => {
            this.error(err);
            resolve();
          });
          watcher.on('error', (err) => {
            this.error(err);
            resolve();
          });
        });
        this.watching.set(0);
        current = undefined;
        await cancel(watcher);
        if (!this.stopped) await sleep(100);
      }
    };
    const backstop = () => {
      if (current)
        this.relist().catch((err: unknown) => {
          this.error(err);
        });
      this.later(this.options.relistMs ?? 30_000, backstop);
    };
    this.later(this.options.relistMs ?? 30_000, backstop);
    const loop = run();
    return async () => {
      wake?.();
      await loop;
    };
  }
}

/** Cancels a watch; a cancel that does not complete (the stream is gone) is abandoned. */
async function cancel(w: Watcher): Promise<void> {
  w.removeAllListeners('put');
  w.on('error', () => undefined);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    w.cancel().catch(() => undefined),
    new Promise<void>((r) => {
      timer = setTimeout(r, 1000);
    }),
  ]);
  clearTimeout(timer);
}
