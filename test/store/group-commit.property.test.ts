/**
 * Group commit on SQLite: concurrent decisions for different scopes share one durable
 * transaction. Property: random concurrent requests across scopes never yield two conflicting
 * grants, and no signature is released before its batch has committed — checked the moment each
 * signature is released, through a second, independent connection to the file, which sees only
 * committed data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { comparePositions } from '../../src/guard/position.js';
import { KeyRing } from '../../src/keys/keyring.js';
import { GuardedSigner } from '../../src/signer/guarded-signer.js';
import { LocalWatermarks } from '../../src/signer/local-watermark.js';
import { SqliteWatermarkStore } from '../../src/store/sqlite.js';
import { scopeId } from '../../src/store/types.js';
import { decodeRecord } from '../../src/store/record-codec.js';
import { binding, cometSignBytes, keyFromTag, tempDir } from '../helpers/guard-fixtures.js';

const CHAINS = ['g-0', 'g-1', 'g-2', 'g-3', 'g-4', 'g-5'];
const key = keyFromTag(31);

const request = fc.record({
  chain: fc.constantFrom(...CHAINS),
  height: fc.integer({ min: 1, max: 6 }),
  step: fc.constantFrom('proposal' as const, 'prevote' as const, 'precommit' as const),
  block: fc.integer({ min: 1, max: 3 }),
});

test('concurrent decisions across scopes share commits, never conflict, and release only committed signatures', async () => {
  const { dir, cleanup } = tempDir('vigil-group-');
  let run = 0;
  let batched = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 2, maxLength: 40 }), async (requests) => {
        run++;
        const path = join(dir, `store-${run}.db`);
        const store = SqliteWatermarkStore.open({ path, create: true });
        const local = new LocalWatermarks(join(dir, `local-${run}.db`));
        local.bindStore(store.identity);
        const keys = new KeyRing();
        keys.add({
          id: 'v',
          scopeKeyId: key.publicKeyHex,
          signer: key,
          binding: binding('cometbft', CHAINS),
        });
        const guard = new GuardedSigner({ store, keys, local, agentId: 'prop' });
        const observer = new Database(path, { readonly: true });
        const readCommitted = observer.prepare('SELECT record FROM watermarks WHERE scope = ?');
        const granted = new Map<string, string>();
        try {
          await Promise.all(
            requests.map(async (r) => {
              const payload = cometSignBytes({
                chainId: r.chain,
                height: BigInt(r.height),
                step: r.step,
                block: r.block,
              });
              const result = await guard.sign({ chainId: r.chain, keyId: 'v', payload });
              if (result.outcome === 'refused') return;
              // Released: the covering record must already be visible to another connection.
              const id = scopeId({ chainId: r.chain, keyId: key.publicKeyHex, family: 'cometbft' });
              const row = readCommitted.get(id) as { record: string } | undefined;
              assert.ok(row, `released ${r.chain} ${r.height}/${r.step} before its commit`);
              const committed = decodeRecord(row.record, id);
              const position = result.watermark.position.join('/');
              assert.ok(
                comparePositions(committed.position, result.watermark.position) >= 0,
                `the committed record ${committed.position.join('/')} covers the released ${position}`,
              );
              const slot = `${r.chain} ${position}`;
              const payloadHex = Buffer.from(payload).toString('hex');
              const earlier = granted.get(slot);
              assert.ok(
                earlier === undefined || earlier === payloadHex,
                `two different messages released at ${slot}`,
              );
              granted.set(slot, payloadHex);
            }),
          );
          if (store.commits.decisions > store.commits.transactions) batched++;
        } finally {
          observer.close();
          local.close();
          await store.close();
        }
      }),
      { numRuns: 40 },
    );
    assert.ok(batched > 0, 'concurrent decisions never shared a commit');
  } finally {
    cleanup();
  }
});
