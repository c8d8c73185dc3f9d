/**
 * The routing decision, once, for the data plane and for `sluice explain`: request target →
 * authority → Host validation → host key (GW-10) → listener table, 421 on TLS (GW-14) → vhost →
 * route → destination. Each step writes what it decided onto the request and returns a Refusal
 * when the request ends there; explain reads the same fields to say why.
 *
 * Two calls, so a phase can sit between them: `admitRequest` fixes the listener, server and route
 * table (what workload-level policy keys on); `selectRoute` picks vhost and route, and may be run
 * again after something changed the request. Neither allocates on the way to a route: results are
 * snapshot objects and the refusals below.
 */
import { normalisePath } from '../util/normalise-path.ts';
import { findRoute, findTlsServer, findVirtualHost } from './lookup.ts';
import type {
  ForwardAction,
  RequestView,
  Route,
  RouteTable,
  Snapshot,
  TlsServer,
  VirtualHost,
  WeightedCluster,
} from './types.ts';

/** What the steps fill in. RequestContext is one; explain builds one from its arguments. */
export interface RoutedRequest extends RequestView {
  authority: string;
  host: string;
  path: string;
  query: string;
  /** TLS listeners: the server the SNI chose (GW-14). */
  tlsServer: TlsServer | null;
  /** The route table looked up; null when nothing on the port serves HTTP. */
  table: RouteTable | null;
  vhost: VirtualHost | null;
  route: Route | null;
}

/** A request nothing has been decided for yet (explain, tools; the data plane's is RequestContext). */
export function undecidedRequest(
  method: string,
  scheme: 'http' | 'https',
  port: number,
  headers: RequestView['headers'],
): RoutedRequest {
  return {
    method,
    scheme,
    authority: '',
    host: '',
    path: '/',
    query: '',
    headers,
    port,
    queryParams: null,
    claims: null,
    tlsServer: null,
    table: null,
    vhost: null,
    route: null,
  };
}

/** A local answer decided while routing: Envoy's status, response flag and details. */
export interface Refusal {
  readonly status: number;
  /** `DPE` (downstream protocol error), `NR`, `NC`, or '-'. */
  readonly flag: string;
  /** %RESPONSE_CODE_DETAILS%. */
  readonly details: string;
  /** Body text; '' for none. */
  readonly body: string;
  /** A codec-level error: HTTP/1 connections close after it, as Envoy's codec closes them. */
  readonly close: boolean;
}

function badRequest(details: string): Refusal {
  return { status: 400, flag: 'DPE', details, body: 'Bad Request', close: true };
}

/** What the HTTP/1 codec refuses: the same Host twice (RFC 9112 §3.2), a method that is no token. */
export const CODEC_ERROR = badRequest('http1.codec_error');
/** A target that is neither origin-form nor an http(s) absolute-form, or has a fragment. */
export const INVALID_URL = badRequest('http1.invalid_url');
export const MISSING_HOST = badRequest('missing_host_header');
/** A Host / :authority with bytes outside RFC 3986's host and port. */
export const INVALID_AUTHORITY = badRequest('http.invalid_authority');
/** AP-9: the path cannot be normalised (encoded slash under REJECT, %00, …). */
export const PATH_REFUSED = badRequest('path_normalization_failed');
/** GW-14: the Host belongs to another TLS server on the port than the one the SNI chose. */
export const MISDIRECTED: Refusal = {
  status: 421,
  flag: '-',
  details: 'misdirected_request',
  body: 'Misdirected Request',
  close: false,
};
/** GW-12: no vhost or no route. */
export const NO_ROUTE: Refusal = {
  status: 404,
  flag: 'NR',
  details: 'route_not_found',
  body: '',
  close: false,
};
/** VS-19: the chosen destination names no known cluster. */
export const NO_CLUSTER: Refusal = {
  status: 503,
  flag: 'NC',
  details: 'cluster_not_found',
  body: '',
  close: false,
};

/**
 * Envoy's authority check, made RFC 3986's: host (reg-name, IPv4, IP-literal) and port characters
 * only. Envoy's own table also admits `@` (HTTP/1 user-info); sluice refuses it, as RFC 9110
 * §4.2.4 asks of a recipient, so a Host never carries credentials or a second host past routing.
 */
const AUTHORITY_CHARS = ((): Uint8Array => {
  const t = new Uint8Array(128);
  const allowed = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789' + "-._~!$&'()*+,;=%:[]";
  for (let i = 0; i < allowed.length; i++) t[allowed.charCodeAt(i)] = 1;
  return t;
})();

/**
 * GW-10: the host key of an authority (lowercase, port dropped, `[v6]:port` kept bracketed, a
 * trailing dot dropped), or null when the authority has bytes outside RFC 3986 host and port.
 * One pass over the bytes: this runs for every request.
 */
