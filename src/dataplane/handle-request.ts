/**
 * Per-request flow: hostile input checks → host → route table → the table's filters (ext_authz,
 * jwt_authn, RBAC; none when no policy applies) → vhost → route → the route's filters (fault,
 * CORS; none on most routes) → action (direct response, redirect, forward). Reads only the
 * pinned snapshot; no config walking.
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type {
  DirectResponseAction,
  ForwardAction,
  GatewaySettings,
  HttpFilter,
  RedirectAction,
  RouteTable,
  Snapshot,
  SnapshotSource,
} from '../snapshot/types.ts';
import {
  admitRequest,
  CODEC_ERROR,
  NO_CLUSTER,
  pickDestination,
  selectRoute,
  type Refusal,
} from '../snapshot/route-request.ts';
import { buildRedirectLocation } from '../snapshot/redirect.ts';
import { challengesOf } from '../upstream/error-pages.ts';
import { forwardRequest } from '../upstream/forward.ts';
import { applyHeaderOps, replaceHeaders } from '../upstream/header-ops.ts';
import { withResponseFlag } from '../upstream/upstream-error.ts';
import { startTrace } from '../observability/tracing.ts';
import { rawHeader } from '../observability/request-facts.ts';
import { RequestContext } from './request-context.ts';
import { grpcReply, sendLocalReply, sendUpstreamFailure, writeReply } from './local-reply.ts';
import { isGrpcRequest } from '../util/grpc.ts';
import { sniOf } from './tls-sni.ts';
import { sanitizeClientCertHeader } from './xfcc.ts';
import { runFilters } from './pipeline.ts';
import { bridgeGrpcWeb } from './grpc-web.ts';
import type { FilterReply, FilterRuntime } from './filters/filter.ts';

export interface ListenerContext {
  /** The configured Gateway server port: the key into `snapshot.listeners` (GW-3). */
  readonly port: number;
  readonly scheme: 'http' | 'https';
  readonly source: SnapshotSource;
  /** Called once per finished request (access log, metrics); null when nobody listens. */
  readonly onDone: ((ctx: RequestContext) => void) | null;
  /** Set when the gateway starts draining: every HTTP/1 head from then on says `Connection: close` (listeners.ts). */
  draining: boolean;
  /**
   * ACME HTTP-01 (plaintext listeners): key authorisation for a token, or null; absent = off. A
   * promise when the answer must be read from a shared store (another process ordered).
   */
  readonly acmeHttpToken?: ((token: string) => string | Promise<string | null> | null) | null;
  /** What the request pipeline keeps across requests (JWKS, decision metrics). */
  readonly filters: FilterRuntime;
}

const EMPTY = Buffer.alloc(0);

export function handleRequest(lc: ListenerContext, req: IncomingMessage, res: ServerResponse): void {
  const ctx = new RequestContext(req, res, lc.source.get(), lc.port, lc.scheme, null, null);
  ctx.requestId = requestIdFor(req, ctx.snapshot.settings);
  ctx.runtime = lc.filters;
  if (lc.onDone !== null) watchDone(ctx, lc.onDone);
  // Tracing off (no provider in MeshConfig): one property read, no tracing code runs.
  const tracing = ctx.snapshot.settings.tracing;
  if (tracing !== undefined) ctx.trace = startTrace(req, tracing);
  const acme = lc.acmeHttpToken;
  if (acme != null && ctx.rawUrl.startsWith(ACME_PREFIX) && answerAcmeChallenge(ctx, acme)) return;
  routeAndAct(ctx);
}

/**
 * A request the egress proxy allowed whose host a VirtualService bound to `mesh` routes (issue
 * 13): routed and forwarded exactly as a Gateway's requests are, with `table` (the mesh routes of
 * its port) and the snapshot the proxy decided on.
 */
export function handleMeshRequest(
  lc: ListenerContext,
  req: IncomingMessage,
  res: ServerResponse,
  snapshot: Snapshot,
  table: RouteTable,
): void {
  const ctx = new RequestContext(req, res, snapshot, lc.port, 'http', null, null);
  ctx.requestId = requestIdFor(req, snapshot.settings);
  ctx.runtime = lc.filters;
  if (lc.onDone !== null) watchDone(ctx, lc.onDone);
  const tracing = snapshot.settings.tracing;
  if (tracing !== undefined) ctx.trace = startTrace(req, tracing);
  routeAndAct(ctx, table);
}

const ACME_PREFIX = '/.well-known/acme-challenge/';

