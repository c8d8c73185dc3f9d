/**
 * Clusters: one per (host, port, subset) a route references, named `outbound|<port>|<subset>|<host>`
 * (VS-19), with endpoints from ServiceEntries (SE-2, SE-3) or Services + EndpointSlices, and the
 * DestinationRule policy that applies (DR-1..DR-4, DR-6).
 */
import { createHash } from 'node:crypto';
import type { Diagnostic, DiagnosticSubject } from '../errors/diagnostic.ts';
import type {
  ConnectionPoolSettings,
  ConsistentHashLB,
  Destination,
  LoadBalancerSettings,
  OutlierDetection,
  Subset,
  TrafficPolicy,
  TrafficPolicyBlocks,
} from '../model/networking.ts';
import type {
  Cluster,
  Endpoint,
  EndpointSource,
  HashPolicy,
  LbPolicy,
  OutlierPolicy,
  WarmupPolicy,
} from '../snapshot/types.ts';
import { parseDuration } from '../util/duration.ts';
import { hostsMatch, isWildcard, namespaceOfServiceHost, toFqdn } from './hosts.ts';
import type { DestinationRuleResource, Indexes, ServiceEntryResource, ServiceResource } from './indexes.ts';
import { compareByAge, subjectOf } from './indexes.ts';
import type { SecretLookup } from './tls.ts';
import { resolveUpstreamTls } from './upstream-tls.ts';
import { clusterProtocolOf, servicePortProtocol, type PortProtocol } from './upstream-protocol.ts';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 3_600_000;

export interface ClusterContext {
  readonly indexes: Indexes;
  readonly clusters: Map<string, Cluster>;
  readonly diagnostics: Diagnostic[];
  /** While set, every cluster resolved is added (routes.ts records what a VirtualService uses). */
  touched: Set<Cluster> | null;
  /**
   * While set (the egress proxy's mesh routes), a ServiceEntry with resolution NONE resolves the
   * requested host by name: a proxy's client dialled no address, so the name is its original
   * destination. Gateway routes leave it unset: NONE is 503 NC there.
   */
  resolveNoneByName: boolean;
  /** Credentials for TLS origination (DR-8) and the clock certificates are judged by. */
  readonly secrets: SecretLookup;
  readonly nowMs: number;
}

export function createClusterContext(
  indexes: Indexes,
  diagnostics: Diagnostic[],
  secrets: SecretLookup,
  nowMs: number,
): ClusterContext {
  return {
    indexes,
    clusters: new Map(),
    diagnostics,
    touched: null,
    resolveNoneByName: false,
    secrets,
    nowMs,
  };
}

export function clusterName(port: number, subset: string | null, host: string): string {
  return `outbound|${port}|${subset ?? ''}|${host}`;
}

// ---------------------------------------------------------------- registry view of a host

interface RegistryPort {
  readonly number: number;
  readonly name: string;
  readonly targetPort: number | string | null;
  /** Istio's protocol of the port (DP-9); '' when not declared. */
  readonly protocol: PortProtocol;
}

type Registry =
  | {
      readonly kind: 'se';
      readonly namespace: string;
      readonly se: ServiceEntryResource;
      readonly ports: readonly RegistryPort[];
    }
  | {
      readonly kind: 'svc';
      readonly namespace: string;
      readonly svc: ServiceResource;
      readonly ports: readonly RegistryPort[];
    }
  | { readonly kind: 'none'; readonly namespace: string | null; readonly ports: readonly RegistryPort[] };

function registryFor(idx: Indexes, host: string): Registry {
  const ses = idx.serviceEntriesByHost.get(host);
  const se = ses?.[0];
  if (se) {
    return {
      kind: 'se',
      namespace: se.namespace,
      se,
      ports: (se.spec.ports ?? []).map((p) => ({
        number: p.number,
        name: p.name,
        targetPort: p.targetPort ?? null,
        protocol: p.protocol ?? '',
      })),
    };
  }
  const svc = idx.servicesByHost.get(host);
  if (svc) {
    return {
      kind: 'svc',
      namespace: svc.namespace,
      svc,
      ports: svc.spec.ports.map((p) => ({
        number: p.port,
        name: p.name ?? '',
        targetPort: p.targetPort ?? null,
        protocol: servicePortProtocol(p.name, p.appProtocol, p.protocol),
      })),
    };
  }
  return { kind: 'none', namespace: namespaceOfServiceHost(host), ports: [] };
}

