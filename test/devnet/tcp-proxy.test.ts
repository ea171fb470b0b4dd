/**
 * Issue 13, item 4: the devnet's TCP proxy as a delaying link (no netem on this kernel). Lower
 * bounds only: a round trip takes at least the two one-way delays; bytes arrive intact and in
 * order, also when the delay is lowered with chunks still queued and when the sender closes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { TcpProxy } from '../../src/devnet/tcp-proxy.js';

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    }),
  );
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Reads exactly `n` bytes from `s` (bounded by a 20 s deadline). */
function readBytes(s: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(() => reject(new Error(`only ${got} of ${n} bytes in 20 s`)), 20_000);
    const onData = (b: Buffer) => {
      parts.push(b);
      got += b.length;
      if (got >= n) {
        clearTimeout(timer);
        s.off('data', onData);
        const all = Buffer.concat(parts);
        if (all.length > n) s.unshift(all.subarray(n));
        resolve(all.subarray(0, n));
      }
    };
    s.on('data', onData);
  });
}

describe('TcpProxy with a delay', () => {
  let echo: Server;
  let echoPort: number;
  const proxies: TcpProxy[] = [];
  const sockets: Socket[] = [];
  before(async () => {
    echo = createServer((s) => {
      sockets.push(s);
      s.pipe(s);
    });
    echoPort = await listen(echo);
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    for (const p of proxies) await p.stop();
    await new Promise((r) => echo.close(r));
  });

  const proxy = async (upstreamMs: number, downstreamMs: number): Promise<TcpProxy> => {
    const p = new TcpProxy(echoPort, '127.0.0.1', undefined, {
      delay: { upstreamMs, downstreamMs },
    });
    proxies.push(p);
    await p.start();
    return p;
  };

  it('makes every round trip take at least the two one-way delays', async () => {
    const p = await proxy(30, 20);
    assert.deepEqual(p.delay, { upstreamMs: 30, downstreamMs: 20 });
    const s = await dial(p.port);
    sockets.push(s);
    for (let i = 0; i < 5; i++) {
      const msg = Buffer.from(`ping ${i}`);
      const t = performance.now();
      s.write(msg);
      const back = await readBytes(s, msg.length);
      const rtt = performance.now() - t;
      assert.deepEqual(back, msg);
      assert.ok(rtt >= 50, `round trip ${i} took ${rtt.toFixed(1)} ms, expected ≥ 50 ms`);
    }
  });

  it('applies a delay changed at run time to an open connection', async () => {
    const p = await proxy(0, 0);
    const s = await dial(p.port);
    sockets.push(s);
    s.write('a');
    await readBytes(s, 1);
    p.setDelay({ upstreamMs: 40, downstreamMs: 40 });
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      s.write('b');
      await readBytes(s, 1);
      const rtt = performance.now() - t;
      assert.ok(rtt >= 80, `round trip took ${rtt.toFixed(1)} ms after setDelay, expected ≥ 80`);
    }
  });

  it('delivers megabytes intact and in order, back-pressure included', async () => {
    const p = await proxy(5, 5);
    const s = await dial(p.port);
    sockets.push(s);
    const data = randomBytes(6 << 20);
    const reading = readBytes(s, data.length);
    for (let off = 0; off < data.length; off += 64 << 10) {
      if (!s.write(data.subarray(off, off + (64 << 10))))
        await new Promise((r) => s.once('drain', r));
    }
    const back = await reading;
    assert.equal(
      createHash('sha256').update(back).digest('hex'),
      createHash('sha256').update(data).digest('hex'),
    );
  });

  it('never lets later chunks overtake queued ones when the delay is lowered', async () => {
    const p = await proxy(60, 0);
    const s = await dial(p.port);
    sockets.push(s);
    const slow = Buffer.alloc(1000, 'A');
    const fast = Buffer.alloc(1000, 'B');
    const reading = readBytes(s, 2000);
    s.write(slow);
    // Let the first chunk reach the proxy before the delay drops.
    await new Promise((r) => setTimeout(r, 10));
    p.setDelay({ upstreamMs: 0, downstreamMs: 0 });
    s.write(fast);
    const back = await reading;
    assert.deepEqual(back, Buffer.concat([slow, fast]));
  });

  it('hands on what is still queued when the sender closes', async () => {
    const received: Buffer[] = [];
    let done!: () => void;
    const ended = new Promise<void>((r) => (done = r));
    const sink = createServer((s) => {
      sockets.push(s);
      s.on('data', (b: Buffer) => received.push(b)).on('end', done);
    });
    const sinkPort = await listen(sink);
    try {
      const p = new TcpProxy(sinkPort, '127.0.0.1', undefined, {
        delay: { upstreamMs: 50, downstreamMs: 0 },
      });
      proxies.push(p);
      await p.start();
      const s = await dial(p.port);
      const data = randomBytes(200_000);
      s.end(data);
      await ended;
      assert.deepEqual(Buffer.concat(received), data);
    } finally {
      await new Promise((r) => sink.close(r));
    }
  });

  it('refuses a negative or non-finite delay', () => {
    assert.throws(
      () => new TcpProxy(1, '127.0.0.1', undefined, { delay: { upstreamMs: -1, downstreamMs: 0 } }),
      RangeError,
    );
    const p = new TcpProxy(1);
    assert.throws(() => p.setDelay({ upstreamMs: 0, downstreamMs: NaN }), RangeError);
    assert.deepEqual(p.delay, { upstreamMs: 0, downstreamMs: 0 });
  });
});
