/**
 * The contract between the request pipeline and its filters: what a filter reads and may change
 * on the request, how it answers locally, and what it reports (metrics, audit logs).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CompiledRateLimitRule, RateLimitRequest } from '../../snapshot/types.ts';
import type { JwksStore } from './jwks-store.ts';
import type { PolicyDecisionSink } from '../../observability/policy-metrics.ts';
import type { Limiter, LimitCheck, RemoteLimiter } from '../../ratelimit/limits.ts';
import type { LocalStore } from '../../ratelimit/local-store.ts';

/** Upstream request header changes a filter asks for (applied once, by the forwarder). */
export interface HeaderEdits {
  /** Lowercase names removed from the client's headers. */
  readonly remove: readonly string[];
  /** Lowercase name, value: replaces any client header of that name. */
  readonly set: readonly (readonly [string, string])[];
}

/** What filters read and write on a request (dataplane/request-context.ts implements it). */
export interface FilterContext extends RateLimitRequest {
  readonly req: IncomingMessage;
  /** Destroyed when the client went away: a filter finishing late must not answer. */
  readonly res: ServerResponse;
  /** x-request-id as forwarded (assigned before routing). */
  readonly requestId: string;
  /** Wall-clock ms the request arrived. */
  readonly startTimeMs: number;
  /** Set once a reply has started: a filter finishing late must not answer. */
  readonly finished: boolean;
  /** Route matching sees JWT claims once jwt_authn accepted a token (VS-9). */
  claims: Readonly<Record<string, unknown>> | null;
  /** Flat name/value list added to the response the client gets; null = none. */
  responseHeadersToAdd: string[] | null;
  /** Body bytes a filter read ahead (ext_authz with the body); the forwarder sends them first. */
  bodyPrefix: Buffer | null;
  /** The fault filter delayed this request: DI joins the response flags when it is done. */
  delayInjected: boolean;
  /** Rate-limit rules a table filter left for the route's (RateLimitFilter.defer); null = none. */
  deferredLimits: CountedLimit[] | null;
}

/** A local answer a filter gives instead of letting the request go on. */
export interface FilterReply {
  readonly status: number;
  readonly body: Buffer | null;
  /** Extra response headers (flat), e.g. www-authenticate. */
  readonly headers: readonly string[] | null;
  /** Response flag for the access log ('-' = none). */
  readonly flag: string;
  readonly details: string;
  /**
   * gRPC requests get this grpc-status (HTTP 200, no body, `grpc-message` from the body) instead
   * of `status`: the fault filter's gRPC abort. Absent = an ordinary local reply.
   */
  readonly grpcStatus?: number;
  /**
   * Written as Envoy's CORS filter answers a preflight: headers only, not a local reply, so the
   * route's response header operations do not apply. Absent = a local reply.
   */
  readonly headersOnly?: true;
}

/** A filter that failed (threw, or its promise rejected): 500, never the request let on. */
export const FILTER_FAILED: FilterReply = {
  status: 500,
  body: Buffer.from('Internal Server Error'),
  headers: null,
  flag: '-',
  details: 'filter_failed',
};

/**
 * A filter's outcome that comes later, without a promise: what a filter on the hot path returns
 * when it waits (the Global rate-limit store answers a whole batch of requests in one reply, and
 * a promise per request would add two microtask hops, three promises and their closures to each).
 * The filter (or what it waits on) calls `settle` once; the pipeline calls `whenSettled` once,
 * right after the filter returned, and resumes the request in the call to `settle`, so whoever
 * settles must not be inside code an exception may not cross (the pipeline catches its own).
 */
export class Later {
  #resume: ((r: FilterReply | null) => void) | null = null;
  #settled = false;
  #early: FilterReply | null = null;

  settle(r: FilterReply | null): void {
    if (this.#settled) return;
    this.#settled = true;
    const resume = this.#resume;
    if (resume === null) this.#early = r;
    else resume(r);
  }

  whenSettled(resume: (r: FilterReply | null) => void): void {
    if (this.#settled) resume(this.#early);
    else this.#resume = resume;
  }
}

/** What the pipeline needs besides the snapshot: long-lived state of this process. */
export interface FilterRuntime {
  readonly jwks: JwksStore;
  /** Metrics and audit logs of decisions; null = not observed. */
  readonly observer: PolicyDecisionSink | null;
  readonly now: () => number;
  /** Rate-limit stores; null where no RateLimitPolicy can apply (tests, explain). */
  readonly rateLimit: RateLimitRuntime | null;
}

// ---------------------------------------------------------------- rate limits

/** A rate-limit rule that counts this request, with its bucket. */
export interface CountedLimit {
  readonly rule: CompiledRateLimitRule;
  readonly check: LimitCheck;
}

export type RateLimitResult = 'ok' | 'over_limit' | 'shadow_over_limit' | 'exempt' | 'error' | 'fallback';

/** Decisions and store health, counted by observability/ratelimit-metrics.ts. */
export interface RateLimitSink {
  decision(policy: string, rule: string, result: RateLimitResult): void;
}

/** The stores a process has; `global` follows the snapshot's MeshConfig redis (null = none). */
export interface RateLimitRuntime {
  /** Process-wide: in-process, or the --workers primary's over the worker channel. */
  readonly local: Limiter;
  /** Decides, in this process and at once, while the Global store cannot answer (failureMode Open). */
  readonly fallback: LocalStore;
  global: RemoteLimiter | null;
  readonly observer: RateLimitSink | null;
}
