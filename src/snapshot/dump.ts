/**
 * Sorted, JSON-safe renderings of a Snapshot: golden files, /config_dump, `sluice routes`.
 * No functions (conditions render as field + expected text), regexes as their source, times in
 * ms, unlimited caps as the string 'unlimited', bodies as text when printable else base64.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import {
  describeAction,
  describeConditions,
  describeDestination,
  describeHeaderOps,
  describeMirror,
} from './describe.ts';
import type {
  Cluster,
  CompiledPolicy,
  EgressHost,
  EgressPolicy,
  GatewaySettings,
  HttpFilter,
  Listener,
  RetryPolicy,
  Route,
  RouteAction,
  RouteTable,
  Snapshot,
  TcpDestination,
  TlsRoute,
  TlsServer,
  TlsSettings,
  UpstreamTls,
  VirtualHost,
} from './types.ts';
import { redactRedisUrl } from '../util/redis-url.ts';

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  return v;
}

/** A map's values in sorted key order, so output does not depend on insertion order. */
function valuesByKey<V>(m: ReadonlyMap<string, V>): V[] {
  return [...m.keys()].sort().map((k) => m.get(k) as V);
}

function listenersByPort(snapshot: Snapshot): Listener[] {
  return [...snapshot.listeners.values()].sort((a, b) => a.port - b.port);
}

function cap(n: number): number | string {
  return n === Infinity ? 'unlimited' : n;
}

function bodyText(body: Uint8Array): Record<string, string> {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(body);
  // eslint-disable-next-line no-control-regex -- printable check
  if (!text.includes('\uFFFD') && !/[\x00-\x08\x0e-\x1f]/.test(text)) return { string: text };
  return { base64: Buffer.from(body).toString('base64') };
}

/** Istio's default policy (VS-23) and "off" print as one word; anything else in full. */
function dumpRetry(r: RetryPolicy): unknown {
  if (r.attempts === 0) return 'off';
  const on = r.retryOn;
  const isDefault =
    r.attempts === 2 &&
    r.perTryTimeoutMs === null &&
    r.backoffBaseMs === 25 &&
    r.backoffMaxMs === 250 &&
    on.connectFailure &&
    on.refusedStream &&
    !on.reset &&
    !on.resetBeforeRequest &&
    !on.fiveXx &&
    !on.gatewayError &&
    !on.retriable4xx &&
    on.statusCodes.size === 0;
  if (isDefault) return 'default';
  const tokens: string[] = [];
  if (on.connectFailure) tokens.push('connect-failure');
  if (on.refusedStream) tokens.push('refused-stream');
  if (on.reset) tokens.push('reset');
  if (on.resetBeforeRequest) tokens.push('reset-before-request');
  if (on.fiveXx) tokens.push('5xx');
  if (on.gatewayError) tokens.push('gateway-error');
  if (on.retriable4xx) tokens.push('retriable-4xx');
  return {
    attempts: r.attempts,
    perTryTimeoutMs: r.perTryTimeoutMs,
    backoffBaseMs: r.backoffBaseMs,
    backoffMaxMs: r.backoffMaxMs,
    retryOn: tokens,
    statusCodes: [...on.statusCodes].sort((a, b) => a - b),
    ...(r.skipTriedHosts ? {} : { skipTriedHosts: false }),
  };
}

