/**
 * The Location of a redirect (VS-16, GW-18), as Envoy builds it (router config_impl.cc newUri /
 * processRequestHost). Shared by the data plane and `explain`.
 */
import type { RedirectAction } from './types.ts';

export interface RedirectRequest {
  /** Downstream scheme (what x-forwarded-proto says). */
  readonly scheme: string;
  /** Raw Host / :authority, port included. */
  readonly authority: string;
  /** Path without query. */
  readonly path: string;
  /** Query without '?', '' when none. */
  readonly query: string;
  /** The Gateway server port the request arrived on (derivePort FROM_REQUEST_PORT). */
  readonly port: number;
}

/** Index of the `:port` in a Host value, or -1 (IPv6 literals in brackets handled). */
function portStart(host: string): number {
  if (host.startsWith('[')) {
    const i = host.lastIndexOf(']:');
    return i < 0 ? -1 : i + 1;
  }
  return host.lastIndexOf(':');
}

function isDefaultPort(scheme: string, port: number): boolean {
  return (scheme === 'http' && port === 80) || (scheme === 'https' && port === 443);
}

export function buildRedirectLocation(action: RedirectAction, req: RedirectRequest): string {
  const scheme = action.scheme ?? (action.httpsRedirect ? 'https' : req.scheme);
  const redirectPort =
    action.port !== null ? action.port : action.derivePort === 'FROM_REQUEST_PORT' ? req.port : null;

  let host: string;
  if (action.authority !== null) {
    host = action.authority;
  } else {
    host = req.authority;
    const at = portStart(host);
    if (at >= 0) {
      const requestPort = host.slice(at);
      // A new explicit port replaces the request's; otherwise the request's port is dropped only
      // when the scheme changes and it was the old scheme's default.
      let remove = redirectPort !== null;
      if (scheme !== req.scheme) {
        remove ||=
          (req.scheme === 'https' && requestPort === ':443') ||
          (req.scheme === 'http' && requestPort === ':80');
      }
      if (remove) host = host.slice(0, at);
    }
  }
  const port = redirectPort !== null && !isDefaultPort(scheme, redirectPort) ? `:${redirectPort}` : '';

  let pathAndQuery: string;
  if (action.uri !== null) {
    // A uri with its own query replaces the request's query; otherwise the query is kept.
    pathAndQuery = action.uri.includes('?') || req.query === '' ? action.uri : `${action.uri}?${req.query}`;
  } else {
    pathAndQuery = req.query === '' ? req.path : `${req.path}?${req.query}`;
  }
  return `${scheme}://${host}${port}${pathAndQuery}`;
}
