/**
 * Streaming forward of one downstream request to a cluster: header rewrite (hop-by-hop, DP-1),
 * endpoint pick, undici dispatch with a handler object, backpressure both ways, retries
 * (VS-23..25), route and per-try timeouts (VS-22), WebSocket upgrades (DP-9).
 *
 * Bodies are never buffered: the request body is the IncomingMessage handed to undici (which
 * pauses it when the upstream socket is full); the response body is written chunk by chunk and
 * undici is paused (onData returns false) until the ServerResponse drains. The handler uses
 * undici's raw-header (legacy) handler interface: it is what the client calls natively, so no
 * wrapper or header object is allocated per response.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable, type Duplex } from 'node:stream';
import type {
  Cluster,
  ErrorPages,
  ForwardAction,
  Route,
  Snapshot,
  WeightedCluster,
} from '../snapshot/types.ts';
import {
  groupFor,
  leaveQueue,
  releaseSlot,
  sendOnHost,
  type Slot,
  type SlotUser,
  type UpstreamHost,
  type Waiter,
} from './pools.ts';
import { hostSetOf, pickHost, type HostSet } from './endpoints.ts';
import { requestHash, type RequestHash } from './hash-policy.ts';
import { recordLocal, recordStatus } from './outlier.ts';
import {
  classifyUpstreamError,
  failureFlag,
  PER_TRY_TIMEOUT,
  type UpstreamFailure,
} from './upstream-error.ts';
import { backoffMs, retryCoversFailure, retryCoversStatus } from './retry.ts';
import { applyRouteAndDestinationOps, removeHeader, replaceHeaders } from './header-ops.ts';
import type { FinishedRequest } from '../observability/finished-request.ts';
import { peerAddress, trustedClientAddress } from '../observability/request-facts.ts';
import { createGrpcExchange, isGrpcContentType, parseGrpcTimeout, type GrpcExchange } from '../util/grpc.ts';
import { connectionNominated } from '../util/connection-header.ts';
import { addTrailers, endWithHeaders, expectTrailers } from './trailers.ts';
import { startMirrors } from './mirror.ts';
import { challengesOf, errorRequestHeaders, nginxFailureStatus } from './error-pages.ts';
import {
  Base64RequestBody,
  bridgeResponseData,
  bridgeResponseHead,
  bridgeTrailers,
  plainResponseEnd,
  type GrpcWebBridge,
} from './grpc-web.ts';

/**
 * What forward needs of the per-request context (dataplane/request-context.ts implements it;
 * upstream/ may not import dataplane/). It is also what header templates read (FinishedRequest).
 */
export interface ForwardContext extends FinishedRequest {
  readonly snapshot: Snapshot;
  route: Route | null;
  /** WebSocket: the raw client socket and the bytes read past the request head. */
  readonly upgradeSocket: Duplex | null;
  readonly upgradeHead: Buffer | null;
  /** Response headers a filter added (ext_authz on allow); they replace the upstream's. */
  readonly responseHeadersToAdd: readonly string[] | null;
  /** Body bytes a filter read ahead (ext_authz with the body): sent first, then the rest. */
  readonly bodyPrefix: Buffer | null;

  clusterName: string | null;
  upstreamHost: UpstreamHost | null;
  status: number;
  responseFlags: string;
  responseDetails: string;
  attempts: number;
  upstreamStartMs: number;
  upstreamServiceTimeMs: number;
  /** Set once the final response (or a local reply) has started; nothing else may answer. */
  finished: boolean;
  /** gRPC requests: status and message counts (DP-7); null for everything else. */
  grpc: GrpcExchange | null;
  /** A gRPC-Web request bridged to gRPC (dataplane/grpc-web.ts); null for everything else. */
  grpcWeb: GrpcWebBridge | null;
  /** Envoy's `transport failure reason` of a failed TLS connection (DR-8), else null. */
  transportFailureReason: string | null;

  // forward's own per-request state, initialised to null/0 by the context factory
  fwd: ForwardState | null;
}

/** Local reply for an upstream failure; provided by the data plane (local-reply.ts). */
export type FailureReply = (ctx: ForwardContext, failure: UpstreamFailure, retried: boolean) => void;
export type PlainReply = (
  ctx: ForwardContext,
  status: number,
  flag: string,
  details: string,
  body: Buffer | null,
) => void;

export interface ForwardState {
  readonly action: ForwardAction;
  readonly dest: WeightedCluster;
  readonly cluster: Cluster;
  readonly headers: string[];
  /** Index of the x-envoy-attempt-count value in `headers`. */
  readonly attemptCountIndex: number;
  readonly upstreamPath: string;
  /** The request carries a body (Content-Length > 0 or Transfer-Encoding). */
  readonly hasBody: boolean;
  /** The route timeout for this request: VS-22's, or a gRPC request's `grpc-timeout` capped by it. */
  readonly timeoutMs: number | null;
  readonly onFailure: FailureReply;
  readonly onPlain: PlainReply;
  current: Attempt | null;
  tried: UpstreamHost[] | null;
  routeTimer: NodeJS.Timeout | null;
  retryTimer: NodeJS.Timeout | null;
  set: HostSet | null;
  /** The consistent-hash key, computed on the first attempt to a RING_HASH/MAGLEV cluster. */
  hash: RequestHash | null;
  hashed: boolean;
  /** A retry of this request counts against the cluster's maxRetries (DR-6) until its outcome. */
  holdsRetry: boolean;
  /** The exchange is over: completed, answered locally, failed or abandoned. */
  over: boolean;
  /**
   * An ingress-nginx error page request (custom-http-errors) in place of the route's answer:
   * the upstream headers its answer keeps (a 401's WWW-Authenticate); null for every other exchange.
   */
  errorPage: { readonly keep: readonly string[] | null } | null;
}

const kAttempt = Symbol('sluice.attempt');
const kCtx = Symbol('sluice.ctx');

type WithAttempt = ServerResponse & { [kAttempt]?: Attempt | null; [kCtx]?: ForwardContext };

