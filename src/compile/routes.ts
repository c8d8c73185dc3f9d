/**
 * VirtualServices → route tables (VS-1, VS-4..VS-6, GW-9, GW-11, GW-18), following Istio's
 * buildGatewayHTTPRouteConfig: per server, each bound VS whose hosts intersect the server's
 * (namespace-scoped) hosts adds its routes to one vhost per intersecting host; catch-alls then
 * move to the end of each vhost, stable.
 */
import type { Diagnostic } from '../errors/diagnostic.ts';
import type { HTTPMatchRequest, HTTPRoute } from '../model/networking.ts';
import type { Cluster, RedirectAction, Route, RouteTable, VirtualHost } from '../snapshot/types.ts';
import { compileAction, compileHeaderOps } from './actions.ts';
import { resolveDestination, type ClusterContext } from './clusters.ts';
import type { ServerEntry } from './gateways.ts';
import { intersectHosts, isWildcard, serverDnsNames, serverHostsForNamespace, toFqdn } from './hosts.ts';
import type { Indexes, VirtualServiceResource } from './indexes.ts';
import { boundTo, resolveGatewayRef, selectorMatches, subjectOf } from './indexes.ts';
import { compileMatch, isCatchAllMatch, type MatchBuildProblem } from './match.ts';
import { compileRouteFilters } from './route-filters.ts';
import { routesKey, type RouteReuse } from './reuse.ts';

export interface RouteContext {
  readonly indexes: Indexes;
  readonly clusters: ClusterContext;
  readonly diagnostics: Diagnostic[];
  /** Routes of one VS for one gateway and port, built once (Istio caches per gateway + VS). */
  readonly cache: Map<string, readonly Route[]>;
  /** VS rules already reported, so a VS bound on several ports reports each problem once. */
  readonly reported: Set<string>;
  /** Routes the last compile built that this one may take (compile/reuse.ts); null: build all. */
  readonly reuse: RouteReuse | null;
}

/**
 * Routes that are catch-alls (VS-4), to move them last. A route's own fact, kept with no context:
 * a route reused from an earlier compile (compile/reuse.ts) is still one.
 */
const catchAllRoutes = new WeakSet<Route>();

export function createRouteContext(
  indexes: Indexes,
  clusters: ClusterContext,
  diagnostics: Diagnostic[],
  reuse: RouteReuse | null = null,
): RouteContext {
  return {
    indexes,
    clusters,
    diagnostics,
    cache: new Map(),
    reported: new Set(),
    reuse,
  };
}

/** The redirect every plaintext request for an httpsRedirect host gets (GW-18). */
const HTTPS_REDIRECT: RedirectAction = {
  kind: 'redirect',
  code: 301,
  scheme: 'https',
  authority: null,
  port: null,
  derivePort: null,
  uri: null,
  httpsRedirect: true,
};

const HTTPS_REDIRECT_ROUTE: Route = {
  name: 'https-redirect',
  source: null,
  conditions: [],
  action: HTTPS_REDIRECT,
  requestHeaders: null,
  responseHeaders: null,
};

function routeName(
  vs: VirtualServiceResource,
  rule: HTTPRoute,
  match: HTTPMatchRequest | undefined,
  i: number,
  j: number,
): string {
  if (rule.name) return match?.name ? `${rule.name}.${match.name}` : rule.name;
  return j < 0 ? `${vs.namespace}.${vs.name}.${i}` : `${vs.namespace}.${vs.name}.${i}.${j}`;
}

/** VS-6: match fields that are decided at compile time for this gateway and port. */
function matchApplies(
  ctx: RouteContext,
  vs: VirtualServiceResource,
  m: HTTPMatchRequest,
  gatewayKey: string,
  port: number,
): boolean {
  if (m.port !== undefined && m.port !== 0 && m.port !== port) return false;
  // Istio sourceMatchHTTP: match.gateways, when set, is the only source check.
  if (m.gateways && m.gateways.length > 0) {
    return m.gateways.some((g) => boundTo(resolveGatewayRef(g, vs.namespace).key, gatewayKey));
  }
  if (m.sourceLabels && !selectorMatches(m.sourceLabels, ctx.indexes.identity.labels)) return false;
  return (
    m.sourceNamespace === undefined ||
    m.sourceNamespace === '' ||
    m.sourceNamespace === ctx.indexes.identity.namespace
  );
}

function report(
  ctx: RouteContext,
  vs: VirtualServiceResource,
  level: Diagnostic['level'],
  code: Diagnostic['code'],
  path: string,
  message: string,
): void {
  const key = `${vs.namespace}/${vs.name}|${path}|${message}`;
  if (ctx.reported.has(key)) return;
  ctx.reported.add(key);
  ctx.diagnostics.push({ level, code, subject: subjectOf(vs), path, message });
}

