/**
 * The watchdog's configuration file (`vigil watchdog --config <file>`), validated with zod.
 * Relative paths in it are the operator's business: use absolute ones (a systemd unit runs
 * with / as its working directory).
 */
import { z } from 'zod';
import { loadYamlFile } from '../config/yaml-file.js';
import { ActionSchema, ConfirmCheckSchema, SIGNALS } from '../supervisor/actions.js';

/** The role's actions, plus one only the watchdog has: a signal to the node it runs. */
export const WatchdogActionSchema = z.union([
  ActionSchema,
  z.object({ signalNode: z.enum(SIGNALS) }).strict(),
]);
export type WatchdogAction = z.output<typeof WatchdogActionSchema>;

export const WatchdogConfigSchema = z
  .object({
    role: z.string().regex(/^[A-Za-z0-9._:/-]{1,128}$/),
    /** The unix socket the agent connects to; created by the watchdog, mode `socketMode`. */
    socket: z.string().min(1).max(100),
    /** Octal, e.g. "0660" when the agent runs as another user of the socket's group. */
    socketMode: z
      .string()
      .regex(/^0?[0-7]{3}$/)
      .default('0600'),
    /** The node, run as the watchdog's child: it lives and dies with the watchdog. */
    node: z
      .object({
        run: z.array(z.string().min(1)).min(1),
        /** After the node exits, it is started again (inactive) after this pause. */
        restartDelayMs: z.number().int().min(0).max(600_000).default(1000),
      })
      .strict()
      .optional(),
    activate: z.array(WatchdogActionSchema).min(1),
    deactivate: z.array(WatchdogActionSchema).min(1),
    /**
     * When deactivation counts as done: the node process exited (`nodeExited: true`), or a
     * check command exits 0. Until then the lease is not handed back.
     */
    confirm: z.union([z.object({ nodeExited: z.literal(true) }).strict(), ConfirmCheckSchema]),
    /**
     * Run when the lease deadline passes and deactivation is not confirmed: past it, a
     * successor may be active. Default: SIGKILL the child node.
     */
    kill: z.array(WatchdogActionSchema).min(1).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const usesNode = [...c.activate, ...c.deactivate, ...(c.kill ?? [])].some(
      (a) => 'signalNode' in a,
    );
    if (!c.node && usesNode)
      ctx.addIssue({
        code: 'custom',
        path: ['node'],
        message: 'signalNode needs a `node` to signal',
      });
    if (!c.node && 'nodeExited' in c.confirm)
      ctx.addIssue({
        code: 'custom',
        path: ['confirm'],
        message: "nodeExited needs the node to run as the watchdog's child (`node.run`)",
      });
    if (!c.node && !c.kill)
      ctx.addIssue({
        code: 'custom',
        path: ['kill'],
        message:
          'without a child `node`, say how to stop the node for sure at the deadline (e.g. SIGKILL its systemd unit)',
      });
  });
export type WatchdogConfig = z.output<typeof WatchdogConfigSchema>;
export type WatchdogConfigInput = z.input<typeof WatchdogConfigSchema>;

export function loadWatchdogConfig(file: string): WatchdogConfig {
  return loadYamlFile(file, WatchdogConfigSchema);
}
