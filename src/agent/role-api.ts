/**
 * The exclusive roles' part of the agent API, on the signing listeners only (unix socket,
 * authenticated TCP): what this agent sees of each role it supervises, and the graceful
 * handover a drill (`vigil drill failover`) asks the holder for. The read-only metrics
 * listener never serves these: a handover stops a producing node.
 *
 *   GET  /v1/roles            each role: state, holder id, token, active since, the store's
 *                             holder, authorizations and signatures granted under the fence
 *   POST /v1/roles/handover   { role, holdOffMs }: deactivate, release on a confirmed stop,
 *                             stay aside until another holder took the role or holdOffMs
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { errorMessage } from '../errors.js';
import { MAX_HOLD_OFF_MS, type Supervisor } from '../supervisor/index.js';

export const HandoverBodySchema = z
  .object({
    role: z.string().min(1).max(128),
    /** How long the old holder stays out of the campaign waiting for a successor. */
    holdOffMs: z.number().int().min(0).max(MAX_HOLD_OFF_MS).default(30_000),
  })
  .strict();
export type HandoverBody = z.output<typeof HandoverBodySchema>;

/** Guarded requests granted under each role's current fence (what a drill checks). */
export class RoleGrants {
  private readonly byRole = new Map<string, { token: bigint; granted: number }>();

  note(role: string, token: bigint): void {
    const entry = this.byRole.get(role);
    if (entry && entry.token === token) entry.granted++;
    else this.byRole.set(role, { token, granted: 1 });
  }

  /** Grants under `token`; 0 for another holding. */
  count(role: string, token: bigint | undefined): number {
    const entry = this.byRole.get(role);
    return entry && token !== undefined && entry.token === token ? entry.granted : 0;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

export function registerRoleRoutes(
  app: FastifyInstance,
  supervisors: ReadonlyMap<string, Supervisor>,
  grants: RoleGrants,
  documented: (schema: z.ZodType) => object,
): void {
  app.get(
    '/v1/roles',
    {
      schema: {
        summary: "This agent's exclusive roles: state, holding, the store's holder, grants",
      },
    },
    async () => ({
      roles: await Promise.all(
        [...supervisors].map(async ([role, sup]) => {
          const v = sup.view();
          let storeHolder: { holderId: string; token: string } | null = null;
          let storeError: string | undefined;
          try {
            const h = await sup.holderInStore();
            storeHolder = h ? { holderId: h.holderId, token: h.token.toString() } : null;
          } catch (err) {
            storeError = errorMessage(err);
          }
          return {
            role,
            state: v.state,
            holderId: v.holderId,
            ...(v.token !== undefined ? { token: v.token.toString() } : {}),
            ...(v.activeSinceWallMs !== undefined ? { activeSince: iso(v.activeSinceWallMs) } : {}),
            ...(v.standingAsideUntilWallMs > 0
              ? { standingAsideUntil: iso(v.standingAsideUntilWallMs) }
              : {}),
            storeHolder,
            ...(storeError !== undefined ? { storeError } : {}),
            granted: grants.count(role, v.state === 'active' ? v.token : undefined),
          };
        }),
      ),
    }),
  );

  app.post(
    '/v1/roles/handover',
    {
      schema: {
        summary: 'Hand an exclusive role over gracefully (confirmed stop, then release)',
        description:
          "200 once the node's stop was confirmed and the lease released; the agent then stays out of the campaign until another holder took the role or holdOffMs passed. 404 when this agent supervises no such role, 409 when it is not active (ROLE_NOT_ACTIVE) or the stop could not be confirmed (HANDOVER_UNCONFIRMED: the lease ran out instead, and the successor waited one TTL).",
        body: documented(HandoverBodySchema),
      },
    },
    async (req, res) => {
      const body = req.body as HandoverBody;
      const sup = supervisors.get(body.role);
      if (sup === undefined)
        return res.code(404).send({
          error: {
            code: 'UNKNOWN_ROLE',
            message: `this agent supervises no role ${JSON.stringify(body.role)}`,
          },
        });
      const r = await sup.handover(body.holdOffMs);
      if (r.handedOver)
        return {
          role: body.role,
          handedOver: true,
          token: r.token.toString(),
          stoppedAt: iso(r.stoppedAtWallMs),
        };
      return res.code(409).send({
        role: body.role,
        handedOver: false,
        state: r.state,
        error: {
          code: r.reason === 'not_active' ? 'ROLE_NOT_ACTIVE' : 'HANDOVER_UNCONFIRMED',
          message:
            r.reason === 'not_active'
              ? `this agent is not the active holder of ${body.role} (state: ${r.state})`
              : `the stop was not confirmed${r.detail ? `: ${r.detail}` : ''}; the lease ran out instead`,
        },
      });
    },
  );
}
