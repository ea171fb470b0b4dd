/**
 * `vigil state import|show|export`: move a validator's last-signed state between Vigil's store
 * and the state files of CometBFT's FilePV, tmkms and Horcrux, in both directions, without ever
 * letting a watermark go backwards by accident.
 *
 * `vigil state init` creates a store (the only way one comes into being) and `vigil state adopt`
 * acknowledges, for a stopped agent, that the store it now reaches is the true one.
 */
import {
  closeSync,
  constants,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Command, Option } from 'commander';
import { InputError, StoreIdentityError, VigilError, errorMessage } from '../errors.js';
import type { AgentConfig } from '../agent/config.js';
import type { EtcdWatermarkStore } from '../store/etcd.js';
import type { KeyRing } from '../keys/keyring.js';
import { comparePositions, formatPosition } from '../guard/position.js';
import type { Watermark } from '../guard/watermark.js';
import type { StoreIdentity, WatermarkScope, WatermarkStore } from '../store/types.js';
import type { StoreConfig } from '../agent/config.js';
import { STATE_FORMATS, type StateFormat } from '../migration/state-formats.js';
import {
  planImport,
  positionOfState,
  stateFromWatermark,
  watermarkFromState,
  type ImportPlan,
} from '../migration/import-plan.js';
import { configOption, resolveConfigPath } from './config-location.js';

const IMPORT_WRITER = 'vigil state import';

/*
 * The store engines (SQLite, etcd over gRPC), the config schemas and the state file parsers
 * are loaded when a state command runs, not at every `vigil` start (see bench/startup.ts).
 * Each action awaits loadDeps() first; the bindings below are set once it resolves.
 */
let loadAgentConfig: typeof import('../agent/config.js').loadAgentConfig;
let loadKeyRing: typeof import('../agent/keys.js').loadKeyRing;
let initStore: typeof import('../agent/store.js').initStore;
let openStore: typeof import('../agent/store.js').openStore;
let LocalWatermarks: typeof import('../signer/local-watermark.js').LocalWatermarks;
let verifyEd25519: typeof import('../keys/ed25519.js').verifyEd25519;
let StateFileError: typeof import('../migration/priv-validator-state.js').StateFileError;
let checkSignBytesMatch: typeof import('../migration/priv-validator-state.js').checkSignBytesMatch;
let parseStateFile: typeof import('../migration/priv-validator-state.js').parseStateFile;
let renderStateFile: typeof import('../migration/priv-validator-state.js').renderStateFile;
let stepName: typeof import('../migration/priv-validator-state.js').stepName;

async function loadDeps(): Promise<void> {
  const [config, keys, store, local, ed25519, states] = await Promise.all([
    import('../agent/config.js'),
    import('../agent/keys.js'),
    import('../agent/store.js'),
    import('../signer/local-watermark.js'),
    import('../keys/ed25519.js'),
    import('../migration/priv-validator-state.js'),
  ]);
  ({ loadAgentConfig } = config);
  ({ loadKeyRing } = keys);
  ({ initStore, openStore } = store);
  ({ LocalWatermarks } = local);
  ({ verifyEd25519 } = ed25519);
  ({ StateFileError, checkSignBytesMatch, parseStateFile, renderStateFile, stepName } = states);
}