// ---------------------------------------------------------------- request headers

/** Names whose first letter may need a closer look; everything else is copied unread. */
function firstCharInteresting(c: number): boolean {
  // c, e, g, h, k, p, t, u, x (either case)
  const l = c | 0x20;
  return (
    l === 99 ||
    l === 101 ||
    l === 103 ||
    l === 104 ||
    l === 107 ||
    l === 112 ||
    l === 116 ||
    l === 117 ||
    l === 120
  );
}

interface DownstreamHeaderFacts {
  xff: string | null;
  xfp: string | null;
  connection: string | null;
  hasBody: boolean;
  grpc: boolean;
  grpcTimeout: string | null;
}

/**
 * Upstream request headers (DP-1): hop-by-hop and client `x-envoy-*` removed, Host set,
 * x-forwarded-for/-proto, x-request-id, x-envoy-external-address, x-envoy-attempt-count,
 * x-envoy-original-path on rewrite, then route/destination header ops (VS-21).
 * Returns the list and the index of the attempt-count value.
 */
export function buildUpstreamHeaders(
  ctx: ForwardContext,
  action: ForwardAction,
  dest: WeightedCluster,
  originalPathIfRewritten: string | null,
  facts: DownstreamHeaderFacts,
): { headers: string[]; attemptCountIndex: number } {
  const raw = ctx.req.rawHeaders;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (!firstCharInteresting(name.charCodeAt(0))) {
      out.push(name, raw[i + 1]!);
      continue;
    }
    const lower = name.toLowerCase();
    switch (lower) {
      case 'te':
        // Envoy keeps TE only as `trailers` (gRPC servers expect it).
        if (/(?:^|,)\s*trailers\s*(?:;|,|$)/i.test(raw[i + 1]!)) out.push('te', 'trailers');
        continue;
      case 'content-type':
        facts.grpc = isGrpcContentType(raw[i + 1]!);
        out.push(name, raw[i + 1]!);
        continue;
      case 'grpc-timeout':
        facts.grpcTimeout = raw[i + 1]!;
        out.push(name, raw[i + 1]!);
        continue;
      case 'host':
      case 'keep-alive':
      case 'proxy-connection':
      case 'trailer':
      case 'upgrade':
      case 'expect':
        continue;
      case 'transfer-encoding':
        facts.hasBody = true;
        continue;
      case 'connection':
        facts.connection = facts.connection === null ? raw[i + 1]! : facts.connection + ',' + raw[i + 1]!;
        continue;
      case 'content-length':
        if (raw[i + 1] !== '0') facts.hasBody = true;
        out.push(name, raw[i + 1]!);
        continue;
      case 'x-forwarded-for':
        facts.xff = facts.xff === null ? raw[i + 1]! : facts.xff + ',' + raw[i + 1]!;
        continue;
      case 'x-forwarded-proto':
        facts.xfp = raw[i + 1]!;
        continue;
      case 'x-request-id':
        // Replaced by the id the gateway assigned before routing (ctx.requestId, DP-1).
        continue;
      default:
        // Client-sent x-envoy-* control headers are never trusted (DP-1).
        if (lower.startsWith('x-envoy-')) continue;
        out.push(name, raw[i + 1]!);
    }
  }
  if (facts.connection !== null) dropConnectionNominated(out, facts.connection);

  const settings = ctx.snapshot.settings;
  const peer = peerAddress(ctx.req);
  const trustedHops = settings.numTrustedProxies;
  out.push('host', action.authority ?? ctx.authority);
  out.push('x-forwarded-for', facts.xff === null ? peer : facts.xff + ',' + peer);
  out.push('x-forwarded-proto', trustedHops > 0 && facts.xfp !== null ? facts.xfp : ctx.scheme);
  out.push('x-request-id', ctx.requestId);
  out.push('x-envoy-external-address', trustedClientAddress(facts.xff, peer, trustedHops));
  if (originalPathIfRewritten !== null) out.push('x-envoy-original-path', originalPathIfRewritten);
  out.push('x-envoy-attempt-count', '1');
  let attemptCountIndex = out.length - 1;
  if (ctx.route !== null && (ctx.route.requestHeaders !== null || dest.requestHeaders !== null)) {
    applyRouteAndDestinationOps(
      out,
      ctx.route.requestHeaders,
      dest.requestHeaders,
      action.destinations.length === 1,
      ctx,
    );
    attemptCountIndex = out.lastIndexOf('x-envoy-attempt-count') + 1;
  }
  return { headers: out, attemptCountIndex };
}

function dropConnectionNominated(out: string[], connection: string): void {
  const names = connectionNominated(connection);
  if (names !== null) for (const name of names) removeHeader(out, name);
}

/** VS-12/VS-13 path rewrite; the query is kept. */
export function rewritePath(action: ForwardAction, path: string): string {
  const rw = action.rewrite;
  if (rw === null) return path;
  switch (rw.kind) {
    case 'full':
      return rw.replacement;
    case 'prefix': {
      const p = rw.prefix;
      const matches = rw.ignoreCase
        ? path.slice(0, p.length).toLowerCase() === p.toLowerCase()
        : path.startsWith(p);
      return matches ? rw.replacement + path.slice(p.length) : path;
    }
    case 'regex':
      return rw.pattern.replaceAll(path, rw.replacement);
  }
}

// ---------------------------------------------------------------- forward

/**
 * Starts forwarding `ctx` to `cluster`. Everything after this point answers through the
 * response itself, `onFailure` (upstream failures) or `onPlain` (other local replies).
 * `page`: the route refused the request itself (a filter's answer) with a status its
 * custom-http-errors list; the default backend's page answers instead and nothing goes upstream.
 */