// ---------------------------------------------------------------- DestinationRule lookup (DR-1)

interface MergedRule {
  readonly trafficPolicy: TrafficPolicy | undefined;
  readonly subsets: readonly Subset[];
  readonly rules: readonly DestinationRuleResource[];
  /** Where the winning trafficPolicy and each subset were written (diagnostics). */
  readonly policyOwner: DestinationRuleResource | null;
  readonly subsetOwners: readonly { readonly rule: DestinationRuleResource; readonly index: number }[];
}

function mergeRules(rules: readonly DestinationRuleResource[]): MergedRule {
  const sorted = [...rules].sort(compareByAge);
  let trafficPolicy: TrafficPolicy | undefined;
  let policyOwner: DestinationRuleResource | null = null;
  const subsets: Subset[] = [];
  const subsetOwners: { rule: DestinationRuleResource; index: number }[] = [];
  for (const r of sorted) {
    if (trafficPolicy === undefined && r.spec.trafficPolicy !== undefined) {
      trafficPolicy = r.spec.trafficPolicy;
      policyOwner = r;
    }
    (r.spec.subsets ?? []).forEach((s, index) => {
      if (subsets.some((x) => x.name === s.name)) return;
      subsets.push(s);
      subsetOwners.push({ rule: r, index });
    });
  }
  return { trafficPolicy, subsets, rules: sorted, policyOwner, subsetOwners };
}

interface DestinationRulesOfNamespace {
  /** By FQDN host, in input order. */
  readonly exact: Map<string, DestinationRuleResource[]>;
  /** Wildcard FQDN hosts, in input order. */
  readonly wildcards: { readonly host: string; readonly rules: DestinationRuleResource[] }[];
}

interface DestinationRuleIndex {
  readonly byNamespace: Map<string, DestinationRulesOfNamespace>;
  /** Answers by `host|serviceNamespace`: each cluster of a host asks the same question. */
  readonly found: Map<string, MergedRule | null>;
}

/** Indexed once per Indexes: a config with a DestinationRule per service asks once per destination. */
const ruleIndexes = new WeakMap<Indexes, DestinationRuleIndex>();

function destinationRuleIndex(idx: Indexes): DestinationRuleIndex {
  let index = ruleIndexes.get(idx);
  if (index !== undefined) return index;
  const byNamespace = new Map<string, DestinationRulesOfNamespace>();
  for (const dr of idx.destinationRules) {
    let ns = byNamespace.get(dr.namespace);
    if (ns === undefined) byNamespace.set(dr.namespace, (ns = { exact: new Map(), wildcards: [] }));
    const h = toFqdn(dr.spec.host, dr.namespace);
    if (isWildcard(h)) {
      const w = ns.wildcards.find((x) => x.host === h);
      if (w) w.rules.push(dr);
      else ns.wildcards.push({ host: h, rules: [dr] });
    }
    const list = ns.exact.get(h);
    if (list) list.push(dr);
    else ns.exact.set(h, [dr]);
  }
  index = { byNamespace, found: new Map() };
  ruleIndexes.set(idx, index);
  return index;
}

/** Gateway namespace, then the service's namespace, then root; exact host before the most specific wildcard. */
export function findDestinationRule(
  idx: Indexes,
  host: string,
  serviceNamespace: string | null,
): MergedRule | null {
  const index = destinationRuleIndex(idx);
  const key = `${host}|${serviceNamespace ?? ''}`;
  const known = index.found.get(key);
  if (known !== undefined) return known;
  const tiers = [idx.identity.namespace, serviceNamespace, idx.identity.rootNamespace].filter(
    (ns, i, all): ns is string => ns !== null && all.indexOf(ns) === i,
  );
  let found: MergedRule | null = null;
  for (const ns of tiers) {
    const inNs = index.byNamespace.get(ns);
    if (inNs === undefined) continue;
    const exact = inNs.exact.get(host);
    if (exact !== undefined) {
      found = mergeRules(exact);
      break;
    }
    if (isWildcard(host)) continue;
    let best: { readonly host: string; readonly rules: DestinationRuleResource[] } | null = null;
    for (const w of inNs.wildcards)
      if (hostsMatch(w.host, host) && (best === null || w.host.length > best.host.length)) best = w;
    if (best !== null) {
      found = mergeRules(best.rules);
      break;
    }
  }
  index.found.set(key, found);
  return found;
}

