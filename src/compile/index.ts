/**
 * compile(): the validated model → one immutable Snapshot. Pure, sync, deterministic; config
 * problems become diagnostics, never exceptions. Fixed pass order: indexes → ports/servers →
 * route tables (which pull in clusters) → cross-resource checks.
 */
import { sortDiagnostics, type Diagnostic } from '../errors/diagnostic.ts';
import type { ResourceSet } from '../model/resource.ts';
import type { GatewayIdentity, MeshConfigSpec } from '../model/sluice.ts';
import type {
  AccessLogSettings,
  GatewaySettings,
  HttpFilter,
  RouteTable,
  Listener,
  Snapshot,
  TlsRoute,
  TlsServer,
  TracingSettings,
} from '../snapshot/types.ts';
import { parseDuration } from '../util/duration.ts';
import { analyze } from './analysis/index.ts';
import { createClusterContext } from './clusters.ts';
import { hashResources } from '../model/content-hash.ts';
import { credentialOf, httpsTableName, planPorts, type PortPlan } from './gateways.ts';
import { serverDnsNames } from './hosts.ts';
import { buildIndexes } from './indexes.ts';
import { beginReuse, endReuse, type CompileCache, type RouteReuse } from './reuse.ts';
import { buildRouteTable, createRouteContext } from './routes.ts';
import { createSecretLookup, createTlsContext } from './tls.ts';
import { filtersAt, planSecurity, tcpFiltersAt } from './filters.ts';
import { placeRateLimits, rateLimitRedisOf } from './ratelimit.ts';
import { ingressLimitsGlobal } from './ingress-limits.ts';
import { buildTcpRoute, buildTlsRoutes } from './tls-routes.ts';
import { compileEgress } from './egress.ts';

export interface CompileOptions extends GatewayIdentity {
  /**
   * The clock certificates and CRLs are judged by (expired, not yet valid). An input, so the same
   * resources and options always compile to the same snapshot and diagnostics.
   */
  readonly nowMs: number;
}

export interface CompileResult {
  readonly snapshot: Snapshot;
  readonly diagnostics: Diagnostic[];
}

export { canonicalJson, hashResources } from '../model/content-hash.ts';
export { createCompileCache, type CompileCache } from './reuse.ts';

export function settingsOf(mesh: MeshConfigSpec | null): GatewaySettings {
  const n = mesh?.pathNormalization?.normalization;
  const accessLog = accessLogSettingsOf(mesh);
  const tracing = tracingSettingsOf(mesh);
  return {
    pathNormalization: n === undefined || n === 'DEFAULT' ? 'BASE' : n,
    numTrustedProxies: mesh?.gatewayTopology?.numTrustedProxies ?? 0,
    outboundTrafficPolicy: mesh?.outboundTrafficPolicy?.mode ?? 'ALLOW_ANY',
    serverHeader: 'istio-envoy',
    // Absent (not null) when off, so settings without them keep their old shape.
    ...(accessLog === null ? {} : { accessLog }),
    ...(tracing === null ? {} : { tracing }),
  };
}

/** DP-6: accessLogFile "" (Istio's default) is off; encoding defaults to TEXT. */
export function accessLogSettingsOf(mesh: MeshConfigSpec | null): AccessLogSettings | null {
  const path = mesh?.accessLogFile ?? '';
  if (path.trim() === '') return null;
  const format = mesh?.accessLogFormat ?? '';
  return {
    path: path.trim(),
    encoding: mesh?.accessLogEncoding ?? 'TEXT',
    format: format.trim() === '' ? null : format,
  };
}

/**
 * MeshConfig `tracing.provider` names an `extensionProviders` entry of Istio's shape
 * `{ name, opentelemetry: { service, port, http: { path, timeout, headers } } }`; spans go to it
 * over OTLP/HTTP JSON. Null (tracing off) when no provider is named or it cannot be used.
 */
export function tracingSettingsOf(mesh: MeshConfigSpec | null): TracingSettings | null {
  return resolveTracing(mesh).settings;
}