export function forwardRequest(
  ctx: ForwardContext,
  action: ForwardAction,
  dest: WeightedCluster,
  cluster: Cluster,
  onFailure: FailureReply,
  onPlain: PlainReply,
  page: { readonly code: number; readonly keep: string[] | null } | null = null,
): void {
  ctx.clusterName = cluster.name;
  const newPath = rewritePath(action, ctx.path);
  const query = ctx.query;
  const upstreamPath = query === '' ? newPath : newPath + '?' + query;
  const rewritten = newPath !== ctx.path || action.rewrite !== null;
  const facts: DownstreamHeaderFacts = {
    xff: null,
    xfp: null,
    connection: null,
    hasBody: false,
    grpc: false,
    grpcTimeout: null,
  };
  const built = buildUpstreamHeaders(
    ctx,
    action,
    dest,
    rewritten ? (query === '' ? ctx.path : ctx.path + '?' + query) : null,
    facts,
  );
  if (facts.grpc) ctx.grpc = createGrpcExchange();
  const timeoutMs = facts.grpc ? grpcTimeoutMs(action.timeoutMs, facts.grpcTimeout) : action.timeoutMs;
  const state: ForwardState = {
    action,
    dest,
    cluster,
    headers: built.headers,
    attemptCountIndex: built.attemptCountIndex,
    upstreamPath,
    hasBody: facts.hasBody,
    timeoutMs,
    onFailure,
    onPlain,
    current: null,
    tried: null,
    routeTimer: null,
    retryTimer: null,
    set: null,
    hash: null,
    hashed: false,
    holdsRetry: false,
    over: false,
    errorPage: null,
  };
  ctx.fwd = state;
  const res = ctx.res as WithAttempt;
  res[kCtx] = ctx;
  res.on('close', onDownstreamClose);
  if (page !== null) return sendErrorPage(ctx, action.errorPages!, page.code, page.keep);
  // VS-27: copies for the route's mirrors, never waited for; before the first attempt reads the body.
  if (action.mirrors !== undefined && ctx.upgradeSocket === null)
    startMirrors(ctx, action.mirrors, state.headers, upstreamPath, state.hasBody, action.timeoutMs);
  if (timeoutMs !== null && timeoutMs > 0) {
    // VS-22: the route timeout starts once the whole request has been received.
    if (state.hasBody && !ctx.req.complete) {
      (ctx.req as ReqWithCtx)[kCtx] = ctx;
      ctx.req.once('end', onRequestBodyEnd);
    } else {
      state.routeTimer = setTimeout(onRouteTimeout, timeoutMs, ctx);
    }
  }
  startAttempt(ctx);
}

type ReqWithCtx = IncomingMessage & { [kCtx]?: ForwardContext };

/**
 * VS-22 for gRPC: Istio sets the route's `max_grpc_timeout` to its timeout (0 when none), so
 * Envoy uses the request's `grpc-timeout` (none = no deadline) capped by the route timeout.
 */
function grpcTimeoutMs(routeMs: number | null, header: string | null): number | null {
  const asked = parseGrpcTimeout(header);
  const cap = routeMs !== null && routeMs > 0 ? routeMs : null;
  if (asked === null) return cap;
  return cap === null ? Math.max(1, Math.ceil(asked)) : Math.min(cap, Math.max(1, Math.ceil(asked)));
}

function onRequestBodyEnd(this: ReqWithCtx): void {
  const ctx = this[kCtx];
  if (ctx === undefined || ctx.fwd === null) return;
  const state = ctx.fwd;
  const ms = state.timeoutMs;
  // Nothing to time once the exchange is over (answered, failed or the client left).
  if (ms === null || state.routeTimer !== null || state.over) return;
  state.routeTimer = setTimeout(onRouteTimeout, ms, ctx);
}

function startAttempt(ctx: ForwardContext): void {
  const state = ctx.fwd!;
  state.retryTimer = null;
  if (ctx.finished) return;
  const set = hostSetOf(state.cluster);
  if (set instanceof Promise) {
    set.then(
      (s) => attemptWith(ctx, s),
      (err: unknown) => attemptFailed(ctx, null, err),
    );
    return;
  }
  attemptWith(ctx, set);
}

function attemptWith(ctx: ForwardContext, set: HostSet): void {
  const state = ctx.fwd!;
  if (ctx.finished) return;
  state.set = set;
  const cluster = state.cluster;
  if (!state.hashed && (cluster.lb === 'RING_HASH' || cluster.lb === 'MAGLEV')) {
    state.hashed = true;
    const policy = state.action.hashPolicy;
    state.hash = policy.length === 0 ? null : requestHash(ctx, policy);
  }
  const host = pickHost(set, state.action.retry.skipTriedHosts ? state.tried : null, state.hash);
  if (host === null) {
    // ingress-nginx's default backend stands in for a Service without endpoints.
    if (set.hosts.length === 0 && (state.errorPage !== null || state.action.errorPages !== undefined))
      return noEndpoints(ctx, set.cluster);
    // No usable endpoint (none configured, a DNS name with no answer, all ejected): 503 UH (DP-4, DR-7).
    state.onPlain(ctx, 503, 'UH', 'no_healthy_upstream', NO_HEALTHY_UPSTREAM);
    finish(ctx);
    return;
  }
  // An error page request is a plain request, whatever the client asked to upgrade to.
  const upgrade = ctx.upgradeSocket !== null && state.errorPage === null;
  const attempt = new Attempt(ctx, host, set);
  ctx.attempts += 1;
  state.headers[state.attemptCountIndex] = String(ctx.attempts);
  ctx.upstreamHost = host;
  state.current = attempt;
  host.active += 1;
  // Connections per protocol and TLS name when they depend on the request (DP-9, DR-8).
  const group = groupFor(host, ctx.req.httpVersionMajor === 2, state.headers);
  attempt.h2Upstream = group.h2 !== null;
  // A body the upstream never started reading can be retried; see canRetry.
  const body = state.hasBody && !upgrade ? requestBody(ctx) : null;
  if (body !== null && state.action.sendTimeoutMs !== undefined) watchBodyWrites(body, attempt);
  // DR-6 circuit breakers: pools.ts admits, queues or refuses under the cluster's limits.
  const admitted = sendOnHost(
    group,
    {
      path: state.upstreamPath,
      method: ctx.method,
      headers: state.headers,
      // ingress-nginx's proxy-read-timeout (0 = none: Istio routes have only the route timeout).
      headersTimeout: state.action.readTimeoutMs ?? 0,
      bodyTimeout: state.action.readTimeoutMs ?? 0,
      body,
      upgrade: upgrade ? 'websocket' : null,
    },
    attempt,
  );
  if (admitted === 'overflow') {
    attempt.released = true;
    attempt.done = true;
    host.active -= 1;
    ctx.attempts -= 1;
    state.current = null;
    return overflow(ctx);
  }
  if (ctx.attempts === 1) ctx.upstreamStartMs = performance.now();
  const perTry = state.action.retry.perTryTimeoutMs;
  if (perTry !== null && perTry > 0 && (state.timeoutMs === null || perTry < state.timeoutMs)) {
    attempt.perTryTimer = setTimeout(onPerTryTimeout, perTry, attempt);
  }
}

