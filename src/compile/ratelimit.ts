/**
 * RateLimitPolicy → rate-limit filters, placed after the tables and routes are built so that
 * routes reused from an earlier compile stay untouched (a changed policy must not need a changed
 * VirtualService to take effect):
 *
 * - a Gateway target puts a filter on each route table holding one of that Gateway's servers,
 *   after the security filters (AfterAuth) or before them (BeforeAuth); a plaintext table that
 *   other Gateways' servers share counts only requests for this Gateway's hosts;
 * - a VirtualService target (or one of its http routes, `sectionName`) puts a filter on each
 *   route compiled from it, after fault and CORS (DESIGN §1's route filter order).
 *
 * One filter per place holds every rule that applies there, in policy order (root namespace
 * first, then by name, as security policies), so one store call serves them all.
 */
import { createHash } from 'node:crypto';
import type { Diagnostic } from '../errors/diagnostic.ts';
import type { Resource, ResourceSet } from '../model/resource.ts';
import {
  DEFAULT_REDIS_KEY_PREFIX,
  type MeshConfigSpec,
  type RateLimitKeySpec,
  type RateLimitPolicySpec,
  type RateLimitRuleSpec,
  type RateLimitUnit,
} from '../model/sluice.ts';
import type {
  CompiledRateLimitRule,
  HttpFilter,
  Listener,
  PolicyRequest,
  RateLimitKeyPart,
  RateLimitRedisSettings,
  RateLimitService,
  RateLimitSpec,
  Route,
  RouteTable,
  ServerRef,
  VirtualHost,
} from '../snapshot/types.ts';
import { headerValue } from '../snapshot/lookup.ts';
import { parseDuration } from '../util/duration.ts';
import { compileRequestMatch, type Problems } from './authz.ts';
import { cidrTest, claimAt, parseBracketPath } from './authz-values.ts';
import { resolveDestination, type ClusterContext } from './clusters.ts';
import { serverDnsNames } from './hosts.ts';
import { subjectOf, type Indexes } from './indexes.ts';

export type RateLimitPolicyResource = Resource<'RateLimitPolicy', RateLimitPolicySpec>;

const UNIT_MS: Readonly<Record<RateLimitUnit, number>> = {
  Second: 1000,
  Minute: 60_000,
  Hour: 3_600_000,
  Day: 86_400_000,
};

/** How long a request waits for Redis by default: tens of milliseconds, then failureMode decides. */
export const DEFAULT_REDIS_TIMEOUT_MS = 50;

/** Header values and claims longer than this are hashed into the bucket name (Redis key size). */
const MAX_KEY_VALUE = 200;

function keyValue(v: string): string {
  return v.length <= MAX_KEY_VALUE ? v : createHash('sha256').update(v).digest('base64url');
}

export function keyPart(k: RateLimitKeySpec): RateLimitKeyPart {
  if (k.remoteAddress !== undefined)
    return { describe: 'remoteAddress', descriptorKey: 'remote_address', read: (r) => r.remoteIp };
  if (k.requestHeader !== undefined) {
    const name = k.requestHeader.name.toLowerCase();
    return {
      describe: `requestHeader ${name}`,
      descriptorKey: name,
      read: (r) => {
        const v = headerValue(r, name);
        return v === undefined ? null : keyValue(v);
      },
    };
  }
  if (k.requestAuthClaim !== undefined) {
    const c = k.requestAuthClaim;
    const path = c.startsWith('[') ? (parseBracketPath(c) ?? [c]) : c.split('.');
    return {
      describe: `requestAuthClaim ${c}`,
      descriptorKey: c,
      read: (r) => {
        if (r.auth === null) return null;
        const v = claimAt(r.auth.claims, path);
        if (typeof v === 'string') return keyValue(v);
        if (typeof v === 'number' || typeof v === 'boolean') return String(v);
        return v === undefined || v === null ? null : keyValue(JSON.stringify(v));
      },
    };
  }
  if (k.host !== undefined) return { describe: 'host', descriptorKey: 'host', read: (r) => r.host };
  if (k.path !== undefined) return { describe: 'path', descriptorKey: 'path', read: (r) => keyValue(r.path) };
  if (k.routeName !== undefined)
    return { describe: 'routeName', descriptorKey: 'route_name', read: (r) => r.route?.name ?? null };
  const constant = k.constant ?? '';
  // Envoy's generic_key action: the key a rate limit service config most often names.
  return { describe: `constant ${constant}`, descriptorKey: 'generic_key', read: () => constant };
}

/** Envoy's rate limit filter timeout default. */
const DEFAULT_SERVICE_TIMEOUT_MS = 20;