interface TracingResolution {
  readonly settings: TracingSettings | null;
  /** Why a named provider cannot be used (tracing stays off). */
  readonly problem: {
    readonly code: 'SLUICE_REF_NOT_FOUND' | 'SLUICE_CONFIG_UNSUPPORTED';
    readonly message: string;
  } | null;
}

function resolveTracing(mesh: MeshConfigSpec | null): TracingResolution {
  const name = mesh?.tracing?.provider;
  if (name === undefined || name === '') return { settings: null, problem: null };
  const entry = (mesh?.extensionProviders ?? []).find((p) => p['name'] === name);
  if (entry === undefined)
    return {
      settings: null,
      problem: {
        code: 'SLUICE_REF_NOT_FOUND',
        message: `extensionProviders has no entry named "${name}"; tracing is off`,
      },
    };
  const otel = entry['opentelemetry'];
  const o = otel !== null && typeof otel === 'object' ? (otel as Record<string, unknown>) : null;
  const http = o?.['http'];
  const service = typeof o?.['service'] === 'string' ? o['service'] : '';
  if (o === null || service === '' || http === null || typeof http !== 'object')
    return {
      settings: null,
      problem: {
        code: 'SLUICE_CONFIG_UNSUPPORTED',
        message: `extensionProviders "${name}" must be opentelemetry with service and http (OTLP/HTTP; gRPC export is not supported); tracing is off`,
      },
    };
  const port = typeof o['port'] === 'number' ? o['port'] : 4318;
  const h = http as Record<string, unknown>;
  const rawPath = typeof h['path'] === 'string' && h['path'] !== '' ? h['path'] : '/v1/traces';
  const path = rawPath.startsWith('/') ? rawPath : '/' + rawPath;
  const timeout =
    typeof h['timeout'] === 'string' ? parseDuration(h['timeout'], { bareSeconds: false }) : null;
  const headers: (readonly [string, string])[] = [];
  if (Array.isArray(h['headers'])) {
    for (const item of h['headers'] as unknown[]) {
      if (item === null || typeof item !== 'object') continue;
      const hn = (item as Record<string, unknown>)['name'];
      const hv = (item as Record<string, unknown>)['value'];
      if (typeof hn === 'string' && typeof hv === 'string') headers.push([hn, hv]);
    }
  }
  const host = service.includes(':') && !service.startsWith('[') ? `[${service}]` : service;
  return {
    settings: {
      provider: name,
      endpoint: service.includes('://') ? `${service}:${port}${path}` : `http://${host}:${port}${path}`,
      samplingPercentage: Math.min(100, Math.max(0, mesh?.tracing?.randomSamplingPercentage ?? 1)),
      timeoutMs: timeout !== null && timeout.ok && timeout.ms > 0 ? timeout.ms : 5000,
      headers,
    },
    problem: null,
  };
}

/** A named tracing provider that cannot be used is a warning on the MeshConfig that names it. */
function tracingDiagnostics(set: ResourceSet, mesh: MeshConfigSpec | null, diagnostics: Diagnostic[]): void {
  const problem = resolveTracing(mesh).problem;
  if (problem === null) return;
  const r = set.resources.find(
    (x) => x.kind === 'MeshConfig' && (x.spec as MeshConfigSpec | null)?.tracing !== undefined,
  );
  diagnostics.push({
    level: 'warning',
    code: problem.code,
    ...(r === undefined
      ? {}
      : { subject: { origin: r.origin, kind: r.kind, namespace: r.namespace, name: r.name } }),
    path: 'spec.tracing.provider',
    message: problem.message,
  });
}

