/** The exclusive-role supervisor: only the lease holder runs the role. */
export { ActionSchema, describeAction, runAction, type Action, ActionError } from './actions.js';
export {
  SupervisorConfigSchema,
  defaultHolderId,
  MAX_HOLD_OFF_MS,
  type HandoverOutcome,
  type RoleView,
  startSupervisor,
  type Supervisor,
  type SupervisorConfig,
  type SupervisorConfigInput,
  type SupervisorEvent,
  type SupervisorState,
} from './supervisor.js';
