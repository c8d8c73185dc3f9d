/**
 * `sluice explain`: which listener, server, vhost and route a request reaches, and why each
 * earlier route did not match. It walks the same snapshot structures as lookup.ts, with the same
 * path normalisation as the data plane.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { normalisePath } from '../util/normalise-path.ts';
import { describeAction, describeConditions } from './describe.ts';
import { findTlsServer, findVirtualHost, headerValue, queryParamsOf } from './lookup.ts';
import { buildRedirectLocation } from './redirect.ts';
import type {
  Listener,
  RequestView,
  Route,
  RouteSource,
  RouteTable,
  ServerRef,
  Snapshot,
  VirtualHost,
} from './types.ts';

export interface ExplainCall {
  /** The Gateway server port the request arrives on. */
  readonly port: number;
  /** Host / :authority as sent, port included. */
  readonly authority: string;
  /** Request target: path, may include `?query`. */
  readonly path: string;
  readonly method?: string;
  /** Header names in any case. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly scheme?: 'http' | 'https';
  /** TLS SNI; defaults to the host of `authority` on TLS listeners. */
  readonly sni?: string;
}

export type VhostChoice = 'exact' | 'wildcard' | 'catch-all';

export interface RouteFailure {
  readonly route: string;
  readonly source: RouteSource | null;
  readonly field: string;
  readonly expected: string;
  /** What the request had for that field; null when absent. */
  readonly actual: string | null;
}

export interface LocalReply {
  readonly status: number;
  /** Envoy response flag (NR, NC) or '-' for a configured reply. */
  readonly flag: string;
  readonly reason: string;
  readonly location?: string;
}

export interface ExplainDestination {
  readonly cluster: string;
  readonly weight: number;
  readonly known: boolean;
  readonly endpoints: readonly string[];
}

export interface ExplainResult {
  readonly listener: {
    readonly port: number;
    readonly protocol: string;
    readonly servers: readonly ServerRef[];
  } | null;
  /** The terminated TLS server chosen by SNI, on HTTPS listeners. */
  readonly tlsServer: ServerRef | null;
  readonly table: string | null;
  readonly path: string | null;
  readonly vhost: { readonly name: string; readonly how: VhostChoice } | null;
  /** Routes tried before the winner (or all of them when none matched), each with its first failing condition. */
  readonly skipped: readonly RouteFailure[];
  readonly route: {
    readonly name: string;
    readonly source: RouteSource | null;
    readonly match: string;
    readonly action: string;
  } | null;
  readonly destinations: readonly ExplainDestination[];
  /** Set when sluice answers itself (404 NR, 503 NC, redirects, direct responses, refusals). */
  readonly localReply: LocalReply | null;
  /** The same, as lines for a terminal. */
  readonly lines: readonly string[];
}

function hostOf(authority: string): string {
  let host = authority;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    host = end >= 0 ? host.slice(0, end + 1) : host;
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0) host = host.slice(0, colon);
  }
  return host.toLowerCase();
}

/** The data plane's own vhost lookup, then which of its three steps found it (for the explanation). */
function chooseVhost(table: RouteTable, host: string): { vhost: VirtualHost; how: VhostChoice } | null {
  const vhost = findVirtualHost(table, host);
  if (vhost === null) return null;
  const how: VhostChoice =
    table.exact.get(host) === vhost ? 'exact' : vhost === table.catchAll ? 'catch-all' : 'wildcard';
  return { vhost, how };
}

/** The request's value for a condition's field, for the explanation. */
function actualOf(field: string, req: RequestView): string | null {
  if (field === 'uri') return req.path;
  if (field === 'method') return req.method;
  if (field === 'scheme') return req.scheme;
  if (field === 'authority') return req.authority;
  const m = /^(headers|withoutHeaders|queryParams)\[(.*)\]$/.exec(field);
  if (!m) return null;
  const name = m[2] ?? '';
  if (m[1] === 'queryParams') return queryParamsOf(req).get(name) ?? null;
  if (name.startsWith('@request.auth.claims')) return req.claims === null ? null : JSON.stringify(req.claims);
  return headerValue(req, name) ?? null;
}