/** Where a policy's `tls` block was written: the DestinationRule and the field path. */
interface TlsSource {
  readonly rule: DestinationRuleResource;
  readonly path: string;
}

/**
 * DR-3: top level, replaced by a matching portLevelSettings entry, then subset blocks override.
 * `tlsAt` says where the `tls` block that applies was written.
 */
function effectivePolicy(
  dr: MergedRule | null,
  port: number,
  subset: Subset | null,
): { blocks: TrafficPolicyBlocks; tlsAt: TlsSource | null } {
  const tp = dr?.trafficPolicy;
  let out: TrafficPolicyBlocks = tp ?? {};
  const top = dr?.policyOwner ?? null;
  let tlsAt: TlsSource | null = top === null ? null : { rule: top, path: 'spec.trafficPolicy.tls' };
  const plIndex = tp?.portLevelSettings?.findIndex((p) => p.port?.number === port) ?? -1;
  if (plIndex >= 0) {
    out = tp!.portLevelSettings![plIndex]!;
    tlsAt = { rule: top!, path: `spec.trafficPolicy.portLevelSettings[${plIndex}].tls` };
  }
  const sp = subset?.trafficPolicy;
  if (sp) {
    const owner = dr!.subsetOwners[dr!.subsets.indexOf(subset!)]!;
    const at = `spec.subsets[${owner.index}].trafficPolicy`;
    out = {
      loadBalancer: sp.loadBalancer ?? out.loadBalancer,
      connectionPool: sp.connectionPool ?? out.connectionPool,
      outlierDetection: sp.outlierDetection ?? out.outlierDetection,
      tls: sp.tls ?? out.tls,
    };
    if (sp.tls) tlsAt = { rule: owner.rule, path: `${at}.tls` };
    const splIndex = sp.portLevelSettings?.findIndex((p) => p.port?.number === port) ?? -1;
    if (splIndex >= 0) {
      const spl = sp.portLevelSettings![splIndex]!;
      out = {
        loadBalancer: spl.loadBalancer,
        connectionPool: spl.connectionPool,
        outlierDetection: spl.outlierDetection,
        tls: spl.tls,
      };
      tlsAt = { rule: owner.rule, path: `${at}.portLevelSettings[${splIndex}].tls` };
    }
  }
  return { blocks: out, tlsAt };
}

/** Envoy's ring hash default minimum ring size (Istio sets it whenever ringHash is chosen). */
const DEFAULT_MIN_RING_SIZE = 1024;

/** DR-4: consistentHash picks RING_HASH (default) or MAGLEV; PASSTHROUGH falls back to LEAST_REQUEST (model/unsupported.ts warns). */
function lbOf(lb: LoadBalancerSettings | undefined): { lb: LbPolicy; hashTableSize: number } {
  const ch = lb?.consistentHash;
  if (ch !== undefined) {
    if (ch.maglev !== undefined) return { lb: 'MAGLEV', hashTableSize: ch.maglev.tableSize || 65537 };
    const min = ch.ringHash?.minimumRingSize || ch.minimumRingSize || DEFAULT_MIN_RING_SIZE;
    return { lb: 'RING_HASH', hashTableSize: min };
  }
  return { lb: simpleLbOf(lb), hashTableSize: 0 };
}

/**
 * DR-4 `warmup` (or the older `warmupDurationSecs`; `warmup` wins): Istio sets Envoy's slow start
 * on ROUND_ROBIN and LEAST_REQUEST clusters only (aggression 1 and 10 % minimum unless given).
 */
function warmupOf(lb: LoadBalancerSettings | undefined, policy: LbPolicy): WarmupPolicy | null {
  if (
    lb === undefined ||
    (policy !== 'ROUND_ROBIN' && policy !== 'LEAST_REQUEST') ||
    lb.simple === 'PASSTHROUGH'
  )
    return null;
  const windowMs = durationMs(lb.warmup?.duration ?? lb.warmupDurationSecs, 0);
  if (windowMs <= 0) return null;
  return {
    windowMs,
    aggression: lb.warmup?.aggression ?? 1,
    minWeight: (lb.warmup?.minimumPercent ?? 10) / 100,
  };
}

