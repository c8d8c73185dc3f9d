/**
 * Answers the gateway gives itself (DP-3, DP-4), with Envoy's status, body and response flag.
 * Non-empty bodies get `content-type: text/plain` and `content-length`; every reply carries
 * `server` (DP-2) and, once a route was chosen, that route's response header operations (VS-21:
 * Envoy's router applies them to its own local replies too). A gRPC request gets Envoy's gRPC
 * form instead (http/utility.cc sendLocalReply): a trailers-only `200` with `grpc-status` (the
 * HTTP status mapped, unless a filter set one) and the body as a percent-encoded `grpc-message`.
 */
import type { ServerResponse } from 'node:http';
import type { ForwardContext } from '../upstream/forward.ts';
import { applyHeaderOps, hasHeader, replaceHeaders } from '../upstream/header-ops.ts';
import { failureFlag, type UpstreamFailure } from '../upstream/upstream-error.ts';
import { endWithHeaders } from '../upstream/trailers.ts';
import { grpcWebContentType } from '../upstream/grpc-web.ts';
import {
  createGrpcExchange,
  httpToGrpcStatus,
  isGrpcRequest,
  percentEncodeGrpcMessage,
} from '../util/grpc.ts';

export const BODY_UF_PREFIX = 'upstream connect error or disconnect/reset before headers. ';

const EMPTY = Buffer.alloc(0);

/** Local reply with a fixed status, flag and body. */
export function sendLocalReply(
  ctx: ForwardContext,
  status: number,
  flag: string,
  details: string,
  body: Buffer | null,
  extraHeaders: readonly string[] | null = null,
): void {
  ctx.status = status;
  if (ctx.responseFlags === '-' || flag !== '-') ctx.responseFlags = flag;
  ctx.responseDetails = details;
  ctx.finished = true;
  const res = ctx.res;
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const headers: string[] = ['server', ctx.snapshot.settings.serverHeader];
  const route = ctx.route;
  if (route !== null && route.responseHeaders !== null) applyHeaderOps(headers, route.responseHeaders, ctx);
  if (extraHeaders !== null) replaceHeaders(headers, extraHeaders);
  if (ctx.responseHeadersToAdd !== null) replaceHeaders(headers, ctx.responseHeadersToAdd);
  if (isGrpcRequest(ctx.req.rawHeaders)) return grpcReply(ctx, status, headers, body);
  writeReply(res, status, headers, body === null ? EMPTY : body, false);
}

/**
 * DP-3: the local reply as gRPC clients read it; `status` stays the logged response code. Direct
 * responses and redirects take this form too: Envoy's router sends them with sendLocalReply.
 */
export function grpcReply(ctx: ForwardContext, status: number, headers: string[], body: Buffer | null): void {
  let grpcStatus: string | null = null;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase();
    if (name === 'grpc-status') grpcStatus = headers[i + 1]!;
    if (name === 'grpc-status' || name === 'content-type' || name === 'content-length') {
      headers.splice(i, 2);
      i -= 2;
    }
  }
  grpcStatus ??= String(httpToGrpcStatus(status));
  // A bridged gRPC-Web request is gRPC by now; Envoy's grpc_web filter then names its own type.
  const type = ctx.grpcWeb === null ? 'application/grpc' : grpcWebContentType(ctx.grpcWeb);
  headers.push('content-type', type, 'grpc-status', grpcStatus);
  if (body !== null && body.length > 0 && ctx.method !== 'HEAD') {
    const text = body.toString('utf8');
    // Envoy drops the newline a JSON body format ends with.
    headers.push('grpc-message', percentEncodeGrpcMessage(text.endsWith('\n') ? text.slice(0, -1) : text));
  }
  (ctx.grpc ??= createGrpcExchange()).status = grpcStatus;
  endWithHeaders(ctx.res, 200, headers, ctx.req.httpVersionMajor === 2);
}

/** A reply for an upstream failure (503 UF/UC/UR, 502 UPE, 504 UT). */
export function sendUpstreamFailure(ctx: ForwardContext, f: UpstreamFailure, retried: boolean): void {
  let text: string;
  let details: string;
  if (f.flag === 'UT') {
    text = 'upstream request timeout';
    details = 'upstream_response_timeout';
  } else {
    const tls = f.transportFailureReason;
    text =
      BODY_UF_PREFIX +
      (retried ? 'retried and the latest reset reason: ' : 'reset reason: ') +
      f.resetReason +
      (tls === undefined ? '' : ', transport failure reason: ' + tls);
    details =
      'upstream_reset_before_response_started{' +
      f.resetReason.replaceAll(' ', '_') +
      (tls === undefined ? '' : '|' + tls.replaceAll(' ', '_')) +
      '}';
    if (tls !== undefined) ctx.transportFailureReason = tls;
  }
  sendLocalReply(ctx, f.status, failureFlag(f, retried), details, Buffer.from(text));
}

/**
 * Writes status + headers + body. `headers` is a flat list; content-type is added for a
 * non-empty body unless the list already has one (VS-17).
 */
export function writeReply(
  res: ServerResponse,
  status: number,
  headers: string[],
  body: Buffer,
  close: boolean,
): void {
  if (body.length > 0 && !hasHeader(headers, 'content-type')) headers.push('content-type', 'text/plain');
  headers.push('content-length', String(body.length));
  if (close) {
    headers.push('connection', 'close');
    res.shouldKeepAlive = false;
  }
  res.writeHead(status, headers);
  res.end(body.length > 0 ? body : undefined);
}

/**
 * The raw bytes of a reply for a connection whose request never parsed (server 'clientError'):
 * Envoy's codec errors answer with the status text as body and close the connection.
 */
export function rawErrorReply(status: number, reason: string, serverHeader: string): string {
  return (
    'HTTP/1.1 ' +
    status +
    ' ' +
    reason +
    '\r\ncontent-length: ' +
    reason.length +
    '\r\ncontent-type: text/plain\r\nserver: ' +
    serverHeader +
    '\r\nconnection: close\r\n\r\n' +
    reason
  );
}