function firstFailure(route: Route, req: RequestView): RouteFailure | null {
  for (const c of route.conditions) {
    if (!c.test(req))
      return {
        route: route.name,
        source: route.source,
        field: c.field,
        expected: c.expected,
        actual: actualOf(c.field, req),
      };
  }
  return null;
}

function sourceText(s: RouteSource | null): string {
  if (s === null) return 'sluice';
  const match = s.matchIndex < 0 ? '' : `.match[${s.matchIndex}]`;
  return `VirtualService ${s.vsNamespace}/${s.vsName} spec.http[${s.httpIndex}]${match}${s.ruleName ? ` (${s.ruleName})` : ''}`;
}

function serverText(s: ServerRef): string {
  return `Gateway ${s.gatewayNamespace}/${s.gatewayName} spec.servers[${s.serverIndex}] (${s.portName}: ${s.hosts.join(', ')})`;
}

function lowerHeaders(h: Readonly<Record<string, string>> | undefined): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(h ?? {})) {
    const name = k.toLowerCase();
    const prev = out[name];
    out[name] = typeof prev === 'string' ? `${prev}, ${v}` : v;
  }
  return out;
}

export function explainRequest(snapshot: Snapshot, call: ExplainCall): ExplainResult {
  const lines: string[] = [];
  const base = {
    listener: null,
    tlsServer: null,
    table: null,
    path: null,
    vhost: null,
    skipped: [] as RouteFailure[],
    route: null,
    destinations: [] as ExplainDestination[],
  };
  const listener: Listener | undefined = snapshot.listeners.get(call.port);
  if (!listener) {
    lines.push(`port ${call.port}: no Gateway server listens here; the connection is refused (GW-3)`);
    return { ...base, localReply: { status: 0, flag: '-', reason: 'connection refused' }, lines };
  }
  const listenerOut = { port: listener.port, protocol: listener.protocol, servers: listener.servers };
  lines.push(
    `listener ${listener.port} ${listener.protocol}: ${listener.servers.map(serverText).join('; ')}`,
  );

  const host = hostOf(call.authority);
  let table: RouteTable | null;
  let tlsServer: ServerRef | null = null;
  if (listener.protocol === 'HTTP') {
    table = listener.httpTable;
  } else if (listener.protocol === 'HTTPS') {
    const sni = call.sni ?? host;
    const chosen = findTlsServer(listener.tlsServers, sni);
    if (!chosen) {
      lines.push(
        `SNI ${sni}: no TLS server on port ${listener.port} serves it; the handshake is aborted (GW-14)`,
      );
      return {
        ...base,
        listener: listenerOut,
        localReply: { status: 0, flag: '-', reason: 'TLS handshake aborted: unknown SNI' },
        lines,
      };
    }
    tlsServer = chosen.server;
    table = chosen.table;
    lines.push(`SNI ${sni}: ${serverText(chosen.server)}`);
  } else {
    lines.push(`port ${listener.port} is a ${listener.protocol} listener; sluice does not serve it yet`);
    return {
      ...base,
      listener: listenerOut,
      localReply: { status: 0, flag: '-', reason: `${listener.protocol} not served` },
      lines,
    };
  }
  if (table === null) {
    return {
      ...base,
      listener: listenerOut,
      tlsServer,
      localReply: { status: 404, flag: 'NR', reason: 'route_not_found' },
      lines,
    };
  }
  lines.push(`route table ${table.name}`);

  const q = call.path.indexOf('?');
  const rawPath = q < 0 ? call.path : call.path.slice(0, q);
  const query = q < 0 ? '' : call.path.slice(q + 1);
  const path = normalisePath(rawPath === '' ? '/' : rawPath, snapshot.settings.pathNormalization);
  if (path === null) {
    lines.push(`path ${rawPath}: refused by path normalisation (AP-9)`);
    return {
      ...base,
      listener: listenerOut,
      tlsServer,
      table: table.name,
      localReply: { status: 400, flag: '-', reason: 'path normalisation refused the path' },
      lines,
    };
  }
  if (path !== rawPath)
    lines.push(`path ${rawPath} normalised to ${path} (${snapshot.settings.pathNormalization})`);

  const req: RequestView = {
    method: call.method ?? 'GET',
    scheme: call.scheme ?? (listener.protocol === 'HTTPS' ? 'https' : 'http'),
    authority: call.authority,
    host,
    path,
    query,
    headers: lowerHeaders(call.headers),
    port: call.port,
    queryParams: null,
    claims: null,
  };

  const chosen = chooseVhost(table, host);
  const common = { listener: listenerOut, tlsServer, table: table.name, path };
  if (!chosen) {
    lines.push(
      `host ${host}: no virtual host in ${table.name} (exact, wildcard or *) → 404 NR route_not_found (GW-12)`,
    );
    return { ...base, ...common, localReply: { status: 404, flag: 'NR', reason: 'route_not_found' }, lines };
  }
  const vhost = { name: chosen.vhost.name, how: chosen.how };
  lines.push(`host ${host}: virtual host ${chosen.vhost.name} (${chosen.how} match)`);

  const skipped: RouteFailure[] = [];
  let winner: Route | null = null;
  for (const route of chosen.vhost.routes) {
    const fail = firstFailure(route, req);
    if (fail === null) {
      winner = route;
      break;
    }
    skipped.push(fail);
    lines.push(
      `  skip ${route.name} [${sourceText(route.source)}]: ${fail.field} wants ${fail.expected}, request has ${fail.actual === null ? '(absent)' : fail.actual}`,
    );
  }
  if (winner === null) {
    lines.push(
      `no route of ${chosen.vhost.name} matches → 404 NR route_not_found (no fall-through to other hosts, GW-11)`,
    );
    return {
      ...base,
      ...common,
      vhost,
      skipped,
      localReply: { status: 404, flag: 'NR', reason: 'route_not_found' },
      lines,
    };
  }
  const action = winner.action;
  const routeOut = {
    name: winner.name,
    source: winner.source,
    match: describeConditions(winner),
    action: describeAction(action),
  };
  lines.push(`match ${winner.name} [${sourceText(winner.source)}]: ${routeOut.match}`);
  lines.push(`action ${routeOut.action}`);

  let localReply: LocalReply | null = null;
  let destinations: ExplainDestination[] = [];
  if (action.kind === 'redirect') {
    const location = buildRedirectLocation(action, {
      scheme: req.scheme,
      authority: req.authority,
      path: req.path,
      query: req.query,
      port: req.port,
    });
    localReply = { status: action.code, flag: '-', reason: 'redirect', location };
    lines.push(`→ ${action.code} location: ${location}`);
  } else if (action.kind === 'direct') {
    localReply = { status: action.status, flag: '-', reason: 'direct_response' };
    lines.push(`→ ${action.status} direct response`);
  } else {
    destinations = action.destinations.map((d) => ({
      cluster: d.clusterName,
      weight: d.weight,
      known: d.cluster !== null,
      endpoints:
        d.cluster === null
          ? []
          : d.cluster.endpoints.endpoints.map(
              (e) => `${e.address}:${e.port}${d.cluster?.endpoints.kind === 'dns' ? ' (dns)' : ''}`,
            ),
    }));
    for (const d of destinations) {
      lines.push(
        `  ${d.cluster} weight ${d.weight}/${action.totalWeight}: ${d.known ? d.endpoints.join(', ') || '(no endpoints: 503 UH)' : 'unknown cluster: 503 NC'}`,
      );
    }
    const live = action.destinations.filter((d) => d.weight > 0);
    if (live.length > 0 && live.every((d) => d.cluster === null)) {
      localReply = { status: 503, flag: 'NC', reason: 'cluster_not_found' };
    }
  }
  return { ...common, vhost, skipped, route: routeOut, destinations, localReply, lines };
}
