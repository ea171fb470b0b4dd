import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { once } from 'node:events';
import { MerlinTranscript } from '../../../src/protocols/cometbft/merlin.js';
import {
  deriveSecrets,
  isLowOrderPoint,
  SecretConnection,
  SecretConnectionError,
  SEALED_FRAME_SIZE,
} from '../../../src/chains/cometbft/secret-connection.js';
import { Ed25519Key } from '../../../src/keys/ed25519.js';
import { vectorsDir } from '../../helpers/paths.js';

const ascii = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('Merlin: the published simple and complex transcript vectors', () => {
  const t = new MerlinTranscript('test protocol');
  t.appendMessage('some label', ascii('some data'));
  assert.equal(
    hex(t.challengeBytes('challenge', 32)),
    'd5a21972d0d5fe320c0d263fac7fffb8145aa640af6e9bca177c03c7efcf0615',
  );
  // Crosses the 166-byte STROBE rate many times.
  const u = new MerlinTranscript('test protocol');
  u.appendMessage('step1', ascii('some data'));
  const data = new Uint8Array(1024).fill(0x63);
  let chl: Uint8Array = new Uint8Array();
  for (let i = 0; i < 32; i++) {
    chl = u.challengeBytes('challenge', 32);
    u.appendMessage('bigdata', data);
    u.appendMessage('challengedata', chl);
  }
  assert.equal(hex(chl), 'a8c933f54fae76e3f9bea93648c1308e7dfa2152dd51674ff3ca438351cf003c');
});

test('key derivation matches every shared vector row', () => {
  const file = JSON.parse(
    readFileSync(join(vectorsDir(), 'cometbft', 'secret-connection-derive-keys.json'), 'utf8'),
  ) as {
    rows: Array<{ dh_secret: string; local_is_least: boolean; recv_key: string; send_key: string }>;
  };
  assert.ok(file.rows.length >= 16);
  for (const row of file.rows) {
    const { recvKey, sendKey } = deriveSecrets(
      Buffer.from(row.dh_secret, 'hex'),
      row.local_is_least,
    );
    assert.equal(hex(recvKey), row.recv_key);
    assert.equal(hex(sendKey), row.send_key);
  }
});

test('low-order points are recognised, with or without the top bit', () => {
  assert.ok(isLowOrderPoint(new Uint8Array(32)));
  const one = new Uint8Array(32);
  one[0] = 1;
  one[31] = 0x80;
  assert.ok(isLowOrderPoint(one));
  assert.ok(!isLowOrderPoint(randomBytes(32)));
});

async function pair(
  dialOpts: Parameters<typeof SecretConnection.establish>[2] = {},
  acceptOpts: Parameters<typeof SecretConnection.establish>[2] = {},
) {
  const dialKey = Ed25519Key.fromSeed(randomBytes(32));
  const acceptKey = Ed25519Key.fromSeed(randomBytes(32));
  const server: Server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const accepted = once(server, 'connection').then(([s]) =>
    SecretConnection.establish(s as Socket, acceptKey, { handshakeTimeoutMs: 2000, ...acceptOpts }),
  );
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const dialled = SecretConnection.establish(socket, dialKey, {
    handshakeTimeoutMs: 2000,
    ...dialOpts,
  });
  const [a, b] = await Promise.allSettled([dialled, accepted]);
  server.close();
  return { a, b, dialKey, acceptKey };
}

test('both sides authenticate each other and exchange messages of many frames', async () => {
  const { a, b, dialKey, acceptKey } = await pair();
  assert.equal(a.status, 'fulfilled');
  assert.equal(b.status, 'fulfilled');
  const d = (a as PromiseFulfilledResult<SecretConnection>).value;
  const l = (b as PromiseFulfilledResult<SecretConnection>).value;
  try {
    assert.equal(hex(d.remotePublicKey), acceptKey.publicKeyHex);
    assert.equal(hex(l.remotePublicKey), dialKey.publicKeyHex);
    const big = randomBytes(5000);
    d.writeDelimited(ascii('hello'));
    d.writeDelimited(big);
    l.writeDelimited(ascii('back'));
    assert.equal(hex(await l.readMessage(10_000, 2000)), hex(ascii('hello')));
    assert.equal(hex(await l.readMessage(10_000, 2000)), hex(big));
    assert.equal(hex(await d.readMessage(10_000, 2000)), hex(ascii('back')));
  } finally {
    d.close();
    l.close();
  }
});