/** ACME HTTP-01 (RFC 8555 §8.3): a known token is answered before routing; others route as usual. */
function answerAcmeChallenge(
  ctx: RequestContext,
  lookup: NonNullable<ListenerContext['acmeHttpToken']>,
): boolean {
  const token = ctx.rawUrl.slice(ACME_PREFIX.length);
  if (token === '' || token.includes('/') || token.includes('?')) return false;
  const keyAuth = lookup(token);
  if (keyAuth === null) return false;
  if (typeof keyAuth === 'string') writeAcmeAnswer(ctx, keyAuth);
  else
    // From the shared store (a store error counts as unknown): only challenge paths wait for it.
    keyAuth.then(
      (found) => answerOrRoute(ctx, found),
      () => answerOrRoute(ctx, null),
    );
  return true;
}

function answerOrRoute(ctx: RequestContext, keyAuth: string | null): void {
  if (ctx.res.destroyed) return;
  if (keyAuth === null) routeAndAct(ctx);
  else writeAcmeAnswer(ctx, keyAuth);
}

function writeAcmeAnswer(ctx: RequestContext, keyAuth: string): void {
  ctx.status = 200;
  ctx.responseDetails = 'acme_challenge';
  ctx.finished = true;
  writeReply(
    ctx.res,
    200,
    ['server', ctx.snapshot.settings.serverHeader, 'content-type', 'application/octet-stream'],
    Buffer.from(keyAuth),
    false,
  );
}

/**
 * A WebSocket upgrade (the server only hands us `Upgrade: websocket`). Routed exactly like a
 * request; local replies are written through a ServerResponse bound to the raw socket.
 */
export function handleUpgrade(
  lc: ListenerContext,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  mesh: { readonly snapshot: Snapshot; readonly table: RouteTable } | null = null,
): RequestContext {
  const res = new ServerResponse(req);
  res.assignSocket(socket as Socket);
  res.shouldKeepAlive = false;
  socket.on('error', destroySelf);
  const snapshot = mesh === null ? lc.source.get() : mesh.snapshot;
  const ctx = new RequestContext(req, res, snapshot, lc.port, lc.scheme, socket, head);
  ctx.requestId = requestIdFor(req, ctx.snapshot.settings);
  ctx.runtime = lc.filters;
  if (lc.onDone !== null) watchDone(ctx, lc.onDone);
  const tracing = ctx.snapshot.settings.tracing;
  if (tracing !== undefined) ctx.trace = startTrace(req, tracing);
  routeAndAct(ctx, mesh === null ? null : mesh.table);
  return ctx;
}

function destroySelf(this: Duplex): void {
  this.destroy();
}

const kDone = Symbol('sluice.done');
type Watched = ServerResponse & { [kDone]?: RequestContext };

function watchDone(ctx: RequestContext, fn: (ctx: RequestContext) => void): void {
  ctx.onDone = fn;
  (ctx.res as Watched)[kDone] = ctx;
  // 'close' comes once; once() would allocate a wrapper per request.
  ctx.res.on('close', onResClose);
}

function onResClose(this: Watched): void {
  const ctx = this[kDone];
  if (ctx === undefined) return;
  // The response did not finish: the client went away first (DC). This listener runs before
  // forward's own close handler, so the flag is set here too.
  if (!this.writableFinished && ctx.status !== 101 && ctx.responseFlags === '-') ctx.responseFlags = 'DC';
  // DI is kept aside while the request runs, so the checks above and in forward still see '-'.
  if (ctx.delayInjected) ctx.responseFlags = withResponseFlag(ctx.responseFlags, 'DI');
  ctx.onDone!(ctx);
}

function isTokenChar(c: number): boolean {
  // RFC 9110 tchar
  return (
    (c >= 97 && c <= 122) ||
    (c >= 65 && c <= 90) ||
    (c >= 48 && c <= 57) ||
    c === 33 ||
    (c >= 35 && c <= 39) ||
    c === 42 ||
    c === 43 ||
    c === 45 ||
    c === 46 ||
    c === 94 ||
    c === 95 ||
    c === 96 ||
    c === 124 ||
    c === 126
  );
}

/** DP-4: HTTP/1.0 (and 0.9) get 426 unless Istio's PILOT_HTTP10 is on. */
const UPGRADE_REQUIRED: Refusal = {
  status: 426,
  flag: '-',
  details: 'low_version',
  body: '',
  close: true,
};

/** A refusal as the reply Envoy gives: a codec error closes an HTTP/1 connection. */
function refuse(ctx: RequestContext, r: Refusal): void {
  if (!r.close) {
    sendLocalReply(ctx, r.status, r.flag, r.details, r.body === '' ? null : Buffer.from(r.body));
    return;
  }
  ctx.status = r.status;
  if (r.flag !== '-') ctx.responseFlags = r.flag;
  ctx.responseDetails = r.details;
  ctx.finished = true;
  // HTTP/2 has no Connection header; the stream just ends.
  writeReply(
    ctx.res,
    r.status,
    ['server', ctx.snapshot.settings.serverHeader],
    r.body === '' ? EMPTY : Buffer.from(r.body),
    ctx.req.httpVersionMajor !== 2,
  );
}

