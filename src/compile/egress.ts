/**
 * The egress allowlist (SE-1..SE-4): visible ServiceEntries → the lookup tables the forward
 * proxy reads (snapshot/egress.ts decides, dataplane/forward-proxy.ts enforces). Built only when
 * the proxy is on (--egress-proxy-port, or MeshConfig `egressProxy.port`); otherwise absent and
 * free.
 */
import { BlockList } from 'node:net';
import type { Diagnostic } from '../errors/diagnostic.ts';
import type { ServiceEntrySpec } from '../model/networking.ts';
import type {
  EgressHost,
  EgressPolicy,
  EgressPort,
  Route,
  RouteTable,
  VirtualHost,
} from '../snapshot/types.ts';
import { findVirtualHost } from '../snapshot/lookup.ts';
import { compileAction, type ActionProblem } from './actions.ts';
import { findDestinationRule, type ClusterContext } from './clusters.ts';
import { classifyHost } from '../util/host-literal.ts';
import { boundTo, resolveGatewayRef, subjectOf, type Indexes, type ServiceEntryResource } from './indexes.ts';
import { buildMeshRouteTable, type RouteContext } from './routes.ts';

/** The proxy's port: the command line wins over MeshConfig; null = off. */
export function egressPortOf(indexes: Indexes): number | null {
  return indexes.identity.egressProxyPort ?? indexes.meshConfig?.egressProxy?.port ?? null;
}

/** Ports whose proxied HTTP requests VirtualServices may route (the HTTP family, SE-1). */
const HTTP_PORTS = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);

export function compileEgress(
  indexes: Indexes,
  routes: RouteContext,
  diagnostics: Diagnostic[],
): EgressPolicy | undefined {
  const port = egressPortOf(indexes);
  if (port === null) return undefined;
  const mesh = indexes.meshConfig;
  const exact = new Map<string, EgressHost>();
  const wildcards: { suffix: string; entry: EgressHost }[] = [];
  const addresses = new Map<string, EgressHost>();
  const subnets: { test: (ip: string, family: 4 | 6) => boolean; entry: EgressHost }[] = [];
  const seen = new Set<ServiceEntryResource>();
  // serviceEntriesByHost lists the oldest entry first for each host: the oldest wins (SE-1).
  for (const [host, entries] of indexes.serviceEntriesByHost) {
    const se = entries[0]!;
    const entry = hostEntry(host, se);
    if (host.startsWith('*')) wildcards.push({ suffix: host.slice(1), entry });
    else exact.set(host, entry);
    for (const s of entries) seen.add(s);
  }
  for (const se of [...seen].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1))) {
    warnUnused(se, diagnostics);
    for (const a of se.spec.addresses ?? []) {
      const entry = hostEntry(a, se);
      const slash = a.indexOf('/');
      if (slash < 0) {
        const c = classifyHost(a.toLowerCase());
        if (c.kind === 'ip' && !addresses.has(c.address)) addresses.set(c.address, entry);
        continue;
      }
      const list = new BlockList();
      const net = a.slice(0, slash);
      const family = net.includes(':') ? 'ipv6' : 'ipv4';
      list.addSubnet(net, Number(a.slice(slash + 1)), family);
      subnets.push({ test: (ip, fam) => list.check(ip, fam === 4 ? 'ipv4' : 'ipv6'), entry });
    }
    // STATIC endpoints are addresses the entry names explicitly (SE-2, SE-3).
    if (se.spec.resolution === 'STATIC')
      for (const ep of se.spec.endpoints ?? []) {
        const c = ep.address === undefined ? null : classifyHost(ep.address.toLowerCase());
        if (c?.kind === 'ip' && !addresses.has(c.address)) addresses.set(c.address, hostEntry(c.address, se));
      }
  }
  wildcards.sort((a, b) => b.suffix.length - a.suffix.length || (a.suffix < b.suffix ? -1 : 1));
  for (const w of wildcards) warnWildcardRule(indexes, w.entry.host, diagnostics);
  for (const entry of exact.values()) warnTunnelledRule(indexes, entry, diagnostics);
  return {
    ...policyFields(port, mesh, exact, wildcards, addresses, subnets),
    meshTables: meshTablesOf(indexes, routes, exact, diagnostics),
  };
}

