/**
 * The submission protocol `/vigil/registry/submit/1.0.0` (issue 15, item 3).
 *
 * A node opens a stream to a validator and writes one length-prefixed frame, its encoded
 * self-signed submission (src/registry/record.ts); the validator writes one length-prefixed
 * frame back, JSON: `{"ok":true,"seq":"<decimal>","duplicate":bool}` or
 * `{"ok":false,"code":"REGISTRY_…","message":"…"}`. Both frames are bounded (`lpStream` has no
 * default limit): a request over the record envelope limit is refused before it is buffered.
 *
 * The validator, in this order: the per-peer rate limit; the admission policy (allow-list or
 * hook) on the authenticated remote peer; the frame; the record's subject must be the remote
 * peer (noise authenticated it), so no node submits another's record; then RegistryStore.submit
 * (signature, expiry, sequence, flags; one transaction per subject). Every answer is counted
 * in `vigil_registry_submissions_total{result}`. OpenTelemetry spans (exported when the node's
 * config has `telemetry.otlp`, src/registry/telemetry.ts): `registry.submit` (server) around
 * the validator's whole answer, with its child `registry.store.commit`, and
 * `registry.submit.send` (client) around a node's submission to a validator.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import { RateLimiter, lpStream } from '@libp2p/utils';
import type { Multiaddr } from '@multiformats/multiaddr';
import { Counter, type Registry } from 'prom-client';
import { z } from 'zod';
import { VigilError, errorMessage } from '../errors.js';
import { LIMITS, RegistryError, decodeSubmission, type RegistryErrorCode } from './record.js';
import type { RegistryStore } from './store.js';
import type { RegistryLibp2p } from './node.js';

export const SUBMIT_PROTOCOL = '/vigil/registry/submit/1.0.0';
/** An answer is a short JSON object; anything longer is not one. */
const MAX_ANSWER_BYTES = 1024;
const tracer = trace.getTracer('vigil-registry');

const AnswerSchema = z.discriminatedUnion('ok', [
  z.object({
    ok: z.literal(true),
    seq: z.string().regex(/^[1-9]\d{0,19}$/),
    duplicate: z.boolean(),
  }),
  z.object({ ok: z.literal(false), code: z.string().max(64), message: z.string().max(512) }),
]);
type Answer = z.infer<typeof AnswerSchema>;

export interface AdmissionPolicy {
  /** Answers whether `peer` may submit; a hook may look anything up. */
  (peer: PeerId): boolean | Promise<boolean>;
}

export const allowListAdmission =
  (peerIds: readonly string[]): AdmissionPolicy =>
  (peer) =>
    peerIds.includes(peer.toString());

export interface SubmitServiceOptions {
  readonly node: RegistryLibp2p;
  readonly store: RegistryStore;
  readonly metrics: Registry;
  /** Undefined admits every peer that proves its identity. */
  readonly admission?: AdmissionPolicy;
  /** Submissions per peer per `rateWindowS` seconds (default 5 per 10 s). */
  readonly ratePoints?: number;
  readonly rateWindowS?: number;
  /** The whole exchange (default 5 s). */
  readonly timeoutMs?: number;
  /** Told of each committed record (the validator's distribution publishes from the store). */
  readonly onCommitted?: (subject: string, seq: bigint) => void;
}

export type SubmitResult =
  | 'committed'
  | 'duplicate'
  | 'rate_limited'
  | 'not_admitted'
  | 'subject_mismatch'
  | 'too_large'
  | 'refused'
  | 'error';

export class SubmitService {
  private readonly limiter: RateLimiter;
  private readonly submissions: Counter<'result'>;
  private lastOkMs = 0;
  private lastError: string | undefined;

  constructor(private readonly o: SubmitServiceOptions) {
    this.limiter = new RateLimiter({ points: o.ratePoints ?? 5, duration: o.rateWindowS ?? 10 });
    this.submissions = new Counter({
      name: 'vigil_registry_submissions_total',
      help: 'Registry submissions answered by this validator, by result',
      labelNames: ['result'],
      registers: [o.metrics],
    });
  }