/** HTTP/2 `:authority`, else a `host` header (RFC 9113 §8.3.1); '' when neither. */
function h2AuthorityOf(req: IncomingMessage): string {
  const a = req.headers[':authority'] ?? req.headers.host;
  return typeof a === 'string' ? a : '';
}

/**
 * Raw Host header, scanning rawHeaders so Node does not build `req.headers`. '' when absent,
 * null when sent twice (RFC 9112 §3.2: 400).
 */
function hostHeaderOf(req: IncomingMessage): string | null {
  const raw = req.rawHeaders;
  let host = '';
  let seen = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && (name === 'host' || name === 'Host' || name.toLowerCase() === 'host')) {
      if (seen) return null;
      seen = true;
      host = raw[i + 1]!;
    }
  }
  return host;
}

/**
 * DP-1: x-request-id, assigned before routing as Envoy's connection manager does, so local
 * replies have one too. A client's own is kept only from trusted hops.
 */
function requestIdFor(req: IncomingMessage, settings: GatewaySettings): string {
  if (settings.numTrustedProxies > 0) {
    const sent = rawHeader(req.rawHeaders, 'x-request-id');
    if (sent !== null && sent !== '') return sent;
  }
  return randomUUID();
}

/** `table`: the route table to use whatever the port says (egress proxy); null = the port's. */
function routeAndAct(ctx: RequestContext, table: RouteTable | null = null): void {
  const req = ctx.req;
  const h2 = req.httpVersionMajor === 2;
  if (!h2 && (req.httpVersionMajor !== 1 || req.httpVersionMinor === 0)) return refuse(ctx, UPGRADE_REQUIRED);
  const method = ctx.method;
  // llhttp only admits the methods it knows; a custom token still has to be a valid token.
  for (let i = 0; i < method.length; i++) {
    if (!isTokenChar(method.charCodeAt(i))) return refuse(ctx, CODEC_ERROR);
  }
  const tls = ctx.scheme === 'https';
  const socket = tls ? (req.socket as TLSSocket) : null;
  const refused = admitRequest(
    ctx,
    ctx.snapshot,
    ctx.rawUrl,
    h2 ? h2AuthorityOf(req) : hostHeaderOf(req),
    socket === null ? '' : sniOf(socket),
  );
  if (refused !== null) return refuse(ctx, refused);
  if (table !== null) ctx.table = table;
  sanitizeClientCertHeader(req, socket, ctx.tlsServer?.tls ?? null);
  // Workload-level policy runs for every request of the table, before the route decides: an
  // unauthorised request to an unrouted path is 403, not 404, and JWT claims reach matching.
  const filters = ctx.table?.filters;
  if (filters !== undefined) return runFilters(ctx, filters, ctx.runtime!, routeSelected, replyFromFilter);
  routeSelected(ctx);
}

/** Vhost, route, action: after the workload filters (if any) let the request on. */
function routeSelected(ctx: RequestContext): void {
  const noRoute = selectRoute(ctx);
  // Envoy's grpc_web filter runs after the route is chosen (from the headers as sent) and
  // before the route's own filters and the router's answers.
  if (ctx.table?.grpcWeb === true) bridgeGrpcWeb(ctx);
  // Gateway rate limits left for the route's (RateLimitFilter.defer): decided alone now unless
  // the route's first filter decides them with its own.
  if (ctx.deferredLimits !== null && (noRoute !== null || ctx.route!.filters?.[0]?.kind !== 'rate-limit'))
    return runFilters(
      ctx,
      FLUSH_DEFERRED_LIMITS,
      ctx.runtime!,
      (c) => routeFilters(c, noRoute),
      replyFromFilter,
    );
  routeFilters(ctx, noRoute);
}

/** Decides a gateway filter's deferred rate limits (a filter of no rules of its own). */
const FLUSH_DEFERRED_LIMITS: readonly HttpFilter[] = [{ kind: 'rate-limit', rules: [], defer: false }];

function routeFilters(ctx: RequestContext, noRoute: Refusal | null): void {
  if (noRoute !== null) return refuse(ctx, noRoute);
  // The route's own filters (fault, CORS, rate limits); absent on most routes.
  const filters = ctx.route!.filters;
  if (filters !== undefined) return runFilters(ctx, filters, ctx.runtime!, act, replyFromFilter);
  act(ctx);
}

function act(ctx: RequestContext): void {
  const action = ctx.route!.action;
  switch (action.kind) {
    case 'forward':
      return forward(ctx, action);
    case 'redirect':
      return redirect(ctx, action);
    case 'direct':
      return direct(ctx, action);
  }
}