function translateRoute(
  ctx: RouteContext,
  vs: VirtualServiceResource,
  rule: HTTPRoute,
  match: HTTPMatchRequest | undefined,
  i: number,
  j: number,
  port: number,
): Route | null {
  const rulePath = `spec.http[${i}]`;
  const matchPath = j < 0 ? rulePath : `${rulePath}.match[${j}]`;
  const problems: MatchBuildProblem[] = [];
  const conditions = compileMatch(match, matchPath, problems);
  const action =
    conditions === null
      ? null
      : compileAction(
          {
            ctx: ctx.clusters,
            rule,
            match,
            vsNamespace: vs.namespace,
            serverPort: port,
            owner: subjectOf(vs),
            path: rulePath,
          },
          problems,
        );
  const requestHeaders = compileHeaderOps(rule.headers?.request, `${rulePath}.headers.request`, problems);
  const responseHeaders = compileHeaderOps(rule.headers?.response, `${rulePath}.headers.response`, problems);
  const filters = compileRouteFilters(
    rule,
    rulePath,
    problems,
    (host, authPort) =>
      resolveDestination(
        ctx.clusters,
        { host, port: { number: authPort } },
        vs.namespace,
        authPort,
        subjectOf(vs),
        `${rulePath}.ingressNginx.externalAuth`,
      ).cluster,
  );
  const dropped = conditions === null || action === null;
  for (const p of problems) {
    const code = /regex/i.test(p.path) ? 'SLUICE_REGEX_INVALID' : 'SLUICE_CONFIG_INVALID';
    report(
      ctx,
      vs,
      p.level ?? (dropped ? 'error' : 'warning'),
      code,
      p.path,
      dropped && !p.message.includes('dropped') ? `${p.message}; the route is dropped` : p.message,
    );
  }
  if (conditions === null || action === null) return null;
  const route: Route = {
    name: routeName(vs, rule, match, i, j),
    source: {
      vsNamespace: vs.namespace,
      vsName: vs.name,
      httpIndex: i,
      matchIndex: j,
      ruleName: rule.name ?? null,
    },
    conditions,
    action,
    requestHeaders,
    responseHeaders,
    // Absent, not empty, on routes without fault or CORS: they never enter the pipeline.
    ...(filters !== undefined ? { filters } : {}),
  };
  if (isCatchAllMatch(match)) catchAllRoutes.add(route);
  return route;
}

/** Istio BuildHTTPRoutesForVirtualService for one gateway: rule × match in order, cut after the first catch-all (VS-4). */
export function buildVirtualServiceRoutes(
  ctx: RouteContext,
  vs: VirtualServiceResource,
  gatewayKey: string,
  port: number,
): readonly Route[] {
  const reuse = ctx.reuse;
  const cacheKey = `${gatewayKey}|${vs.namespace}/${vs.name}|${port}`;
  if (reuse === null) return ctx.cache.get(cacheKey) ?? buildRoutes(ctx, vs, gatewayKey, port, cacheKey);
  const key = routesKey(vs, gatewayKey, port);
  // Built or taken already in this compile (another server of the same gateway and port).
  const now = reuse.next.get(key);
  if (now !== undefined) return now.routes;
  let built = reuse.previous.get(key);
  if (built !== undefined) {
    // As building them would: their clusters join the snapshot.
    for (const c of built.clusters)
      if (!ctx.clusters.clusters.has(c.name)) ctx.clusters.clusters.set(c.name, c);
  } else {
    const touched = new Set<Cluster>();
    ctx.clusters.touched = touched;
    try {
      const routes = buildRoutes(ctx, vs, gatewayKey, port, cacheKey);
      built = { routes, clusters: [...touched] };
    } finally {
      ctx.clusters.touched = null;
    }
  }
  reuse.next.set(key, built);
  return built.routes;
}

function buildRoutes(
  ctx: RouteContext,
  vs: VirtualServiceResource,
  gatewayKey: string,
  port: number,
  cacheKey: string,
): readonly Route[] {
  const out: Route[] = [];
  const rules = vs.spec.http ?? [];
  for (const [i, rule] of rules.entries()) {
    let catchAll = false;
    if (!rule.match || rule.match.length === 0) {
      const r = translateRoute(ctx, vs, rule, undefined, i, -1, port);
      if (r) out.push(r);
      catchAll = true;
    } else {
      for (const [j, m] of rule.match.entries()) {
        if (!matchApplies(ctx, vs, m, gatewayKey, port)) continue;
        const r = translateRoute(ctx, vs, rule, m, i, j, port);
        if (!r) continue;
        out.push(r);
        if (catchAllRoutes.has(r)) {
          catchAll = true;
          break;
        }
      }
    }
    // Rules after a catch-all can never match; analysis reports them (SLUICE_ROUTE_UNREACHABLE).
    if (catchAll) break;
  }
  ctx.cache.set(cacheKey, out);
  return out;
}

