/**
 * `sluice explain`: which listener, server, vhost and route a request reaches, and why each
 * earlier route did not match. The decision is the data plane's own (route-request.ts); this file
 * only says it in words.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { describeAction, describeConditions } from './describe.ts';
import { findTlsServer, headerValue, queryParamsOf } from './lookup.ts';
import { buildRedirectLocation } from './redirect.ts';
import {
  admitRequest,
  hostKeyOf,
  INVALID_AUTHORITY,
  INVALID_URL,
  MISDIRECTED,
  MISSING_HOST,
  NO_CLUSTER,
  NO_ROUTE,
  PATH_REFUSED,
  selectRoute,
  undecidedRequest,
  type Refusal,
  type RoutedRequest,
} from './route-request.ts';
import type {
  HttpFilter,
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

/** One filter's verdict, in pipeline order (`jwt_authn: no token, allowed as unauthenticated`). */
export interface FilterStep {
  readonly filter: string;
  readonly verdict: string;
}

/** What the table's filters decide; `reply` when one answers instead of routing. */
export interface PolicyExplanation {
  readonly steps: readonly FilterStep[];
  readonly reply: LocalReply | null;
}

/**
 * Runs a table's filters for explain, with the data plane's own filter code (dataplane/
 * explain-filters.ts; snapshot/ may not import it, so the CLI hands it in). It may read and
 * change the request as the data plane does (claims, header outputs).
 */
export type PolicyExplainer = (
  req: RoutedRequest,
  filters: readonly HttpFilter[],
) => Promise<PolicyExplanation>;

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
  /** The table's filters (security policy), in order, with each verdict; empty when none apply. */
  readonly filters: readonly FilterStep[];
  /** Set when sluice answers itself (404 NR, 503 NC, redirects, direct responses, refusals). */
  readonly localReply: LocalReply | null;
  /** The same, as lines for a terminal. */
  readonly lines: readonly string[];
}

