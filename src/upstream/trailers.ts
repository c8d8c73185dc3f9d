/**
 * What HTTP/2 adds to a response: trailers after the body, and responses that end with their
 * headers (gRPC's trailers-only form, which clients read the status from). An HTTP/2 response
 * whose head went out through writeHead ends with an empty DATA frame, so a headers-only response
 * is set header by header and ended at once (one HEADERS frame with END_STREAM).
 */
import type { ServerResponse } from 'node:http';
import { hasHeader } from './header-ops.ts';

/** Headers an HTTP/2 trailer or header block may not carry (RFC 9113 §8.2.2), and `server`-set ones. */
const NOT_IN_TRAILERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'host',
  'content-length',
]);

/**
 * Set on a response before its head goes out when the upstream may end with trailers (an HTTP/2
 * upstream): an HTTP/2 response then waits for them after its body. HTTP/1 responses ignore it.
 */
export const kExpectTrailers = Symbol('sluice.expectTrailers');

export function expectTrailers(res: ServerResponse): void {
  (res as ServerResponse & { [kExpectTrailers]?: boolean })[kExpectTrailers] = true;
}

/** Status + flat header list, then the end of the response with no body. */
export function endWithHeaders(
  res: ServerResponse,
  status: number,
  headers: readonly string[],
  h2: boolean,
): void {
  if (!h2) {
    // Envoy's HTTP/1 codec says an ended response has no body rather than chunking nothing.
    const list =
      status === 204 || status === 304 || res.req.method === 'HEAD' || hasHeader(headers, 'content-length')
        ? (headers as string[])
        : [...headers, 'content-length', '0'];
    res.writeHead(status, list);
    res.end();
    return;
  }
  res.statusCode = status;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase();
    const value = headers[i + 1]!;
    const prior = res.getHeader(name);
    if (prior === undefined) res.setHeader(name, value);
    else res.setHeader(name, Array.isArray(prior) ? [...(prior as string[]), value] : [String(prior), value]);
  }
  res.end();
}

/** An HTTP/2 upstream's trailers (flat list) onto the response, before it ends. */
export function addTrailers(res: ServerResponse, trailers: readonly string[]): void {
  const out: Record<string, string> = {};
  let any = false;
  for (let i = 0; i < trailers.length; i += 2) {
    const name = trailers[i]!.toLowerCase();
    if (name.charCodeAt(0) === 58 || NOT_IN_TRAILERS.has(name)) continue;
    out[name] = out[name] === undefined ? trailers[i + 1]! : out[name] + ', ' + trailers[i + 1]!;
    any = true;
  }
  if (any) res.addTrailers(out);
}
