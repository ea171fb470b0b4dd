/**
 * The agent's HTTP API (fastify): sign, authorize, health, readiness, metrics and its own
 * OpenAPI document. Bodies are validated with the zod schemas in api-schemas.ts, which also
 * produce the documented JSON Schemas, so the document cannot drift from what is enforced.
 */
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
} from 'fastify';
import swagger from '@fastify/swagger';
import { z } from 'zod';
import type { Logger } from 'pino';
import { formatTimestamp } from '../protocols/cometbft/sign-bytes.js';
import { InputError, errorMessage } from '../errors.js';
import { describePosition } from '../guard/describe.js';
import { cometbftPosition, grandpaPosition, slotPosition, type Watermark } from '../guard/index.js';
import type { GuardResult, GuardedSigner, SignRequest } from '../signer/guarded-signer.js';
import type { FenceToken, WatermarkStore } from '../store/types.js';
import type { Supervisor } from '../supervisor/index.js';
import {
  AuthorizeBodySchema,
  MAX_PAYLOAD_BYTES,
  SignBodySchema,
  type AuthorizeBody,
  type SignBody,
} from './api-schemas.js';
import { parseJsonBody } from './json-body.js';
import { RoleGrants, registerRoleRoutes } from './role-api.js';
import type { AgentMetrics } from './metrics.js';
import { registerAgentDashboard, type AgentDashboardOptions } from '../dashboard/agent-routes.js';
import {
  Readiness,
  STORE_CONDITION,
  STORE_IDENTITY_CONDITION,
  defineStoreCondition,
} from './readiness.js';

export interface HttpApiOptions {
  readonly guard: GuardedSigner;
  readonly store: WatermarkStore;
  readonly metrics: AgentMetrics;
  readonly logger: Logger;
  /** Why the agent is (not) ready; without one, readiness is the store's ping alone. */
  readonly readiness?: Readiness;
  readonly readinessTimeoutMs?: number;
  /** Throws the reason this agent must not sign although its store answers (a store other
   * than the one its local watermark was built against); /readyz reports it. */
  readonly checkReady?: () => void;
  /** State of the links to CometBFT nodes, shown (not gated on) by /readyz. */
  readonly links?: () => unknown;
  /** Exclusive roles by name, for requests that name one. */
  readonly supervisors?: ReadonlyMap<string, Supervisor>;
  /** `observability`: only /healthz, /readyz and /metrics, for a listener other hosts reach. */
  readonly routes?: 'all' | 'observability';
  /** With `observability`: also GET /dashboard and /v1/overview (src/dashboard/). */
  readonly dashboard?: AgentDashboardOptions;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export function watermarkJson(w: Watermark) {
  return {
    family: w.family,
    position: describePosition(w.family, w.position),
    ...(w.payloadHash ? { payloadHash: hex(w.payloadHash) } : {}),
    hasSignature: w.signature !== undefined,
    ...(w.writer ? { writer: w.writer } : {}),
    ...(w.updatedAtMs ? { updatedAt: new Date(w.updatedAtMs).toISOString() } : {}),
  };
}

const STATUS_BY_REASON: Record<string, number> = {
  invalid_request: 400,
  unknown_key: 404,
  // The key exists but is not for this: another protocol's door, or a chain it does not serve.
  wrong_protocol: 403,
  unknown_chain: 403,
  store_unavailable: 503,
  store_identity: 503,
  local_unavailable: 503,
};

function reply(res: FastifyReply, result: GuardResult, mode: 'sign' | 'authorize') {
  if (result.outcome === 'refused') {
    return res.code(STATUS_BY_REASON[result.reason] ?? 409).send({
      decision: 'refused',
      ...(mode === 'authorize' ? { allowed: false } : {}),
      reason: result.reason,
      message: result.message,
      ...(result.watermark ? { watermark: watermarkJson(result.watermark) } : {}),
      // Every non-2xx answer carries the same error shape, refusals included.
      error: { code: result.reason.toUpperCase(), message: result.message },
    });
  }
  return res.code(200).send({
    decision: result.outcome,
    ...(mode === 'authorize' ? { allowed: true } : {}),
    ...(result.signature ? { signature: hex(result.signature) } : {}),
    ...(result.timestamp ? { timestamp: formatTimestamp(result.timestamp) } : {}),
    ...(result.extensionSignature ? { extensionSignature: hex(result.extensionSignature) } : {}),
    watermark: watermarkJson(result.watermark),
  });
}

/** A request naming a role is guarded under that role's fence, or refused when not held. */
function fenceFor(
  role: string | undefined,
  supervisors: ReadonlyMap<string, Supervisor> | undefined,
): FenceToken | GuardResult | undefined {
  if (role === undefined) return undefined;
  const supervisor = supervisors?.get(role);
  if (supervisor === undefined) {
    return {
      outcome: 'refused',
      reason: 'invalid_request',
      message: `this agent supervises no role ${JSON.stringify(role)}`,
    };
  }
  return (
    supervisor.fence() ?? {
      outcome: 'refused',
      reason: 'fenced',
      message: `this agent does not hold role ${JSON.stringify(role)} (state: ${supervisor.state()})`,
    }
  );
}

function toSignRequest(b: SignBody, fence: FenceToken | undefined): SignRequest {
  const position =
    b.position === undefined
      ? undefined
      : b.family === 'cometbft'
        ? cometbftPosition(b.position.height, b.position.round, b.position.step)
        : b.family === 'slot'
          ? slotPosition(b.position.slot)
          : grandpaPosition(b.position.setId, b.position.round, b.position.stage);
  return {
    chainId: b.chainId,
    keyId: b.keyId,
    payload: b.payload,
    ...(b.family === 'cometbft' && b.extension !== undefined ? { extension: b.extension } : {}),
    claims: { family: b.family, ...(position ? { position } : {}) },
    ...(fence ? { fence } : {}),
  };
}

function toAuthorizeRequest(
  b: AuthorizeBody,
  fence: FenceToken | undefined,
): Parameters<GuardedSigner['authorize']>[0] {
  const base = {
    ...(fence ? { fence } : {}),
    chainId: b.chainId,
    keyId: b.keyId,
    nodeId: b.nodeId,
    ...(b.payload ? { payload: b.payload } : {}),
  };
  return b.family === 'slot'
    ? { ...base, family: 'slot', slot: b.position.slot }
    : { ...base, family: 'grandpa', ...b.position };
}

/** Zod schemas stand behind the JSON Schemas handed to fastify; the validator looks them up. */
const zodBehind = new WeakMap<object, z.ZodType>();
function documented(schema: z.ZodType): object {
  const json = z.toJSONSchema(schema, { io: 'input', target: 'openapi-3.0' }) as object;
  zodBehind.set(json, schema);
  return json;
}

/**
 * Room for a sign body with a payload and an extension of MAX_PAYLOAD_BYTES each in hex (with
 * "0x"), and an envelope whose ids are fully \u-escaped: bodies the schema may accept are
 * never cut off by the transport limit, so a payload one byte too long gets the schema's
 * precise 400 rather than a bare 413.
 */
export const BODY_LIMIT_BYTES = 2 * (2 + MAX_PAYLOAD_BYTES * 2) + 16 * 1024;

/** Fastify's own 4xx codes, renamed for our error bodies. */
const FASTIFY_CODES: Record<string, { code: string; message?: string }> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'UNSUPPORTED_MEDIA_TYPE',
    message: 'send the body as JSON with `content-type: application/json`',
  },
  FST_ERR_CTP_BODY_TOO_LARGE: {
    code: 'BODY_TOO_LARGE',
    message: `the body is larger than ${BODY_LIMIT_BYTES} bytes`,
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'BAD_CONTENT_LENGTH' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'INVALID_JSON', message: 'the body is empty' },
};