/** Which of the lookup's three steps found the vhost (for the explanation). */
function howChosen(table: RouteTable, host: string, vhost: VirtualHost): VhostChoice {
  return table.exact.get(host) === vhost ? 'exact' : vhost === table.catchAll ? 'catch-all' : 'wildcard';
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

/** Why a refusal happened, in words, with the rule it follows. */
function refusalText(r: Refusal, req: RoutedRequest, call: ExplainCall, sni: string): string {
  switch (r) {
    case MISSING_HOST:
      return 'no Host header → 400 missing_host_header';
    case INVALID_AUTHORITY:
      return `Host ${JSON.stringify(call.authority)} has bytes outside RFC 3986 host and port → 400 ${r.details}`;
    case INVALID_URL:
      return `request target ${JSON.stringify(call.path)} is not origin-form or has a fragment → 400 ${r.details}`;
    case PATH_REFUSED:
      return `path ${call.path}: refused by path normalisation (AP-9) → 400 ${r.details}`;
    case MISDIRECTED:
      return `host ${req.host} belongs to another TLS server on this port than SNI ${sni === '' ? '(none)' : sni} chose → 421 (GW-14)`;
    default:
      return `→ ${r.status} ${r.flag === '-' ? '' : r.flag + ' '}${r.details}`;
  }
}

function localReplyOf(r: Refusal): LocalReply {
  return { status: r.status, flag: r.flag, reason: r.details };
}

/**
 * The decision the data plane makes for `call`, by the data plane's own steps
 * (snapshot/route-request.ts), with each step said in words and, for the routes tried before the
 * winner, the first condition that failed.
 */
export async function explainRequest(
  snapshot: Snapshot,
  call: ExplainCall,
  policy: PolicyExplainer | null = null,
): Promise<ExplainResult> {
  const lines: string[] = [];
  let filters: readonly FilterStep[] = [];
  const base = {
    filters,
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
  if (listener.protocol !== 'HTTP' && listener.protocol !== 'HTTPS') {
    lines.push(`port ${listener.port} is a ${listener.protocol} listener; it does not answer HTTP requests`);
    return {
      ...base,
      listener: listenerOut,
      localReply: { status: 0, flag: '-', reason: `${listener.protocol} not served` },
      lines,
    };
  }
  const scheme = listener.protocol === 'HTTPS' ? 'https' : 'http';
  // The handshake (dataplane/tls-sni.ts) chooses the server by SNI with the same lookup.
  const sni = scheme === 'https' ? (call.sni ?? hostKeyOf(call.authority) ?? '') : '';
  if (scheme === 'https') {
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
    lines.push(`SNI ${sni}: ${serverText(chosen.server)}`);
  }

  const req = undecidedRequest(
    call.method ?? 'GET',
    call.scheme ?? scheme,
    call.port,
    lowerHeaders(call.headers),
  );
  const admitted = admitRequest(req, snapshot, call.path, call.authority, sni);
  const tableName = req.table?.name ?? null;
  const common = {
    listener: listenerOut,
    tlsServer: req.tlsServer?.server ?? null,
    table: tableName,
    path: admitted === null ? req.path : null,
  };
  if (admitted !== null) {
    lines.push(refusalText(admitted, req, call, sni));
    return { ...base, ...common, localReply: localReplyOf(admitted), lines };
  }
  const rawPath = call.path.split('?')[0]!;
  if (req.path !== rawPath)
    lines.push(`path ${rawPath} normalised to ${req.path} (${snapshot.settings.pathNormalization})`);
  if (req.table === null) {
    lines.push(`no route table on port ${listener.port} → 404 NR route_not_found (GW-12)`);
    return { ...base, ...common, localReply: localReplyOf(NO_ROUTE), lines };
  }
  lines.push(`route table ${req.table.name}`);

  // Workload-level policy runs before the route is chosen, as in the data plane.
  const chain = req.table.filters;
  if (chain !== undefined) {
    if (policy === null) {
      filters = chain.map((f) => ({ filter: f.kind, verdict: 'not evaluated' }));
      lines.push(`filters: ${chain.map((f) => f.kind).join(', ')} (not evaluated here)`);
    } else {
      const p = await policy(req, chain);
      filters = p.steps;
      for (const s of p.steps) lines.push(`${s.filter}: ${s.verdict}`);
      if (p.reply !== null) {
        lines.push(`→ ${p.reply.status} ${p.reply.flag === '-' ? '' : p.reply.flag + ' '}${p.reply.reason}`);
        return { ...base, ...common, filters, localReply: p.reply, lines };
      }
    }
  }

  const noRoute = selectRoute(req);
  const chosenVhost = req.vhost;
  if (chosenVhost === null) {
    lines.push(
      `host ${req.host}: no virtual host in ${req.table.name} (exact, wildcard or *) → 404 NR route_not_found (GW-12)`,
    );
    return { ...base, ...common, filters, localReply: localReplyOf(NO_ROUTE), lines };
  }
  const how = howChosen(req.table, req.host, chosenVhost);
  const vhost = { name: chosenVhost.name, how };
  lines.push(`host ${req.host}: virtual host ${chosenVhost.name} (${how} match)`);

  // Why each route before the winner (all of them when none won) did not match.
  const winner = req.route;
  const skipped: RouteFailure[] = [];
  for (const route of chosenVhost.routes) {
    if (route === winner) break;
    const fail = firstFailure(route, req);
    if (fail === null) continue;
    skipped.push(fail);
    lines.push(
      `  skip ${route.name} [${sourceText(route.source)}]: ${fail.field} wants ${fail.expected}, request has ${fail.actual === null ? '(absent)' : fail.actual}`,
    );
  }
  if (noRoute !== null || winner === null) {
    lines.push(
      `no route of ${chosenVhost.name} matches → 404 NR route_not_found (no fall-through to other hosts, GW-11)`,
    );
    return { ...base, ...common, filters, vhost, skipped, localReply: localReplyOf(NO_ROUTE), lines };
  }
  const action = winner.action;
  const routeOut = {
    name: winner.name,
    source: winner.source,
    match: describeConditions(winner),
    action: describeAction(action),
  };
  lines.push(`match ${winner.name} [${sourceText(winner.source)}]: ${routeOut.match}`);
  // The route's own filters, after it is chosen.
  if (winner.filters !== undefined) {
    const p =
      policy === null
        ? { steps: winner.filters.map((f) => ({ filter: f.kind, verdict: 'not evaluated' })), reply: null }
        : await policy(req, winner.filters);
    filters = [...filters, ...p.steps];
    for (const s of p.steps) lines.push(`${s.filter}: ${s.verdict}`);
    if (p.reply !== null) {
      lines.push(`→ ${p.reply.status} ${p.reply.flag === '-' ? '' : p.reply.flag + ' '}${p.reply.reason}`);
      return {
        ...common,
        filters,
        vhost,
        skipped,
        route: routeOut,
        destinations: [],
        localReply: p.reply,
        lines,
      };
    }
  }
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
        `  ${d.cluster} weight ${d.weight}/${action.totalWeight}: ${d.known ? d.endpoints.join(', ') || '(no endpoints: 503 UH)' : `unknown cluster: ${NO_CLUSTER.status} ${NO_CLUSTER.flag}`}`,
      );
    }
    // A weighted pick lands on each live destination; NC is certain only when none is known.
    const live = action.destinations.filter((d) => d.weight > 0);
    if (live.length > 0 && live.every((d) => d.cluster === null)) localReply = localReplyOf(NO_CLUSTER);
  }
  return { ...common, filters, vhost, skipped, route: routeOut, destinations, localReply, lines };
}
