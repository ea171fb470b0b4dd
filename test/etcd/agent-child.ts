/**
 * An agent-like child process for the cluster tests: a separate process with its own etcd
 * connection, so races and pauses are between real processes, not promises.
 *
 *   node agent-child.js race '<json>'   one guarded slot decision, prints {"outcome": …}
 *
 * Other modes are added by the lease and supervisor tests.
 */
import { Ed25519Key } from '../../src/keys/ed25519.js';
import { KeyRing } from '../../src/keys/keyring.js';
import { binding, grandpaVote } from '../helpers/guard-fixtures.js';
import { GuardedSigner } from '../../src/signer/guarded-signer.js';
import { LocalWatermarks } from '../../src/signer/local-watermark.js';
import { appendFileSync } from 'node:fs';
import { EtcdLeaderElection } from '../../src/lease/etcd.js';
import { LeaseTimingSchema } from '../../src/lease/types.js';
import { openEtcdStore, type EtcdStoreConfigInput } from '../../src/store/etcd.js';
import { FencedError, type FenceToken } from '../../src/store/types.js';
import { startSupervisor } from '../../src/supervisor/supervisor.js';

interface RaceArgs {
  store: EtcdStoreConfigInput;
  chainId: string;
  /** Every racer holds the same key (as HA agents do). */
  seedHex: string;
  slot: string;
  payload: string;
  /** Where this agent keeps its own local watermarks (one file per agent). */
  localPath: string;
  /** Wall-clock ms at which every racer fires, so they really overlap. */
  startAt: number;
}

/** One signing request through the real GuardedSigner on the etcd store. */
async function race(args: RaceArgs): Promise<void> {
  const store = await openEtcdStore(args.store, { create: true });
  const local = new LocalWatermarks(args.localPath);
  local.bindStore(store.identity);
  const key = Ed25519Key.fromSeed(new Uint8Array(Buffer.from(args.seedHex, 'hex')));
  const keys = new KeyRing();
  keys.add({
    id: 'producer',
    scopeKeyId: key.publicKeyHex,
    signer: key,
    binding: binding('grandpa', [args.chainId]),
  });
  const signer = new GuardedSigner({ store, keys, local, agentId: args.payload });
  // Warm the connection and the cache so the race is on the one-round-trip path.
  await store.get({ chainId: args.chainId, keyId: key.publicKeyHex, family: 'grandpa' });
  await new Promise((r) => setTimeout(r, Math.max(0, args.startAt - Date.now())));
  try {
    // Each racer votes for its own target in the same round: conflicting GRANDPA prevotes.
    const r = await signer.sign({
      chainId: args.chainId,
      keyId: 'producer',
      payload: grandpaVote(0n, BigInt(args.slot), 'prevote', args.payload),
    });
    const outcome = r.outcome === 'refused' ? `refused:${r.reason}` : r.outcome;
    const signature =
      r.outcome !== 'refused' && r.signature ? Buffer.from(r.signature).toString('hex') : undefined;
    process.stdout.write(JSON.stringify({ outcome, signature }) + '\n');
  } finally {
    local.close();
    await store.close();
  }
}

interface SuperviseArgs {
  store: EtcdStoreConfigInput;
  role: string;
  holderId: string;
  ttlMs: number;
  /** Shared log: actions append activate/deactivate lines, this process its own events. */
  eventsFile: string;
  workEveryMs: number;
}

/**
 * Runs the supervisor for one role, and a "duty" loop that every `workEveryMs` makes a fenced
 * guarded write with the LAST token it ever held, whatever it currently believes: a deposed
 * holder must be stopped by etcd, not by its own good behaviour.
 */
async function supervise(args: SuperviseArgs): Promise<void> {
  const store = await openEtcdStore(args.store, { create: true });
  const log = (line: string) => appendFileSync(args.eventsFile, line + '\n');
  const timing = LeaseTimingSchema.parse({ ttlMs: args.ttlMs, pollMs: 50, marginMs: 100 });
  const prefix = (store.config.prefix as string) ?? '/vigil/v1/';
  const election = new EtcdLeaderElection(store.client, prefix, args.role, args.holderId, timing);
  const action = (what: string) => ({
    run: [
      'sh',
      '-c',
      `echo "${what} $VIGIL_HOLDER $VIGIL_FENCE_TOKEN $(date +%s%3N)" >> "$EVENTS"`,
    ],
  });
  process.env.EVENTS = args.eventsFile;
  // The fence of the last holding, as the election issued it (revision and cluster id).
  let lastFence: FenceToken | undefined;
  const acquire = election.tryAcquire.bind(election);
  election.tryAcquire = async () => {
    const got = await acquire();
    if (got) lastFence = got.fence;
    return got;
  };
  const supervisor = startSupervisor(
    {
      role: args.role,
      lease: timing,
      renewEveryMs: Math.floor(args.ttlMs / 8),
      deactivateBudgetMs: Math.floor(args.ttlMs / 4),
      activate: [action('activate')],
      deactivate: [action('deactivate')],
    },
    election,
    (e) => {
      const deadline = 'deadlineWallMs' in e ? Math.floor(e.deadlineWallMs) : '';
      log(
        `event ${args.holderId} ${e.type} ${'token' in e ? e.token : ''} ${Date.now()} ${deadline}`,
      );
    },
  );
  let slot = 0n;
  const scope = { chainId: 'duty', keyId: args.role, family: 'slot' as const };
  const timer = setInterval(() => {
    if (lastFence === undefined) return;
    const fence = lastFence;
    const token = fence.token;
    const sentAt = Date.now();
    store
      .update(
        scope,
        (current) => {
          slot = (current?.position[0] ?? 0n) + 1n;
          return {
            write: { family: 'slot', position: [slot], writer: args.holderId },
            result: slot,
          };
        },
        { fence },
      )
      .then(
        () => log(`work-ok ${args.holderId} ${token} ${sentAt}`),
        (err) =>
          log(
            `${err instanceof FencedError ? 'work-fenced' : 'work-error'} ${args.holderId} ${token} ${sentAt}`,
          ),
      );
  }, args.workEveryMs);
  const shutdown = async () => {
    clearInterval(timer);
    await supervisor.stop();
    await store.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown());
  log(`ready ${args.holderId} ${Date.now()}`);
}

const [mode, json] = process.argv.slice(2);
if (mode === 'race') await race(JSON.parse(json!) as RaceArgs);
else if (mode === 'supervise') await supervise(JSON.parse(json!) as SuperviseArgs);
else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exitCode = 2;
}