export function hostKeyOf(authority: string): string | null {
  const n = authority.length;
  let lastColon = -1;
  let firstClose = -1;
  let upper = false;
  for (let i = 0; i < n; i++) {
    const c = authority.charCodeAt(i);
    if (c >= 128 || AUTHORITY_CHARS[c] === 0) return null;
    if (c === 58 /* : */) lastColon = i;
    else if (c === 93 /* ] */) {
      if (firstClose < 0) firstClose = i;
    } else if (c >= 65 && c <= 90) upper = true;
  }
  let end = n;
  if (authority.charCodeAt(0) === 91 /* [ */) {
    if (firstClose > 0) end = firstClose + 1;
  } else if (lastColon >= 0) end = lastColon;
  let host = end === n ? authority : authority.slice(0, end);
  if (upper) host = host.toLowerCase();
  // A trailing dot is the same name (Envoy strips it for host matching).
  if (host.length > 1 && host.charCodeAt(host.length - 1) === 46) host = host.slice(0, -1);
  return host;
}

/**
 * Step one, before any policy: the request target (origin form, or absolute form whose authority
 * replaces Host, as Envoy does), the authority and its host key, the normalised path and query
 * (AP-9), then the route table: the port's shared one on plaintext, the SNI-chosen server's own
 * on TLS, 421 when another server on the port owns the Host.
 *
 * `hostHeader` is the Host header or `:authority` ('' when absent, null when sent twice); `sni` the
 * connection's SNI on TLS listeners ('' for none).
 */
export function admitRequest(
  r: RoutedRequest,
  snapshot: Snapshot,
  target: string,
  hostHeader: string | null,
  sni: string,
): Refusal | null {
  if (hostHeader === null) return CODEC_ERROR;
  let authority: string;
  if (target.charCodeAt(0) === 47 /* / */) {
    authority = hostHeader;
  } else {
    const scheme = target.startsWith('http://') ? 7 : target.startsWith('https://') ? 8 : -1;
    if (scheme < 0) return INVALID_URL;
    const slash = target.indexOf('/', scheme);
    const q = target.indexOf('?', scheme);
    const end = slash < 0 ? (q < 0 ? target.length : q) : q >= 0 && q < slash ? q : slash;
    authority = target.slice(scheme, end);
    target =
      end === target.length
        ? '/'
        : target.charCodeAt(end) === 47
          ? target.slice(end)
          : '/' + target.slice(end);
  }
  if (authority === '') return MISSING_HOST;
  const host = hostKeyOf(authority);
  if (host === null) return INVALID_AUTHORITY;
  // Envoy rejects a fragment in the request target (http_reject_path_with_fragment).
  if (target.includes('#')) return INVALID_URL;
  const qi = target.indexOf('?');
  const path = normalisePath(qi < 0 ? target : target.slice(0, qi), snapshot.settings.pathNormalization);
  if (path === null) return PATH_REFUSED;
  r.path = path;
  r.query = qi < 0 ? '' : target.slice(qi + 1);
  r.authority = authority;
  r.host = host;

  const listener = snapshot.listeners.get(r.port);
  if (listener === undefined) return null;
  if (r.scheme === 'http') {
    r.table = listener.httpTable;
    return null;
  }
  // GW-14: the SNI-chosen server's own table; a Host another server on the port owns → 421, so
  // HTTP/2 coalescing and cross-host requests never route silently.
  const servers = listener.tlsServers;
  const chosen = findTlsServer(servers, sni);
  r.tlsServer = chosen;
  const owner = servers.length === 1 ? chosen : findTlsServer(servers, host);
  if (chosen === null || (owner !== null && owner !== chosen)) return MISDIRECTED;
  r.table = chosen.table;
  return null;
}

/** Step two: vhost (GW-10, GW-11) then the first matching route (VS-4); 404 NR when none. */
export function selectRoute(r: RoutedRequest): Refusal | null {
  const table = r.table;
  const vhost = table === null ? null : findVirtualHost(table, r.host);
  r.vhost = vhost;
  const route = vhost === null ? null : findRoute(vhost, r);
  r.route = route;
  return route === null ? NO_ROUTE : null;
}

/** VS-20: a random integer in [0, totalWeight) walks the cumulative weights. */
export function pickDestination(action: ForwardAction): WeightedCluster {
  const dests = action.destinations;
  if (dests.length === 1) return dests[0]!;
  let r = (Math.random() * action.totalWeight) | 0;
  for (let i = 0; i < dests.length; i++) {
    const d = dests[i]!;
    if (r < d.weight) return d;
    r -= d.weight;
  }
  return dests[0]!;
}
