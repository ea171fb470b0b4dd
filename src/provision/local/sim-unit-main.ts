/**
 * The simulated process for one rendered chain unit of a Substrate, Cardano or Decred host
 * (`node sim-unit-main.js <config.json>`), run in the host's namespace: it listens where the
 * rendered unit's flags and configs say the real daemon would (sim-services.ts), answers
 * GET /metrics on the metrics listener, keeps dialling its peers, and writes its status
 * (listeners up, peers connected) to a JSON file every 300 ms.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { SimUnitProcessConfigSchema, type SimUnitStatus } from './sim-unit-config.js';

async function main(configFile: string): Promise<void> {
  const cfg = SimUnitProcessConfigSchema.parse(JSON.parse(readFileSync(configFile, 'utf8')));
  const startedAt = Date.now();
  const sockets = new Set<Socket>();
  const servers: (Server | HttpServer)[] = [];
  for (const l of cfg.listeners) {
    const server = l.http
      ? createHttpServer((_req, res) => {
          res.setHeader('content-type', 'text/plain; version=0.0.4');
          res.end(
            `# HELP vigil_local_unit_up Seconds this simulated ${cfg.unit} has run.\n` +
              `# TYPE vigil_local_unit_up gauge\nvigil_local_unit_up ${(Date.now() - startedAt) / 1000}\n`,
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
    clearInterval(timer);
    for (const s of [...sockets, ...outbound.values()]) s.destroy();
    for (const server of servers) server.close();
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