  async start(): Promise<void> {
    await this.o.node.handle(SUBMIT_PROTOCOL, (stream, connection) =>
      this.serve(stream, connection),
    );
  }

  async stop(): Promise<void> {
    await this.o.node.unhandle(SUBMIT_PROTOCOL);
  }

  /** Ready while the last store write did not fail (no answer yet counts as ready). */
  health(): { ok: boolean; detail: string } {
    return this.lastError === undefined
      ? { ok: true, detail: this.lastOkMs ? 'last commit ok' : 'no submission yet' }
      : { ok: false, detail: this.lastError };
  }

  private async serve(stream: Stream, connection: Connection): Promise<void> {
    const signal = AbortSignal.timeout(this.o.timeoutMs ?? 5000);
    const lp = lpStream(stream, { maxDataLength: LIMITS.envelopeBytes });
    const peer = connection.remotePeer;
    await tracer.startActiveSpan(
      'registry.submit',
      {
        kind: SpanKind.SERVER,
        attributes: { 'vigil.registry.peer': peer.toString(), 'rpc.method': SUBMIT_PROTOCOL },
      },
      async (span) => {
        let answer: Answer;
        let result: SubmitResult;
        try {
          ({ answer, result } = await this.decide(lp, peer, signal, span));
        } catch (err) {
          const code = err instanceof VigilError ? err.code : 'REGISTRY_UNAVAILABLE';
          answer = { ok: false, code, message: errorMessage(err).slice(0, 512) };
          result = 'error';
        }
        span.setAttribute('vigil.registry.result', result);
        if (!answer.ok) {
          span.setAttribute('vigil.registry.refusal', answer.code);
          span.setStatus({ code: SpanStatusCode.ERROR, message: answer.code });
        } else span.setAttribute('vigil.registry.seq', answer.seq);
        this.submissions.inc({ result });
        try {
          await lp.write(new TextEncoder().encode(JSON.stringify(answer)), { signal });
          await stream.close({ signal });
        } catch (err) {
          stream.abort(err instanceof Error ? err : new Error(String(err)));
        } finally {
          span.end();
        }
      },
    );
  }

  /** The store commit, as a child span of the submission's. */
  private async commit(bytes: Uint8Array, subject: string, parent: Span) {
    const span = tracer.startSpan(
      'registry.store.commit',
      { attributes: { 'vigil.registry.subject': subject } },
      trace.setSpan(ROOT_CONTEXT, parent),
    );
    try {
      const committed = await this.o.store.submit(bytes);
      span.setAttribute('vigil.registry.seq', committed.seq.toString());
      span.setAttribute('vigil.registry.duplicate', committed.duplicate);
      return committed;
    } catch (err) {
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: err instanceof VigilError ? err.code : errorMessage(err),
      });
      throw err;
    } finally {
      span.end();
    }
  }

  private async decide(
    lp: ReturnType<typeof lpStream<Stream>>,
    peer: PeerId,
    signal: AbortSignal,
    parent: Span,
  ): Promise<{ answer: Answer; result: SubmitResult }> {
    const refuse = (code: RegistryErrorCode | string, message: string, result: SubmitResult) => ({
      answer: { ok: false as const, code, message: message.slice(0, 512) },
      result,
    });
    try {
      this.limiter.consume(peer.toString());
    } catch {
      return refuse('REGISTRY_RATE_LIMITED', `${peer}: too many submissions`, 'rate_limited');
    }
    try {
      if (this.o.admission && !(await this.o.admission(peer)))
        return refuse('REGISTRY_NOT_ADMITTED', `${peer} is not admitted`, 'not_admitted');
    } catch (err) {
      // A hook's typed refusal (a validator removed from the set takes no submissions) is an
      // answer, counted as a refusal; anything else is the hook failing.
      if (err instanceof VigilError && err.code.startsWith('REGISTRY_'))
        return refuse(err.code, err.message, 'refused');
      throw err;
    }
    let bytes: Uint8Array;
    try {
      bytes = (await lp.read({ signal })).subarray();
    } catch (err) {
      if (err instanceof Error && err.name === 'InvalidDataLengthError')
        return refuse(
          'REGISTRY_RECORD_TOO_LARGE',
          `the submission is over the ${LIMITS.envelopeBytes}-byte limit`,
          'too_large',
        );
      throw err;
    }
    const span = parent;
    try {
      const s = decodeSubmission(bytes);
      if (s.peerId !== peer.toString())
        return refuse(
          'REGISTRY_SUBJECT_MISMATCH',
          `${peer} submitted a record for ${s.peerId}; a node submits only its own record`,
          'subject_mismatch',
        );
      span.setAttribute('vigil.registry.prev_seq', s.content.prevSeq.toString());
      const committed = await this.commit(bytes, s.peerId, parent);
      this.lastOkMs = Date.now();
      this.lastError = undefined;
      if (!committed.duplicate) this.o.onCommitted?.(s.peerId, committed.seq);
      return {
        answer: { ok: true, seq: committed.seq.toString(), duplicate: committed.duplicate },
        result: committed.duplicate ? 'duplicate' : 'committed',
      };
    } catch (err) {
      if (err instanceof RegistryError) return refuse(err.code, err.message, 'refused');
      this.lastError = errorMessage(err);
      throw err;
    }
  }
}