function simpleLbOf(lb: LoadBalancerSettings | undefined): LbPolicy {
  switch (lb?.simple) {
    case 'ROUND_ROBIN':
      return 'ROUND_ROBIN';
    case 'RANDOM':
      return 'RANDOM';
    default:
      // DR-4: UNSPECIFIED, LEAST_CONN and LEAST_REQUEST are all Envoy's least request.
      return 'LEAST_REQUEST';
  }
}

function durationMs(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const r = parseDuration(text, { bareSeconds: false });
  return r.ok ? r.ms : fallback;
}

/** A limit Istio sets only when positive (0 keeps Envoy's default, here unlimited). */
function limit(v: number | undefined): number {
  return v !== undefined && v > 0 ? v : Infinity;
}

function poolSettings(
  cp: ConnectionPoolSettings | undefined,
): Pick<
  Cluster,
  | 'connectTimeoutMs'
  | 'idleTimeoutMs'
  | 'maxRequestsPerConnection'
  | 'maxConnections'
  | 'maxPendingRequests'
  | 'maxRequests'
> {
  return {
    connectTimeoutMs: durationMs(cp?.tcp?.connectTimeout, DEFAULT_CONNECT_TIMEOUT_MS),
    idleTimeoutMs: durationMs(cp?.http?.idleTimeout ?? cp?.tcp?.idleTimeout, DEFAULT_IDLE_TIMEOUT_MS),
    maxRequestsPerConnection: cp?.http?.maxRequestsPerConnection ?? 0,
    maxConnections: limit(cp?.tcp?.maxConnections),
    maxPendingRequests: limit(cp?.http?.http1MaxPendingRequests),
    maxRequests: limit(cp?.http?.http2MaxRequests),
  };
}

/** DR-7 as Istio's applyOutlierDetection hands it to Envoy, with Envoy's defaults filled in. */
function outlierOf(od: OutlierDetection | undefined): OutlierPolicy | null {
  if (od === undefined) return null;
  const baseEjectionMs = durationMs(od.baseEjectionTime, 30_000);
  const local = od.consecutiveLocalOriginFailures ?? 0;
  // Deprecated consecutiveErrors: Istio enforces it as gateway errors and stops enforcing 5xx
  // (cluster_traffic_policy.go applyOutlierDetection); the newer fields, when set, win.
  const legacy = od.consecutiveErrors !== undefined && od.consecutiveErrors > 0 ? od.consecutiveErrors : 0;
  return {
    // Unset: Envoy's default 5, enforced; 0: off.
    consecutive5xx: od.consecutive5xxErrors ?? (legacy > 0 ? 0 : 5),
    // Unset: Envoy counts but does not enforce (enforcing_consecutive_gateway_failure 0).
    consecutiveGateway: od.consecutiveGatewayErrors ?? legacy,
    // Split: Istio passes only a positive value, so 0 leaves Envoy's default 5.
    consecutiveLocalOrigin: od.splitExternalLocalOriginErrors === true ? (local > 0 ? local : 5) : 0,
    intervalMs: durationMs(od.interval, 10_000) || 10_000,
    baseEjectionMs,
    maxEjectionMs: Math.max(300_000, baseEjectionMs),
    maxEjectionPercent:
      od.maxEjectionPercent !== undefined && od.maxEjectionPercent > 0 ? od.maxEjectionPercent : 10,
    minHealthPercent: od.minHealthPercent ?? 0,
  };
}

/**
 * The route hash policy a destination contributes (istio route.go HashForHTTPDestination): the
 * consistentHash of the subset's port settings, else the subset's, else the top-level port
 * settings' (only when the destination names its port), else the top level's. This is not DR-3's
 * order: a port setting without consistentHash leaves the top level's key in place.
 */
