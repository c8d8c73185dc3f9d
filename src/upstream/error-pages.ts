/**
 * ingress-nginx's error pages (custom-http-errors, default-backend): the headers of the requests
 * the default backend gets, and the status nginx gives an upstream failure, which is what
 * `error_page` matches (forward.ts decides when and sends).
 *
 * The error page request is nginx's named location `@custom_<upstream>_<code>`: the client's
 * method and headers, `proxy_set_header` replacing X-Code, X-Format ($http_accept, absent when
 * empty), X-Original-URI ($request_uri), X-Namespace, X-Ingress-Name, X-Service-Name,
 * X-Service-Port, X-Request-ID, X-Forwarded-For ($remote_addr) and Host ($best_http_host), and
 * the path rewritten to `/` with the query kept. While a route's Service has no endpoints the
 * default backend serves the request itself with X-Code 503 and the same X-* headers except
 * X-Original-URI (nginx.tmpl, `custom-default-backend-` locations).
 */
import type { ErrorPages } from '../snapshot/types.ts';
import type { UpstreamFailure } from './upstream-error.ts';

/** Names the error headers replace, whatever the client sent (lower case). */
const REPLACED = new Set([
  'x-code',
  'x-format',
  'x-namespace',
  'x-ingress-name',
  'x-service-name',
  'x-service-port',
  'x-envoy-attempt-count',
]);
/** Also replaced or dropped on an error page request (its own Host, no body, path `/`). */
const REPLACED_ON_PAGE = new Set([
  'host',
  'x-forwarded-for',
  'x-original-uri',
  'x-envoy-original-path',
  'content-length',
]);

/**
 * `base` (the route's upstream request headers) with the error headers for `code`. `page` is set
 * for an error page request (Host, X-Forwarded-For and X-Original-URI of nginx's named location);
 * null for the default backend serving the route itself.
 */
export function errorRequestHeaders(
  base: readonly string[],
  pages: ErrorPages,
  code: number,
  page: { readonly authority: string; readonly originalUri: string } | null,
): { headers: string[]; attemptCountIndex: number } {
  const out: string[] = [];
  let accept: string | null = null;
  let client = '';
  for (let i = 0; i < base.length; i += 2) {
    const name = base[i]!.toLowerCase();
    const value = base[i + 1]!;
    if (name === 'accept') accept = accept === null ? value : accept + ', ' + value;
    else if (name === 'x-envoy-external-address') client = value;
    if (REPLACED.has(name) || (page !== null && REPLACED_ON_PAGE.has(name))) continue;
    out.push(base[i]!, value);
  }
  if (page !== null)
    out.push('host', page.authority, 'x-forwarded-for', client, 'x-original-uri', page.originalUri);
  out.push('x-code', String(code));
  if (accept !== null && accept !== '') out.push('x-format', accept);
  out.push(...pages.headers, 'x-envoy-attempt-count', '1');
  return { headers: out, attemptCountIndex: out.length - 1 };
}

/**
 * nginx's status for an upstream failure (ngx_http_upstream_next): a timeout, connecting or
 * reading, is 504; every other error 502. sluice answers these with Envoy's codes when it answers
 * itself (503 for a refused connection), but error_page matches nginx's.
 */
export function nginxFailureStatus(f: UpstreamFailure): number {
  return f.kind === 'timeout' || f.resetReason === 'connection timeout' ? 504 : 502;
}

/** The upstream's WWW-Authenticate lines: nginx keeps them on an intercepted 401. */
export function challengesOf(raw: readonly (Buffer | string)[]): string[] | null {
  let out: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = latin1(raw[i]!);
    if (name.length === 16 && name.toLowerCase() === 'www-authenticate')
      (out ??= []).push('www-authenticate', latin1(raw[i + 1]!));
  }
  return out;
}

function latin1(v: Buffer | string): string {
  return typeof v === 'string' ? v : v.toString('latin1');
}
