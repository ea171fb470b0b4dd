/**
 * The delaying UDP relay behind a slow link of a local fleet (see delay.ts), run as its own
 * process in the internet namespace: `node delay-relay-main.js <config.json>`.
 *
 * It binds two UDP sockets on the internet side of the bridge, one that host A sends its
 * WireGuard packets for B to, one that B sends its packets for A to, and forwards each
 * datagram to the other host's real WireGuard endpoint `oneWayMs` after it arrived, in the
 * order it arrived (one FIFO queue per direction, drained by a single timer, so equal delays
 * never reorder). Datagrams from any address other than the expected host are dropped. When
 * a queue holds `maxQueue` datagrams the newest is dropped, as a full router queue drops.
 * Once both sockets are bound it writes their ports to `readyFile` (JSON). It runs at a raised
 * scheduling priority (nice -10) where it may.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { performance } from 'node:perf_hooks';
import { RelayConfigSchema, type RelayReady } from './delay-config.js';

/** One direction of the link: datagrams due at a time, sent in arrival order. */
class DelayQueue {
  private readonly due: number[] = [];
  private readonly packets: Buffer[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  forwarded = 0;
  dropped = 0;

  constructor(
    private readonly delayMs: number,
    private readonly maxQueue: number,
    private readonly send: (packet: Buffer) => void,
  ) {}

  push(packet: Buffer): void {
    if (this.packets.length - this.head >= this.maxQueue) {
      this.dropped++;
      return;
    }
    this.due.push(performance.now() + this.delayMs);
    this.packets.push(packet);
    if (this.timer === undefined) this.arm();
  }

  private arm(): void {
    const next = this.due[this.head];
    if (next === undefined) {
      this.timer = undefined;
      return;
    }
    this.timer = setTimeout(() => this.drain(), Math.max(0, next - performance.now()));
  }

  private drain(): void {
    const now = performance.now();
    // A timer may fire up to a millisecond early or late; within half a millisecond counts as due.
    while (this.head < this.packets.length && this.due[this.head]! <= now + 0.5) {
      this.send(this.packets[this.head]!);
      this.forwarded++;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.packets.length) {
      this.packets.splice(0, this.head);
      this.due.splice(0, this.head);
      this.head = 0;
    }
    this.arm();
  }
}

function bind(socket: Socket, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, address, () => {
      socket.off('error', reject);
      resolve(socket.address().port);
    });
  });
}

async function main(configFile: string): Promise<void> {
  const cfg = RelayConfigSchema.parse(JSON.parse(readFileSync(configFile, 'utf8')));
  // The relay plays the network, which takes no CPU from the hosts: ahead of them in the
  // scheduler, its timers fire on time on a busy machine (root may raise it; else it stays).
  try {
    setPriority(-10);
  } catch {
    // not root: normal priority
  }
  const facingA = createSocket('udp4');
  const facingB = createSocket('udp4');
  // Send errors (a host's WireGuard restarting: ICMP port unreachable) lose that datagram only.
  facingA.on('error', () => undefined);
  facingB.on('error', () => undefined);
  const toB = new DelayQueue(cfg.oneWayMs, cfg.maxQueue, (p) =>
    facingB.send(p, cfg.b.port, cfg.b.address),
  );
  const toA = new DelayQueue(cfg.oneWayMs, cfg.maxQueue, (p) =>
    facingA.send(p, cfg.a.port, cfg.a.address),
  );
  facingA.on('message', (msg, from) => {
    if (from.address === cfg.a.address) toB.push(msg);
  });
  facingB.on('message', (msg, from) => {
    if (from.address === cfg.b.address) toA.push(msg);
  });
  const ready: RelayReady = {
    pid: process.pid,
    portForA: await bind(facingA, cfg.bindAddress),
    portForB: await bind(facingB, cfg.bindAddress),
  };
  const tmp = `${cfg.readyFile}.tmp`;
  writeFileSync(tmp, JSON.stringify(ready) + '\n', { mode: 0o600 });
  renameSync(tmp, cfg.readyFile);
  const stop = () => {
    process.stdout.write(
      `relay stopped: forwarded ${toB.forwarded} A→B, ${toA.forwarded} B→A; dropped ${toB.dropped + toA.dropped} (queue full)\n`,
    );
    facingA.close();
    facingB.close();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main(process.argv[2] ?? '').catch((err: unknown) => {
  process.stderr.write(`delay relay failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