function headerValue(raw: readonly (Buffer | string)[], lowerName: string): string | null {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === lowerName.length && name.toString().toLowerCase() === lowerName)
      return raw[i + 1]!.toString();
  }
  return null;
}

/** The Host the upstream request carries (after rewrites and header ops). */
const NO_HEALTHY_UPSTREAM = Buffer.from('no healthy upstream');
const OVERFLOW = Buffer.from(
  'upstream connect error or disconnect/reset before headers. reset reason: overflow',
);

/** DR-6 limit hit: 503 UO with `x-envoy-overloaded: true`. */
function overflow(ctx: ForwardContext): void {
  ctx.res.setHeader('x-envoy-overloaded', 'true');
  ctx.fwd!.onPlain(ctx, 503, 'UO', 'overflow', OVERFLOW);
  finish(ctx);
}

/**
 * One try against one endpoint: an undici dispatch handler. Stale attempts (timed out, retried,
 * downstream gone) see `done` and stay silent.
 */
class Attempt implements SlotUser {
  readonly ctx: ForwardContext;
  readonly host: UpstreamHost;
  readonly set: HostSet;
  abort: ((err?: Error) => void) | null = null;
  resume: (() => void) | null = null;
  perTryTimer: NodeJS.Timeout | null = null;
  /** proxy-send-timeout: runs while a write of the request body to the upstream is blocked. */
  sendTimer: NodeJS.Timeout | null = null;
  done = false;
  released = false;
  headersSent = false;
  /** The connection may carry another request afterwards (not `connection: close`, not HEAD). */
  reusable = true;
  /** Sent over HTTP/2: the response may end with trailers. */
  h2Upstream = false;
  slot: Slot | null = null;
  waiter: Waiter | null = null;