export function hashPolicyOf(
  tp: TrafficPolicy | undefined,
  subset: Subset | null,
  destPort: number | undefined,
): HashPolicy | null {
  const atPort = (pls: TrafficPolicy['portLevelSettings']): ConsistentHashLB | undefined =>
    destPort === undefined
      ? undefined
      : pls?.find((p) => p.port?.number === destPort)?.loadBalancer?.consistentHash;
  const ch =
    atPort(subset?.trafficPolicy?.portLevelSettings) ??
    subset?.trafficPolicy?.loadBalancer?.consistentHash ??
    atPort(tp?.portLevelSettings) ??
    tp?.loadBalancer?.consistentHash;
  if (ch === undefined) return null;
  if (ch.httpHeaderName !== undefined) return { kind: 'header', name: ch.httpHeaderName.toLowerCase() };
  if (ch.httpQueryParameterName !== undefined) return { kind: 'query', name: ch.httpQueryParameterName };
  if (ch.useSourceIp === true) return { kind: 'source-ip' };
  const cookie = ch.httpCookie;
  if (cookie === undefined) return null;
  if (cookie.ttl === undefined) return { kind: 'cookie', name: cookie.name, issue: null };
  // Envoy's Utility::makeSetCookieValue: quoted value, Max-Age in whole seconds unless 0 (a
  // session cookie), Path, the attributes, HttpOnly.
  const seconds = Math.floor(durationMs(cookie.ttl, 0) / 1000);
  let suffix = '"';
  if (seconds !== 0) suffix += '; Max-Age=' + seconds;
  if (cookie.path !== undefined && cookie.path !== '') suffix += '; Path=' + cookie.path;
  for (const a of cookie.attributes ?? [])
    suffix += a.value !== undefined && a.value !== '' ? '; ' + a.name + '=' + a.value : '; ' + a.name;
  suffix += '; HttpOnly';
  return { kind: 'cookie', name: cookie.name, issue: { prefix: cookie.name + '="', suffix } };
}

function labelsMatch(
  selector: Readonly<Record<string, string>> | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

// ---------------------------------------------------------------- endpoints

type EndpointsResult =
  { readonly ok: true; readonly source: EndpointSource } | { readonly ok: false; readonly reason: string };

function serviceEntryEndpoints(
  se: ServiceEntryResource,
  host: string,
  port: RegistryPort,
  noneByName: boolean,
): EndpointsResult {
  const resolution = se.spec.resolution ?? 'NONE';
  const target = typeof port.targetPort === 'number' ? port.targetPort : port.number;
  const fromEntries = (): Endpoint[] =>
    (se.spec.endpoints ?? [])
      .filter((e) => e.address !== undefined && e.address !== '')
      .map((e) => ({
        address: e.address as string,
        port: e.ports?.[port.name] ?? target,
        weight: e.weight ?? 1,
        labels: e.labels ?? {},
      }));
  switch (resolution) {
    case 'STATIC':
      return { ok: true, source: { kind: 'static', endpoints: fromEntries() } };
    case 'DNS':
    case 'DNS_ROUND_ROBIN': {
      let endpoints = fromEntries();
      // Without endpoints each host is its own endpoint (Istio makes one service per host).
      if (endpoints.length === 0) endpoints = [{ address: host, port: target, weight: 1, labels: {} }];
      return { ok: true, source: { kind: 'dns', endpoints, roundRobin: resolution === 'DNS_ROUND_ROBIN' } };
    }
    case 'NONE':
      if (noneByName)
        return {
          ok: true,
          source: {
            kind: 'dns',
            endpoints: [{ address: host, port: target, weight: 1, labels: {} }],
            roundRobin: false,
          },
        };
      return {
        ok: false,
        reason: `ServiceEntry ${se.namespace}/${se.name} has resolution NONE, which sluice does not forward to yet`,
      };
    case 'DYNAMIC_DNS':
      return {
        ok: false,
        reason: `ServiceEntry ${se.namespace}/${se.name} has resolution DYNAMIC_DNS, which sluice does not support yet`,
      };
  }
}

/**
 * A Service's ready endpoints from its EndpointSlices, port matched by name. A Service with no
 * slices at all (config files without endpoints) is reached through its cluster DNS name.
 */
function serviceEndpoints(
  idx: Indexes,
  svc: ServiceResource,
  host: string,
  port: RegistryPort,
): EndpointSource {
  if (svc.spec.type === 'ExternalName' && svc.spec.externalName) {
    // Istio treats an ExternalName Service as an alias: the upstream is the external name on the service port.
    return {
      kind: 'dns',
      endpoints: [{ address: svc.spec.externalName, port: port.number, weight: 1, labels: {} }],
      roundRobin: false,
    };
  }
  const slices = idx.slicesByHost.get(host);
  if (!slices || slices.length === 0) {
    return {
      kind: 'dns',
      endpoints: [{ address: host, port: port.number, weight: 1, labels: {} }],
      roundRobin: false,
    };
  }
  const endpoints: Endpoint[] = [];
  for (const slice of slices) {
    const sp = slice.spec.ports.find((p) => (p.name ?? '') === port.name);
    if (!sp) continue;
    for (const e of slice.spec.endpoints) {
      if (e.conditions?.ready === false) continue;
      const pod = e.targetRef?.kind === 'Pod' && e.targetRef.name !== undefined ? e.targetRef : null;
      const labels =
        pod === null ? {} : (idx.podLabels?.get(`${pod.namespace ?? slice.namespace}/${pod.name}`) ?? {});
      for (const address of e.addresses) endpoints.push({ address, port: sp.port, weight: 1, labels });
    }
  }
  return { kind: 'static', endpoints };
}

function digest(v: unknown): string {
  return createHash('sha256').update(stableJson(v)).digest('hex').slice(0, 16);
}

function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x === Infinity) return 'Infinity';
    if (x && typeof x === 'object' && !Array.isArray(x)) {
      return Object.fromEntries(
        Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      );
    }
    return x;
  });
}