/** `spec.service` → the cluster it names, as ext_authz providers resolve theirs. */
function resolveService(
  resource: RateLimitPolicyResource,
  clusters: ClusterContext,
  problem: Problems,
): RateLimitService | null {
  const ref = resource.spec.service;
  if (resource.spec.storage !== 'Service' || ref === undefined) return null;
  const slash = ref.host.indexOf('/');
  const ns = slash < 0 ? resource.namespace : ref.host.slice(0, slash);
  const host = slash < 0 ? ref.host : ref.host.slice(slash + 1);
  const cluster = resolveDestination(
    clusters,
    { host, port: { number: ref.port } },
    ns,
    ref.port,
    subjectOf(resource),
    'spec.service',
  ).cluster;
  if (cluster === null) {
    problem('spec.service', `${ref.host}:${ref.port} resolves to no cluster`);
    return null;
  }
  const t = ref.timeout === undefined ? null : parseDuration(ref.timeout, { bareSeconds: false });
  return {
    authority: `${ref.host}:${ref.port}`,
    cluster,
    domain: ref.domain,
    timeoutMs: t !== null && t.ok && t.ms > 0 ? t.ms : DEFAULT_SERVICE_TIMEOUT_MS,
  };
}

interface PolicyRules {
  readonly resource: RateLimitPolicyResource;
  readonly rules: readonly CompiledRateLimitRule[];
}

function limitOf(rule: RateLimitRuleSpec, storage: CompiledRateLimitRule['storage']): RateLimitSpec {
  const l = rule.limit;
  if (storage === 'Service') {
    // The service counts; an override travels with the descriptor, else the service's own applies.
    if (l?.requests === undefined || l.unit === undefined)
      return { algorithm: 'FixedWindow', requests: 0, windowMs: 0, burst: 0, override: false };
    return {
      algorithm: 'FixedWindow',
      requests: l.requests,
      windowMs: UNIT_MS[l.unit],
      burst: l.requests,
      override: true,
    };
  }
  // Validation guarantees a limit: inFlight alone, or requests and unit.
  const algorithm: RateLimitSpec['algorithm'] =
    l?.inFlight !== undefined ? 'InFlight' : (rule.algorithm ?? 'TokenBucket');
  const requests = l?.inFlight ?? l?.requests ?? 1;
  return {
    algorithm,
    requests,
    windowMs: l?.inFlight !== undefined ? 0 : UNIT_MS[l?.unit ?? 'Second'],
    burst: algorithm === 'TokenBucket' ? (l?.burst ?? requests) : requests,
  };
}

function compilePolicy(
  resource: RateLimitPolicyResource,
  clusters: ClusterContext,
  problem: Problems,
): PolicyRules {
  const spec = resource.spec;
  const id = `${resource.namespace}/${resource.name}`;
  const storage = spec.storage ?? 'Local';
  const service = resolveService(resource, clusters, problem);
  const rules = spec.rules.map((rule, i): CompiledRateLimitRule => {
    const limit = limitOf(rule, storage);
    const algorithm = limit.algorithm;
    const exemptBlocks = rule.exempt?.remoteIpBlocks ?? [];
    let exempt: CompiledRateLimitRule['exempt'] = null;
    if (exemptBlocks.length > 0) {
      const t = cidrTest(exemptBlocks);
      if (typeof t === 'string') problem(`spec.rules[${i}].exempt.remoteIpBlocks`, t);
      else exempt = t;
    }
    return {
      id: `${id}/${rule.name}`,
      policy: id,
      name: rule.name,
      storage,
      service,
      failureMode: spec.failureMode ?? 'Open',
      responseHeaders: spec.responseHeaders ?? 'None',
      limit,
      bucket: `${id}/${rule.name}|${algorithm[0]}${limit.requests}/${limit.windowMs}/${limit.burst}`,
      shadow: rule.shadowMode === true,
      applies: compileRequestMatch(rule, i, resource.namespace, problem),
      exempt,
      key: (rule.key ?? []).map(keyPart),
      rejectStatus: 429,
    };
  });
  return { resource, rules };
}

function problemsOf(r: RateLimitPolicyResource, diagnostics: Diagnostic[]): Problems {
  return (path, message) =>
    diagnostics.push({
      level: 'error',
      code: 'SLUICE_POLICY_UNENFORCEABLE',
      subject: subjectOf(r),
      path,
      message: `${message}; the rate limit cannot be enforced exactly, so the change is refused`,
    });
}

/** Where each policy applies, resolved against what this gateway serves. */
interface Placement {
  /** Gateway `ns/name` → rules, by phase. */
  readonly gateways: Map<string, { before: CompiledRateLimitRule[]; after: CompiledRateLimitRule[] }>;
  /** `ns/vs` or `ns/vs#section` → rules. */
  readonly routes: Map<string, CompiledRateLimitRule[]>;
  global: boolean;
}