  constructor(ctx: ForwardContext, host: UpstreamHost, set: HostSet) {
    this.ctx = ctx;
    this.host = host;
    this.set = set;
    if (ctx.method === 'HEAD') this.reusable = false;
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.done) {
      abort(new Error('request cancelled'));
      return;
    }
    this.abort = abort;
    const st = this.host.state;
    if (st.outlier !== null) recordLocal(st, this.host.health, 'connected', Date.now());
  }

  /** Queued for a connection, then refused at http2MaxRequests: 503 UO like any overflow. */
  onOverflow(): void {
    if (this.done) return;
    this.release(false);
    this.done = true;
    const ctx = this.ctx;
    if (ctx.fwd!.current !== this || ctx.finished) return;
    ctx.fwd!.current = null;
    overflow(ctx);
  }

  onHeaders(statusCode: number, rawHeaders: readonly (Buffer | string)[], resume: () => void): boolean {
    return this.respond(statusCode, rawHeaders, resume, false);
  }

  /** An HTTP/2 response that ended with its headers (gRPC trailers-only): passed on as one. */
  onHeadersOnly(statusCode: number, rawHeaders: readonly string[]): void {
    if (!this.respond(statusCode, rawHeaders, null, true)) return;
    this.onComplete(null);
  }

  /** Request body chunks as an HTTP/2 pool sends them: gRPC message counts (DP-7). */
  onRequestData(chunk: Buffer): void {
    const grpc = this.ctx.grpc;
    if (grpc !== null) grpc.requests.add(chunk);
  }

  respond(
    statusCode: number,
    rawHeaders: readonly (Buffer | string)[],
    resume: (() => void) | null,
    endStream: boolean,
  ): boolean {
    if (this.done) return false;
    const ctx = this.ctx;
    const state = ctx.fwd!;
    if (state.current !== this) return false;
    if (this.perTryTimer !== null) {
      clearTimeout(this.perTryTimer);
      this.perTryTimer = null;
    }
    const st = this.host.state;
    if (st.outlier !== null) recordStatus(st, this.host.health, statusCode, Date.now());
    const policy = state.action.retry;
    if (retryCoversStatus(policy, statusCode)) {
      if (canRetry(ctx, true)) {
        if (takeRetry(ctx)) {
          this.cancel();
          (state.tried ??= []).push(this.host);
          scheduleRetry(ctx);
          return false;
        }
        ctx.responseFlags = 'UO';
      } else if (ctx.attempts > 1) ctx.responseFlags = 'URX';
    }
    const pages = state.action.errorPages;
    if (pages !== undefined && pages.upstreamResponses && pages.codes.has(statusCode)) {
      // proxy_intercept_errors: the answer's body is never read; nginx closes the connection too.
      this.cancel();
      ctx.upstreamServiceTimeMs = Math.round(performance.now() - ctx.upstreamStartMs);
      sendErrorPage(ctx, pages, statusCode, statusCode === 401 ? challengesOf(rawHeaders) : null);
      return false;
    }
    this.headersSent = true;
    ctx.finished = true;
    const res = ctx.res as WithAttempt;
    const serviceMs = Math.round(performance.now() - ctx.upstreamStartMs);
    ctx.upstreamServiceTimeMs = serviceMs;
    ctx.status = statusCode;
    const headers = buildResponseHeaders(rawHeaders, ctx.snapshot.settings.serverHeader, serviceMs);
    const route = ctx.route;
    if (route !== null && (route.responseHeaders !== null || state.dest.responseHeaders !== null)) {
      applyRouteAndDestinationOps(
        headers,
        route.responseHeaders,
        state.dest.responseHeaders,
        state.action.destinations.length === 1,
        ctx,
      );
    }
    if (ctx.responseHeadersToAdd !== null) replaceHeaders(headers, ctx.responseHeadersToAdd);
    if (state.hash !== null && state.hash.setCookie !== null)
      headers.push('set-cookie', state.hash.setCookie);
    if (state.errorPage !== null && state.errorPage.keep !== null) headers.push(...state.errorPage.keep);
    this.resume = resume;
    res[kAttempt] = this;
    if (endStream && ctx.grpc !== null) ctx.grpc.status = headerValue(rawHeaders, 'grpc-status');
    // gRPC-Web: a response that is not gRPC is held until it ends (sent as headers only then).
    if (ctx.grpcWeb !== null && bridgeResponseHead(ctx.grpcWeb, statusCode, headers, endStream)) return true;
    const h2 = ctx.req.httpVersionMajor === 2;
    try {
      if (endStream) endWithHeaders(res, statusCode, headers, h2);
      else {
        if (h2 && this.h2Upstream) expectTrailers(res);
        res.writeHead(statusCode, headers);
      }
    } catch {
      // An upstream header Node refuses to write is a protocol error towards us.
      this.cancel();
      ctx.finished = false;
      ctx.status = 0;
      state.onFailure(ctx, classifyUpstreamError({ code: 'HPE_INVALID_HEADER_TOKEN' }), ctx.attempts > 1);
      finish(ctx);
      return false;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.done) return false;
    const ctx = this.ctx;
    if (ctx.grpc !== null) ctx.grpc.responses.add(chunk);
    if (ctx.grpcWeb !== null) {
      const out = bridgeResponseData(ctx.grpcWeb, chunk);
      if (out === null) return true;
      chunk = out;
    }
    const res = ctx.res;
    if (res.write(chunk)) return true;
    res.once('drain', onResponseDrain);
    return false;
  }

  /**
   * `trailers`: an HTTP/2 upstream's (string list), passed to HTTP/2 clients; undici's HTTP/1.1
   * trailers (Buffers) are dropped, as Envoy's HTTP/1 codec drops them without `enable_trailers`.
   */
  onComplete(trailers?: readonly (Buffer | string)[] | null): void {
    if (this.done) return;
    this.release(this.reusable);
    this.done = true;
    const ctx = this.ctx;
    const h2Trailers =
      trailers != null && trailers.length > 0 && typeof trailers[0] === 'string'
        ? (trailers as readonly string[])
        : null;
    if (h2Trailers !== null && ctx.grpc !== null) ctx.grpc.status = headerValue(h2Trailers, 'grpc-status');
    if (ctx.grpcWeb !== null) endBridged(ctx, ctx.grpcWeb, h2Trailers);
    else {
      if (h2Trailers !== null && ctx.req.httpVersionMajor === 2) addTrailers(ctx.res, h2Trailers);
      ctx.res.end();
    }
    finish(ctx);
  }

  onError(err: Error): void {
    this.release(false);
    if (this.done) return;
    this.done = true;
    const ctx = this.ctx;
    if (ctx.fwd!.current !== this) return;
    if (this.headersSent) {
      // Failure mid-body: the status is already out; Envoy resets the downstream stream.
      const f = classifyUpstreamError(err);
      ctx.responseFlags = f.flag;
      ctx.responseDetails = 'upstream_reset_after_response_started{' + f.resetReason + '}';
      ctx.res.destroy();
      finish(ctx);
      return;
    }
    attemptFailed(ctx, this, err);
  }

  onUpgrade(statusCode: number, rawHeaders: readonly (Buffer | string)[], socket: Duplex): void {
    // The socket now belongs to the WebSocket; the connection leaves the pool.
    this.release(false);
    const ctx = this.ctx;
    const client = ctx.upgradeSocket;
    if (this.done || client === null || client.destroyed) {
      socket.destroy();
      return;
    }
    this.done = true;
    ctx.finished = true;
    ctx.status = statusCode;
    ctx.upstreamServiceTimeMs = Math.round(performance.now() - ctx.upstreamStartMs);
    let head = 'HTTP/1.1 ' + statusCode + ' Switching Protocols\r\n';
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = latin1(rawHeaders[i]!);
      if (name.length === 6 && name.toLowerCase() === 'server') continue;
      head += name + ': ' + latin1(rawHeaders[i + 1]!) + '\r\n';
    }
    head += 'server: ' + ctx.snapshot.settings.serverHeader + '\r\n\r\n';
    client.write(head);
    const early = ctx.upgradeHead;
    if (early !== null && early.length > 0) socket.write(early);
    socket.on('error', destroyPeer);
    client.on('error', destroyPeer);
    socket.on('close', destroyPeer);
    client.on('close', destroyPeer);
    (socket as PeeredSocket)[kPeer] = client;
    (client as PeeredSocket)[kPeer] = socket;
    socket.pipe(client);
    client.pipe(socket);
    // The route timer stays armed: an Istio route timeout also ends WebSockets (DP-9).
    (client as PeeredSocket)[kCtxTimer] = ctx;
  }

  /** Stop this attempt: abort the upstream request (connection closed) and forget it. */
  cancel(): void {
    this.done = true;
    this.release(false);
    if (this.abort !== null) {
      const abort = this.abort;
      this.abort = null;
      abort(new Error('request cancelled'));
    }
  }

  /** Frees the endpoint's count and the connection (back to the pool when `reusable`). */
  release(reusable: boolean): void {
    if (this.released) return;
    this.released = true;
    if (this.perTryTimer !== null) {
      clearTimeout(this.perTryTimer);
      this.perTryTimer = null;
    }
    if (this.sendTimer !== null) {
      clearTimeout(this.sendTimer);
      this.sendTimer = null;
    }
    this.host.active -= 1;
    if (this.waiter !== null) leaveQueue(this);
    releaseSlot(this, reusable);
  }
}

