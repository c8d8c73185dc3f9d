/**
 * Answers the gateway gives itself (DP-3, DP-4), with Envoy's status, body and response flag.
 * Non-empty bodies get `content-type: text/plain` and `content-length`; every reply carries
 * `server` (DP-2) and, once a route was chosen, that route's response header operations (VS-21:
 * Envoy's router applies them to its own local replies too).
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import { rawHeader } from '../observability/request-facts.ts';
import type { ForwardContext } from '../upstream/forward.ts';
import { applyHeaderOps, hasHeader, replaceHeaders } from '../upstream/header-ops.ts';
import type { UpstreamFailure } from '../upstream/upstream-error.ts';

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
  const res = beginLocalReply(ctx, status, flag, details);
  if (res !== null)
    writeReply(res, status, localReplyHeaders(ctx, [], extraHeaders), body === null ? EMPTY : body, false);
}

/** Records the outcome; the response to write, or null when it can no longer be answered. */
function beginLocalReply(
  ctx: ForwardContext,
  status: number,
  flag: string,
  details: string,
): ServerResponse | null {
  ctx.status = status;
  if (ctx.responseFlags === '-' || flag !== '-') ctx.responseFlags = flag;
  ctx.responseDetails = details;
  ctx.finished = true;
  const res = ctx.res;
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return null;
  }
  return res;
}

/** `server`, then `first`, the route's response operations, `extra` and what filters added. */
function localReplyHeaders(ctx: ForwardContext, first: string[], extra: readonly string[] | null): string[] {
  const headers: string[] = ['server', ctx.snapshot.settings.serverHeader, ...first];
  const route = ctx.route;
  if (route !== null && route.responseHeaders !== null) applyHeaderOps(headers, route.responseHeaders, ctx);
  if (extra !== null) replaceHeaders(headers, extra);
  if (ctx.responseHeadersToAdd !== null) replaceHeaders(headers, ctx.responseHeadersToAdd);
  return headers;
}

/** Envoy's gRPC request test: content-type application/grpc, alone or with `+…` or `;…`. */
export function isGrpcRequest(req: IncomingMessage): boolean {
  const ct = rawHeader(req.rawHeaders, 'content-type');
  if (ct === null || !ct.startsWith('application/grpc')) return false;
  const next = ct[16];
  return next === undefined || next === '+' || next === ';';
}

/** gRPC's percent-encoding of grpc-message: bytes outside printable ASCII, and `%` itself. */
export function encodeGrpcMessage(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) {
    out +=
      b < 0x20 || b > 0x7e || b === 0x25
        ? '%' + b.toString(16).toUpperCase().padStart(2, '0')
        : String.fromCharCode(b);
  }
  return out;
}

/**
 * A local reply to a gRPC request with an explicit grpc-status (DP-3): HTTP 200, no body, the
 * status and message as headers of a response that ends with them (gRPC's trailers-only form).
 */
export function sendGrpcLocalReply(
  ctx: ForwardContext,
  grpcStatus: number,
  flag: string,
  details: string,
  message: Buffer | null,
): void {
  const res = beginLocalReply(ctx, 200, flag, details);
  if (res === null) return;
  const first = ['content-type', 'application/grpc', 'grpc-status', String(grpcStatus)];
  if (message !== null && message.length > 0)
    first.push('grpc-message', encodeGrpcMessage(message.toString('utf8')));
  const headers = localReplyHeaders(ctx, first, null);
  const stream = (res as unknown as Partial<Http2ServerResponse>).stream;
  if (stream === undefined) {
    writeReply(res, 200, headers, EMPTY, false);
    return;
  }
  // HTTP/2: one HEADERS frame that ends the stream, which gRPC clients read as the status.
  const h2: OutgoingHttpHeaders = { ':status': 200 };
  for (let i = 0; i < headers.length; i += 2) h2[headers[i]!] = headers[i + 1]!;
  stream.respond(h2, { endStream: true });
  res.end();
}

/** A reply for an upstream failure (503 UF/UC/UR, 502 UPE, 504 UT). */
export function sendUpstreamFailure(ctx: ForwardContext, f: UpstreamFailure, retried: boolean): void {
  let text: string;
  let details: string;
  if (f.flag === 'UT') {
    text = 'upstream request timeout';
    details = 'upstream_response_timeout';
  } else {
    text =
      BODY_UF_PREFIX + (retried ? 'retried and the latest reset reason: ' : 'reset reason: ') + f.resetReason;
    details = 'upstream_reset_before_response_started{' + f.resetReason.replaceAll(' ', '_') + '}';
  }
  const flag = retried && f.flag !== 'UT' ? f.flag + ',URX' : f.flag;
  sendLocalReply(ctx, f.status, flag, details, Buffer.from(text));
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
