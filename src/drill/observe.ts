/**
 * The drill's I/O with the agents: their signing API (unix socket or authenticated TCP, never
 * the read-only metrics listener, which serves no role API), asked for /readyz and /v1/roles,
 * and the handover request.
 */
import { z } from 'zod';
import { AgentClient, type AgentEndpoint } from '../agent/client.js';
import { errorMessage } from '../errors.js';
import type { AgentObservation, RoleAnswer } from './assess.js';

/** One agent of the role, with its open client. */
export interface DrillAgent {
  readonly name: string;
  readonly where: string;
  readonly client: AgentClient;
}

export function openDrillAgent(
  name: string,
  where: string,
  endpoint: AgentEndpoint,
  timeoutMs: number,
): DrillAgent {
  return { name, where, client: new AgentClient(endpoint, { timeoutMs }) };
}

const RoleAnswerSchema = z.looseObject({
  role: z.string(),
  state: z.string(),
  holderId: z.string(),
  token: z.string().optional(),
  activeSince: z.string().optional(),
  standingAsideUntil: z.string().optional(),
  storeHolder: z.object({ holderId: z.string(), token: z.string() }).nullable(),
  storeError: z.string().optional(),
  granted: z.number().int().min(0),
});
const RolesSchema = z.looseObject({ roles: z.array(RoleAnswerSchema) });
const ReadyzSchema = z.looseObject({
  status: z.string(),
  storeId: z.string().optional(),
  reason: z.string().optional(),
});

/** What one agent says now; never throws (a failure is `unreachable`). */
export async function observe(agent: DrillAgent, role: string): Promise<AgentObservation> {
  const base = { name: agent.name, where: agent.where };
  try {
    const [readyz, roles] = await Promise.all([
      agent.client.get('/readyz'),
      agent.client.get('/v1/roles'),
    ]);
    if (roles.status !== 200)
      return {
        ...base,
        unreachable: `GET /v1/roles answered ${roles.status}: does this agent serve the role API (Vigil too old, or the read-only listener)?`,
      };
    const r = RolesSchema.safeParse(roles.body);
    const y = ReadyzSchema.safeParse(readyz.body);
    if (!r.success || !y.success)
      return {
        ...base,
        unreachable: 'the agent answered /readyz or /v1/roles in an unknown shape',
      };
    const mine = r.data.roles.find((x) => x.role === role);
    const answer: RoleAnswer | undefined = mine
      ? {
          state: mine.state,
          holderId: mine.holderId,
          ...(mine.token !== undefined ? { token: mine.token } : {}),
          ...(mine.activeSince !== undefined ? { activeSince: mine.activeSince } : {}),
          ...(mine.standingAsideUntil !== undefined
            ? { standingAsideUntil: mine.standingAsideUntil }
            : {}),
          storeHolder: mine.storeHolder,
          ...(mine.storeError !== undefined ? { storeError: mine.storeError } : {}),
          granted: mine.granted,
        }
      : undefined;
    return {
      ...base,
      ready: readyz.status === 200,
      ...(readyz.status !== 200
        ? { notReadyReason: y.data.reason ?? `readyz ${readyz.status}` }
        : {}),
      ...(y.data.storeId !== undefined ? { storeId: y.data.storeId } : {}),
      ...(answer ? { role: answer } : {}),
    };
  } catch (err) {
    return { ...base, unreachable: errorMessage(err) };
  }
}

export type HandoverReply =
  { ok: true; stoppedAt: string; token: string } | { ok: false; code: string; message: string };

/** POST /v1/roles/handover; never throws. */
export async function requestHandover(
  agent: DrillAgent,
  role: string,
  holdOffMs: number,
  timeoutMs: number,
): Promise<HandoverReply> {
  try {
    const a = await agent.client.post<Record<string, unknown>>(
      '/v1/roles/handover',
      { role, holdOffMs },
      timeoutMs,
    );
    const b = a.body;
    if (a.status === 200 && typeof b.stoppedAt === 'string' && typeof b.token === 'string')
      return { ok: true, stoppedAt: b.stoppedAt, token: b.token };
    const e = (b.error ?? {}) as { code?: unknown; message?: unknown };
    return {
      ok: false,
      code: typeof e.code === 'string' ? e.code : `HTTP_${a.status}`,
      message: typeof e.message === 'string' ? e.message : JSON.stringify(b).slice(0, 200),
    };
  } catch (err) {
    return { ok: false, code: 'AGENT_UNREACHABLE', message: errorMessage(err) };
  }
}
