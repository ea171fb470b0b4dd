/**
 * `vigil chaos --local` on a fleet applied beforehand, interrupted with Ctrl-C (SIGINT to its
 * process group, as a terminal sends it) while a validator is lost: the lost host is
 * restarted, every fault healed, the report covers what ran, and the fleet is left up and
 * signing; the destroy afterwards leaves nothing. Needs root, ip, nft, wg, wireguard-go and
 * etcd (see local-chaos-helpers.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { planLocalFaults, type LocalChaosReport } from '../../src/provision/local/chaos.js';
import type { EvidenceLine } from '../../src/provision/local/node-config.js';
import { slowLinksOf } from '../../src/provision/local/delay.js';
import { GUARD, HA, HA_HOSTS, chaosCli, localSkip, withLocalFleet } from './local-chaos-helpers.js';

test(
  'vigil chaos --local on a running fleet: Ctrl-C heals it, restarts a lost host and leaves it up',
  { skip: localSkip(), timeout: 240_000 },
  () =>
    withLocalFleet(HA, { tmpPrefix: 'vgl-lc-', blockTimeMs: 500 }, async (fleet, { state }) => {
      const record = fleet.record;
      const evidence = ['validator-a', 'validator-b'].map((h) =>
        join(record.runDir, h, 'evidence.jsonl'),
      );
      let interruptedAt = 0;
      // A validator lost first: the Ctrl-C comes while it is down, so the abort must restart it.
      const seed = [...Array(200).keys()]
        .map((i) => i + 1)
        .find((s) => {
          const p = planLocalFaults({
            seed: s,
            durationMs: 120_000,
            meanIntervalMs: 1500,
            maxFaultMs: 3000,
            kinds: ['host-loss', 'partition-both', 'slow-link'],
            hosts: HA_HOSTS,
            guardHosts: GUARD,
          });
          return p[0]?.kind === 'host-loss' && p[0].host.startsWith('validator');
        });
      assert.ok(seed !== undefined);
      const run = await chaosCli(
        [
          HA,
          '--state',
          state,
          '--seed',
          String(seed),
          '--duration',
          '120',
          '--interval',
          '1500',
          '--kinds',
          'host-loss,partition-both,slow-link',
          '--json',
        ],
        (stderr, child) => {
          if (interruptedAt === 0 && /host-loss \S+: every process killed/.test(stderr)) {
            interruptedAt = Date.now();
            process.kill(-child.pid!, 'SIGINT');
          }
        },
      );
      const exitedAt = Date.now();
      assert.ok(interruptedAt > 0, run.stderr.slice(-2000));
      assert.equal(run.code, 0, run.stderr.slice(-3000));
      const report = JSON.parse(run.stdout) as LocalChaosReport;
      assert.equal(report.interrupted, true);
      assert.ok(report.durationMs < 60_000, String(report.durationMs));
      assert.equal(report.devnet.equivocations, 0);
      const lost = report.faultLog.find((f) => f.kind === 'host-loss')!;
      assert.ok(lost && (lost.restartMs ?? 0) > 0, JSON.stringify(report.faultLog));
      assert.match(run.stderr, /running fleet, left up/);
      assert.doesNotMatch(run.stderr, /fleet destroyed/);
      // Left up and whole: the record is there, no chaos table, no slow link, and both
      // validator nodes are answered again after chaos exited.
      assert.ok(existsSync(join(state, 'local', 'run.json')));
      for (const h of record.hosts) {
        const tables = spawnSync('ip', ['netns', 'exec', h.netns, 'nft', 'list', 'tables'], {
          encoding: 'utf8',
        }).stdout;
        assert.doesNotMatch(tables, /vigil-chaos/, h.name);
      }
      assert.deepEqual(slowLinksOf(record), []);
      const signedSince = (file: string) =>
        readFileSync(file, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as EvidenceLine)
          .some((e) => e.at > exitedAt && e.signature !== undefined);
      const deadline = Date.now() + 30_000;
      while (!evidence.every(signedSince) && Date.now() < deadline) await sleep(250);
      for (const f of evidence) assert.ok(signedSince(f), `${f}: no signature after chaos`);
    }),
);
