/**
 * The submission spans reach an OTLP/HTTP collector (src/registry/telemetry.ts): a validator
 * started from its config with `telemetry.otlp` pointing at a tiny receiver on loopback
 * (node:http, POST /v1/traces, OTLP JSON — what @opentelemetry/exporter-trace-otlp-http sends
 * by default), a peer submits its record, and stopping the validator flushes the batch.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { z } from 'zod';
import { RegistryConfigSchema } from '../../src/registry/config.js';
import {
  initRegistryStore,
  startRegistryNodeFromConfig,
  submitOwnRecord,
} from '../../src/registry/daemon.js';
import { peerIdFromEd25519 } from '../../src/registry/peer-id.js';
import { tempDir } from '../helpers/guard-fixtures.js';
import { keyOf } from './fixtures.js';
import { seedOf } from './network-fixture.js';

/** The parts of an OTLP/JSON ExportTraceServiceRequest the test reads (opentelemetry-proto 1.x). */
const AnyValue = z
  .object({
    stringValue: z.string(),
    boolValue: z.boolean(),
    intValue: z.union([z.string(), z.number()]),
  })
  .partial();
const Attributes = z.array(z.object({ key: z.string(), value: AnyValue })).default([]);
const ExportRequest = z.object({
  resourceSpans: z.array(
    z.object({
      resource: z.object({ attributes: Attributes }),
      scopeSpans: z.array(
        z.object({
          scope: z.object({ name: z.string() }).optional(),
          spans: z.array(
            z.object({
              traceId: z.string().regex(/^[0-9a-f]{32}$/),
              spanId: z.string().regex(/^[0-9a-f]{16}$/),
              parentSpanId: z.string().optional(),
              name: z.string(),
              kind: z.number(),
              attributes: Attributes,
              status: z.object({ code: z.number().optional() }).optional(),
            }),
          ),
        }),
      ),
    }),
  ),
});
type Attrs = z.infer<typeof Attributes>;
const attr = (a: Attrs, key: string) => {
  const v = a.find((x) => x.key === key)?.value;
  return v?.stringValue ?? v?.boolValue ?? v?.intValue;
};

function writeSeed(path: string, tag: number): void {
  writeFileSync(path, Buffer.from(seedOf(tag)).toString('hex') + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
}

describe('registry spans over OTLP/HTTP', { timeout: 60_000 }, () => {
  let dir: string;
  let cleanup: () => void;
  let receiver: Server;
  let url: string;
  const posts: { path: string; type: string; auth: string; body: string }[] = [];
  before(async () => {
    ({ dir, cleanup } = tempDir('vigil-registry-otlp-'));
    receiver = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        posts.push({
          path: `${req.method} ${req.url}`,
          type: String(req.headers['content-type']),
          auth: String(req.headers['x-collector-token']),
          body,
        });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((r) => receiver.close(() => r()));
    cleanup();
  });

  it('a submission to a validator exports registry.submit and registry.store.commit', async () => {
    const vKey = join(dir, 'v.key');
    const pKey = join(dir, 'p.key');
    writeSeed(vKey, 100);
    writeSeed(pKey, 1);
    const vId = peerIdFromEd25519(keyOf(100).publicKey);
    const pId = peerIdFromEd25519(keyOf(1).publicKey);
    const validators = { members: [{ peerId: vId }], quorum: 1 };
    const vConfig = RegistryConfigSchema.parse({
      role: 'validator',
      identity: { keyFile: vKey },
      dataDir: join(dir, 'v'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      validators,
      store: { engine: 'sqlite', path: join(dir, 'registry.db') },
      telemetry: { otlp: { endpoint: url, headers: { 'x-collector-token': 's3cret' } } },
    });
    await initRegistryStore(vConfig);
    const logger = pino({ level: 'silent' });
    const v = await startRegistryNodeFromConfig(vConfig, logger);
    let stopped = false;
    try {
      const pConfig = RegistryConfigSchema.parse({
        role: 'peer',
        identity: { keyFile: pKey },
        dataDir: join(dir, 'p'),
        bootstrap: [`${v.node.addresses[0]}`],
        validators,
      });
      const r = await submitOwnRecord(pConfig);
      assert.equal(r.seq, 1n);
      await v.stop();
      stopped = true;
    } finally {
      if (!stopped) await v.stop();
    }
    assert.ok(posts.length >= 1, 'the stop flushed the batch');
    for (const p of posts) {
      assert.equal(p.path, 'POST /v1/traces');
      assert.match(p.type, /^application\/json/);
      assert.equal(p.auth, 's3cret');
    }
    const exported = posts.flatMap((p) => ExportRequest.parse(JSON.parse(p.body)).resourceSpans);
    const spans = exported.flatMap((rs) =>
      rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => ({ ...s, resource: rs.resource }))),
    );
    const submit = spans.find((s) => s.name === 'registry.submit');
    assert.ok(submit, `spans: ${spans.map((s) => s.name).join(', ')}`);
    assert.equal(submit.kind, 2); // SPAN_KIND_SERVER
    assert.equal(attr(submit.attributes, 'vigil.registry.peer'), pId);
    assert.equal(attr(submit.attributes, 'vigil.registry.result'), 'committed');
    assert.equal(attr(submit.attributes, 'vigil.registry.seq'), '1');
    assert.equal(attr(submit.resource.attributes, 'service.name'), 'vigil-registry');
    assert.equal(attr(submit.resource.attributes, 'service.instance.id'), vId);
    const commit = spans.find((s) => s.name === 'registry.store.commit');
    assert.ok(commit);
    assert.equal(commit.traceId, submit.traceId);
    assert.equal(commit.parentSpanId, submit.spanId);
    assert.equal(attr(commit.attributes, 'vigil.registry.subject'), pId);
    assert.equal(attr(commit.attributes, 'vigil.registry.duplicate'), false);
  });

  it('the config refuses a telemetry endpoint that is not an http(s) URL', () => {
    const r = RegistryConfigSchema.safeParse({
      role: 'peer',
      identity: { keyFile: 'k' },
      dataDir: 'd',
      validators: { members: [{ peerId: peerIdFromEd25519(keyOf(100).publicKey) }] },
      telemetry: { otlp: { endpoint: 'grpc://127.0.0.1:4317' } },
    });
    assert.equal(r.success, false);
    assert.deepEqual(r.error!.issues[0]!.path, ['telemetry', 'otlp', 'endpoint']);
  });
});