/**
 * The routes proxied HTTP requests take, one table per HTTP port of the allowlist, as a sidecar's
 * outbound routes: VirtualServices bound to `mesh` (explicitly, or by leaving `gateways` out,
 * VS-1) or to the proxy's own name `sluice-egress-proxy` first; every host a ServiceEntry names exactly that no such VirtualService routes gets
 * the sidecar's default route to its own cluster `outbound|<port>||<host>`, so the
 * DestinationRules of that host (TLS origination, connection pool, outlier detection, subsets)
 * and the entry's endpoints, weights and `subjectAltNames` apply to proxied requests too.
 */
function meshTablesOf(
  indexes: Indexes,
  routes: RouteContext,
  exact: ReadonlyMap<string, EgressHost>,
  diagnostics: Diagnostic[],
): ReadonlyMap<number, RouteTable> {
  const bound = indexes.virtualServices.filter((vs) =>
    (vs.spec.gateways ?? ['mesh']).some((g) => boundTo(resolveGatewayRef(g, vs.namespace).key, 'mesh')),
  );
  const byPort = new Map<number, EgressHost[]>();
  for (const e of exact.values())
    for (const p of e.ports.values())
      if (HTTP_PORTS.has(p.protocol)) {
        const list = byPort.get(p.number);
        if (list === undefined) byPort.set(p.number, [e]);
        else list.push(e);
      }
  const tables = new Map<number, RouteTable>();
  const clusters = routes.clusters;
  clusters.resolveNoneByName = true;
  try {
    for (const [p, hosts] of [...byPort].sort(([a], [b]) => a - b)) {
      const table = bound.length === 0 ? emptyTable(p) : buildMeshRouteTable(routes, p, bound);
      const defaults = new Map(table.exact);
      for (const e of hosts)
        if (findVirtualHost(table, e.host) === null) {
          const se = indexes.serviceEntriesByHost.get(e.host)![0]!;
          defaults.set(e.host, defaultVhost(clusters, e.host, se, p, diagnostics));
        }
      tables.set(p, { ...table, exact: defaults });
    }
  } finally {
    clusters.resolveNoneByName = false;
  }
  return tables;
}

function emptyTable(port: number): RouteTable {
  return { name: `mesh.${port}`, exact: new Map(), wildcards: [], catchAll: null };
}

/** A sidecar's route for a host no VirtualService routes (Istio names it `default`). */
function defaultVhost(
  clusters: ClusterContext,
  host: string,
  se: ServiceEntryResource,
  port: number,
  diagnostics: Diagnostic[],
): VirtualHost {
  const problems: ActionProblem[] = [];
  const action = compileAction(
    {
      ctx: clusters,
      rule: { route: [{ destination: { host, port: { number: port } } }] },
      match: undefined,
      vsNamespace: se.namespace,
      serverPort: port,
      owner: subjectOf(se),
      path: 'spec.hosts',
    },
    problems,
  );
  for (const p of problems)
    diagnostics.push({ level: 'warning', code: 'SLUICE_CONFIG_UNSUPPORTED', subject: subjectOf(se), ...p });
  const route: Route = {
    name: 'default',
    source: null,
    conditions: [],
    action: action!,
    requestHeaders: null,
    responseHeaders: null,
  };
  return { name: host, routes: [route] };
}

function policyFields(
  port: number,
  mesh: Indexes['meshConfig'],
  exact: ReadonlyMap<string, EgressHost>,
  wildcards: EgressPolicy['wildcards'],
  addresses: ReadonlyMap<string, EgressHost>,
  subnets: EgressPolicy['subnets'],
): Omit<EgressPolicy, 'meshTables'> {
  return {
    port,
    key: `EGRESS|*|${port}`,
    mode: mesh?.outboundTrafficPolicy?.mode ?? 'REGISTRY_ONLY',
    learn: mesh?.egressProxy?.learn ?? false,
    exact,
    wildcards,
    addresses,
    subnets,
  };
}

function keyOf(se: ServiceEntryResource): string {
  return `${se.namespace}/${se.name}`;
}

