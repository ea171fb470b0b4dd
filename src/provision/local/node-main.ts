/**
 * A simulated chain node for a local fleet host, run as its own process inside the host's
 * namespace (`node node-main.js <config.json>`). It reads the host's RENDERED CometBFT
 * config.toml and serves what the real node would on the same addresses:
 * - `priv_validator_laddr` (validators): the devnet's privval node simulator, which the
 *   host's Vigil agent dials and which asks it to sign every step of every height;
 * - `p2p.laddr`: a TCP listener, and a dial loop to each of `persistent_peers` (so sentry ↔
 *   validator p2p really crosses the VPN and the firewall);
 * - `instrumentation.prometheus_listen_addr`: a /metrics page.
 * Its progress goes to a status file (JSON) that `vigil apply --local` and the tests read.
 *
 * Heights follow the wall clock (height H starts at H × block time, as in the devnet's
 * networks): a node restarted after a host loss never asks for a height a watermark has
 * passed, and the nodes of several hosts that share a validator key ask for each height at
 * the same time, each proposing a block of its own, as the proposers of a real network do.
 * Every answer is appended to the evidence file, which `vigil chaos --local` reads.
 */
import { appendFileSync, writeFileSync, readFileSync, renameSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { parse as parseToml } from 'smol-toml';
import {
  NodeProcessConfigSchema,
  RenderedNodeConfigSchema,
  hostPort,
  RenderedAppConfigSchema,
  type EvidenceLine,
  type NodeStatus,
} from './node-config.js';
import { CometbftNodeSimulator } from '../../devnet/cometbft-node.js';

async function main(configFile: string): Promise<void> {
  const cfg = NodeProcessConfigSchema.parse(JSON.parse(readFileSync(configFile, 'utf8')));
  const rendered = RenderedNodeConfigSchema.parse(parseToml(readFileSync(cfg.configToml, 'utf8')));

  let sim: CometbftNodeSimulator | undefined;
  let stopping = false;
  if (rendered.priv_validator_laddr) {
    const [host, port] = hostPort(rendered.priv_validator_laddr);
    const blockMs = Math.max(1, cfg.blockTimeMs);
    const stepOffset = { proposal: 0, prevote: 1 / 3, precommit: 2 / 3 };
    const evidence = (line: Omit<EvidenceLine, 'at' | 'node' | 'chainId' | 'publicKey'>) => {
      if (cfg.evidenceFile === undefined) return;
      const full: EvidenceLine = {
        at: Date.now(),
        node: cfg.name,
        chainId: cfg.chainId,
        publicKey: cfg.validatorPublicKeyHex ?? '',
        ...line,
      };
      appendFileSync(cfg.evidenceFile, JSON.stringify(full) + '\n', { mode: 0o600 });
    };
    sim = await CometbftNodeSimulator.start({
      chainId: cfg.chainId,
      protocol: 'v0.38',
      host,
      port,
      name: cfg.name,
      startHeight: BigInt(Math.floor(Date.now() / blockMs)) + 1n,
      // Paced by beforeStep on the wall clock, not by a pause between heights.
      blockTimeMs: 0,
      conflictingProposals: true,
      beforeStep: async (height, step) => {
        const due = Number(height) * blockMs + Math.round(stepOffset[step] * blockMs);
        while (!stopping && Date.now() < due)
          await new Promise((r) => setTimeout(r, Math.min(due - Date.now(), 100)));
      },
      // A signer that cannot reach its guard holds the request: give up on that link within
      // a block or a second, whichever is longer, and ask again on the next link.
      requestTimeoutMs: Math.max(1000, blockMs),
      onRecord: (r) =>
        evidence({
          step: r.step,
          height: r.height.toString(),
          round: r.round.toString(),
          ...('signature' in r
            ? {
                signBytes: Buffer.from(r.signBytes).toString('hex'),
                signature: Buffer.from(r.signature).toString('hex'),
              }
            : { refused: r.error.description }),
        }),
      ...(cfg.validatorPublicKeyHex
        ? { validatorPublicKey: Buffer.from(cfg.validatorPublicKeyHex, 'hex') }
        : {}),
    });
  }

  const inbound = new Set<Socket>();
  const [p2pHost, p2pPort] = hostPort(rendered.p2p.laddr);
  const p2p = createServer((s) => {
    inbound.add(s);
    s.on('error', () => undefined);
    s.on('close', () => inbound.delete(s));
    s.write(`vigil-local-node ${cfg.name}\n`);
  });
  p2p.listen(p2pPort, p2pHost);

  const outbound = new Map<string, Socket>();
  const peers = rendered.p2p.persistent_peers
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const dialPeers = () => {
    for (const peer of peers) {
      const [h, p] = hostPort(peer);
      const key = `${h}:${p}`;
      if (outbound.has(key)) continue;
      const s = connect({ host: h, port: p, timeout: 1500 });
      outbound.set(key, s);
      let open = false;
      s.once('connect', () => {
        open = true;
        s.setTimeout(0);
      });
      s.on('timeout', () => s.destroy());
      s.on('error', () => undefined);
      s.on('close', () => {
        if (outbound.get(key) === s) outbound.delete(key);
        void open;
      });
    }
  };
  const connectedPeers = () =>
    [...outbound.entries()].filter(([, s]) => !s.connecting && !s.destroyed).map(([k]) => k);

  const status = (): NodeStatus => ({
    name: cfg.name,
    privval: sim !== undefined,
    completedHeight: (sim?.completedHeight ?? 0n).toString(),
    signed: sim?.signed.length ?? 0,
    verified: sim?.signed.filter((r) => r.verified).length ?? 0,
    refused: sim?.refused.length ?? 0,
    connectedSigners: sim?.connectedSigners ?? 0,
    peersConnected: connectedPeers(),
    inboundPeers: inbound.size,
  });

  const metricsAddr = rendered.instrumentation.prometheus_listen_addr;
  const metrics = createHttpServer((_req, res) => {
    const s = status();
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    res.end(
      [
        '# HELP vigil_local_node_height Highest height whose every step was answered.',
        '# TYPE vigil_local_node_height gauge',
        `vigil_local_node_height ${s.completedHeight}`,
        '# HELP vigil_local_node_peers Open p2p connections to persistent peers.',
        '# TYPE vigil_local_node_peers gauge',
        `vigil_local_node_peers ${s.peersConnected.length}`,
        '',
      ].join('\n'),
    );
  });
  if (metricsAddr !== '') {
    const [mh, mp] = hostPort(metricsAddr);
    metrics.listen(mp, mh);
  }
  // The Cosmos SDK app's REST API, where its telemetry is read (GET /metrics?format=prometheus,
  // as the SDK serves it): listening where the rendered app.toml says, only when it enables
  // both, so a wrong address or a disabled API shows up as a down target on the monitor.
  const app = cfg.appToml
    ? RenderedAppConfigSchema.parse(parseToml(readFileSync(cfg.appToml, 'utf8')))
    : undefined;
  const appApi = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://api');
    if (url.pathname !== '/metrics' || url.searchParams.get('format') !== 'prometheus') {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    res.end(
      [
        '# HELP vigil_local_app_height Height the simulated app has committed.',
        '# TYPE vigil_local_app_height gauge',
        `vigil_local_app_height{chain_id="${cfg.chainId}"} ${status().completedHeight}`,
        '',
      ].join('\n'),
    );
  });
  if (app?.api.enable && app.telemetry.enabled) {
    const [ah, ap] = hostPort(app.api.address.replace(/^tcp:\/\//, ''));
    appApi.listen(ap, ah);
  }

  const writeStatus = () => {
    const tmp = `${cfg.statusFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(status()) + '\n');
    renameSync(tmp, cfg.statusFile);
  };
  dialPeers();
  writeStatus();
  const timer = setInterval(() => {
    dialPeers();
    writeStatus();
  }, 300);

  const stop = () => {
    stopping = true;
    clearInterval(timer);
    for (const s of [...inbound, ...outbound.values()]) s.destroy();
    p2p.close();
    metrics.close();
    appApi.close();
    void (sim?.stop() ?? Promise.resolve()).then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main(process.argv[2] ?? '').catch((err: unknown) => {
  process.stderr.write(
    `simulated node failed: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
});
