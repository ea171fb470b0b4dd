/**
 * The agent's configuration file (YAML), validated with zod. Relative paths are resolved
 * against the directory of the config file, so a config can be moved with its keys.
 */
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { CometbftSignerConfigSchema } from '../chains/cometbft/config.js';
import { duplicateKeyProblems, KeyConfigSchema } from '../keys/key-config.js';
import { loadYamlFile } from '../config/yaml-file.js';
import { EtcdMemberConfigSchema } from '../etcd/member.js';
import { EtcdStoreConfigSchema } from '../store/etcd.js';
import { SupervisorConfigSchema } from '../supervisor/supervisor.js';

const SqliteStoreSchema = z
  .object({
    engine: z.literal('sqlite'),
    path: z.string().min(1),
    busyTimeoutMs: z.number().int().min(0).max(60_000).default(5000),
  })
  .strict();

const TlsFilesSchema = z
  .object({ ca: z.string().min(1), cert: z.string().min(1), key: z.string().min(1) })
  .strict();

const OLD_LISTEN_MIGRATION =
  'listen.host/listen.port are gone: the API is served on a unix socket by default ' +
  '(remove `listen` to serve on <agent.dataDir>/api.sock), or move them under `listen.tcp` ' +
  'with a `tokenFile` (a mode 0600 file holding 32 random bytes, e.g. `openssl rand -hex 32`) ' +
  'or `tls: { ca, cert, key }` for mutual TLS, e.g. ' +
  'listen: { tcp: { host: 127.0.0.1, port: 7710, tokenFile: ./api.token } }';

/**
 * Where the signing API listens. A unix socket (the default) is guarded by its file mode; a
 * TCP listener must authenticate its callers, with a bearer token or a client certificate.
 */
export const ListenSchema = z.preprocess(
  (value, ctx) => {
    if (typeof value === 'object' && value !== null && ('host' in value || 'port' in value)) {
      ctx.issues.push({ code: 'custom', message: OLD_LISTEN_MIGRATION, input: value });
      return z.NEVER;
    }
    return value;
  },
  z
    .object({
      socket: z
        .object({
          path: z.string().min(1),
          /** Group allowed to call the API (mode 0660); without it the socket is 0600. */
          group: z.string().min(1).max(64).optional(),
        })
        .strict()
        .optional(),
      tcp: z
        .object({
          host: z.string().min(1),
          port: z.number().int().min(0).max(65535),
          /** A mode 0600 file holding the bearer token (hex or base64, ≥ 32 bytes decoded). */
          tokenFile: z.string().min(1).optional(),
          /** Mutual TLS: clients must present a certificate issued by `ca`. */
          tls: TlsFilesSchema.optional(),
          /** Host header values accepted besides the listener's own address. */
          allowedHosts: z.array(z.string().min(1).max(255)).max(32).optional(),
        })
        .strict()
        .refine((t) => t.tokenFile !== undefined || t.tls !== undefined, {
          message:
            'a TCP listener needs `tokenFile` (bearer token) or `tls` (mutual TLS); or use `listen.socket`',
        })
        .optional(),
    })
    .strict()
    .refine((l) => l.socket !== undefined || l.tcp !== undefined, {
      message: 'give `socket`, `tcp` or both (or remove `listen` for <agent.dataDir>/api.sock)',
    }),
);

export type ListenConfig = z.output<typeof ListenSchema>;

/** Without a `listen` section the API is served on a socket in the agent's own directory. */
export function defaultListen(dataDir: string): ListenConfig {
  return { socket: { path: join(dataDir, 'api.sock') } };
}

/** The `log` section every long-running Vigil process reads (agent, registry node). */
export const LogConfigSchema = z
  .object({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** `auto`: readable lines on a terminal, JSON lines anywhere else. */
    format: z.enum(['auto', 'json', 'pretty']).default('auto'),
  })
  .strict()
  .default({ level: 'info', format: 'auto' });

