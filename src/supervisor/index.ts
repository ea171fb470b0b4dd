/** The exclusive-role supervisor: only the lease holder runs the role. */
export { ActionSchema, describeAction, runAction, type Action, ActionError } from './actions.js';
export {
  SupervisorConfigSchema,
  defaultHolderId,
  startSupervisor,
  type Supervisor,
  type SupervisorConfig,
  type SupervisorConfigInput,
  type SupervisorEvent,
  type SupervisorState,
} from './supervisor.js';