export class BodyValidationError extends Error {
  readonly statusCode = 400;
  readonly code = 'INVALID_REQUEST';
}

export async function buildHttpApi(opts: HttpApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger.child({ component: 'http' }) as FastifyBaseLogger,
    // Decisions are counted in metrics and refusals logged by the guard; per-request lines would drown them.
    logController: new LogController({ disableRequestLogging: true }),
    // No per-request child logger either: building one (with its request id binding) for
    // every request cost more than the lines it would never write.
    childLoggerFactory: (logger) => logger,
    bodyLimit: BODY_LIMIT_BYTES,
  });

  // Our own JSON parser: the body must be UTF-8 JSON with no key named twice in an object.
  // Anything else (form data, text, no content type) is 415 before a byte is parsed.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, text, done) => {
    try {
      done(null, parseJsonBody(text as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  app.setValidatorCompiler(({ schema }) => {
    const zod = zodBehind.get(schema);
    if (zod === undefined) throw new Error('route schema was not built with documented()');
    return (data: unknown) => {
      const parsed = zod.safeParse(data);
      if (parsed.success) return { value: parsed.data };
      const detail = parsed.error.issues
        .map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`)
        .join('; ');
      return { error: new BodyValidationError(detail) };
    };
  });
  // Replies are plain objects we build; bigints never reach them.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  app.setErrorHandler(
    (err: { statusCode?: number; code?: string; message?: string }, _req, res) => {
      const status =
        err instanceof InputError
          ? 400
          : err.statusCode && err.statusCode >= 400 && err.statusCode < 500
            ? err.statusCode
            : 500;
      if (status === 500) opts.logger.error({ err }, 'unhandled error in request');
      const known = err.code !== undefined ? FASTIFY_CODES[err.code] : undefined;
      return res.code(status).send({
        error: {
          code: status === 500 ? 'INTERNAL' : (known?.code ?? err.code ?? 'BAD_REQUEST'),
          message:
            status === 500
              ? 'internal error; nothing was signed'
              : (known?.message ?? err.message ?? 'bad request'),
        },
      });
    },
  );
  app.setNotFoundHandler((req, res) =>
    res.code(404).send({
      error: {
        code: 'NOT_FOUND',
        message: `no route ${req.method} ${req.url}; see GET /openapi.json`,
      },
    }),
  );

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Vigil agent API',
        version: '1',
        description:
          'Guarded signing and duty authorization. A signature is returned only after a watermark covering it was durably committed to the store.',
      },
    },
  });

  /** Runs a guarded request under the fence of the role it names, if any. */
  const guarded = async (
    res: FastifyReply,
    role: string | undefined,
    mode: 'sign' | 'authorize',
    run: (fence: FenceToken | undefined) => Promise<GuardResult>,
  ) => {
    const fence = fenceFor(role, opts.supervisors);
    if (fence && 'outcome' in fence) return reply(res, fence, mode);
    const result = await run(fence);
    if (fence && role !== undefined && result.outcome === 'granted')
      roleGrants.note(role, fence.token);
    return reply(res, result, mode);
  };
  const roleGrants = new RoleGrants();

  const signing = (opts.routes ?? 'all') === 'all';
  if (signing)
    app.post(
      '/v1/sign',
      {
        schema: {
          summary: 'Sign a payload at a position, if the guard grants it',
          description:
            '200 with the signature when granted (or replayed: the identical request was granted before). 409 when refused (regression, conflict, fenced, store behind this agent), 400 invalid request, 404 unknown key, 503 store unavailable or local watermark file not writable (local_unavailable). Nothing is signed on any non-200 answer.',
          body: documented(SignBodySchema),
        },
      },
      async (req, res) => {
        const body = req.body as SignBody;
        return guarded(res, body.role, 'sign', (fence) =>
          opts.guard.sign(toSignRequest(body, fence)),
        );
      },
    );

  if (signing)
    app.post(
      '/v1/authorize',
      {
        schema: {
          summary:
            'Ask permission for a duty the node signs itself (author slot N, vote in round R of set S)',
          description:
            '200 with allowed=true when granted; a retry by the same nodeId is granted again. 409 with allowed=false when another node holds that position or the position went back.',
          body: documented(AuthorizeBodySchema),
        },
      },
      async (req, res) => {
        const body = req.body as AuthorizeBody;
        return guarded(res, body.role, 'authorize', (fence) =>
          opts.guard.authorize(toAuthorizeRequest(body, fence)),
        );
      },
    );

  if (signing) registerRoleRoutes(app, opts.supervisors ?? new Map(), roleGrants, documented);

  app.get('/healthz', { schema: { summary: 'The process is alive' } }, async () => ({
    status: 'ok',
  }));

  const readiness =
    opts.readiness ??
    (() => {
      const own = new Readiness();
      defineStoreCondition(own, opts.store);
      return own;
    })();
  const checkReady = opts.checkReady;
  if (checkReady)
    readiness.define(STORE_IDENTITY_CONDITION, () => {
      try {
        checkReady();
        return undefined;
      } catch (err) {
        return errorMessage(err);
      }
    });
  app.get(
    '/readyz',
    {
      schema: {
        summary:
          'Ready when every condition holds: the store answers and takes writes, the local watermark file is writable, …',
        description:
          '200 when ready; 503 with `conditions` (name, ready, reason, since) and `reason` naming each failing one.',
      },
    },
    async (_req, res) => {
      const report = await readiness.check(opts.readinessTimeoutMs ?? 2000);
      const store = report.conditions.find((c) => c.name === STORE_CONDITION);
      opts.metrics.storeUp.set(store === undefined || store.ready ? 1 : 0);
      const conditions = report.conditions.map((c) => ({
        name: c.name,
        ready: c.ready,
        ...(c.reason !== undefined ? { reason: c.reason } : {}),
        since: new Date(c.sinceMs).toISOString(),
      }));
      // The store's identity, once read (an etcd store reached without a quorum has none yet).
      let storeId: string | undefined;
      try {
        storeId = opts.store.identity.storeId;
      } catch {
        storeId = undefined;
      }
      if (!report.ready) {
        return res.code(503).send({
          status: 'not ready',
          store: opts.store.engine,
          ...(storeId !== undefined ? { storeId } : {}),
          reason: Readiness.describe(report),
          conditions,
        });
      }
      return {
        status: 'ready',
        store: opts.store.engine,
        ...(storeId !== undefined ? { storeId } : {}),
        conditions,
        ...(opts.links ? { cometbft: opts.links() } : {}),
        ...(opts.supervisors?.size
          ? { roles: [...opts.supervisors].map(([role, sup]) => ({ role, state: sup.state() })) }
          : {}),
      };
    },
  );

  app.get('/metrics', { schema: { summary: 'Prometheus metrics' } }, async (_req, res) => {
    res.header('content-type', opts.metrics.registry.contentType);
    return res.send(await opts.metrics.registry.metrics());
  });

  if (!signing && opts.dashboard) registerAgentDashboard(app, opts.dashboard);

  if (signing) app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  return app;
}