function dumpAction(action: RouteAction): unknown {
  switch (action.kind) {
    case 'forward':
      return {
        kind: 'forward',
        destinations: action.destinations.map((d) => ({
          cluster: d.clusterName,
          known: d.cluster !== null,
          weight: d.weight,
          requestHeaders: describeHeaderOps(d.requestHeaders) ?? undefined,
          responseHeaders: describeHeaderOps(d.responseHeaders) ?? undefined,
        })),
        totalWeight: action.totalWeight,
        rewrite:
          action.rewrite === null
            ? null
            : action.rewrite.kind === 'regex'
              ? {
                  kind: 'regex',
                  pattern: action.rewrite.pattern.source,
                  replacement: action.rewrite.replacement,
                }
              : action.rewrite,
        authority: action.authority,
        timeoutMs: action.timeoutMs,
        ...(action.readTimeoutMs !== undefined ? { readTimeoutMs: action.readTimeoutMs } : {}),
        ...(action.sendTimeoutMs !== undefined ? { sendTimeoutMs: action.sendTimeoutMs } : {}),
        ...(action.errorPages !== undefined
          ? {
              errorPages: {
                codes: [...action.errorPages.codes],
                upstreamResponses: action.errorPages.upstreamResponses,
                backend: action.errorPages.backend === null ? null : dumpAction(action.errorPages.backend),
                headers: action.errorPages.headers,
              },
            }
          : {}),
        retry: dumpRetry(action.retry),
        ...(action.hashPolicy.length > 0 ? { hashPolicy: action.hashPolicy } : {}),
        mirrors: action.mirrors?.map((m) => ({
          cluster: m.clusterName,
          known: m.cluster !== null,
          percent: percentOf(m.perMillion),
          shadowHostSuffix: m.shadowHostSuffix,
        })),
      };
    case 'redirect':
      return { ...action };
    case 'direct':
      return {
        kind: 'direct',
        status: action.status,
        body: action.body === null ? null : bodyText(action.body),
      };
  }
}

/** Millionths as the percentage Istio wrote (0.0001 steps). */
function percentOf(perMillion: number): number {
  return perMillion / 10_000;
}

function dumpRoute(r: Route): unknown {
  return {
    name: r.name,
    source: r.source,
    match: r.conditions.map((c) => `${c.field} ${c.expected}`),
    action: dumpAction(r.action),
    requestHeaders: describeHeaderOps(r.requestHeaders) ?? undefined,
    responseHeaders: describeHeaderOps(r.responseHeaders) ?? undefined,
    filters: r.filters?.map(dumpFilter),
  };
}

function dumpVhost(v: VirtualHost): unknown {
  return { name: v.name, routes: v.routes.map(dumpRoute) };
}

function dumpPolicies(list: readonly CompiledPolicy[]): string[] {
  return list.map((p) => `${p.namespace}/${p.name} rules[${p.rules.map((r) => r.index).join(',')}]`);
}

/** Filters as data: policies by name and rule, JWT providers without keys (kids only). */
function dumpFilter(f: HttpFilter): unknown {
  switch (f.kind) {
    case 'rbac':
      return {
        filter: 'rbac',
        action: f.action,
        policies: dumpPolicies(f.policies),
        dryRun: dumpPolicies(f.shadow),
      };
    case 'ext-authz': {
      const p = f.provider;
      return {
        filter: 'ext_authz',
        provider: p.name,
        protocol: p.protocol,
        service: p.authority,
        cluster: p.cluster.name,
        timeoutMs: p.timeoutMs,
        failOpen: p.failOpen,
        statusOnError: p.statusOnError,
        policies: dumpPolicies(f.policies),
        dryRun: dumpPolicies(f.shadow),
      };
    }
    case 'body-limit':
      return { filter: 'body_limit', maxBytes: f.maxBytes };
    case 'source-range':
      return { filter: 'source_range', allow: f.allow, deny: f.deny };
    case 'basic-auth':
      return { filter: 'basic_auth', realm: f.realm, users: f.users.size, htpasswd: f.fingerprint };
    case 'client-cert':
      return {
        filter: 'client_cert',
        required: f.required,
        errorPage: f.errorPage,
        passCertificate: f.passCertificate,
      };
    case 'auth-request':
      return {
        filter: 'auth_request',
        url: f.url,
        cluster: f.cluster.name,
        method: f.method,
        signin: f.signin !== null,
        responseHeaders: f.responseHeaders,
        timeoutMs: f.timeoutMs,
      };
    case 'fault':
      return {
        filter: 'fault',
        delay: f.delay === null ? null : { ms: f.delay.ms, percent: percentOf(f.delay.perMillion) },
        abort:
          f.abort === null
            ? null
            : {
                httpStatus: f.abort.httpStatus,
                grpcStatus: f.abort.grpcStatus,
                percent: percentOf(f.abort.perMillion),
              },
      };
    case 'cors':
      return {
        filter: 'cors',
        allowOrigins: f.allowOrigins.map((m) => `${m.kind} ${m.value}`),
        anyOrigin: f.anyOrigin,
        allowMethods: f.allowMethods,
        allowHeaders: f.allowHeaders,
        exposeHeaders: f.exposeHeaders,
        maxAge: f.maxAge,
        allowCredentials: f.allowCredentials,
        unmatchedPreflights: f.forwardUnmatchedPreflights ? 'FORWARD' : 'IGNORE',
      };
    case 'jwt-authn':
      return {
        filter: 'jwt_authn',
        providers: f.providers.map((p) => ({
          issuer: p.issuer,
          audiences: p.audiences,
          jwks:
            p.jwks.kind === 'remote'
              ? { uri: p.jwks.uri, timeoutMs: p.jwks.timeoutMs }
              : { inline: p.jwks.keys.map((k) => (typeof k['kid'] === 'string' ? k['kid'] : '(no kid)')) },
          headers: p.locations.headers.map((h) => `${h.name}: ${h.prefix}<token>`),
          params: p.locations.params,
          cookies: p.locations.cookies,
          forwardOriginalToken: p.forwardOriginalToken,
          outputPayloadToHeader: p.outputPayloadToHeader,
          outputClaimToHeaders: p.outputClaimToHeaders,
          requireToken: p.requireToken,
          source: p.source,
        })),
      };
    case 'rate-limit':
      return {
        filter: 'rate_limit',
        ...(f.defer ? { decidedWithRouteLimits: true } : {}),
        rules: f.rules.map((r) => ({
          rule: r.id,
          storage: r.storage,
          ...(r.storage !== 'Local' ? { failureMode: r.failureMode } : {}),
          ...(r.service !== null
            ? {
                service: {
                  service: r.service.authority,
                  cluster: r.service.cluster.name,
                  domain: r.service.domain,
                  timeoutMs: r.service.timeoutMs,
                },
              }
            : {}),
          responseHeaders: r.responseHeaders,
          limit: r.limit,
          key: r.key.map((k) => k.describe),
          matches: r.applies === null ? 'every request' : 'to/when',
          exempt: r.exempt !== null,
          shadow: r.shadow,
        })),
      };
  }
}