export interface Submitted {
  readonly seq: bigint;
  readonly duplicate: boolean;
}

/**
 * Submits `submission` (encoded) to a validator and answers the committed seq; a refusal is
 * thrown as the RegistryError (or VigilError) with the validator's code.
 */
export async function submitToValidator(
  node: RegistryLibp2p,
  validator: PeerId | Multiaddr,
  submission: Uint8Array,
  options: { timeoutMs?: number } = {},
): Promise<Submitted> {
  const span = tracer.startSpan('registry.submit.send', {
    kind: SpanKind.CLIENT,
    attributes: { 'vigil.registry.validator': validator.toString() },
  });
  try {
    const r = await sendSubmission(node, validator, submission, options);
    span.setAttribute('vigil.registry.seq', r.seq.toString());
    span.setAttribute('vigil.registry.duplicate', r.duplicate);
    return r;
  } catch (err) {
    const code = err instanceof VigilError ? err.code : 'REGISTRY_UNAVAILABLE';
    span.setAttribute('vigil.registry.refusal', code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: code });
    throw err;
  } finally {
    span.end();
  }
}

async function sendSubmission(
  node: RegistryLibp2p,
  validator: PeerId | Multiaddr,
  submission: Uint8Array,
  options: { timeoutMs?: number },
): Promise<Submitted> {
  const signal = AbortSignal.timeout(options.timeoutMs ?? 5000);
  let stream: Stream;
  try {
    stream = await node.dialProtocol(validator, SUBMIT_PROTOCOL, { signal });
  } catch (err) {
    throw new RegistryError(
      'REGISTRY_UNAVAILABLE',
      `cannot open a submission stream to ${validator.toString()}: ${errorMessage(err)}`,
      'check the validator address and that this node is allowed to connect',
    );
  }
  const lp = lpStream(stream, { maxDataLength: MAX_ANSWER_BYTES });
  let raw: Uint8Array;
  try {
    await lp.write(submission, { signal });
    raw = (await lp.read({ signal })).subarray();
    await stream.close({ signal }).catch(() => undefined);
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)));
    throw new RegistryError(
      'REGISTRY_UNAVAILABLE',
      `the validator ${validator.toString()} did not answer: ${errorMessage(err)}`,
    );
  }
  let answer: Answer;
  try {
    answer = AnswerSchema.parse(JSON.parse(new TextDecoder().decode(raw)));
  } catch (err) {
    throw new RegistryError(
      'REGISTRY_UNAVAILABLE',
      `the validator's answer is not a registry answer: ${errorMessage(err)}`,
    );
  }
  if (!answer.ok) throw new VigilError(answer.code, answer.message);
  return { seq: BigInt(answer.seq), duplicate: answer.duplicate };
}

/** Whether `err` is a refusal with `code` (a validator's answer or a local check). */
export function isRefusal(err: unknown, code: string): boolean {
  return err instanceof VigilError && err.code === code;
}
