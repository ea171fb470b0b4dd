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
import { errorMessage } from '../errors.js';
import type { AgentMetrics } from './metrics.js';
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

export class BodyValidationError extends Error {
  readonly statusCode = 400;
  readonly code = 'INVALID_REQUEST';
}

export async function buildHttpApi(opts: HttpApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger.child({ component: 'http' }) as FastifyBaseLogger,
    // Decisions are counted in metrics and refusals logged by the guard; per-request lines would drown them.
    logController: new LogController({ disableRequestLogging: true }),
    // A hex payload doubles in size; leave room for the envelope.
    bodyLimit: MAX_PAYLOAD_BYTES * 2 * 2 + 4096,
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
        err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      if (status === 500) opts.logger.error({ err }, 'unhandled error in request');
      return res.code(status).send({
        error: {
          code: status === 500 ? 'INTERNAL' : (err.code ?? 'BAD_REQUEST'),
          message:
            status === 500 ? 'internal error; nothing was signed' : (err.message ?? 'bad request'),
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
    return reply(res, fence && 'outcome' in fence ? fence : await run(fence), mode);
  };

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
      if (!report.ready) {
        return res.code(503).send({
          status: 'not ready',
          store: opts.store.engine,
          reason: Readiness.describe(report),
          conditions,
        });
      }
      return {
        status: 'ready',
        store: opts.store.engine,
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

  if (signing) app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  return app;
}
