/**
 * An agent-like child process for the cluster tests: a separate process with its own etcd
 * connection, so races and pauses are between real processes, not promises.
 *
 *   node agent-child.js race '<json>'   one guarded slot decision, prints {"outcome": …}
 *
 * Other modes are added by the lease and supervisor tests.
 */
import { createHash } from 'node:crypto';
import { decide, positionOf, type RuleRequest } from '../../src/guard/index.js';
import { openEtcdStore, type EtcdStoreConfigInput } from '../../src/store/etcd.js';

interface RaceArgs {
  store: EtcdStoreConfigInput;
  chainId: string;
  keyId: string;
  slot: string;
  payload: string;
  /** Wall-clock ms at which every racer fires, so they really overlap. */
  startAt: number;
}

async function race(args: RaceArgs): Promise<void> {
  const store = await openEtcdStore(args.store);
  const rule: RuleRequest = {
    family: 'slot',
    slot: BigInt(args.slot),
    payloadHash: new Uint8Array(createHash('sha256').update(args.payload).digest()),
    mode: 'sign',
  };
  // Warm the connection and the cache so the race is on the one-round-trip path.
  await store.get({ chainId: args.chainId, keyId: args.keyId, family: 'slot' });
  await new Promise((r) => setTimeout(r, Math.max(0, args.startAt - Date.now())));
  try {
    const outcome = await store.update(
      { chainId: args.chainId, keyId: args.keyId, family: 'slot' },
      (current) => {
        const d = decide(current, rule);
        return d.outcome === 'grant'
          ? {
              write: {
                family: 'slot',
                position: positionOf(rule),
                payloadHash: rule.payloadHash,
                writer: args.payload,
              },
              result: 'granted',
            }
          : { result: d.outcome === 'replay' ? 'replayed' : `refused:${d.reason}` };
      },
    );
    process.stdout.write(JSON.stringify({ outcome }) + '\n');
  } catch (err) {
    process.stdout.write(JSON.stringify({ outcome: 'error', error: String(err) }) + '\n');
  } finally {
    await store.close();
  }
}

const [mode, json] = process.argv.slice(2);
if (mode === 'race') await race(JSON.parse(json!) as RaceArgs);
else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exitCode = 2;
}