export const AgentConfigSchema = z
  .object({
    agent: z
      .object({
        /** Shown in logs and written into each watermark record. */
        id: z.string().min(1).max(128),
        /** This agent's own files (local watermarks); never shared between agents. */
        dataDir: z.string().min(1),
      })
      .strict(),
    listen: ListenSchema.optional(),
    /**
     * A second listener with only /healthz, /readyz and /metrics, for Prometheus on another
     * host; the signing API can then stay on loopback.
     */
    metricsListen: z
      .object({ host: z.string().min(1), port: z.number().int().min(0).max(65535) })
      .strict()
      .optional(),
    store: z.discriminatedUnion('engine', [SqliteStoreSchema, EtcdStoreConfigSchema]),
    keys: z
      .array(KeyConfigSchema)
      .default([])
      .superRefine((keys, ctx) => {
        for (const p of duplicateKeyProblems(keys))
          ctx.addIssue({ code: 'custom', path: [p.index, p.path], message: p.message });
      }),
    /** Exclusive roles this agent may hold: only the lease holder is active. */
    supervisors: z
      .array(SupervisorConfigSchema)
      .default([])
      .refine(
        (list) => new Set(list.map((s) => s.role)).size === list.length,
        'each role may be supervised once',
      ),
    /** The local etcd member `vigil etcd --config` runs; the agent itself ignores it. */
    etcd: EtcdMemberConfigSchema.optional(),
    /** CometBFT remote signing: the validator nodes this agent dials (priv_validator_laddr). */
    cometbft: CometbftSignerConfigSchema.optional(),
    log: LogConfigSchema,
  })
  .strict()
  .superRefine((config, ctx) => {
    // A CometBFT chain the signer serves must name a key bound to CometBFT and to that chain.
    config.cometbft?.chains.forEach((chain, i) => {
      const key = config.keys.find((k) => k.id === chain.keyId);
      const path = ['cometbft', 'chains', i, 'keyId'];
      if (key === undefined) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `no key with id ${JSON.stringify(chain.keyId)} in \`keys\``,
        });
      } else if (key.protocol !== 'cometbft') {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `key ${key.id} is bound to protocol ${key.protocol}, not cometbft`,
        });
      } else if (!key.chains.includes(chain.chainId)) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `key ${key.id} does not list chain ${chain.chainId} in its \`chains\``,
        });
      }
    });
  });

export type AgentConfig = z.output<typeof AgentConfigSchema>;
export type StoreConfig = AgentConfig['store'];

function resolvePaths(config: AgentConfig, baseDir: string): AgentConfig {
  const abs = (p: string) => (p === ':memory:' || isAbsolute(p) ? p : resolve(baseDir, p));
  const dataDir = abs(config.agent.dataDir);
  const listen = config.listen ?? defaultListen(dataDir);
  return {
    ...config,
    agent: { ...config.agent, dataDir },
    listen: {
      ...(listen.socket ? { socket: { ...listen.socket, path: abs(listen.socket.path) } } : {}),
      ...(listen.tcp
        ? {
            tcp: {
              ...listen.tcp,
              ...(listen.tcp.tokenFile ? { tokenFile: abs(listen.tcp.tokenFile) } : {}),
              ...(listen.tcp.tls
                ? {
                    tls: {
                      ca: abs(listen.tcp.tls.ca),
                      cert: abs(listen.tcp.tls.cert),
                      key: abs(listen.tcp.tls.key),
                    },
                  }
                : {}),
            },
          }
        : {}),
    },
    store:
      config.store.engine === 'sqlite'
        ? { ...config.store, path: abs(config.store.path) }
        : {
            ...config.store,
            ...(config.store.tls
              ? {
                  tls: {
                    ca: abs(config.store.tls.ca),
                    cert: abs(config.store.tls.cert),
                    key: abs(config.store.tls.key),
                  },
                }
              : {}),
          },
    keys: config.keys.map((k) => (k.file ? { ...k, file: abs(k.file) } : k)),
    ...(config.cometbft
      ? {
          cometbft: {
            ...config.cometbft,
            chains: config.cometbft.chains.map((c) => ({
              ...c,
              connectionKeyFile: abs(c.connectionKeyFile),
            })),
          },
        }
      : {}),
  };
}

export function loadAgentConfig(file: string): AgentConfig {
  return resolvePaths(loadYamlFile(file, AgentConfigSchema), dirname(resolve(file)));
}
