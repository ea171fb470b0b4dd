/**
 * Two agent processes supervise one exclusive role on a real 3-member etcd cluster. The
 * holder is frozen with SIGSTOP past its lease, then resumed. The actions write activation
 * timestamps to a shared file; each process logs the deadline of every renewal it got.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EtcdTestCluster, etcdSkip, sleep } from '../helpers/etcd-cluster.js';
import { readEvents, waitFor } from '../etcd/agent-events.js';

const CHILD = fileURLToPath(new URL('../etcd/agent-child.js', import.meta.url));
const skip = etcdSkip();

describe('exclusive-role supervisor on etcd: a frozen holder', { skip }, () => {
  let cluster: EtcdTestCluster;
  let dir: string;
  const procs = new Map<string, ChildProcess>();

  before(async () => {
    cluster = await EtcdTestCluster.start();
    dir = mkdtempSync(join(tmpdir(), 'vigil-sup-'));
  });
  after(async () => {
    for (const p of procs.values()) {
      if (p.exitCode === null && p.signalCode === null) {
        try {
          process.kill(p.pid!, 'SIGCONT');
          process.kill(p.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    await cluster?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is fenced by etcd when it wakes, and never overlaps its successor', async () => {
    const events = join(dir, 'events.log');
    writeFileSync(events, '');
    const ttlMs = 2000;
    for (const holder of ['A', 'B']) {
      const p = spawn(
        process.execPath,
        [
          CHILD,
          'supervise',
          JSON.stringify({
            store: cluster.storeConfig({ timeouts: { callMs: 400, updateMs: 800 }, retries: 2 }),
            role: 'producer',
            holderId: holder,
            ttlMs,
            eventsFile: events,
            workEveryMs: 100,
          }),
        ],
        { stdio: ['ignore', 'inherit', 'inherit'] },
      );
      procs.set(holder, p);
      // A starts first so it is the first holder; B then campaigns against a held role.
      if (holder === 'A')
        await waitFor('A active', () =>
          readEvents(events).find((l) => l.kind === 'activate' && l.holder === 'A'),
        );
    }
    await waitFor('A doing fenced work', () =>
      readEvents(events).find((l) => l.kind === 'work-ok' && l.holder === 'A'),
    );

    const frozenAt = Date.now();
    process.kill(procs.get('A')!.pid!, 'SIGSTOP');
    const bActivation = await waitFor('B active', () =>
      readEvents(events).find((l) => l.kind === 'activate' && l.holder === 'B'),
    );
    await sleep(300);
    const resumedAt = Date.now();
    process.kill(procs.get('A')!.pid!, 'SIGCONT');
    await waitFor('A deactivated after resuming', () =>
      readEvents(events).find(
        (l) => l.kind === 'deactivate' && l.holder === 'A' && Number(l.fields[1]) >= resumedAt,
      ),
    );
    await waitFor('A fenced after resuming', () =>
      readEvents(events).find(
        (l) => l.kind === 'work-fenced' && l.holder === 'A' && Number(l.fields[1]) >= resumedAt,
      ),
    );
    await sleep(300);

    const log = readEvents(events);
    const tB = Number(bActivation.fields[1]);
    const aToken = BigInt(log.find((l) => l.kind === 'activate' && l.holder === 'A')!.fields[0]!);
    const bToken = BigInt(bActivation.fields[0]!);
    assert.ok(bToken > aToken, 'the successor holds a newer fencing token');
    assert.ok(tB > frozenAt, 'B activated only after A was frozen');

    // No overlap: A's last granted deadline (it would have deactivated by then) ends before
    // B's activation.
    const aDeadlines = log
      .filter((l) => l.kind === 'event' && l.holder === 'A' && l.fields.length >= 4 && l.fields[3])
      .map((l) => Number(l.fields[3]));
    assert.ok(aDeadlines.length > 0);
    const aLastDeadline = Math.max(...aDeadlines.filter((d) => d < tB + 60_000));
    console.log(
      `# frozen at +0, A's last deadline +${aLastDeadline - frozenAt} ms, B active +${tB - frozenAt} ms`,
    );
    assert.ok(
      aLastDeadline < tB,
      `A's deadline ${aLastDeadline} must precede B's activation ${tB}`,
    );

    // Every write A got through was sent before B took over; after waking it was refused by etcd.
    const aOk = log.filter((l) => l.kind === 'work-ok' && l.holder === 'A');
    assert.ok(aOk.length > 0);
    for (const l of aOk) assert.ok(Number(l.fields[1]) < tB, `A wrote at ${l.fields[1]} ≥ ${tB}`);
    assert.ok(
      log.some(
        (l) => l.kind === 'work-fenced' && l.holder === 'A' && BigInt(l.fields[0]!) === aToken,
      ),
    );
    // A activated nothing again while B held the role.
    assert.ok(
      !log.some((l) => l.kind === 'activate' && l.holder === 'A' && Number(l.fields[1]) > tB),
    );
    // And B is doing the work now.
    await waitFor('B working', () =>
      readEvents(events).find((l) => l.kind === 'work-ok' && l.holder === 'B'),
    );
  });
});