/** A bridged gRPC-Web response ends: trailers as the last frame, or the held non-gRPC answer. */
function endBridged(ctx: ForwardContext, b: GrpcWebBridge, trailers: readonly string[] | null): void {
  const plain = b.plain;
  if (plain !== null) {
    const end = plainResponseEnd(plain);
    if (ctx.res.destroyed) return;
    try {
      endWithHeaders(ctx.res, end.status, end.headers, ctx.req.httpVersionMajor === 2);
    } catch {
      // An upstream header Node refuses to write: the stream is reset.
      ctx.res.destroy();
    }
    return;
  }
  const frame = bridgeTrailers(b, trailers);
  if (frame === null) ctx.res.end();
  else ctx.res.end(frame);
}

const kPeer = Symbol('sluice.peer');
const kCtxTimer = Symbol('sluice.upgradeCtx');
type PeeredSocket = Duplex & { [kPeer]?: Duplex; [kCtxTimer]?: ForwardContext };

function destroyPeer(this: PeeredSocket): void {
  const peer = this[kPeer];
  if (peer !== undefined && !peer.destroyed) peer.destroy();
  if (!this.destroyed) this.destroy();
  const ctx = this[kCtxTimer];
  if (ctx !== undefined) clearRouteTimer(ctx);
}

function onResponseDrain(this: WithAttempt): void {
  const attempt = this[kAttempt];
  if (attempt != null && !attempt.done && attempt.resume !== null) attempt.resume();
}

/** Whether another attempt is allowed: attempts left, and a body we can still send. */
function canRetry(ctx: ForwardContext, afterResponse: boolean): boolean {
  const state = ctx.fwd!;
  if (ctx.attempts > state.action.retry.attempts) return false;
  if (ctx.upgradeSocket !== null && afterResponse) return false;
  // A body already streamed to the failed upstream cannot be replayed (nothing is buffered).
  if (state.hasBody && (afterResponse || ctx.req.readableDidRead)) return false;
  return true;
}

function attemptFailed(ctx: ForwardContext, attempt: Attempt | null, err: unknown): void {
  const state = ctx.fwd!;
  if (ctx.finished) return;
  const failure = classifyUpstreamError(err);
  if (failure.source === 'downstream') {
    ctx.responseFlags = failure.flag;
    state.onPlain(ctx, 400, failure.flag, 'downstream_protocol_error', null);
    finish(ctx);
    return;
  }
  if (attempt !== null && failure.source === 'upstream')
    noteLocalFailure(attempt, failure.kind === 'timeout');
  let brokenRetry = false;
  if (retryCoversFailure(state.action.retry, failure) && canRetry(ctx, false)) {
    if (takeRetry(ctx)) {
      if (attempt !== null) (state.tried ??= []).push(attempt.host);
      scheduleRetry(ctx);
      return;
    }
    brokenRetry = true;
  }
  answerFailure(ctx, failure, ctx.attempts > 1, brokenRetry);
}

/**
 * The exchange ends on an upstream failure: sluice's failure reply, or the default backend's
 * page when the route's custom-http-errors list nginx's status for it.
 */
function answerFailure(
  ctx: ForwardContext,
  failure: UpstreamFailure,
  retried: boolean,
  brokenRetry: boolean,
): void {
  const state = ctx.fwd!;
  if (state.action.errorPages !== undefined && failureErrorPage(ctx, failure, retried, brokenRetry)) return;
  state.onFailure(ctx, failure, retried);
  if (brokenRetry) ctx.responseFlags = withOverflowFlag(ctx.responseFlags);
  finish(ctx);
}

// ---------------------------------------------------------------- ingress-nginx error pages

/**
 * An upstream failure whose nginx status is listed (custom-http-errors): the default backend's
 * page answers instead of sluice's failure reply; the log keeps the failure's flags.
 */
function failureErrorPage(
  ctx: ForwardContext,
  f: UpstreamFailure,
  retried: boolean,
  brokenRetry: boolean,
): boolean {
  const pages = ctx.fwd!.action.errorPages!;
  const code = nginxFailureStatus(f);
  if (!pages.codes.has(code)) return false;
  ctx.responseFlags = failureFlag(f, retried);
  if (brokenRetry) ctx.responseFlags = withOverflowFlag(ctx.responseFlags);
  if (f.transportFailureReason !== undefined) ctx.transportFailureReason = f.transportFailureReason;
  sendErrorPage(ctx, pages, code, null);
  return true;
}

/**
 * nginx's `error_page CODE = @custom_…`: the route's exchange ends and a request for `/` with the
 * X-* headers goes to the default backend, whose answer (status included) streams to the client.
 * Its own answer is never intercepted (its action has no error pages); without a default backend
 * the answer is ingress-nginx's built-in 404.
 */
function sendErrorPage(ctx: ForwardContext, pages: ErrorPages, code: number, keep: string[] | null): void {
  const prev = ctx.fwd!;
  prev.over = true;
  releaseRetry(prev);
  clearRouteTimer(ctx);
  ctx.responseDetails = 'custom_http_errors{' + code + '}';
  const backend = pages.backend;
  const dest = backend === null ? null : backend.destinations[0]!;
  if (backend === null || dest === null || dest.cluster === null) return noDefaultBackend(ctx);
  const built = errorRequestHeaders(prev.headers, pages, code, {
    authority: ctx.authority,
    originalUri: ctx.rawUrl,
  });
  ctx.fwd = {
    ...prev,
    action: backend,
    dest,
    cluster: dest.cluster,
    headers: built.headers,
    attemptCountIndex: built.attemptCountIndex,
    upstreamPath: ctx.query === '' ? '/' : '/?' + ctx.query,
    // The request body went to the upstream as it came and is not kept (nginx resends its buffered copy).
    hasBody: false,
    timeoutMs: null,
    // Timers and the retry hold were released above; the rest starts afresh for the new cluster.
    over: false,
    current: null,
    tried: null,
    set: null,
    hash: null,
    hashed: false,
    errorPage: { keep },
  };
  ctx.clusterName = dest.clusterName;
  // Attempts (and retries, URX) count from here: the log's upstream is the default backend.
  ctx.attempts = 0;
  startAttempt(ctx);
}

