/**
 * Hostile "nodes" next to an honest one: each attack must end its connection, get nothing
 * signed, and leave the signer serving the honest node.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { encodePrivvalMessage } from '../../../src/protocols/cometbft/privval.js';
import { SecretConnection } from '../../../src/chains/cometbft/secret-connection.js';
import { CometbftNodeSimulator } from '../../../src/devnet/cometbft-node.js';
import { Ed25519Key } from '../../../src/keys/ed25519.js';
import { CHAIN_ID, makeAgent, tempDir, validatorKey } from './fixtures.js';

type Attack = (socket: Socket) => Promise<void>;

const nodeKey = Ed25519Key.fromSeed(randomBytes(32));
const handshake = (s: Socket, tamper = false) =>
  SecretConnection.establish(s, nodeKey, {
    handshakeTimeoutMs: 2000,
    ...(tamper ? { tamperAuthSignature: (sig: Uint8Array) => sig.map((b) => b ^ 0xff) } : {}),
  });

/** Captures what the connection seals, so it can be truncated or replayed by hand. */
function capture(conn: SecretConnection): { sealed: Buffer[]; raw: (b: Uint8Array) => void } {
  const sealed: Buffer[] = [];
  const socket = conn.socket as unknown as { write: (b: Uint8Array) => boolean };
  const write = socket.write.bind(socket);
  socket.write = (b: Uint8Array) => {
    sealed.push(Buffer.from(b));
    return true;
  };
  return { sealed, raw: (b) => void write(b) };
}

const ping = encodePrivvalMessage({ kind: 'pingRequest' }, 'v0.38');

const attacks: Record<string, Attack> = {
  'bad handshake': async (s) => {
    s.resume(); // read, so the signer's hang-up is noticed
    s.write(randomBytes(100));
  },
  'wrong authentication signature': async (s) => {
    await handshake(s, true).catch(() => undefined);
  },
  'truncated frame': async (s) => {
    const conn = await handshake(s);
    const c = capture(conn);
    conn.writeDelimited(ping);
    c.raw(c.sealed[0]!.subarray(0, 600));
  },
  'oversized frame': async (s) => {
    const conn = await handshake(s);
    conn.writeDelimited(new Uint8Array(64 * 1024));
  },
  'garbage after a valid handshake': async (s) => {
    await handshake(s);
    s.write(randomBytes(1044));
  },
  'replayed frame': async (s) => {
    const conn = await handshake(s);
    const c = capture(conn);
    conn.writeDelimited(ping);
    c.raw(c.sealed[0]!);
    await conn.readMessage(1024, 2000); // the signer answers the genuine ping
    c.raw(c.sealed[0]!);
  },
};

async function hostileNode(
  attack: Attack,
): Promise<{ server: Server; address: string; closed: Promise<void> }> {
  let first = true;
  let closedResolve!: () => void;
  const closed = new Promise<void>((r) => (closedResolve = r));
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    if (!first) {
      socket.destroy(); // later reconnects are not part of the attack
      return;
    }
    first = false;
    socket.on('close', () => closedResolve());
    attack(socket).catch(() => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    address: `tcp://127.0.0.1:${(server.address() as { port: number }).port}`,
    closed,
  };
}

describe('hostile nodes', () => {
  it('each attack drops its connection, signs nothing, and the honest node keeps being served', async () => {
    const dir = tempDir();
    const sim = await CometbftNodeSimulator.start({
      chainId: CHAIN_ID,
      protocol: 'v0.38',
      validatorPublicKey: validatorKey.publicKey,
      blockTimeMs: 10,
    });
    const hostile = await Promise.all(Object.values(attacks).map((a) => hostileNode(a)));
    const agent = makeAgent(dir.path, 'a');
    try {
      // A short idle timeout so the truncated frame is given up on quickly.
      await agent.start([...hostile.map((h) => h.address), sim.address], 'v0.38', 800);
      const names = Object.keys(attacks);
      await Promise.all(
        hostile.map(async (h, i) => {
          let timer: NodeJS.Timeout | undefined;
          try {
            await Promise.race([
              h.closed,
              new Promise((_, rej) => {
                timer = setTimeout(
                  () => rej(new Error(`${names[i]}: the signer kept the connection`)),
                  5000,
                );
              }),
            ]);
          } finally {
            clearTimeout(timer);
          }
        }),
      );
      const reached = sim.completedHeight;
      await sim.waitForHeight(reached + 3n);
      assert.deepEqual(sim.refused, []);
      assert.ok(sim.signed.every((r) => r.verified));
      // Every guard decision belongs to the honest node's requests.
      assert.equal(agent.decisions.length, sim.signed.length + sim.refused.length);
      const honest = agent.signer!.status().find((s) => s.node === sim.address)!;
      assert.equal(honest.connected, true);
      const links = agent.signer!.status().filter((s) => s.node !== sim.address);
      assert.ok(
        links.every((l) => l.lastError !== undefined),
        JSON.stringify(links),
      );
    } finally {
      await agent.close();
      await sim.stop();
      for (const h of hostile) h.server.close();
      dir.remove();
    }
  });
});
