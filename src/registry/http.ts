/**
 * A registry node's HTTP listener (issue 15, item 6): /healthz, /readyz (per component: store,
 * dht, gossip, submission), /metrics (the node's own prom-client Registry) and the read API
 * `vigil registry get|list` use:
 *
 * - `GET /registry/node`: this node's peer id, role and listen addresses;
 * - `GET /registry/records`: every record in this node's view;
 * - `GET /registry/records/<peer id>`: one record, from the view, else from the DHT;
 * - `GET /registry/validators`: the current validator set as this node follows it
 *   (current-set.ts: epoch, quorum, members, added, removed) and the set records after the
 *   genesis (hex, epoch order), which a reader verifies itself from its own genesis set.
 *
 * Records are public (they are gossiped to every node), so the read API needs no credentials;
 * nothing here writes. Bind it to loopback unless Prometheus scrapes it from elsewhere.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { errorMessage } from '../errors.js';
import { ed25519FromPeerId, peerIdFromEd25519 } from './peer-id.js';
import type { SignedRecord, ValidatorSet } from './record.js';
import type { ComponentHealth, RegistryPeer } from './service.js';

/** The JSON form of a record, as `vigil registry get|list --json` print it. */
export interface RecordJson {
  readonly peerId: string;
  readonly seq: string;
  readonly role: string;
  readonly capabilities: readonly string[];
  readonly addresses: readonly string[];
  readonly flags: number;
  readonly issuedAt: string;
  readonly expiresAt: string;
  /** Peer ids of the validators that countersigned this version. */
  readonly countersignedBy: readonly string[];
  /** The quorum of the current validator set (the node's newest epoch). */
  readonly quorum: number;
  readonly acceptedAt?: string;
}

export function recordJson(
  rec: SignedRecord,
  set: ValidatorSet,
  acceptedAtMs?: number,
): RecordJson {
  return {
    peerId: rec.peerId,
    seq: rec.seq.toString(),
    role: rec.content.role,
    capabilities: [...rec.content.capabilities],
    addresses: [...rec.content.addresses],
    flags: rec.content.flags,
    issuedAt: new Date(rec.content.issuedAtMs).toISOString(),
    expiresAt: new Date(rec.content.expiresAtMs).toISOString(),
    countersignedBy: rec.countersignatures.map((c) => peerIdFromEd25519(c.validator)),
    quorum: set.quorum,
    ...(acceptedAtMs ? { acceptedAt: new Date(acceptedAtMs).toISOString() } : {}),
  };
}

export interface RegistryHttpOptions {
  readonly node: RegistryPeer;
  readonly role: 'validator' | 'peer';
  readonly validators: ValidatorSet;
  readonly metrics: Registry;
  readonly host: string;
  readonly port: number;
}

export interface RegistryHttp {
  readonly url: string;
  close(): Promise<void>;
}

/** `GET /registry/validators`. */
export interface ValidatorsJson {
  readonly epoch: string;
  readonly quorum: number;
  readonly issuedAt?: string;
  readonly members: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly setRecords: readonly string[];
}

export interface ReadyzBody {
  readonly ready: boolean;
  readonly components: Record<string, ComponentHealth>;
}

export async function startRegistryHttp(o: RegistryHttpOptions): Promise<RegistryHttp> {
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body) + '\n');
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(res, 405, { code: 'METHOD_NOT_ALLOWED', message: 'read-only listener' });
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/healthz') return send(res, 200, { ok: true });
    if (path === '/readyz') {
      const components = o.node.health();
      const ready = Object.values(components).every((c) => c.ok);
      return send(res, ready ? 200 : 503, { ready, components } satisfies ReadyzBody);
    }
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': o.metrics.contentType });
      return res.end(await o.metrics.metrics());
    }
    if (path === '/registry/node')
      return send(res, 200, {
        peerId: o.node.peerId,
        role: o.role,
        addresses: o.node.addresses,
      });
    if (path === '/registry/validators') {
      const s = o.node.currentSet();
      return send(res, 200, {
        epoch: s.epoch.toString(),
        quorum: s.quorum,
        ...(s.issuedAtMs ? { issuedAt: new Date(s.issuedAtMs).toISOString() } : {}),
        members: s.members,
        added: s.added,
        removed: s.removed,
        setRecords: o.node.distribution.chain.records().map((b) => Buffer.from(b).toString('hex')),
      } satisfies ValidatorsJson);
    }
    if (path === '/registry/records')
      return send(
        res,
        200,
        o.node.view
          .list()
          .map((e) => recordJson(e.record, o.node.distribution.chain.head, e.acceptedAtMs)),
      );
    const one = /^\/registry\/records\/([^/]+)$/.exec(path);
    if (one) {
      const subject = decodeURIComponent(one[1]!);
      try {
        ed25519FromPeerId(subject);
      } catch (err) {
        return send(res, 400, { code: 'INVALID_INPUT', message: errorMessage(err) });
      }
      const rec = await o.node.distribution.get(subject);
      if (!rec)
        return send(res, 404, {
          code: 'REGISTRY_NOT_FOUND',
          message: `${subject}: no record in this node's view or the DHT`,
        });
      return send(
        res,
        200,
        recordJson(rec, o.node.distribution.chain.head, o.node.view.get(subject)?.acceptedAtMs),
      );
    }
    return send(res, 404, { code: 'NOT_FOUND', message: `no route ${path}` });
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, { code: 'INTERNAL', message: errorMessage(err) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
