/**
 * Where the agent's config file is when `--config` is not given: `$VIGIL_CONFIG`, else
 * `/etc/vigil/agent.yaml` (the path `vigil plan` renders for its hosts). Shared by every
 * command that reads the agent config.
 */
import { existsSync } from 'node:fs';
import { Option } from 'commander';
import { VigilError } from '../errors.js';

export const DEFAULT_CONFIG_PATH = '/etc/vigil/agent.yaml';
export const CONFIG_ENV = 'VIGIL_CONFIG';

/** `--config <file>`, optional: the help names the fallbacks. */
export function configOption(description = 'agent configuration (YAML)', short = false): Option {
  return new Option(
    `${short ? '-c, ' : ''}--config <file>`,
    `${description}; default: $${CONFIG_ENV}, else ${DEFAULT_CONFIG_PATH}`,
  );
}

/**
 * The config file to read: `--config` as given (its own errors name it), else `$VIGIL_CONFIG`,
 * else the default path. A fallback that names no file is a CONFIG_NOT_FOUND naming all three
 * ways to give one.
 */
export function resolveConfigPath(
  given: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (given !== undefined) return given;
  const ways = `pass --config <file>, set ${CONFIG_ENV}=<file>, or create ${DEFAULT_CONFIG_PATH}`;
  const fromEnv = env[CONFIG_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!existsSync(fromEnv)) {
      throw new VigilError(
        'CONFIG_NOT_FOUND',
        `${CONFIG_ENV} names ${fromEnv}, which does not exist`,
        ways,
      );
    }
    return fromEnv;
  }
  if (!existsSync(DEFAULT_CONFIG_PATH)) {
    throw new VigilError(
      'CONFIG_NOT_FOUND',
      `no config file: no --config given, ${CONFIG_ENV} is not set, and ${DEFAULT_CONFIG_PATH} does not exist`,
      ways,
    );
  }
  return DEFAULT_CONFIG_PATH;
}
