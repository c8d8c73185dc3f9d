/**
 * Answers the gateway gives itself (DP-3, DP-4), with Envoy's status, body and response flag.
 * Non-empty bodies get `content-type: text/plain` and `content-length`; every reply carries
 * `server` (DP-2) and, once a route was chosen, that route's response header operations (VS-21:
 * Envoy's router applies them to its own local replies too).
 */
import type { ServerResponse } from 'node:http';
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
  writeReply(res, status, headers, body === null ? EMPTY : body, false);
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
