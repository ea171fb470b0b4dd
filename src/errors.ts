/**
 * Every error Vigil raises on purpose carries a stable code (for logs, metrics and scripts)
 * and, where there is one, what the operator should do about it.
 */
export class VigilError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(hint ? `${message} (${hint})` : message, options);
    this.name = new.target.name;
  }
}

/** A request, file or setting that does not have the expected shape. Nothing was changed. */
export class InputError extends VigilError {
  constructor(message: string, hint?: string, code = 'INVALID_INPUT') {
    super(code, message, hint);
  }
}

/** The watermark store could not be reached or did not confirm a write: nothing may be signed. */
export class StoreUnavailableError extends VigilError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) {
    super('STORE_UNAVAILABLE', message, hint, options);
  }
}

/**
 * The store reached is not the one this agent's watermarks were built against (a replaced or
 * deleted SQLite file, another or a rebuilt etcd cluster), or it was never initialised.
 * Nothing may be signed until an operator settles which store is the true one.
 */
export class StoreIdentityError extends VigilError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) {
    super('STORE_IDENTITY', message, hint, options);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
