/**
 * Where a registry node's OpenTelemetry spans go (issue 15, item 6: spans on the submission
 * path). `src/registry/submit.ts` makes them through @opentelemetry/api, which drops them
 * unless a tracer provider is installed; with `telemetry.otlp` in the node's config,
 * `vigil registry run` installs one: the SDK's BasicTracerProvider with a BatchSpanProcessor
 * and the OTLP/HTTP exporter (@opentelemetry/exporter-trace-otlp-http 0.223, which POSTs
 * OTLP JSON to `<endpoint>/v1/traces`). Stopping the node flushes what is buffered.
 *
 * No context manager is registered (that needs async hooks for the whole process); parent
 * spans are passed explicitly where one span has children (submit.ts).
 */
import { trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { VigilError } from '../errors.js';

export interface OtlpSettings {
  readonly endpoint: string;
  readonly tracesEndpoint: boolean;
  readonly headers: Readonly<Record<string, string>>;
  readonly serviceName: string;
  readonly timeoutMs: number;
}

export interface RegistryTelemetry {
  /** Where spans are sent. */
  readonly url: string;
  /** Exports what is buffered, then uninstalls the provider. */
  shutdown(): Promise<void>;
}

/** The traces URL: `<endpoint>/v1/traces`, as OTEL_EXPORTER_OTLP_ENDPOINT is read, or as given. */
export function tracesUrl(o: Pick<OtlpSettings, 'endpoint' | 'tracesEndpoint'>): string {
  return o.tracesEndpoint ? o.endpoint : `${o.endpoint.replace(/\/+$/, '')}/v1/traces`;
}

/**
 * Installs the process's global tracer provider exporting to `o`. One per process: a second
 * call before shutdown() is refused rather than silently ignored (the API keeps the first).
 */
export function startRegistryTelemetry(
  o: OtlpSettings,
  node: { peerId: string; role: string },
): RegistryTelemetry {
  const url = tracesUrl(o);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': o.serviceName,
      'service.instance.id': node.peerId,
      'vigil.registry.role': node.role,
    }),
    spanProcessors: [
      new BatchSpanProcessor(
        new OTLPTraceExporter({ url, headers: { ...o.headers }, timeoutMillis: o.timeoutMs }),
        // Spans of a submission leave within a second, in batches.
        { scheduledDelayMillis: 1000, exportTimeoutMillis: o.timeoutMs },
      ),
    ],
  });
  if (!trace.setGlobalTracerProvider(provider))
    throw new VigilError(
      'REGISTRY_TELEMETRY',
      'an OpenTelemetry tracer provider is already installed in this process',
      'run one registry node per process with telemetry.otlp',
    );
  return {
    url,
    shutdown: async () => {
      try {
        await provider.shutdown();
      } finally {
        trace.disable();
      }
    },
  };
}