function push<K, V>(m: Map<K, V[]>, k: K, v: readonly V[]): void {
  const list = m.get(k);
  if (list === undefined) m.set(k, [...v]);
  else list.push(...v);
}

function placePolicies(
  set: ResourceSet,
  indexes: Indexes,
  clusters: ClusterContext,
  diagnostics: Diagnostic[],
): Placement {
  const root = indexes.identity.rootNamespace;
  const policies = (
    set.resources.filter((r) => r.kind === 'RateLimitPolicy') as RateLimitPolicyResource[]
  ).sort(
    (a, b) =>
      Number(b.namespace === root) - Number(a.namespace === root) ||
      (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0) ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  const placement: Placement = { gateways: new Map(), routes: new Map(), global: false };
  const ours = new Set(indexes.gateways.map((g) => `${g.namespace}/${g.name}`));
  const boundVs = new Set([...indexes.vsByGateway.values()].flat().map((vs) => `${vs.namespace}/${vs.name}`));
  for (const resource of policies) {
    const compiled = compilePolicy(resource, clusters, problemsOf(resource, diagnostics));
    let placed = false;
    resource.spec.targetRefs.forEach((ref, i) => {
      const key = `${resource.namespace}/${ref.name}`;
      const unresolved = (why: string): void => {
        diagnostics.push({
          level: 'warning',
          code: 'SLUICE_REF_NOT_FOUND',
          subject: subjectOf(resource),
          path: `spec.targetRefs[${i}]`,
          message: `${why}; this targetRef limits nothing`,
        });
      };
      if (ref.kind === 'Gateway') {
        if (!ours.has(key)) {
          unresolved(
            indexes.allGateways.has(key)
              ? `Gateway ${key} does not select this gateway (--labels)`
              : `Gateway ${key} not found`,
          );
          return;
        }
        let entry = placement.gateways.get(key);
        if (entry === undefined) placement.gateways.set(key, (entry = { before: [], after: [] }));
        (resource.spec.phase === 'BeforeAuth' ? entry.before : entry.after).push(...compiled.rules);
      } else {
        if (!boundVs.has(key)) {
          unresolved(
            set.resources.some(
              (r) => r.kind === 'VirtualService' && r.namespace === resource.namespace && r.name === ref.name,
            )
              ? `VirtualService ${key} is not bound to a Gateway this gateway serves`
              : `VirtualService ${key} not found`,
          );
          return;
        }
        push(
          placement.routes,
          ref.sectionName === undefined ? key : `${key}#${ref.sectionName}`,
          compiled.rules,
        );
      }
      placed = true;
    });
    if (placed && compiled.rules.some((r) => r.storage === 'Global')) placement.global = true;
  }
  return placement;
}

function hostTest(servers: readonly ServerRef[]): (req: PolicyRequest) => boolean {
  const names = serverDnsNames(servers.flatMap((s) => s.hosts));
  if (names.includes('*')) return () => true;
  const exact = new Set(names.filter((n) => !n.startsWith('*')));
  const suffixes = names.filter((n) => n.startsWith('*')).map((n) => n.slice(1));
  return (r) => {
    if (exact.has(r.host)) return true;
    for (const s of suffixes) if (r.host.endsWith(s) && r.host.length > s.length) return true;
    return false;
  };
}

/** Rules of one Gateway restricted to its hosts (a plaintext table shared with other Gateways). */
function restrictTo(
  rules: readonly CompiledRateLimitRule[],
  test: (req: PolicyRequest) => boolean,
): CompiledRateLimitRule[] {
  return rules.map((r) => {
    const applies = r.applies;
    return { ...r, applies: applies === null ? test : (req) => test(req) && applies(req) };
  });
}

function gatewayKey(s: ServerRef): string {
  return `${s.gatewayNamespace}/${s.gatewayName}`;
}

function tableWithLimits(table: RouteTable, servers: readonly ServerRef[], placement: Placement): RouteTable {
  const before: CompiledRateLimitRule[] = [];
  const after: CompiledRateLimitRule[] = [];
  const gateways = [...new Set(servers.map(gatewayKey))];
  for (const g of gateways) {
    const entry = placement.gateways.get(g);
    if (entry === undefined) continue;
    const shared = gateways.length > 1;
    const test = shared ? hostTest(servers.filter((s) => gatewayKey(s) === g)) : null;
    before.push(...(test === null ? entry.before : restrictTo(entry.before, test)));
    after.push(...(test === null ? entry.after : restrictTo(entry.after, test)));
  }
  const routed = routesWithLimits(table, placement);
  if (before.length === 0 && after.length === 0) return routed;
  const filters: HttpFilter[] = [];
  if (before.length > 0) filters.push({ kind: 'rate-limit', rules: before, defer: false });
  filters.push(...(routed.filters ?? []));
  if (after.length > 0) filters.push({ kind: 'rate-limit', rules: after, defer: false });
  // Only route selection lies between the table's last filter and a route's first: rules there
  // can go to Redis with the route's in one call.
  const last = filters.at(-1)!;
  if (
    last.kind === 'rate-limit' &&
    last.rules.some((r) => r.storage === 'Global') &&
    someVhost(routed, (v) => v.routes.some((r) => r.filters?.[0]?.kind === 'rate-limit'))
  )
    filters[filters.length - 1] = { ...last, defer: true };
  return { ...routed, filters };
}

function someVhost(table: RouteTable, test: (v: VirtualHost) => boolean): boolean {
  for (const v of table.exact.values()) if (test(v)) return true;
  return table.wildcards.some((w) => test(w.vhost)) || (table.catchAll !== null && test(table.catchAll));
}

function routesWithLimits(table: RouteTable, placement: Placement): RouteTable {
  if (placement.routes.size === 0) return table;
  let changed = false;
  const vhost = (v: VirtualHost): VirtualHost => {
    let routes: Route[] | null = null;
    v.routes.forEach((route, i) => {
      const src = route.source;
      if (src === null) return;
      const key = `${src.vsNamespace}/${src.vsName}`;
      const rules = [
        ...(placement.routes.get(key) ?? []),
        ...(src.ruleName === null ? [] : (placement.routes.get(`${key}#${src.ruleName}`) ?? [])),
      ];
      if (rules.length === 0) return;
      routes ??= [...v.routes];
      routes[i] = {
        ...route,
        filters: [...(route.filters ?? []), { kind: 'rate-limit', rules, defer: false }],
      };
    });
    if (routes === null) return v;
    changed = true;
    return { ...v, routes };
  };
  const exact = new Map([...table.exact].map(([k, v]) => [k, vhost(v)]));
  const wildcards = table.wildcards.map((w) => ({ suffix: w.suffix, vhost: vhost(w.vhost) }));
  const catchAll = table.catchAll === null ? null : vhost(table.catchAll);
  return changed ? { ...table, exact, wildcards, catchAll } : table;
}

/**
 * The listeners with every RateLimitPolicy placed; the same map when none applies. Policies
 * whose targets this gateway does not serve are warnings; rules that cannot be enforced, errors.
 */
export function placeRateLimits(
  set: ResourceSet,
  indexes: Indexes,
  clusters: ClusterContext,
  listeners: ReadonlyMap<number, Listener>,
  diagnostics: Diagnostic[],
): { listeners: ReadonlyMap<number, Listener>; global: boolean } {
  if (!set.resources.some((r) => r.kind === 'RateLimitPolicy')) return { listeners, global: false };
  const placement = placePolicies(set, indexes, clusters, diagnostics);
  if (placement.gateways.size === 0 && placement.routes.size === 0) return { listeners, global: false };
  const out = new Map<number, Listener>();
  for (const [port, l] of listeners) {
    out.set(port, {
      ...l,
      httpTable: l.httpTable === null ? null : tableWithLimits(l.httpTable, l.servers, placement),
      tlsServers: l.tlsServers.map((s) =>
        s.tcpRoute !== undefined ? s : { ...s, table: tableWithLimits(s.table, [s.server], placement) },
      ),
    });
  }
  return { listeners: out, global: placement.global };
}

/**
 * MeshConfig `redis` as Global rate limits use it; a Global rule without it is an error (the
 * policy would otherwise limit nothing across replicas, silently).
 */
export function rateLimitRedisOf(
  set: ResourceSet,
  mesh: MeshConfigSpec | null,
  diagnostics: Diagnostic[],
): RateLimitRedisSettings | null {
  const redis = mesh?.redis;
  if (redis === undefined) {
    for (const r of set.resources)
      if (r.kind === 'RateLimitPolicy' && (r.spec as RateLimitPolicySpec).storage === 'Global')
        diagnostics.push({
          level: 'error',
          code: 'SLUICE_POLICY_UNENFORCEABLE',
          subject: subjectOf(r),
          path: 'spec.storage',
          message:
            'storage Global needs a MeshConfig with redis (url, sentinel or cluster); the rate limit cannot be enforced, so the change is refused',
        });
    return null;
  }
  const t = redis.timeout === undefined ? null : parseDuration(redis.timeout, { bareSeconds: false });
  const { keyPrefix: _prefix, timeout: _timeout, ...target } = redis;
  return {
    target,
    keyPrefix: redis.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX,
    timeoutMs: t !== null && t.ok && t.ms > 0 ? t.ms : DEFAULT_REDIS_TIMEOUT_MS,
  };
}