function formatOption(description: string): Option {
  return new Option('--format <format>', description).choices([...STATE_FORMATS]);
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read ${file}: ${errorMessage(err)}`);
  }
}

function resolveKey(ring: KeyRing, key: string): string {
  const known = ring.resolve(key);
  if (!known) {
    const ids = ring.all().map((k) => k.id);
    throw new InputError(
      `key ${JSON.stringify(key)} is not configured in this agent`,
      ids.length > 0 ? `configured keys: ${ids.join(', ')}` : 'the config lists no keys',
      'UNKNOWN_KEY',
    );
  }
  return known.scopeKeyId;
}

async function withStore<T>(config: AgentConfig, use: (store: WatermarkStore) => Promise<T>) {
  const store = await openStore(config.store);
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

/** Writes a file the way the signers do: a temp file in the same directory, fsync, rename. */
export function writeFileAtomic0600(path: string, text: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.vigil-${process.pid}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
  const dir = openSync(dirname(path), constants.O_RDONLY);
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

function describe(w: Watermark | undefined): string {
  if (!w) return 'none';
  const step = w.family === 'cometbft' ? ` ${stepName(w.position[2] ?? -1n)}` : '';
  return `${formatPosition(w.position)}${step}${w.signature ? ', signature stored' : ''}`;
}

function importCommand(): Command {
  return new Command('import')
    .description(
      'read a FilePV / tmkms / Horcrux state file into the store as the starting watermark',
    )
    .argument('<file>', 'priv_validator_state.json (FilePV, Horcrux) or tmkms state file')
    .addOption(configOption())
    .requiredOption('--chain-id <id>', 'chain the state belongs to')
    .requiredOption('--key <id|pubkeyhex>', 'configured key id, or its public key in hex')
    .addOption(formatOption('state file format (default: detected)'))
    .option('--force', 'write even if it moves the watermark backwards (dangerous)', false)
    .action(async (file: string, opts) => {
      await loadDeps();
      const config = loadAgentConfig(resolveConfigPath(opts.config));
      const keyId = resolveKey(loadKeyRing(config), opts.key);
      const parsed = parseStateFile(readText(file), file, opts.format as StateFormat | undefined);
      const { state } = parsed;
      checkSignBytesMatch(file, state, opts.chainId);
      if (state.signature && state.signBytes) {
        if (!verifyEd25519(Buffer.from(keyId, 'hex'), state.signBytes, state.signature)) {
          throw new StateFileError(
            file,
            [`its signature was not made by key ${keyId}`],
            'is this the state file of this key? nothing was changed',
          );
        }
      }
      const incoming = watermarkFromState(state, IMPORT_WRITER, Date.now());
      const scope: WatermarkScope = { chainId: opts.chainId, keyId, family: 'cometbft' };
      const plan = await withStore(config, (store) =>
        store.update<ImportPlan>(scope, (current) => {
          const p = planImport(current, incoming, opts.force === true);
          return p.next ? { write: p.next, result: p } : { result: p };
        }),
      );
      const where = `chain ${opts.chainId}, key ${keyId}`;
      if (plan.outcome === 'refused') {
        throw new VigilError(
          'IMPORT_REFUSED',
          `${file} not imported (${where}): ${plan.message}`,
          'nothing was changed; pass --force only if you are sure no signer used the newer state',
        );
      }
      if (plan.outcome === 'forced') {
        process.stderr.write(
          `vigil: WARNING: ${plan.message}\n` +
            `  ${where}\n  before: ${describe(plan.previous)}\n  after:  ${describe(plan.next)}\n`,
        );
      }
      process.stdout.write(
        `imported ${file} (${parsed.layout}) for ${where}: ${plan.message}\n` +
          `  position ${formatPosition(positionOfState(state))} ${stepName(state.step)}` +
          `${state.signature ? ', signature and sign bytes stored' : ''}\n`,
      );
    });
}

interface ShownWatermark {
  family: string;
  chainId: string;
  keyId: string;
  keyNames: string[];
  position: string[];
  step?: string;
  writer?: string;
  updatedAt?: string;
  signatureStored: boolean;
  signBytesStored: boolean;
  payloadHash?: string;
}

/** Where a store config points, for messages. */
function storeLocation(config: StoreConfig): string {
  return config.engine === 'sqlite'
    ? `sqlite ${config.path}`
    : `etcd ${config.endpoints.join(',')} prefix ${config.prefix}`;
}

function describeIdentity(identity: StoreIdentity): string {
  return `store ${identity.storeId} (${identity.engine}, initialised ${identity.createdAt})`;
}

function initCommand(): Command {
  return new Command('init')
    .description(
      'create the watermark store an agent config names, with a new store identity (agents never create one themselves); does nothing to an initialised store',
    )
    .addOption(configOption())
    .option(
      '--adopt-existing',
      'give an identity to a store written by a Vigil from before store identities; only if it holds the latest watermarks',
      false,
    )
    .action(async (opts) => {
      await loadDeps();
      const config = loadAgentConfig(resolveConfigPath(opts.config));
      const where = storeLocation(config.store);
      let store: WatermarkStore;
      let existed = true;
      try {
        store = await openStore(config.store);
      } catch (err) {
        if (!(err instanceof StoreIdentityError)) throw err;
        existed = false;
        store = await initStore(config.store, { adoptExisting: opts.adoptExisting === true });
      }
      try {
        process.stdout.write(
          existed
            ? `${where}: already initialised, ${describeIdentity(store.identity)}; nothing changed\n`
            : `${where}: initialised ${describeIdentity(store.identity)}\n`,
        );
      } finally {
        await store.close();
      }
    });
}

function adoptCommand(): Command {
  return new Command('adopt')
    .description(
      "acknowledge that the store this agent's config names is now the true one (after a replacement or restore); the agent must be stopped",
    )
    .addOption(configOption())
    .requiredOption(
      '--store-id <uuid>',
      'the identity of the store being adopted, as `vigil state show` prints it (proof you looked)',
    )
    .action(async (opts) => {
      await loadDeps();
      const config = loadAgentConfig(resolveConfigPath(opts.config));
      const { identity, cluster } = await withStore(config, async (store) => {
        // etcd: the cluster answering now (a restored cluster keeps the store id, not this).
        if (store.engine !== 'etcd') return { identity: store.identity };
        await store.ping();
        const etcd = store as EtcdWatermarkStore;
        return { identity: store.identity, cluster: etcd.clusterId?.toString(16) };
      });
      if (identity.storeId !== opts.storeId) {
        throw new InputError(
          `the store at ${storeLocation(config.store)} is ${identity.storeId}, not ${String(opts.storeId)}`,
          'nothing was changed; check which store you mean to adopt with `vigil state show`',
        );
      }
      // Fails while the agent runs: it holds this file's exclusive lock.
      const local = new LocalWatermarks(join(config.agent.dataDir, 'local-watermarks.db'));
      try {
        const before = local.boundStore;
        const beforeCluster = local.boundCluster;
        if (before === identity.storeId && (cluster === undefined || beforeCluster === cluster)) {
          process.stdout.write(
            `agent ${config.agent.id} is already bound to ${describeIdentity(identity)}\n`,
          );
          return;
        }
        local.adoptStore(identity, cluster);
        const clusters =
          cluster !== undefined && beforeCluster !== cluster
            ? ` (etcd cluster ${beforeCluster ?? '(none)'} → ${cluster})`
            : '';
        process.stdout.write(
          `agent ${config.agent.id}: local watermark rebound from store ${before ?? '(none)'} to ${describeIdentity(identity)}${clusters}\n` +
            '  its recorded positions stay: the store must hold at least them (vigil state import) before it signs again\n',
        );
      } finally {
        local.close();
      }
    });
}

function showCommand(): Command {
  return new Command('show')
    .description('print the stored watermarks')
    .addOption(configOption())
    .option('--chain-id <id>', 'only this chain')
    .option('--key <id|pubkeyhex>', 'only this key')
    .option('--json', 'print JSON', false)
    .action(async (opts) => {
      await loadDeps();
      const config = loadAgentConfig(resolveConfigPath(opts.config));
      const names = new Map<string, string[]>();
      let ring: KeyRing | undefined;
      try {
        ring = loadKeyRing(config);
        for (const k of ring.all())
          names.set(k.scopeKeyId, [...(names.get(k.scopeKeyId) ?? []), k.id]);
      } catch (err) {
        process.stderr.write(`vigil: note: key names unavailable (${errorMessage(err)})\n`);
      }
      let keyFilter: string | undefined;
      if (opts.key !== undefined) {
        keyFilter = ring?.resolve(opts.key)?.scopeKeyId;
        if (keyFilter === undefined) {
          if (!/^([0-9a-fA-F]{2})+$/.test(opts.key)) {
            throw new InputError(`key ${JSON.stringify(opts.key)} is neither configured nor hex`);
          }
          keyFilter = opts.key.toLowerCase();
        }
      }
      const { identity, all } = await withStore(config, async (store) => ({
        identity: store.identity,
        all: await store.list(),
      }));
      const rows = all.filter(
        ({ scope }) =>
          (opts.chainId === undefined || scope.chainId === opts.chainId) &&
          (keyFilter === undefined || scope.keyId === keyFilter),
      );
      const shown: ShownWatermark[] = rows.map(({ scope, watermark: w }) => ({
        family: scope.family,
        chainId: scope.chainId,
        keyId: scope.keyId,
        keyNames: names.get(scope.keyId) ?? [],
        position: w.position.map(String),
        ...(scope.family === 'cometbft' ? { step: stepName(w.position[2] ?? -1n) } : {}),
        ...(w.writer !== undefined ? { writer: w.writer } : {}),
        ...(w.updatedAtMs !== undefined
          ? { updatedAt: new Date(w.updatedAtMs).toISOString() }
          : {}),
        signatureStored: w.signature !== undefined,
        signBytesStored: w.signBytes !== undefined,
        ...(w.payloadHash ? { payloadHash: Buffer.from(w.payloadHash).toString('hex') } : {}),
      }));
      if (opts.json) {
        process.stdout.write(
          `${JSON.stringify({ store: identity, watermarks: shown }, null, 2)}\n`,
        );
        return;
      }
      process.stdout.write(`${storeLocation(config.store)}: ${describeIdentity(identity)}\n`);
      if (shown.length === 0) {
        process.stdout.write('no watermarks stored\n');
        return;
      }
      for (const s of shown) {
        const name = s.keyNames.length > 0 ? ` (${s.keyNames.join(', ')})` : '';
        process.stdout.write(
          `${s.family} chain=${s.chainId} key=${s.keyId}${name}\n` +
            `  position (${s.position.join(', ')})${s.step ? ` ${s.step}` : ''}\n` +
            `  signature ${s.signatureStored ? 'stored' : 'not stored'}` +
            `${s.signBytesStored ? ', sign bytes stored' : ''}\n` +
            `  written by ${s.writer ?? 'unknown'} at ${s.updatedAt ?? 'unknown time'}\n`,
        );
      }
    });
}

function exportCommand(): Command {
  return new Command('export')
    .description('write the stored watermark as a FilePV / tmkms / Horcrux state file')
    .addOption(configOption())
    .requiredOption('--chain-id <id>', 'chain')
    .requiredOption('--key <id|pubkeyhex>', 'configured key id, or its public key in hex')
    .addOption(formatOption('state file format to write').default('filepv'))
    .option('--out <file>', 'write here (mode 0600) instead of standard output')
    .option('--force', 'overwrite a state file that is ahead of the store', false)
    .action(async (opts) => {
      await loadDeps();
      const config = loadAgentConfig(resolveConfigPath(opts.config));
      const keyId = resolveKey(loadKeyRing(config), opts.key);
      const format = opts.format as StateFormat;
      const scope: WatermarkScope = { chainId: opts.chainId, keyId, family: 'cometbft' };
      const w = await withStore(config, (store) => store.get(scope));
      if (!w) {
        throw new VigilError(
          'NO_WATERMARK',
          `no CometBFT watermark stored for chain ${opts.chainId}, key ${keyId}`,
          'check the chain id and key with `vigil state show`',
        );
      }
      const state = stateFromWatermark(w);
      const text = renderStateFile(state, format);
      if (opts.out === undefined) {
        process.stdout.write(`${text}\n`);
        return;
      }
      guardOverwrite(opts.out, format, text, opts.force === true);
      writeFileAtomic0600(opts.out, text);
      process.stdout.write(
        `wrote ${opts.out} (${format}) at ${formatPosition(w.position)} ${stepName(state.step)}\n`,
      );
    });
}

/**
 * Refuses to replace a state file that records a later position than the one about to be
 * written. Both are read back in the same format, so format-specific rounding (Vigil's step 0
 * written as tmkms' 0) compares like with like.
 */
function guardOverwrite(path: string, format: StateFormat, text: string, force: boolean): void {
  let existing: string;
  try {
    existing = readFileSync(path, 'utf8');
  } catch {
    return; // nothing there yet
  }
  const ours = positionOfState(parseStateFile(text, 'export', format).state);
  let theirs;
  try {
    theirs = positionOfState(parseStateFile(existing, path, format).state);
  } catch (err) {
    if (force) return;
    throw new VigilError(
      'EXPORT_REFUSED',
      `${path} exists and cannot be read as a ${format} state file (${errorMessage(err)})`,
      'move it away first, or pass --force',
    );
  }
  if (comparePositions(theirs, ours) > 0 && !force) {
    throw new VigilError(
      'EXPORT_REFUSED',
      `${path} records ${formatPosition(theirs)}, ahead of the store's ${formatPosition(ours)}; overwriting it would let that signer sign those positions again`,
      'import it first (`vigil state import`), or pass --force',
    );
  }
}

export function stateCommand(): Command {
  return new Command('state')
    .description('initialise the store; import, show and export double-sign watermarks')
    .addCommand(initCommand())
    .addCommand(adoptCommand())
    .addCommand(importCommand())
    .addCommand(showCommand())
    .addCommand(exportCommand());
}
