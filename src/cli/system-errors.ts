/**
 * Turns the operating system's errors that an operator causes (a port already taken, a path
 * that does not exist or may not be written) into coded Vigil errors with a hint, so the CLI
 * never answers a user's mistake with a stack trace. Anything else is left as it is.
 */
import { VigilError } from '../errors.js';

interface SystemError {
  code: string;
  syscall?: string;
  path?: string;
  address?: string;
  port?: number;
  message: string;
}

function isSystemError(err: unknown): err is SystemError {
  return (
    err instanceof Error &&
    typeof (err as Partial<SystemError>).code === 'string' &&
    /^E[A-Z]+$/.test((err as unknown as SystemError).code)
  );
}

function where(e: SystemError): string {
  if (e.address !== undefined) return e.port !== undefined ? `${e.address}:${e.port}` : e.address;
  return e.path ?? '';
}

export function fromSystemError(err: unknown): VigilError | undefined {
  if (!isSystemError(err)) return undefined;
  const at = where(err);
  switch (err.code) {
    case 'EADDRINUSE':
      return new VigilError(
        'ADDRESS_IN_USE',
        `cannot listen on ${at || 'the configured address'}: another process already listens there`,
        'stop that process (another agent?) or change the listen address or port in the config',
      );
    case 'EADDRNOTAVAIL':
      return new VigilError(
        'ADDRESS_NOT_AVAILABLE',
        `cannot listen on ${at}: no interface of this host has that address`,
        'listen on 127.0.0.1 or on an address of this host',
      );
    case 'ENOENT':
      return new VigilError(
        'PATH_NOT_FOUND',
        `${at || 'a file or directory'} does not exist (${err.syscall ?? 'open'})`,
        'check the path; relative paths in a config file are resolved against its directory',
      );
    case 'EACCES':
    case 'EPERM':
      return new VigilError(
        'PERMISSION_DENIED',
        `${err.syscall === 'listen' || err.syscall === 'bind' ? `cannot listen on ${at}` : `no permission for ${at}`}`,
        err.syscall === 'listen' || err.syscall === 'bind'
          ? 'ports below 1024 need root or CAP_NET_BIND_SERVICE; use a higher port'
          : 'check the owner and mode of the path and of the directories above it',
      );
    case 'ENOTDIR':
    case 'EISDIR':
      return new VigilError(
        'PATH_WRONG_KIND',
        `${at}: ${err.code === 'EISDIR' ? 'is a directory, a file was expected' : 'a part of the path is not a directory'}`,
        'check the path',
      );
    case 'ENOSPC':
      return new VigilError('DISK_FULL', `no space left on the device holding ${at}`, 'free space');
    default:
      return undefined;
  }
}