function dumpTable(t: RouteTable): unknown {
  return {
    name: t.name,
    ...(t.filters !== undefined ? { filters: t.filters.map(dumpFilter) } : {}),
    ...(t.grpcWeb === true ? { grpcWeb: true } : {}),
    exact: valuesByKey(t.exact).map(dumpVhost),
    wildcards: t.wildcards.map((w) => ({ suffix: w.suffix, vhost: dumpVhost(w.vhost) })),
    catchAll: t.catchAll === null ? null : dumpVhost(t.catchAll),
  };
}

/** TLS settings without key material: credentials by name, source and certificate fingerprint. */
function dumpTls(t: TlsSettings | null | undefined): unknown {
  if (t === null || t === undefined) return null;
  return {
    mode: t.mode,
    credentials: t.credentials.map((c) => ({
      name: c.name,
      source: c.source,
      keyType: c.keyType,
      fingerprint: c.fingerprint,
    })),
    clientCa: t.clientCaPem !== null,
    minVersion: t.minVersion,
    maxVersion: t.maxVersion,
    ciphers: t.ciphers,
    subjectAltNames: t.subjectAltNames,
    spkiHashes: t.spkiHashes,
    certHashes: t.certHashes,
  };
}

function dumpTcpRoute(r: TlsRoute): unknown {
  return {
    name: r.name,
    sniHosts: r.sniHosts,
    destinations: r.destinations.map((d) => describeTcpDestination(d, r)),
  };
}

function describeTcpDestination(d: TcpDestination, r: TlsRoute): string {
  const share = r.destinations.length === 1 ? '' : ` ${d.weight}/${r.totalWeight}`;
  return `${d.clusterName}${share}${d.cluster === null ? ' (unknown: connection closed)' : ''}`;
}

function dumpTlsServer(s: TlsServer): unknown {
  return {
    server: s.server,
    sniHosts: s.sniHosts,
    credential: s.credential,
    tls: dumpTls(s.tls),
    table: dumpTable(s.table),
    ...(s.tcpRoute != null ? { tcpRoute: dumpTcpRoute(s.tcpRoute) } : {}),
    ...(s.tcpFilters !== undefined ? { tcpFilters: s.tcpFilters.map(dumpFilter) } : {}),
  };
}