/** No default backend, or one without endpoints: ingress-nginx's own default server answers 404. */
function noDefaultBackend(ctx: ForwardContext): void {
  const state = ctx.fwd!;
  state.onPlain(ctx, 404, '-', 'custom_http_errors_without_default_backend', null);
  finish(ctx);
}

/**
 * The route's cluster has no endpoints: its default-backend serves the request as it is, with
 * X-Code 503 (controller.go puts the custom default backend in the location's place); without
 * one, or when that has none either, nginx's 503, replaced when listed.
 */
function noEndpoints(ctx: ForwardContext, cluster: Cluster): void {
  const state = ctx.fwd!;
  if (state.errorPage !== null) return noDefaultBackend(ctx);
  const pages = state.action.errorPages!;
  const backend = pages.backend?.destinations[0];
  if (backend !== undefined && backend.cluster !== null && backend.cluster !== cluster) {
    const built = errorRequestHeaders(state.headers, pages, 503, null);
    ctx.fwd = {
      ...state,
      cluster: backend.cluster,
      headers: built.headers,
      attemptCountIndex: built.attemptCountIndex,
    };
    ctx.clusterName = backend.clusterName;
    startAttempt(ctx);
    return;
  }
  if (pages.codes.has(503)) {
    ctx.responseFlags = 'UH';
    return sendErrorPage(ctx, pages, 503, null);
  }
  state.onPlain(ctx, 503, 'UH', 'no_healthy_upstream', NO_HEALTHY_UPSTREAM);
  finish(ctx);
}

/** DR-7: a connect failure, reset or timeout of the gateway's own making, for outlier detection. */
function noteLocalFailure(attempt: Attempt, timeout: boolean): void {
  const st = attempt.host.state;
  if (st.outlier !== null)
    recordLocal(st, attempt.host.health, timeout ? 'timeout' : 'connect-failure', Date.now());
}

/**
 * DR-6 maxRetries: a retry counts against the cluster from its decision to its outcome. Over the
 * cap Envoy does not retry and marks the request UO (circuit-broken retry, VS-25).
 */
function takeRetry(ctx: ForwardContext): boolean {
  const state = ctx.fwd!;
  const st = state.set?.state;
  if (st === undefined) return true;
  releaseRetry(state);
  if (st.retries >= state.cluster.maxRetries) {
    st.overflows.retries += 1;
    return false;
  }
  st.retries += 1;
  state.holdsRetry = true;
  return true;
}

function releaseRetry(state: ForwardState): void {
  if (!state.holdsRetry) return;
  state.holdsRetry = false;
  if (state.set !== null) state.set.state.retries -= 1;
}

/** Envoy prints flags in its own order: UO sits before URX. */
function withOverflowFlag(flags: string): string {
  if (flags === '-' || flags === '') return 'UO';
  return flags.endsWith(',URX') ? flags.slice(0, -4) + ',UO,URX' : flags + ',UO';
}

function scheduleRetry(ctx: ForwardContext): void {
  const state = ctx.fwd!;
  state.current = null;
  state.retryTimer = setTimeout(startAttempt, backoffMs(state.action.retry, ctx.attempts), ctx);
}

function onPerTryTimeout(attempt: Attempt): void {
  attempt.perTryTimer = null;
  attemptTimedOut(attempt);
}

/**
 * proxy-send-timeout, as nginx's: its clock runs only while a write to the upstream is blocked
 * (nginx arms it when a send returns EAGAIN and disarms it when the socket takes the bytes).
 * The HTTP/1.1 and HTTP/2 connections pause the body exactly while the upstream socket is full
 * and resume it on 'drain', so a client slow to send, with nothing waiting to be written, never
 * runs it.
 */
function watchBodyWrites(body: TimedBody, attempt: Attempt): void {
  // A retry hands the same unread request to a new attempt: the listeners are already there.
  const watched = body[kAttemptOfBody] !== undefined;
  body[kAttemptOfBody] = attempt;
  if (watched) return;
  body.on('pause', onBodyWriteBlocked);
  body.on('resume', onBodyWriteTaken);
}

const kAttemptOfBody = Symbol('sluice.bodyAttempt');
type TimedBody = Readable & { [kAttemptOfBody]?: Attempt };

function onBodyWriteBlocked(this: TimedBody): void {
  const attempt = this[kAttemptOfBody];
  if (attempt === undefined || attempt.done || attempt.sendTimer !== null) return;
  // Once the response has started nginx stops sending the body, and its send timer with it.
  if (attempt.ctx.finished) return;
  attempt.sendTimer = setTimeout(onSendTimeout, attempt.ctx.fwd!.action.sendTimeoutMs, attempt);
}

function onBodyWriteTaken(this: TimedBody): void {
  const attempt = this[kAttemptOfBody];
  // A 'resume' event is emitted a tick after resume(); a pause since then keeps the clock running.
  if (attempt === undefined || attempt.sendTimer === null || this.readableFlowing === false) return;
  clearTimeout(attempt.sendTimer);
  attempt.sendTimer = null;
}

function onSendTimeout(attempt: Attempt): void {
  attempt.sendTimer = null;
  const ctx = attempt.ctx;
  if (ctx.finished) return;
  // The rest of the body will never be read: an HTTP/1.1 connection cannot carry another request.
  if (ctx.req.httpVersionMajor === 1) ctx.res.shouldKeepAlive = false;
  attemptTimedOut(attempt);
}

