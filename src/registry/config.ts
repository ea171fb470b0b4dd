/**
 * A registry node's config file (YAML, issue 15 item 6): what `vigil registry run`, `submit`,
 * `validators`, `get` and `list` read. One file per node; relative paths are resolved against
 * the file's directory, as everywhere in Vigil.
 *
 * A validator's file may also hold an `etcd:` section (the member `vigil etcd --config` runs
 * next to it); the registry ignores it, so one file configures both processes of a host.
 */
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { LogConfigSchema } from '../agent/config.js';
import { loadYamlFile } from '../config/yaml-file.js';
import { EtcdMemberConfigSchema } from '../etcd/member.js';
import { EtcdStoreConfigSchema } from '../store/etcd.js';
import { ed25519FromPeerId } from './peer-id.js';
import { LIMITS, checkMultiaddr, validatorSet, type ValidatorSet } from './record.js';

const peerId = z.string().superRefine((s, ctx) => {
  try {
    ed25519FromPeerId(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** A libp2p multiaddr: the record's own shape check, without a subject to compare. */
const multiaddrString = z.string().superRefine((s, ctx) => {
  try {
    // A subject-free check: a trailing /p2p/ may name any peer here.
    checkMultiaddr(s, s.split('/p2p/').pop() ?? '');
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** A multiaddr that names the peer to dial (`…/p2p/<peer id>`). */
const dialAddr = multiaddrString.superRefine((s, ctx) => {
  const id = /\/p2p\/([^/]+)$/.exec(s)?.[1];
  if (id === undefined) {
    ctx.addIssue({ code: 'custom', message: 'a bootstrap address ends with /p2p/<peer id>' });
    return;
  }
  try {
    ed25519FromPeerId(id);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const ident = z
  .string()
  .regex(
    /^[a-z][a-z0-9._-]*$/,
    'lower-case letters, digits, ".", "_" and "-", starting with a letter',
  );

const SqliteRegistryStoreSchema = z
  .object({
    engine: z.literal('sqlite'),
    /** The registry file every validator of a one-host development setup shares. */
    path: z.string().min(1),
    busyTimeoutMs: z.number().int().min(0).max(60_000).default(5000),
  })
  .strict();

const RENEW_DEFAULTS = { enabled: true, at: 2 / 3, jitter: 0.05 };
const RenewSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Fraction of the lifetime after issued-at (default 2/3). */
    at: z.number().gt(0).lt(1).default(RENEW_DEFAULTS.at),
    /** ± this fraction of the lifetime, drawn once per version (default 0.05). */
    jitter: z.number().min(0).max(0.2).default(RENEW_DEFAULTS.jitter),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.at + r.jitter >= 1)
      ctx.addIssue({
        code: 'custom',
        path: ['jitter'],
        message: `at + jitter (${r.at + r.jitter}) must stay below 1, or a renewal may come after expiry`,
      });
  })
  .default(RENEW_DEFAULTS);

/**
 * OTLP/HTTP export of the node's spans (JSON, as @opentelemetry/exporter-trace-otlp-http
 * sends by default): `endpoint` is the collector's base URL (`/v1/traces` is added, as
 * OTEL_EXPORTER_OTLP_ENDPOINT is read in the OpenTelemetry specification) or, with
 * `tracesEndpoint`, the full traces URL.
 */
const TelemetrySchema = z
  .object({
    otlp: z
      .object({
        endpoint: z.url({ protocol: /^https?$/, error: 'an http(s) URL of the OTLP collector' }),
        /** The endpoint is the full traces URL (no `/v1/traces` added). */
        tracesEndpoint: z.boolean().default(false),
        /** Sent with every export, e.g. an authorization header of a hosted collector. */
        headers: z.record(z.string().regex(/^[A-Za-z0-9-]+$/), z.string().max(4096)).default({}),
        /** service.name of the exported spans (default vigil-registry). */
        serviceName: z.string().min(1).max(128).default('vigil-registry'),
        timeoutMs: z.number().int().min(100).max(60_000).default(10_000),
      })
      .strict(),
  })
  .strict();

export const RegistryConfigSchema = z
  .object({
    role: z.enum(['validator', 'peer'], { error: 'expected `validator` or `peer`' }),
    /** This node's Ed25519 key (libp2p identity and record signer), mode 0600. */
    identity: z.object({ keyFile: z.string().min(1) }).strict(),
    /** This node's own files: the view, a validator's countersigning record. */
    dataDir: z.string().min(1),
    /** Default `<dataDir>/view.db`. */
    viewPath: z.string().min(1).optional(),
    listen: z.array(multiaddrString).min(1).default(['/ip4/127.0.0.1/tcp/0']),
    /** Dialled at start; validators among them are where `submit` sends a record. */
    bootstrap: z.array(dialAddr).default([]),
    validators: z
      .object({
        members: z
          .array(
            z
              .object({
                peerId,
                /** Where to reach it (with or without /p2p/); else its bootstrap entries. */
                addresses: z.array(multiaddrString).max(LIMITS.addresses).default([]),
              })
              .strict(),
          )
          .min(1)
          .max(LIMITS.validators),
        /** Countersignatures a record needs; default: a majority of the members. */
        quorum: z.number().int().min(1).optional(),
        /**
         * After a validator-set change (src/registry/validator-set.ts), how long records
         * attested under the previous set by validators that stay still count (the new set
         * re-countersigns them meanwhile).
         */
        epochGraceSeconds: z
          .number()
          .int()
          .min(0)
          .max(7 * 86_400)
          .default(900),
      })
      .strict()
      .superRefine((v, ctx) => {
        const seen = new Set<string>();
        v.members.forEach((m, i) => {
          if (seen.has(m.peerId))
            ctx.addIssue({
              code: 'custom',
              path: ['members', i, 'peerId'],
              message: `validator ${m.peerId} is listed twice`,
            });
          seen.add(m.peerId);
        });
        if (v.quorum !== undefined && v.quorum > v.members.length)
          ctx.addIssue({
            code: 'custom',
            path: ['quorum'],
            message: `the quorum (${v.quorum}) is larger than the validator set (${v.members.length})`,
          });
      }),
    /** Validators only: where submissions are committed. */
    store: z
      .discriminatedUnion('engine', [SqliteRegistryStoreSchema, EtcdStoreConfigSchema], {
        error: 'expected `engine: etcd` (with endpoints) or `engine: sqlite` (with path)',
      })
      .optional(),
    /** Validators only: who may submit (the validators themselves always may). */
    admission: z
      .discriminatedUnion('mode', [
        z.object({ mode: z.literal('open') }).strict(),
        z.object({ mode: z.literal('allowList'), peers: z.array(peerId).min(1) }).strict(),
      ])
      .default({ mode: 'open' }),
    /** Only these peers (and the validators) may connect to this node, either way. */
    connectionAllowList: z.array(peerId).optional(),
    /** Validators only: submissions per peer per window. */
    rateLimit: z
      .object({
        submissions: z.number().int().min(1).max(10_000).default(5),
        windowSeconds: z.number().int().min(1).max(86_400).default(10),
      })
      .strict()
      .default({ submissions: 5, windowSeconds: 10 }),
    /** /readyz, /metrics and the read API (`vigil registry get|list`). */
    http: z
      .object({ host: z.string().min(1), port: z.number().int().min(0).max(65535) })
      .strict()
      .optional(),
    /** What `vigil registry submit` puts in this node's record unless told otherwise. */
    record: z
      .object({
        role: ident.max(LIMITS.roleBytes).default('node'),
        capabilities: z
          .array(ident.max(LIMITS.capabilityBytes))
          .max(LIMITS.capabilities)
          .default([]),
        addresses: z.array(multiaddrString).max(LIMITS.addresses).default([]),
        /** Set at first admission only. */
        flags: z.number().int().min(0).max(0xffffffff).default(0),
        lifetimeHours: z
          .number()
          .int()
          .min(1)
          .max(LIMITS.lifetimeMs / 3_600_000)
          .default(24 * 7),
        /**
         * `vigil registry run` re-signs and resubmits this node's record before it expires
         * (src/registry/renew.ts): at `at` of its lifetime, ± `jitter` of it, with this
         * section's `lifetimeHours`. Only a node that has a record (after `submit`) renews.
         */
        renew: RenewSchema,
      })
      .strict()
      .default({
        role: 'node',
        capabilities: [],
        addresses: [],
        flags: 0,
        lifetimeHours: 168,
        renew: RENEW_DEFAULTS,
      }),
    /** Where `vigil registry run` sends its OpenTelemetry spans (registry.submit, …). */
    telemetry: TelemetrySchema.optional(),
    /** Run by `vigil etcd --config` on a validator's host; the registry ignores it. */
    etcd: EtcdMemberConfigSchema.optional(),
    log: LogConfigSchema,
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.role === 'validator' && c.store === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['store'],
        message: 'a validator needs `store` (engine: etcd, or sqlite for a one-host setup)',
      });
    if (c.role === 'peer' && c.store !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['store'],
        message: 'a peer has no store: only validators write the registry',
      });
  });

export type RegistryConfig = z.output<typeof RegistryConfigSchema>;

export function registryValidatorSet(c: RegistryConfig): ValidatorSet {
  return validatorSet(
    c.validators.members.map((m) => ed25519FromPeerId(m.peerId)),
    c.validators.quorum,
  );
}

/**
 * Where to reach each validator: its own `addresses` (with /p2p/ added), then the bootstrap
 * entries that name it.
 */
export function validatorAddresses(c: RegistryConfig): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of c.validators.members) {
    const own = m.addresses.map((a) => (a.includes('/p2p/') ? a : `${a}/p2p/${m.peerId}`));
    const boot = c.bootstrap.filter((a) => a.endsWith(`/p2p/${m.peerId}`));
    out.set(m.peerId, [...new Set([...own, ...boot])]);
  }
  return out;
}

/** The base URL of the node's own HTTP listener (a wildcard host is asked on loopback). */
export function httpUrlOf(c: RegistryConfig): string | undefined {
  if (!c.http) return undefined;
  const host = c.http.host.includes(':') ? `[${c.http.host}]` : c.http.host;
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host;
  return `http://${h}:${c.http.port}`;
}

export function viewPathOf(c: RegistryConfig): string {
  return c.viewPath ?? join(c.dataDir, 'view.db');
}

function resolvePaths(c: RegistryConfig, baseDir: string): RegistryConfig {
  const abs = (p: string) => (p === ':memory:' || isAbsolute(p) ? p : resolve(baseDir, p));
  const store = c.store;
  return {
    ...c,
    identity: { keyFile: abs(c.identity.keyFile) },
    dataDir: abs(c.dataDir),
    ...(c.viewPath ? { viewPath: abs(c.viewPath) } : {}),
    ...(store === undefined
      ? {}
      : store.engine === 'sqlite'
        ? { store: { ...store, path: abs(store.path) } }
        : {
            store: {
              ...store,
              ...(store.tls
                ? {
                    tls: {
                      ca: abs(store.tls.ca),
                      cert: abs(store.tls.cert),
                      key: abs(store.tls.key),
                    },
                  }
                : {}),
            },
          }),
  };
}

export function loadRegistryConfig(file: string): RegistryConfig {
  return resolvePaths(loadYamlFile(file, RegistryConfigSchema), dirname(resolve(file)));
}