function dumpListener(l: Listener): unknown {
  return {
    port: l.port,
    bind: l.bind,
    protocol: l.protocol,
    key: l.key,
    servers: l.servers,
    httpTable: l.httpTable === null ? null : dumpTable(l.httpTable),
    tlsServers: l.tlsServers.map(dumpTlsServer),
    ...(l.tlsRoutes !== undefined ? { tlsRoutes: l.tlsRoutes.map(dumpTcpRoute) } : {}),
    ...(l.protocol === 'TCP' ? { tcpRoute: l.tcpRoute ? dumpTcpRoute(l.tcpRoute) : null } : {}),
    ...(l.tcpFilters !== undefined ? { tcpFilters: l.tcpFilters.map(dumpFilter) } : {}),
  };
}

function dumpCluster(c: Cluster): unknown {
  return {
    name: c.name,
    host: c.host,
    port: c.port,
    subset: c.subset,
    key: c.key,
    endpoints: c.endpoints,
    lb: c.lb,
    connectTimeoutMs: c.connectTimeoutMs,
    idleTimeoutMs: c.idleTimeoutMs,
    maxRequestsPerConnection: c.maxRequestsPerConnection,
    maxConnections: cap(c.maxConnections),
    maxPendingRequests: cap(c.maxPendingRequests),
    maxRequests: cap(c.maxRequests),
    // Later settings appear only when set, so dumps of clusters without them stay as they were.
    ...(c.hashTableSize > 0 ? { hashTableSize: c.hashTableSize } : {}),
    ...(c.warmup !== undefined ? { warmup: c.warmup } : {}),
    ...(c.maxRetries !== Infinity ? { maxRetries: c.maxRetries } : {}),
    ...(c.maxConnectionDurationMs > 0 ? { maxConnectionDurationMs: c.maxConnectionDurationMs } : {}),
    ...(c.outlier !== null ? { outlier: c.outlier } : {}),
    ...(c.protocol !== undefined ? { protocol: c.protocol, http2: c.http2 } : {}),
    ...(c.grpcWeb === true ? { grpcWeb: true } : {}),
    ...(c.tls !== undefined ? { tls: dumpUpstreamTls(c.tls) } : {}),
  };
}

/** Certificates by fingerprint, never key material. */
function dumpUpstreamTls(t: UpstreamTls): unknown {
  return {
    mode: t.mode,
    ca:
      t.caPem === null
        ? 'system'
        : `sha256:${createHash('sha256').update(t.caPem).digest('hex').slice(0, 16)}`,
    crl: t.crlPem !== null,
    clientCertificate: t.clientFingerprint,
    sni: t.sni,
    subjectAltNames: t.subjectAltNames,
    insecureSkipVerify: t.insecureSkipVerify,
    notReady: t.notReady,
    key: t.key,
  };
}

/** Settings with the Redis password hidden. */
function dumpSettings(s: GatewaySettings): unknown {
  const redis = s.rateLimitRedis;
  if (redis?.target.url === undefined) return s;
  return {
    ...s,
    rateLimitRedis: { ...redis, target: { ...redis.target, url: redactRedisUrl(redis.target.url) } },
  };
}

/** One allowed destination of the egress proxy: a host (or address, or CIDR) and one of its ports. */
export interface EgressAllowRow {
  readonly host: string;
  readonly port: number;
  readonly protocol: string;
  readonly targetPort: number;
  readonly resolution: EgressHost['resolution'];
  /** `ServiceEntry ns/name`. */
  readonly source: string;
  /** Where connections go: `address[:port] weight w`, or `the requested name` when resolved per request. */
  readonly endpoints: readonly string[];
}

/** The egress allowlist, sorted by host then port: exact and wildcard names, addresses, CIDRs. */
export function egressAllowRows(policy: EgressPolicy): EgressAllowRow[] {
  const entries: EgressHost[] = [
    ...policy.exact.values(),
    ...policy.wildcards.map((w) => w.entry),
    ...policy.addresses.values(),
    ...policy.subnets.map((s) => s.entry),
  ];
  const rows: EgressAllowRow[] = [];
  for (const e of entries)
    for (const p of e.ports.values())
      rows.push({
        host: e.host,
        port: p.number,
        protocol: p.protocol,
        targetPort: p.targetPort,
        resolution: e.resolution,
        source: e.source,
        endpoints:
          e.endpoints.length === 0
            ? [e.host.includes('/') || isIP(e.host) !== 0 ? 'the requested address' : 'the requested name']
            : e.endpoints.map(
                (ep) => `${ep.address}:${ep.ports[p.name] ?? p.targetPort} weight ${ep.weight}`,
              ),
      });
  return rows.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : a.port - b.port));
}