function hostEntry(host: string, se: ServiceEntryResource): EgressHost {
  const spec = se.spec;
  const ports = new Map<number, EgressPort>();
  for (const p of spec.ports ?? [])
    ports.set(p.number, {
      number: p.number,
      name: p.name,
      protocol: (p.protocol ?? 'TCP').toUpperCase(),
      targetPort: p.targetPort ?? p.number,
    });
  const resolution = spec.resolution ?? 'NONE';
  const endpoints =
    resolution === 'STATIC' || resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN'
      ? (spec.endpoints ?? [])
          .filter((e) => e.address !== undefined && !e.address.startsWith('unix://'))
          .map((e) => ({ address: e.address!, ports: e.ports ?? {}, weight: Math.max(1, e.weight ?? 1) }))
      : [];
  return {
    host,
    source: `ServiceEntry ${se.namespace}/${se.name}`,
    wildcard: host.startsWith('*'),
    resolution,
    ports,
    endpoints,
    endpointWeight: endpoints.reduce((sum, e) => sum + e.weight, 0),
  };
}

/**
 * Proxied requests to names under a wildcard go straight to what the name resolves to, with no
 * cluster, so a DestinationRule for the wildcard host is not applied to them: said on the rule.
 */
function warnWildcardRule(indexes: Indexes, host: string, diagnostics: Diagnostic[]): void {
  const se = indexes.serviceEntriesByHost.get(host)![0]!;
  const rule = findDestinationRule(indexes, host, se.namespace);
  if (rule === null || rule.trafficPolicy === undefined || rule.policyOwner === null) return;
  diagnostics.push({
    level: 'warning',
    code: 'SLUICE_CONFIG_UNSUPPORTED',
    subject: subjectOf(rule.policyOwner),
    path: 'spec.trafficPolicy',
    message: `the egress proxy does not apply it to requests for names under ${host}: they are forwarded straight to the address the name resolves to`,
  });
}

/**
 * CONNECT tunnels (what clients open for HTTPS, TLS and TCP ports) go to an endpoint chosen by
 * weight, with no cluster: a DestinationRule's connection pool, outlier detection and load
 * balancer apply to proxied HTTP requests only, which is said on the rule.
 */
function warnTunnelledRule(indexes: Indexes, entry: EgressHost, diagnostics: Diagnostic[]): void {
  const tunnelled = [...entry.ports.values()].filter((p) => !HTTP_PORTS.has(p.protocol)).map((p) => p.number);
  if (tunnelled.length === 0) return;
  const se = indexes.serviceEntriesByHost.get(entry.host)![0]!;
  const rule = findDestinationRule(indexes, entry.host, se.namespace);
  const tp = rule?.trafficPolicy;
  if (rule === null || rule.policyOwner === null || tp === undefined) return;
  const fields = (['connectionPool', 'outlierDetection', 'loadBalancer'] as const).filter(
    (f) => tp[f] !== undefined,
  );
  if (fields.length === 0) return;
  diagnostics.push({
    level: 'warning',
    code: 'SLUICE_CONFIG_UNSUPPORTED',
    subject: subjectOf(rule.policyOwner),
    path: 'spec.trafficPolicy',
    message: `the egress proxy applies ${fields.join(', ')} to proxied HTTP requests for ${entry.host} only, not to CONNECT tunnels to port ${tunnelled.join(', ')} (a tunnel goes to an endpoint chosen by weight)`,
  });
}

/** What the proxy reads of a ServiceEntry is above; the rest is said, once per entry. */
function warnUnused(se: ServiceEntryResource, diagnostics: Diagnostic[]): void {
  const spec: ServiceEntrySpec = se.spec;
  const warn = (path: string, message: string): void => {
    diagnostics.push({
      level: 'warning',
      code: 'SLUICE_CONFIG_UNSUPPORTED',
      subject: subjectOf(se),
      path,
      message,
    });
  };
  if (spec.location === 'MESH_INTERNAL')
    warn(
      'spec.location',
      'MESH_INTERNAL changes nothing at the egress proxy: its hosts are allowed as any other',
    );
}