test('a wrong authentication signature fails the handshake on the other side', async () => {
  const { a, b } = await pair({
    tamperAuthSignature: (s) => s.map((x, i) => (i === 0 ? x ^ 1 : x)),
  });
  assert.equal(b.status, 'rejected');
  const err = (b as PromiseRejectedResult).reason;
  assert.ok(err instanceof SecretConnectionError);
  assert.equal(err.failure, 'auth');
  if (a.status === 'fulfilled') a.value.close();
});

test('an unexpected remote key is refused', async () => {
  const { a, b } = await pair({ expectedRemoteKey: new Uint8Array(32).fill(7) });
  assert.equal(a.status, 'rejected');
  assert.match(String((a as PromiseRejectedResult).reason), /not the expected key/);
  if (b.status === 'fulfilled') b.value.close();
});

async function rawPeer(behave: (socket: Socket) => void): Promise<SecretConnectionError> {
  const server = createServer(behave);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const socket = connect((server.address() as { port: number }).port, '127.0.0.1');
  await once(socket, 'connect');
  try {
    await SecretConnection.establish(socket, Ed25519Key.fromSeed(randomBytes(32)), {
      handshakeTimeoutMs: 1000,
    });
    assert.fail('handshake should have failed');
  } catch (err) {
    assert.ok(err instanceof SecretConnectionError, String(err));
    return err;
  } finally {
    socket.destroy();
    server.close();
  }
}

test('hostile handshakes end with typed errors', async () => {
  assert.equal(
    (await rawPeer((s) => s.end(Buffer.from('GET / HTTP/1.1\r\n\r\n')))).failure,
    'handshake',
  );
  const zero = Buffer.concat([Buffer.from([0x22, 0x0a, 0x20]), Buffer.alloc(32)]);
  assert.equal((await rawPeer((s) => s.write(zero))).failure, 'low_order_key');
  assert.equal((await rawPeer((s) => s.write(zero.subarray(0, 10)))).failure, 'timeout');
  assert.equal((await rawPeer((s) => s.end(zero.subarray(0, 10)))).failure, 'closed');
  const rnd = Buffer.concat([
    Buffer.from([0x22, 0x0a, 0x20]),
    randomBytes(32),
    randomBytes(SEALED_FRAME_SIZE),
  ]);
  assert.equal((await rawPeer((s) => s.write(rnd))).failure, 'frame');
});

test('after the handshake: replayed, corrupted, oversized and truncated input ends the read', async () => {
  for (const attack of ['replay', 'corrupt', 'oversized', 'truncated'] as const) {
    const { a, b } = await pair();
    const d = (a as PromiseFulfilledResult<SecretConnection>).value;
    const l = (b as PromiseFulfilledResult<SecretConnection>).value;
    try {
      const sent: Buffer[] = [];
      const origWrite = d.socket.write.bind(d.socket);
      (d.socket as unknown as { write: (b: Buffer) => boolean }).write = (buf: Buffer) => {
        sent.push(Buffer.from(buf));
        if (attack === 'corrupt') buf[100]! ^= 1;
        if (attack === 'truncated')
          return origWrite(buf.subarray(0, 500)) && (d.socket.end(), true);
        return origWrite(buf);
      };
      if (attack === 'oversized') d.writeDelimited(new Uint8Array(20_000));
      else d.writeDelimited(ascii('one'));
      if (attack === 'replay') origWrite(sent[0]!);
      const first = await l.readMessage(10_000, 1000).catch((e: unknown) => e);
      if (attack === 'replay') {
        assert.equal(hex(first as Uint8Array), hex(ascii('one')));
        const second = await l.readMessage(10_000, 1000).catch((e: unknown) => e);
        assert.ok(second instanceof SecretConnectionError);
        assert.equal(second.failure, 'frame');
      } else {
        assert.ok(first instanceof SecretConnectionError, `${attack}: ${String(first)}`);
        const expected = { corrupt: 'frame', oversized: 'too_large', truncated: 'closed' }[attack];
        assert.equal(first.failure, expected, attack);
      }
    } finally {
      d.close();
      l.close();
    }
  }
});
