/** The simulated chain unit's process config and status file (see sim-unit-main.ts). */
import { z } from 'zod';

export const SimUnitProcessConfigSchema = z.strictObject({
  name: z.string().min(1),
  unit: z.string().min(1),
  statusFile: z.string().min(1),
  listeners: z.array(
    z.strictObject({
      purpose: z.string(),
      bind: z.string().min(1),
      port: z.number().int().min(1).max(65535),
      http: z.boolean().optional(),
    }),
  ),
  peers: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/)),
});
export type SimUnitProcessConfig = z.input<typeof SimUnitProcessConfigSchema>;

export interface SimUnitStatus {
  readonly name: string;
  readonly unit: string;
  readonly pid: number;
  readonly listening: readonly string[];
  readonly peersConnected: readonly string[];
  readonly inbound: number;
}