/** A per-try or send timeout: the attempt is abandoned, retried when the policy and body allow. */
function attemptTimedOut(attempt: Attempt): void {
  const ctx = attempt.ctx;
  if (attempt.done || ctx.finished) return;
  attempt.cancel();
  noteLocalFailure(attempt, true);
  const state = ctx.fwd!;
  let brokenRetry = false;
  if (retryCoversFailure(state.action.retry, PER_TRY_TIMEOUT) && canRetry(ctx, false)) {
    if (takeRetry(ctx)) {
      (state.tried ??= []).push(attempt.host);
      scheduleRetry(ctx);
      return;
    }
    brokenRetry = true;
  }
  answerFailure(ctx, PER_TRY_TIMEOUT, ctx.attempts > 1, brokenRetry);
}

function onRouteTimeout(ctx: ForwardContext): void {
  const state = ctx.fwd!;
  state.routeTimer = null;
  if (state.over && ctx.status !== 101) return;
  if (state.retryTimer !== null) {
    clearTimeout(state.retryTimer);
    state.retryTimer = null;
  }
  const attempt = state.current;
  if (ctx.upgradeSocket !== null && ctx.finished) {
    // An established WebSocket past the route timeout: Istio cuts it (DP-9).
    ctx.upgradeSocket.destroy();
    return;
  }
  if (ctx.finished) {
    // Response already started: Envoy resets the stream.
    if (attempt !== null) attempt.cancel();
    ctx.responseFlags = 'UT';
    ctx.res.destroy();
    return;
  }
  if (attempt !== null) {
    attempt.cancel();
    noteLocalFailure(attempt, true);
  }
  answerFailure(ctx, PER_TRY_TIMEOUT, false, false);
}

function clearRouteTimer(ctx: ForwardContext): void {
  const state = ctx.fwd;
  if (state === null) return;
  if (state.routeTimer !== null) {
    clearTimeout(state.routeTimer);
    state.routeTimer = null;
  }
  if (state.retryTimer !== null) {
    clearTimeout(state.retryTimer);
    state.retryTimer = null;
  }
}

/** The exchange is over (completed, failed or answered locally): timers off. */
function finish(ctx: ForwardContext): void {
  ctx.finished = true;
  ctx.fwd!.over = true;
  releaseRetry(ctx.fwd!);
  if (ctx.upgradeSocket === null || ctx.status !== 101) clearRouteTimer(ctx);
}

function onDownstreamClose(this: WithAttempt): void {
  const ctx = this[kCtx];
  if (ctx === undefined) return;
  const state = ctx.fwd;
  if (state === null) return;
  if (this.writableFinished) {
    clearRouteTimer(ctx);
    return;
  }
  // The client went away first (DC): stop the upstream work.
  if (ctx.responseFlags === '-' && ctx.status !== 101) ctx.responseFlags = 'DC';
  const attempt = state.current;
  if (attempt !== null && !attempt.done) attempt.cancel();
  ctx.finished = true;
  state.over = true;
  releaseRetry(state);
  clearRouteTimer(ctx);
}

/** What an attempt sends upstream: the client's body as it comes, decoded for gRPC-Web text. */
function requestBody(ctx: ForwardContext): Readable {
  if (ctx.grpcWeb !== null && ctx.grpcWeb.textRequest)
    return new Base64RequestBody(ctx.req, ctx.bodyPrefix, () => badGrpcWebBody(ctx));
  return ctx.bodyPrefix === null ? ctx.req : prefixedBody(ctx.bodyPrefix, ctx.req);
}

const BAD_BASE64 = Buffer.from('Bad gRPC-web request, invalid base64 data.');

/** Envoy's grpc_web answer to a `-text` body that is not base64: 400, the attempt stopped. */
function badGrpcWebBody(ctx: ForwardContext): void {
  const state = ctx.fwd!;
  if (state.over) return;
  if (ctx.finished) {
    // The upstream already answered: the stream is reset, as Envoy resets it.
    state.current?.cancel();
    ctx.res.destroy();
    finish(ctx);
    return;
  }
  state.current?.cancel();
  state.onPlain(ctx, 400, '-', 'grpc_base_64_decode_failed', BAD_BASE64);
  finish(ctx);
}

/** The body a filter read ahead, then whatever the client still sends (streamed, not buffered). */
function prefixedBody(prefix: Buffer, rest: IncomingMessage): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    yield prefix;
    if (rest.readableEnded) return;
    for await (const chunk of rest) yield chunk as Buffer;
  }
  return Readable.from(chunks(), { objectMode: false });
}

// ---------------------------------------------------------------- response headers

/**
 * Upstream response headers → the flat list for writeHead: hop-by-hop dropped, `server`
 * replaced (DP-2), `x-envoy-upstream-service-time` added.
 */
export function buildResponseHeaders(
  raw: readonly (Buffer | string)[],
  serverHeader: string,
  serviceTimeMs: number,
): string[] {
  const out: string[] = [];
  let connection: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = latin1(raw[i]!);
    switch (name.length) {
      case 2:
      case 6:
      case 7:
      case 10:
      case 16:
      case 17: {
        const lower = name.toLowerCase();
        if (lower === 'connection') {
          connection = connection === null ? latin1(raw[i + 1]!) : connection + ',' + latin1(raw[i + 1]!);
          continue;
        }
        if (
          lower === 'keep-alive' ||
          lower === 'proxy-connection' ||
          lower === 'te' ||
          lower === 'trailer' ||
          lower === 'transfer-encoding' ||
          lower === 'upgrade' ||
          lower === 'server'
        ) {
          continue;
        }
        break;
      }
      case 14:
        // Connection-specific (RFC 9113 §8.2.2): an HTTP/2 client's stream refuses it outright.
        if (name.toLowerCase() === 'http2-settings') continue;
        break;
      case 30:
        if (name.toLowerCase() === 'x-envoy-upstream-service-time') continue;
        break;
      default:
        break;
    }
    out.push(name, latin1(raw[i + 1]!));
  }
  if (connection !== null) dropConnectionNominated(out, connection);
  out.push('server', serverHeader, 'x-envoy-upstream-service-time', String(serviceTimeMs));
  return out;
}

/** undici gives HTTP/1.1 header bytes; HTTP/2 pools give strings. */
function latin1(v: Buffer | string): string {
  return typeof v === 'string' ? v : v.toString('latin1');
}
