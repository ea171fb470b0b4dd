/**
 * The simulated process for one rendered chain unit of a Substrate, Cardano or Decred host
 * (`node sim-unit-main.js <config.json>`), run in the host's namespace: it listens where the
 * rendered unit's flags and configs say the real daemon would (sim-services.ts), answers
 * GET /metrics on the metrics listener, keeps dialling its peers, and writes its status
 * (listeners up, peers connected) to a JSON file every 300 ms. A producer (a Polkadot
 * validator, a Cardano block producer, a Decred voting wallet: see ProducerConfigSchema)
 * also produces at every slot on the wall clock and appends what it produced, or was refused,
 * to its evidence file (ProducedLine), which `vigil chaos --local` reads.
 */
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { createServer as createHttpServer, request, type Server as HttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import {
  SimUnitProcessConfigSchema,
  type ProducedLine,
  type SimUnitProcessConfig,
  type SimUnitStatus,
} from './sim-unit-config.js';

type Producer = NonNullable<SimUnitProcessConfig['producer']>;

/** GET /v1/roles on the agent's socket: whether this agent holds `role` now (with its reason). */
function agentHoldsRole(
  socketPath: string,
  role: string,
  timeoutMs: number,
): Promise<string | true> {
  return new Promise((resolve) => {
    const req = request(
      { socketPath, path: '/v1/roles', method: 'GET', timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          try {
            const roles = (JSON.parse(body) as { roles?: { role: string; state: string }[] }).roles;
            const mine = roles?.find((r) => r.role === role);
            resolve(
              mine?.state === 'active' ? true : `role ${role} ${mine?.state ?? 'not supervised'}`,
            );
          } catch {
            resolve(`agent answered ${res.statusCode ?? '?'}`);
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve(`agent unreachable: ${err.message}`));
    req.end();
  });
}

/**
 * Produces at every slot until stopped; returns whether it forges now (Cardano's metric).
 * Waits for each slot's start on the wall clock, so two hosts producing for one key work on
 * the same slot at the same time, and a restarted producer never goes back to a past slot.
 */
function runProducer(
  name: string,
  unit: string,
  p: Producer,
): { forging: () => boolean; stop: () => void } {
  let stopped = false;
  const keysInPlace = () => (p.forgingKeys ?? []).every((f) => existsSync(f));
  // cardano-node reads its forging credentials at start (unless started non-producing) and
  // again on SIGHUP: forging follows the files present at the last of those.
  let forging = p.kind !== 'cardano-forger' || (!p.startsNonProducing && keysInPlace());
  if (p.kind === 'cardano-forger') process.on('SIGHUP', () => (forging = keysInPlace()));
  const write = (slot: bigint, what: { produced: string } | { refused: string }) => {
    const line: ProducedLine = {
      at: Date.now(),
      node: name,
      unit,
      chain: p.chain,
      key: p.key,
      duty: p.kind === 'decred-voter' ? 'vote' : 'block',
      slot: slot.toString(),
      ...what,
    };
    appendFileSync(p.evidenceFile, JSON.stringify(line) + '\n', { mode: 0o600 });
  };
  const sha = (text: string) => createHash('sha256').update(text).digest('hex');
  void (async () => {
    let slot = BigInt(Math.floor(Date.now() / p.slotMs)) + 1n;
    while (!stopped) {
      const due = Number(slot) * p.slotMs;
      while (!stopped && Date.now() < due)
        await new Promise((r) => setTimeout(r, Math.min(due - Date.now(), 100)));
      if (stopped) return;
      if (p.kind === 'substrate-author') {
        // A validator no watchdog supervises authors whenever it runs.
        const answer =
          p.agentSocket === undefined || p.role === undefined
            ? true
            : await agentHoldsRole(p.agentSocket, p.role, Math.max(200, p.slotMs / 2));
        // Each host's block differs (its own extrinsics): two authored at one slot conflict.
        if (answer === true) write(slot, { produced: sha(`block|${p.chain}|${slot}|${name}`) });
        else write(slot, { refused: answer });
      } else if (p.kind === 'cardano-forger') {
        if (forging) write(slot, { produced: sha(`block|${p.chain}|${slot}|${name}`) });
      } else {
        // A vote is the ticket's and the choices': every wallet casting it casts the same one.
        write(slot, { produced: sha(`vote|${p.chain}|${slot}|${p.voteChoices ?? ''}`) });
      }
      // A slow answer skips the slots it outlasted: never two duties for one slot.
      slot = BigInt(Math.max(Number(slot) + 1, Math.floor(Date.now() / p.slotMs) + 1));
    }
  })();
  return { forging: () => forging, stop: () => (stopped = true) };
}

async function main(configFile: string): Promise<void> {
  const cfg = SimUnitProcessConfigSchema.parse(JSON.parse(readFileSync(configFile, 'utf8')));
  const startedAt = Date.now();
  const producer = cfg.producer ? runProducer(cfg.name, cfg.unit, cfg.producer) : undefined;
  // Its SIGHUP handler is in place (runProducer): now the local socket, as cardano-node opens
  // it once started (a socket left by a killed predecessor is replaced).
  const localSocket = cfg.producer?.socketPath;
  const socketServer =
    localSocket === undefined
      ? undefined
      : createServer((s) => {
          // Like cardano-node's mux: held until it reads something it does not speak.
          s.on('error', () => undefined);
          s.once('data', () => s.destroy());
        });
  if (socketServer && localSocket !== undefined) {
    mkdirSync(dirname(localSocket), { recursive: true, mode: 0o700 });
    rmSync(localSocket, { force: true });
    await new Promise<void>((resolve, reject) => {
      socketServer.once('error', reject);
      socketServer.listen(localSocket, () => resolve());
    });
  }
  const forgingMetric =
    cfg.producer?.kind === 'cardano-forger'
      ? () =>
          `# HELP cardano_node_metrics_forging_enabled_int 1 while the simulated node forges.\n` +
          `# TYPE cardano_node_metrics_forging_enabled_int gauge\n` +
          `cardano_node_metrics_forging_enabled_int ${producer!.forging() ? 1 : 0}\n`
      : () => '';
  const sockets = new Set<Socket>();
  const servers: (Server | HttpServer)[] = [];
  for (const l of cfg.listeners) {
    const server = l.http
      ? createHttpServer((_req, res) => {
          res.setHeader('content-type', 'text/plain; version=0.0.4');
          res.end(
            `# HELP vigil_local_unit_up Seconds this simulated ${cfg.unit} has run.\n` +
              `# TYPE vigil_local_unit_up gauge\nvigil_local_unit_up ${(Date.now() - startedAt) / 1000}\n` +
              forgingMetric(),
          );
        })
      : createServer((s) => {
          sockets.add(s);
          s.on('error', () => undefined);
          s.on('close', () => sockets.delete(s));
          s.write(`vigil-local-unit ${cfg.name} ${cfg.unit}\n`);
        });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(l.port, l.bind, () => resolve());
    });
    servers.push(server);
  }

  const outbound = new Map<string, Socket>();
  const dial = () => {
    for (const peer of cfg.peers) {
      if (outbound.has(peer)) continue;
      const i = peer.lastIndexOf(':');
      const s = connect({ host: peer.slice(0, i), port: Number(peer.slice(i + 1)), timeout: 1500 });
      outbound.set(peer, s);
      s.once('connect', () => s.setTimeout(0));
      s.on('timeout', () => s.destroy());
      s.on('error', () => undefined);
      s.on('close', () => {
        if (outbound.get(peer) === s) outbound.delete(peer);
      });
    }
  };
  const status = (): SimUnitStatus => ({
    name: cfg.name,
    unit: cfg.unit,
    pid: process.pid,
    listening: cfg.listeners.map((l) => `${l.bind}:${l.port}`),
    peersConnected: [...outbound.entries()]
      .filter(([, s]) => !s.connecting && !s.destroyed)
      .map(([k]) => k),
    inbound: sockets.size,
  });
  const writeStatus = () => {
    const tmp = `${cfg.statusFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(status()) + '\n');
    renameSync(tmp, cfg.statusFile);
  };
  dial();
  writeStatus();
  const timer = setInterval(() => {
    dial();
    writeStatus();
  }, 300);
  const stop = () => {
    producer?.stop();
    clearInterval(timer);
    for (const s of [...sockets, ...outbound.values()]) s.destroy();
    for (const server of servers) server.close();
    socketServer?.close();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main(process.argv[2] ?? '').catch((err: unknown) => {
  process.stderr.write(
    `simulated unit failed: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
});