// ---------------------------------------------------------------- destination → cluster

export interface ResolvedDestination {
  readonly clusterName: string;
  readonly cluster: Cluster | null;
  /** What this destination adds to the route's hash policy (DR-4), null when nothing. */
  readonly hashPolicy: HashPolicy | null;
}

/**
 * VS-19: a route destination → its cluster. `owner`/`path` name the VirtualService field for
 * diagnostics; `serverPort` is the Gateway server port (the port fallback).
 */
export function resolveDestination(
  ctx: ClusterContext,
  dest: Destination,
  vsNamespace: string,
  serverPort: number,
  owner: DiagnosticSubject,
  path: string,
): ResolvedDestination {
  const idx = ctx.indexes;
  const host = toFqdn(dest.host, vsNamespace);
  const reg = registryFor(idx, host);
  const onlyPort = reg.ports.length === 1 ? reg.ports[0] : undefined;
  const port = dest.port?.number ?? onlyPort?.number ?? serverPort;
  const subset = dest.subset ?? null;
  const name = clusterName(port, subset, host);

  const existing = ctx.clusters.get(name);
  if (existing) {
    ctx.touched?.add(existing);
    const dr = findDestinationRule(idx, host, reg.namespace);
    const subsetDef = subset === null ? null : (dr?.subsets.find((s) => s.name === subset) ?? null);
    const hashPolicy = hashPolicyOf(dr?.trafficPolicy, subsetDef, dest.port?.number);
    return { clusterName: name, cluster: existing, hashPolicy };
  }

  // Unknown hosts, ports and subsets are reported by analysis (IST0101); `quiet` avoids saying it twice.
  const fail = (
    code: 'SLUICE_NO_ENDPOINTS' | 'SLUICE_REF_NOT_FOUND',
    reason: string,
    quiet = false,
  ): ResolvedDestination => {
    if (!quiet)
      ctx.diagnostics.push({
        level: 'warning',
        code,
        subject: owner,
        path,
        message: `${reason}; requests routed there get 503 NC (cluster ${name})`,
      });
    return { clusterName: name, cluster: null, hashPolicy: null };
  };

  if (isWildcard(host))
    return fail('SLUICE_NO_ENDPOINTS', `destination host ${host} is a wildcard, which has no endpoints`);

  const dr = findDestinationRule(idx, host, reg.namespace);
  let subsetDef: Subset | null = null;
  if (subset !== null) {
    subsetDef = dr?.subsets.find((s) => s.name === subset) ?? null;
    if (!subsetDef) {
      return fail(
        'SLUICE_REF_NOT_FOUND',
        `subset ${subset} of ${host} is not defined by any DestinationRule`,
        true,
      );
    }
  }

  let source: EndpointSource;
  let portProtocol: PortProtocol = '';
  if (reg.kind === 'se' || reg.kind === 'svc') {
    const regPort = reg.ports.find((p) => p.number === port);
    if (!regPort) {
      const what =
        reg.kind === 'se'
          ? `ServiceEntry ${reg.se.namespace}/${reg.se.name}`
          : `Service ${reg.svc.namespace}/${reg.svc.name}`;
      return fail('SLUICE_REF_NOT_FOUND', `port ${port} is not a port of ${what}`, true);
    }
    portProtocol = regPort.protocol;
    if (reg.kind === 'se') {
      const r = serviceEntryEndpoints(reg.se, host, regPort, ctx.resolveNoneByName);
      if (!r.ok) return fail('SLUICE_NO_ENDPOINTS', r.reason);
      source = r.source;
    } else {
      source = serviceEndpoints(idx, reg.svc, host, regPort);
    }
  } else {
    // Istio answers 503 NC for a host its registry does not know (VS-19). sluice in file mode
    // often runs beside a cluster whose Services are not in its config, so it resolves the
    // destination host itself by DNS (analysis still reports the unknown host, IST0101).
    source = { kind: 'dns', endpoints: [{ address: host, port, weight: 1, labels: {} }], roundRobin: false };
  }

  if (
    subsetDef?.labels &&
    Object.keys(subsetDef.labels).length > 0 &&
    reg.kind === 'svc' &&
    idx.podLabels === null
  ) {
    // Without Pods in the set (config files, usually) the endpoints' pod labels are unknown, so a
    // subset cannot narrow a Service's endpoints here.
    ctx.diagnostics.push({
      level: 'warning',
      code: 'SLUICE_CONFIG_UNSUPPORTED',
      subject: owner,
      path,
      message: `subset ${subset} selects by pod labels, which sluice does not know for Service ${reg.svc.namespace}/${reg.svc.name}; all its endpoints are used (cluster ${name})`,
    });
  } else if (subsetDef?.labels && Object.keys(subsetDef.labels).length > 0) {
    const sel = subsetDef.labels;
    source =
      source.kind === 'static'
        ? { kind: 'static', endpoints: source.endpoints.filter((e) => labelsMatch(sel, e.labels)) }
        : {
            kind: 'dns',
            endpoints: source.endpoints.filter((e) => labelsMatch(sel, e.labels)),
            roundRobin: source.roundRobin,
          };
  }
  if (source.endpoints.length === 0) {
    ctx.diagnostics.push({
      level: 'warning',
      code: 'SLUICE_NO_ENDPOINTS',
      subject: owner,
      path,
      message: `cluster ${name} has no endpoints${subset !== null ? ` (subset ${subset} selects none)` : ''}; requests routed there get 503 UH`,
    });
  }

  const { blocks: policy, tlsAt } = effectivePolicy(dr, port, subsetDef);
  const { lb, hashTableSize } = lbOf(policy.loadBalancer);
  const warmup = warmupOf(policy.loadBalancer, lb);
  const settings = poolSettings(policy.connectionPool);
  const maxRetries = limit(policy.connectionPool?.http?.maxRetries);
  const maxConnectionDurationMs = durationMs(policy.connectionPool?.tcp?.maxConnectionDuration, 0);
  const outlier = outlierOf(policy.outlierDetection);
  const protocol = clusterProtocolOf(portProtocol, policy.connectionPool, idx.meshConfig?.h2UpgradePolicy);
  const tls =
    policy.tls === undefined || tlsAt === null
      ? null
      : resolveUpstreamTls(ctx, {
          tls: policy.tls,
          subject: subjectOf(tlsAt.rule),
          path: tlsAt.path,
          registrySubjectAltNames: reg.kind === 'se' ? (reg.se.spec.subjectAltNames ?? []) : [],
        });
  // Settings added since keys were first written join only when set, so existing keys stay put.
  const extra = {
    ...(hashTableSize > 0 ? { hashTableSize } : {}),
    ...(warmup !== null ? { warmup } : {}),
    ...(maxRetries !== Infinity ? { maxRetries } : {}),
    ...(maxConnectionDurationMs > 0 ? { maxConnectionDurationMs } : {}),
    ...protocol,
    ...(portProtocol === 'GRPC-WEB' ? { grpcWeb: true as const } : {}),
    ...(tls === null ? {} : { tls: tls.key }),
  };
  const keyed = { host, port, subset, endpoints: source, lb, ...settings, ...extra };
  const key = digest(keyed);
  const stateKey = digest({ name, lb, ...settings, ...extra, outlier });
  const cluster: Cluster = {
    name,
    host,
    port,
    subset,
    key,
    stateKey,
    endpoints: source,
    lb,
    hashTableSize,
    ...(warmup !== null ? { warmup } : {}),
    ...settings,
    maxRetries,
    maxConnectionDurationMs,
    outlier,
    ...protocol,
    ...(portProtocol === 'GRPC-WEB' ? { grpcWeb: true as const } : {}),
    ...(tls === null ? {} : { tls }),
  };
  ctx.clusters.set(name, cluster);
  ctx.touched?.add(cluster);
  return {
    clusterName: name,
    cluster,
    hashPolicy: hashPolicyOf(dr?.trafficPolicy, subsetDef, dest.port?.number),
  };
}