/** A filter's answer: 401/403 from jwt_authn or RBAC, the authorizer's denial, a fault abort … */
function replyFromFilter(ctx: RequestContext, r: FilterReply): void {
  if (r.headersOnly === true) return writeHeadersOnly(ctx, r);
  const action = ctx.route?.action;
  if (
    action?.kind === 'forward' &&
    action.errorPages?.codes.has(r.status) === true &&
    errorPageFor(ctx, action, r)
  )
    return;
  // A gRPC status only matters to gRPC requests, whose local replies carry it (Envoy's
  // sendLocalReply grpc_status override); others get the plain HTTP reply.
  const headers =
    r.grpcStatus !== undefined && isGrpcRequest(ctx.req.rawHeaders)
      ? [...(r.headers ?? []), 'grpc-status', String(r.grpcStatus)]
      : r.headers;
  sendLocalReply(ctx, r.status, r.flag, r.details, r.body, headers);
}

/**
 * ingress-nginx's error_page covers the location's own refusals too (413, 401, 403, limit_req's
 * 503): a listed one is answered by the default backend's page, a 401 keeping its challenge.
 */
function errorPageFor(ctx: RequestContext, action: ForwardAction, r: FilterReply): boolean {
  const dest = pickDestination(action);
  if (dest.cluster === null) return false;
  if (r.flag !== '-') ctx.responseFlags = r.flag;
  const keep = r.headers === null ? null : challengesOf(r.headers);
  forwardRequest(ctx, action, dest, dest.cluster, sendUpstreamFailure, sendLocalReply, {
    code: r.status,
    keep,
  });
  return true;
}

/** A CORS preflight answer: the filter's headers (and ext_authz's), no route header operations. */
function writeHeadersOnly(ctx: RequestContext, r: FilterReply): void {
  ctx.status = r.status;
  ctx.responseDetails = r.details;
  ctx.finished = true;
  const headers: string[] = ['server', ctx.snapshot.settings.serverHeader];
  if (r.headers !== null) headers.push(...r.headers);
  if (ctx.responseHeadersToAdd !== null) replaceHeaders(headers, ctx.responseHeadersToAdd);
  writeReply(ctx.res, r.status, headers, EMPTY, false);
}

function direct(ctx: RequestContext, action: DirectResponseAction): void {
  ctx.status = action.status;
  ctx.responseDetails = 'direct_response';
  ctx.finished = true;
  const headers: string[] = ['server', ctx.snapshot.settings.serverHeader];
  const ops = ctx.route!.responseHeaders;
  if (ops !== null) applyHeaderOps(headers, ops, ctx);
  if (ctx.responseHeadersToAdd !== null) replaceHeaders(headers, ctx.responseHeadersToAdd);
  const body = action.body;
  const bytes = body === null ? EMPTY : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (isGrpcRequest(ctx.req.rawHeaders)) return grpcReply(ctx, action.status, headers, bytes);
  // VS-17: a non-empty body is text/plain unless the route's response headers set a type.
  writeReply(ctx.res, action.status, headers, bytes, false);
}

function redirect(ctx: RequestContext, action: RedirectAction): void {
  const settings = ctx.snapshot.settings;
  // The downstream scheme is what Envoy believes x-forwarded-proto to be: the client's value
  // only with trusted hops (GW-18), else the listener's own.
  let scheme: string = ctx.scheme;
  if (settings.numTrustedProxies > 0) {
    const xfp = ctx.req.headers['x-forwarded-proto'];
    if (typeof xfp === 'string' && xfp !== '') scheme = xfp.split(',')[0]!.trim().toLowerCase();
  }
  const location = buildRedirectLocation(action, {
    scheme,
    authority: ctx.authority,
    path: ctx.path,
    query: ctx.query,
    port: ctx.port,
  });
  ctx.status = action.code;
  ctx.responseDetails = 'direct_response';
  ctx.finished = true;
  const headers: string[] = ['server', settings.serverHeader, 'location', location];
  const ops = ctx.route!.responseHeaders;
  if (ops !== null) applyHeaderOps(headers, ops, ctx);
  if (ctx.responseHeadersToAdd !== null) replaceHeaders(headers, ctx.responseHeadersToAdd);
  if (isGrpcRequest(ctx.req.rawHeaders)) return grpcReply(ctx, action.code, headers, null);
  writeReply(ctx.res, action.code, headers, EMPTY, false);
}

function forward(ctx: RequestContext, action: ForwardAction): void {
  const dest = pickDestination(action);
  const cluster = dest.cluster;
  if (cluster === null) {
    ctx.clusterName = dest.clusterName;
    return refuse(ctx, NO_CLUSTER);
  }
  if (cluster.grpcWeb === true) bridgeGrpcWeb(ctx);
  forwardRequest(ctx, action, dest, cluster, sendUpstreamFailure, sendLocalReply);
}
