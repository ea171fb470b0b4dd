/** The watchdog process that stops a supervised node at its lease deadline. */
export { WatchdogClient, WatchdogUnavailableError } from './client.js';
export { monoNs, perfToMonoNs } from './clock.js';
export {
  WatchdogConfigSchema,
  loadWatchdogConfig,
  type WatchdogConfig,
  type WatchdogConfigInput,
} from './config.js';
export * from './protocol.js';
export { Watchdog, type WatchdogState } from './watchdog.js';
