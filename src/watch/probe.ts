/**
 * What every chain watcher shares: the typed error of a probe that gave no usable answer, the
 * one HTTP fetch every probe makes (bounded, its failures typed), and one metrics set per
 * prom-client registry.
 */
import type { Registry } from 'prom-client';
import { VigilError, errorMessage } from '../errors.js';

export const PROBE_ERROR_KINDS = [
  'unreachable',
  'timeout',
  'http',
  'rpc',
  'malformed',
  'wrong_chain',
] as const;
/** Kinds only an endpoint behind TLS and a password gives (Decred's dcrwallet). */
export const SECURE_PROBE_ERROR_KINDS = ['tls', 'auth'] as const;
export type ProbeErrorKind =
  (typeof PROBE_ERROR_KINDS)[number] | (typeof SECURE_PROBE_ERROR_KINDS)[number];

/** One probe that did not give a usable answer; never escapes a poll. */
export class ProbeError<P extends string = string> extends VigilError {
  constructor(
    readonly probe: P,
    readonly kind: ProbeErrorKind,
    message: string,
  ) {
    super(`WATCH_PROBE_${kind.toUpperCase()}`, `${probe}: ${message}`);
  }
}

/** The most specific message of a failed fetch (undici puts the socket error in `cause`). */
function causeOf(err: unknown): string {
  const cause = err instanceof Error ? (err as Error & { cause?: unknown }).cause : undefined;
  return cause !== undefined ? errorMessage(cause) : errorMessage(err);
}

/**
 * GETs `url` (or POSTs `jsonBody`, a JSON-RPC request over HTTP) within `timeoutMs` and answers
 * its status and body text; no answer at all is a ProbeError `timeout` or `unreachable`. The
 * status is the caller's to judge.
 */
export async function fetchProbe<P extends string>(
  fetchFn: typeof globalThis.fetch,
  probe: P,
  url: string,
  timeoutMs: number,
  accept: string,
  jsonBody?: string,
): Promise<{ readonly status: number; readonly ok: boolean; readonly text: string }> {
  try {
    const res = await fetchFn(
      url,
      jsonBody === undefined
        ? { signal: AbortSignal.timeout(timeoutMs), headers: { accept } }
        : {
            method: 'POST',
            signal: AbortSignal.timeout(timeoutMs),
            headers: { accept, 'content-type': 'application/json' },
            body: jsonBody,
          },
    );
    return { status: res.status, ok: res.ok, text: await res.text() };
  } catch (err) {
    const timeout = err instanceof Error && err.name === 'TimeoutError';
    throw new ProbeError(
      probe,
      timeout ? 'timeout' : 'unreachable',
      timeout ? `no answer within ${timeoutMs} ms` : causeOf(err),
    );
  }
}

/** `make` once per registry: several watchers share one metrics set, one chain_id each. */
export function perRegistry<T>(make: (registry: Registry) => T): (registry: Registry) => T {
  const made = new WeakMap<Registry, T>();
  return (registry) => {
    let m = made.get(registry);
    if (m === undefined) {
      m = make(registry);
      made.set(registry, m);
    }
    return m;
  };
}

/**
 * A watcher's poll loop: `poll` now, then `intervalMs` after each poll ends (a slow poll is
 * never overlapped by the next); `stop` waits for a poll in flight.
 */
export class PollLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(
    private readonly poll: () => Promise<unknown>,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    const loop = async () => {
      if (this.stopped) return;
      this.running = this.poll();
      await this.running;
      if (!this.stopped) this.timer = setTimeout(() => void loop(), this.intervalMs);
    };
    void loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