function compileUnchecked(
  set: ResourceSet,
  opts: CompileOptions,
  diagnostics: Diagnostic[],
  reuse: RouteReuse | null = null,
): Snapshot {
  const identity: GatewayIdentity = opts;
  const indexes = buildIndexes(set, identity);
  const clusters = createClusterContext(
    indexes,
    diagnostics,
    createSecretLookup(set, identity.namespace),
    opts.nowMs,
  );
  const routes = createRouteContext(indexes, clusters, diagnostics, reuse);
  const listeners = new Map<number, Listener>();
  const tls = createTlsContext(set, identity.namespace, diagnostics, opts.nowMs);
  const security = planSecurity(set, indexes, clusters, diagnostics);

  for (const plan of planPorts(indexes, diagnostics)) {
    const httpTable =
      plan.protocol === 'HTTP'
        ? withFilters(
            withGrpcWeb(buildRouteTable(routes, `http.${plan.port}`, plan.plaintext), plan),
            filtersAt(
              security,
              { port: plan.port, clientCerts: false, tcp: false, where: `port ${plan.port}` },
              diagnostics,
            ),
          )
        : null;
    const tlsServers: TlsServer[] = plan.terminated.map((entry) => {
      const settings = tls.resolve(entry);
      const site = {
        port: plan.port,
        clientCerts: settings?.mode === 'MUTUAL' || settings?.mode === 'OPTIONAL_MUTUAL',
        tcp: false,
        where: `port ${plan.port} server ${entry.ref.gatewayNamespace}/${entry.ref.gatewayName} servers[${entry.ref.serverIndex}] (tls.mode ${settings?.mode ?? entry.server.tls?.mode ?? 'SIMPLE'})`,
      };
      return {
        server: entry.ref,
        sniHosts: serverDnsNames(entry.server.hosts),
        table: withFilters(
          buildRouteTable(routes, httpsTableName(plan.port, entry.server.port.name, entry.gateway), [entry]),
          filtersAt(security, site, diagnostics),
        ),
        credential: credentialOf(entry.server),
        tls: settings,
      };
    });
    // GW-5: TLS servers terminated into tcp routes present certificates like HTTPS ones.
    for (const entry of plan.servers) {
      const mode = entry.server.tls?.mode;
      if (entry.serving !== 'TLS' || (mode !== 'SIMPLE' && mode !== 'MUTUAL' && mode !== 'OPTIONAL_MUTUAL'))
        continue;
      const settings = tls.resolve(entry);
      const tcpFilters = tcpFiltersAt(
        security,
        {
          port: plan.port,
          clientCerts: settings?.mode === 'MUTUAL' || settings?.mode === 'OPTIONAL_MUTUAL',
          tcp: true,
          where: `port ${plan.port} server ${entry.ref.gatewayNamespace}/${entry.ref.gatewayName} servers[${entry.ref.serverIndex}] (TLS terminated to TCP)`,
        },
        diagnostics,
      );
      tlsServers.push({
        server: entry.ref,
        sniHosts: serverDnsNames(entry.server.hosts),
        table: buildRouteTable(routes, httpsTableName(plan.port, entry.server.port.name, entry.gateway), []),
        credential: credentialOf(entry.server),
        tls: settings,
        tcpRoute: buildTcpRoute(indexes, clusters, entry),
        ...(tcpFilters !== undefined ? { tcpFilters } : {}),
      });
    }
    const tlsRoutes = buildTlsRoutes(indexes, clusters, plan, diagnostics);
    // TCP servers: the first server on the port with a bound `tcp` rule decides (one filter chain per port).
    let tcpRoute: TlsRoute | null = null;
    if (plan.protocol === 'TCP')
      for (const entry of plan.servers) {
        tcpRoute = buildTcpRoute(indexes, clusters, entry);
        if (tcpRoute !== null) break;
      }
    // Connection-level policy for plain TCP and TLS passthrough (HTTP servers have their tables').
    const tcpFilters =
      plan.protocol === 'TCP' || tlsRoutes.length > 0
        ? tcpFiltersAt(
            security,
            {
              port: plan.port,
              clientCerts: false,
              tcp: true,
              where: `port ${plan.port} (${plan.protocol === 'TCP' ? 'TCP' : 'TLS passthrough'})`,
            },
            diagnostics,
          )
        : undefined;
    listeners.set(plan.port, {
      port: plan.port,
      bind: plan.bind,
      protocol: plan.protocol,
      key: `${plan.protocol}|${plan.bind ?? '*'}|${plan.port}`,
      httpTable,
      tlsServers,
      servers: plan.servers.map((s) => s.ref),
      ...(tlsRoutes.length > 0 ? { tlsRoutes } : {}),
      ...(plan.protocol === 'TCP' ? { tcpRoute } : {}),
      ...(tcpFilters !== undefined ? { tcpFilters } : {}),
    });
  }

  // Before the clusters are listed: the routes of mesh-bound VirtualServices add theirs.
  const egress = compileEgress(indexes, routes, diagnostics);
  // Before the clusters are listed: a rate limit service is a cluster too.
  const limited = placeRateLimits(set, indexes, clusters, listeners, diagnostics);
  const sortedClusters = new Map(
    [...clusters.clusters.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  tracingDiagnostics(set, indexes.meshConfig, diagnostics);
  if (egress !== undefined && listeners.has(egress.port))
    diagnostics.push({
      level: 'error',
      code: 'SLUICE_PORT_CONFLICT',
      message: `the egress proxy port ${egress.port} is also a Gateway server port`,
    });
  const settings = settingsOf(indexes.meshConfig);
  // An Ingress's Global limits without redis were refused with the Ingress (config/ingress).
  const rateLimitRedis =
    limited.global || ingressLimitsGlobal(indexes)
      ? rateLimitRedisOf(set, indexes.meshConfig, diagnostics)
      : null;
  return {
    hash: hashResources(set),
    listeners: limited.listeners,
    clusters: sortedClusters,
    settings: rateLimitRedis === null ? settings : { ...settings, rateLimitRedis },
    // Absent when the proxy is off, so snapshots without it keep their old shape.
    ...(egress === undefined ? {} : { egress }),
  };
}

/** A table with its workload-level filters; the same object when there are none. */
/**
 * Istio builds a plaintext port's one filter chain from its first server's protocol
 * (gateway.go createGatewayHTTPFilterChainOpts), adding grpc_web when that is GRPC-WEB.
 */
function withGrpcWeb(table: RouteTable, plan: PortPlan): RouteTable {
  return plan.plaintext[0]?.server.port.protocol === 'GRPC-WEB' ? { ...table, grpcWeb: true } : table;
}

function withFilters(table: RouteTable, filters: readonly HttpFilter[] | undefined): RouteTable {
  return filters === undefined ? table : { ...table, filters };
}

/** Pure and sync; never throws on user input (an unexpected fault becomes SLUICE_INTERNAL and an empty snapshot). */
export function compile(set: ResourceSet, opts: CompileOptions): CompileResult {
  const diagnostics: Diagnostic[] = [];
  let snapshot: Snapshot;
  try {
    snapshot = compileUnchecked(set, opts, diagnostics);
  } catch (err) {
    diagnostics.push({
      level: 'error',
      code: 'SLUICE_INTERNAL',
      message: `compile failed unexpectedly: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    });
    snapshot = {
      hash: hashResources(set),
      listeners: new Map(),
      clusters: new Map(),
      settings: settingsOf(null),
    };
  }
  try {
    diagnostics.push(...analyze(set, opts, { nowMs: opts.nowMs }));
  } catch (err) {
    diagnostics.push({
      level: 'error',
      code: 'SLUICE_INTERNAL',
      message: `analysis failed unexpectedly: ${err instanceof Error ? err.message : String(err)}`,
    });
  }
  return { snapshot, diagnostics: sortDiagnostics(diagnostics) };
}

/**
 * The snapshot `compile` gives, without its diagnostics and analysis: for a process that serves
 * a set already judged elsewhere (the config thread logged its diagnostics). `cache` carries the
 * routes of unchanged VirtualServices from one call to the next (compile/reuse.ts). Throws on an
 * unexpected fault, leaving the cache as it was.
 */
export function compileSnapshot(set: ResourceSet, opts: CompileOptions, cache: CompileCache): Snapshot {
  const reuse = beginReuse(cache, set, opts);
  const snapshot = compileUnchecked(set, opts, [], reuse);
  endReuse(cache, reuse);
  return snapshot;
}