interface VhostBuilding {
  readonly name: string;
  readonly routes: Route[];
  readonly seen: Set<string>;
  redirect: boolean;
}

function vhostIn(vhosts: Map<string, VhostBuilding>, host: string): VhostBuilding {
  let v = vhosts.get(host);
  if (!v) vhosts.set(host, (v = { name: host, routes: [], seen: new Set(), redirect: false }));
  return v;
}

/** Stable: every catch-all route moves to the end (Istio SortVHostRoutes). */
function catchAllsLast(routes: readonly Route[]): Route[] {
  const head: Route[] = [];
  const tail: Route[] = [];
  for (const r of routes) (catchAllRoutes.has(r) ? tail : head).push(r);
  return head.concat(tail);
}

/**
 * One route table from the servers that share it: all plaintext servers on a port, or a single
 * terminated HTTPS server (GW-14).
 */
export function buildRouteTable(
  ctx: RouteContext,
  name: string,
  entries: readonly ServerEntry[],
): RouteTable {
  const vhosts = new Map<string, VhostBuilding>();
  const vhostFor = (host: string): VhostBuilding => vhostIn(vhosts, host);
  for (const entry of entries) {
    const gw = entry.gateway;
    const gatewayKey = `${gw.namespace}/${gw.name}`;
    const port = entry.server.port.number;
    const redirect = entry.serving === 'HTTP' && entry.server.tls?.httpsRedirect === true;
    for (const vs of ctx.indexes.vsByGateway.get(gatewayKey) ?? []) {
      const serverHosts = serverHostsForNamespace(entry.server.hosts, gw.namespace, vs.namespace);
      const vsHosts = vs.spec.hosts.map((h) => toFqdn(h, vs.namespace));
      const hosts = intersectHosts(serverHosts, vsHosts);
      if (hosts.length === 0) continue;
      const routes = buildVirtualServiceRoutes(ctx, vs, gatewayKey, port);
      // Istio: a VS with no routes for this gateway and port ("no routes matched") makes no vhost.
      if (routes.length === 0) continue;
      const seenKey = `${gatewayKey}|${vs.namespace}/${vs.name}`;
      for (const h of hosts) {
        const v = vhostFor(h.toLowerCase());
        if (!v.seen.has(seenKey)) {
          v.seen.add(seenKey);
          v.routes.push(...routes);
        }
        if (redirect) v.redirect = true;
      }
    }
    // GW-18: the server's own hosts redirect too, with or without a VirtualService.
    if (redirect)
      for (const h of serverDnsNames(entry.server.hosts)) vhostFor(h.toLowerCase()).redirect = true;
  }

  return tableOf(name, vhosts);
}

/**
 * The routes VirtualServices bound to `mesh` give requests to `port` (a sidecar's outbound route
 * table for that port): one vhost per VS host, rules whose `match.port` / `match.gateways` fit.
 * The egress proxy sends proxied HTTP requests through it (issue 13).
 */
export function buildMeshRouteTable(
  ctx: RouteContext,
  port: number,
  virtualServices: readonly VirtualServiceResource[],
): RouteTable {
  const vhosts = new Map<string, VhostBuilding>();
  for (const vs of virtualServices) {
    const routes = buildVirtualServiceRoutes(ctx, vs, 'mesh', port);
    if (routes.length === 0) continue;
    for (const h of vs.spec.hosts) {
      const v = vhostIn(vhosts, toFqdn(h, vs.namespace).toLowerCase());
      const seenKey = `${vs.namespace}/${vs.name}`;
      if (v.seen.has(seenKey)) continue;
      v.seen.add(seenKey);
      v.routes.push(...routes);
    }
  }
  return tableOf(`mesh.${port}`, vhosts);
}

function tableOf(name: string, vhosts: ReadonlyMap<string, VhostBuilding>): RouteTable {
  const exact = new Map<string, VirtualHost>();
  const wildcards: { suffix: string; vhost: VirtualHost }[] = [];
  let catchAll: VirtualHost | null = null;
  for (const v of [...vhosts.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const vhost: VirtualHost = {
      name: v.name,
      routes: v.redirect ? [HTTPS_REDIRECT_ROUTE] : catchAllsLast(v.routes),
    };
    if (v.name === '*') catchAll = vhost;
    else if (isWildcard(v.name)) wildcards.push({ suffix: v.name.slice(1), vhost });
    else exact.set(v.name, vhost);
  }
  wildcards.sort(
    (a, b) => b.suffix.length - a.suffix.length || (a.suffix < b.suffix ? -1 : a.suffix > b.suffix ? 1 : 0),
  );
  return { name, exact, wildcards, catchAll };
}
