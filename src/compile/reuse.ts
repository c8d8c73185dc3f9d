/**
 * What one compile can take from the last: the routes built for each VirtualService, by its
 * content (not where it was read from), gateway and port. A VirtualService's routes depend on it
 * and on the rest of the configuration (registry, DestinationRules, gateways, policies, this
 * gateway's identity), so they are reused only while everything but VirtualServices is unchanged
 * (the environment key below). A change to one VirtualService then rebuilds one VirtualService.
 * Reuse never changes the result: the snapshot is the one a fresh compile gives (a test holds
 * them equal).
 */
import type { GatewayIdentity } from '../model/sluice.ts';
import type { Cluster, Route } from '../snapshot/types.ts';
import { createHash } from 'node:crypto';
import type { Resource, ResourceSet } from '../model/resource.ts';
import { canonicalJson, contentHash } from '../model/content-hash.ts';

/** The routes of one VirtualService for one gateway and port, with what they reference. */
export interface BuiltRoutes {
  readonly routes: readonly Route[];
  /** Every cluster building them resolved. */
  readonly clusters: readonly Cluster[];
}

/** Carried from compile to compile by the caller (one per serving process). */
export interface CompileCache {
  env: string | null;
  routes: Map<string, BuiltRoutes>;
}

export function createCompileCache(): CompileCache {
  return { env: null, routes: new Map() };
}

/** One compile's view of the cache: what it may take, and what it built or took (kept after). */
export interface RouteReuse {
  readonly env: string;
  readonly previous: ReadonlyMap<string, BuiltRoutes>;
  readonly next: Map<string, BuiltRoutes>;
}

/** Everything a VirtualService's routes depend on besides the VirtualService itself. */
function environmentOf(set: ResourceSet, identity: GatewayIdentity): string {
  // The identity alone: options may carry more (the clock), which routes do not depend on.
  const { namespace, labels, rootNamespace } = identity;
  const parts = [canonicalJson({ namespace, labels, rootNamespace })];
  for (const r of set.resources) if (r.kind !== 'VirtualService') parts.push(contentHash(r));
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}

export function beginReuse(cache: CompileCache, set: ResourceSet, identity: GatewayIdentity): RouteReuse {
  const env = environmentOf(set, identity);
  return { env, previous: env === cache.env ? cache.routes : new Map(), next: new Map() };
}

/** After a compile that succeeded: the next one may take what this one used. */
export function endReuse(cache: CompileCache, reuse: RouteReuse): void {
  cache.env = reuse.env;
  cache.routes = reuse.next;
}

/** The key of a VirtualService's routes for one gateway and port. */
export function routesKey(vs: Resource, gatewayKey: string, port: number): string {
  return `${contentHash(vs)}|${gatewayKey}|${port}`;
}