function dumpEgress(policy: EgressPolicy): unknown {
  return {
    port: policy.port,
    mode: policy.mode,
    learn: policy.learn,
    allow: egressAllowRows(policy),
    meshRoutes: [...policy.meshTables.values()].map(dumpTable),
  };
}

/** The whole snapshot as sorted plain data. */
export function dumpSnapshot(snapshot: Snapshot): unknown {
  return sortKeys({
    hash: snapshot.hash,
    settings: dumpSettings(snapshot.settings),
    listeners: listenersByPort(snapshot).map(dumpListener),
    clusters: valuesByKey(snapshot.clusters).map(dumpCluster),
    ...(snapshot.egress === undefined ? {} : { egress: dumpEgress(snapshot.egress) }),
  });
}

export interface RouteRow {
  readonly port: number;
  readonly table: string;
  readonly vhost: string;
  readonly route: string;
  readonly match: string;
  readonly action: string;
  readonly destinations: readonly string[];
}

function tableRows(port: number, t: RouteTable, out: RouteRow[]): void {
  const vhosts: VirtualHost[] = [...valuesByKey(t.exact), ...t.wildcards.map((w) => w.vhost)];
  if (t.catchAll) vhosts.push(t.catchAll);
  for (const v of vhosts) {
    for (const r of v.routes) {
      const a = r.action;
      const single = a.kind === 'forward' && a.destinations.length === 1;
      out.push({
        port,
        table: t.name,
        vhost: v.name,
        route: r.name,
        match: describeConditions(r),
        action: a.kind === 'forward' ? 'forward' : describeAction(a),
        destinations:
          a.kind === 'forward'
            ? [
                ...a.destinations.map((d) => describeDestination(d, a.totalWeight, single)),
                ...(a.mirrors ?? []).map(describeMirror),
              ]
            : [],
      });
    }
  }
}

function tcpRows(port: number, table: string, r: TlsRoute, action: string, out: RouteRow[]): void {
  out.push({
    port,
    table,
    vhost: r.sniHosts.length > 0 ? r.sniHosts.join(',') : '*',
    route: r.name,
    match: r.sniHosts.length > 0 ? `sni ${r.sniHosts.join(',')}` : '*',
    action,
    destinations: r.destinations.map((d) => describeTcpDestination(d, r)),
  });
}

/** One row per route, in lookup order per table, for `sluice routes` (like istioctl proxy-config routes). */
export function routeRows(snapshot: Snapshot, port?: number): RouteRow[] {
  const out: RouteRow[] = [];
  for (const l of listenersByPort(snapshot)) {
    if (port !== undefined && l.port !== port) continue;
    if (l.httpTable) tableRows(l.port, l.httpTable, out);
    for (const s of l.tlsServers) {
      tableRows(l.port, s.table, out);
      if (s.tcpRoute) tcpRows(l.port, `tls.${l.port}`, s.tcpRoute, 'terminated', out);
    }
    for (const r of l.tlsRoutes ?? []) tcpRows(l.port, `tls.${l.port}`, r, 'passthrough', out);
    if (l.tcpRoute) tcpRows(l.port, `tcp.${l.port}`, l.tcpRoute, 'tcp', out);
  }
  const egress = snapshot.egress;
  if (egress !== undefined && (port === undefined || port === egress.port)) egressRows(egress, out);
  return out;
}

/**
 * The egress proxy's part: each allowed host:port with the ServiceEntry it comes from (table
 * `egress`), then the routes proxied HTTP requests take (tables `mesh.<port>`).
 */
function egressRows(egress: EgressPolicy, out: RouteRow[]): void {
  for (const r of egressAllowRows(egress))
    out.push({
      port: egress.port,
      table: 'egress',
      vhost: `${r.host}:${r.port}`,
      route: r.source,
      match: `${r.protocol} → ${r.targetPort} (${r.resolution})`,
      action: 'allow',
      destinations: r.endpoints,
    });
  for (const t of egress.meshTables.values()) tableRows(egress.port, t, out);
}

/** The name the team brief gives the same function. */
export const routesTable = routeRows;
