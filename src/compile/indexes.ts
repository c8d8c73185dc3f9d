import type { EndpointSliceSpec, ServiceSpec } from '../model/kube.ts';
import type {
  DestinationRuleSpec,
  GatewaySpec,
  ServiceEntrySpec,
  VirtualServiceSpec,
} from '../model/networking.ts';
import type { DiagnosticSubject } from '../errors/diagnostic.ts';
import type { Kind, Resource, ResourceSet } from '../model/resource.ts';
import type { GatewayIdentity, MeshConfigSpec } from '../model/sluice.ts';
import { CLUSTER_DOMAIN, toFqdn } from './hosts.ts';

export type GatewayResource = Resource<'Gateway', GatewaySpec>;
export type VirtualServiceResource = Resource<'VirtualService', VirtualServiceSpec>;
export type DestinationRuleResource = Resource<'DestinationRule', DestinationRuleSpec>;
export type ServiceEntryResource = Resource<'ServiceEntry', ServiceEntrySpec>;
export type ServiceResource = Resource<'Service', ServiceSpec>;
export type EndpointSliceResource = Resource<'EndpointSlice', EndpointSliceSpec>;

/** Everything compile needs, looked up once per compile. */
export interface Indexes {
  readonly identity: GatewayIdentity;
  /** Gateways selecting this workload, in merge order (GW-1, GW-2). */
  readonly gateways: readonly GatewayResource[];
  /** Every Gateway by `ns/name`, selected or not (to tell "missing" from "not ours"). */
  readonly allGateways: ReadonlyMap<string, GatewayResource>;
  /** Visible VirtualServices by resolved gateway `ns/name`, in VS-5 order. */
  readonly vsByGateway: ReadonlyMap<string, readonly VirtualServiceResource[]>;
  /** Visible VirtualServices in VS-5 order. */
  readonly virtualServices: readonly VirtualServiceResource[];
  readonly destinationRules: readonly DestinationRuleResource[];
  /** Visible ServiceEntries by host (exact and wildcard host strings), first-defined first. */
  readonly serviceEntriesByHost: ReadonlyMap<string, readonly ServiceEntryResource[]>;
  /** Services by `name.ns.svc.cluster.local`. */
  readonly servicesByHost: ReadonlyMap<string, ServiceResource>;
  /** EndpointSlices by their service's FQDN. */
  readonly slicesByHost: ReadonlyMap<string, readonly EndpointSliceResource[]>;
  /**
   * Labels of each Pod the set holds, by `namespace/name`; null when it holds none (files without
   * Pods), so subsets cannot narrow a Service's endpoints.
   */
  readonly podLabels: ReadonlyMap<string, Readonly<Record<string, string>>> | null;
  readonly meshConfig: MeshConfigSpec | null;
}

export function subjectOf(r: Resource): DiagnosticSubject {
  return { origin: r.origin, kind: r.kind, namespace: r.namespace, name: r.name };
}

function ofKind<K extends Kind, S>(set: ResourceSet, kind: K): Resource<K, S>[] {
  return set.resources.filter((r) => r.kind === kind) as Resource<K, S>[];
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * creationTimestamp, then name, then namespace (GW-2, VS-5). A missing timestamp is Go's zero
 * time in Istio, so it sorts first.
 */
export function compareByAge(a: Resource, b: Resource): number {
  const ta = a.creationTimestamp ?? '';
  const tb = b.creationTimestamp ?? '';
  if (ta !== tb) {
    if (ta === '') return -1;
    if (tb === '') return 1;
    const da = Date.parse(ta);
    const db = Date.parse(tb);
    if (!Number.isNaN(da) && !Number.isNaN(db) && da !== db) return da - db;
    return cmp(ta, tb);
  }
  return cmp(a.name, b.name) || cmp(a.namespace, b.namespace);
}

/** GW-1: every selector label present on this workload; an empty selector selects every gateway. */
export function selectorMatches(
  selector: Readonly<Record<string, string>> | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector)) {
    if (labels[k] !== v) return false;
  }
  return true;
}

/**
 * The name a VirtualService binds rules to sluice's egress proxy alone (a sluice addition, not an
 * Istio Gateway): proxied HTTP requests take rules bound to `mesh` and to this name, so rules
 * meant only for the proxy need not reach every sidecar of a real mesh too.
 */
export const EGRESS_PROXY_GATEWAY = 'sluice-egress-proxy';

/** Whether a rule bound to `key` applies where routes are built for `gatewayKey`. */
export function boundTo(key: string, gatewayKey: string): boolean {
  return key === gatewayKey || (gatewayKey === 'mesh' && key === EGRESS_PROXY_GATEWAY);
}

/**
 * VS-1: a gateway reference as written in a VirtualService → `ns/name`, `mesh`, or the egress
 * proxy's reserved name.
 * `name` → `<vs-ns>/name`; `ns/name`; `./name`; legacy `name.ns.svc.cluster.local` (and `name.ns`).
 */
export function resolveGatewayRef(ref: string, vsNamespace: string): { key: string; legacy: boolean } {
  if (ref === 'mesh' || ref === EGRESS_PROXY_GATEWAY) return { key: ref, legacy: false };
  const slash = ref.indexOf('/');
  if (slash >= 0) {
    const ns = ref.slice(0, slash);
    return { key: `${ns === '.' ? vsNamespace : ns}/${ref.slice(slash + 1)}`, legacy: false };
  }
  const parts = ref.split('.');
  if (parts.length >= 3) {
    // Istio resolveGatewayName: legacy `name.ns.svc.cluster.local` → ns/name; `name.ns` stays a short name.
    return { key: `${parts[1]}/${parts[0]}`, legacy: true };
  }
  return { key: `${vsNamespace}/${ref}`, legacy: false };
}

/** VS-2 / SE-1 / DR-1 exportTo: visible to the gateway workload's namespace? */
export function exportedTo(
  exportTo: readonly string[] | undefined,
  ownNamespace: string,
  viewer: string,
): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  for (const e of exportTo) {
    if (e === '*') return true;
    if (e === '.' && ownNamespace === viewer) return true;
    if (e === viewer) return true;
  }
  return false;
}

/** VS-5 group: 0 private to the gateway's namespace, 1 exported to it by name, 2 public. */
function vsGroup(vs: VirtualServiceResource, viewer: string): number {
  const e = vs.spec.exportTo;
  if (!e || e.length === 0 || e.includes('*')) return 2;
  if (e.includes('.') && vs.namespace === viewer) return 0;
  return 1;
}

export function buildIndexes(set: ResourceSet, identity: GatewayIdentity): Indexes {
  const allGws = ofKind<'Gateway', GatewaySpec>(set, 'Gateway');
  const allGateways = new Map<string, GatewayResource>();
  for (const g of allGws)
    if (!allGateways.has(`${g.namespace}/${g.name}`)) allGateways.set(`${g.namespace}/${g.name}`, g);
  const gateways = [...allGateways.values()]
    .filter((g) => selectorMatches(g.spec.selector, identity.labels))
    .sort(compareByAge);

  const viewer = identity.namespace;
  const virtualServices = ofKind<'VirtualService', VirtualServiceSpec>(set, 'VirtualService')
    .filter((vs) => exportedTo(vs.spec.exportTo, vs.namespace, viewer))
    .sort((a, b) => vsGroup(a, viewer) - vsGroup(b, viewer) || compareByAge(a, b));

  const vsByGateway = new Map<string, VirtualServiceResource[]>();
  for (const vs of virtualServices) {
    const refs = vs.spec.gateways ?? ['mesh'];
    const seen = new Set<string>();
    for (const ref of refs) {
      const { key } = resolveGatewayRef(ref, vs.namespace);
      if (key === 'mesh' || key === EGRESS_PROXY_GATEWAY || seen.has(key)) continue;
      seen.add(key);
      let list = vsByGateway.get(key);
      if (!list) vsByGateway.set(key, (list = []));
      list.push(vs);
    }
  }

  const destinationRules = ofKind<'DestinationRule', DestinationRuleSpec>(set, 'DestinationRule').filter(
    (dr) => exportedTo(dr.spec.exportTo, dr.namespace, viewer),
  );

  const serviceEntriesByHost = new Map<string, ServiceEntryResource[]>();
  for (const se of ofKind<'ServiceEntry', ServiceEntrySpec>(set, 'ServiceEntry')) {
    if (!exportedTo(se.spec.exportTo, se.namespace, viewer)) continue;
    for (const h of se.spec.hosts) {
      const host = toFqdn(h, se.namespace);
      let list = serviceEntriesByHost.get(host);
      if (!list) serviceEntriesByHost.set(host, (list = []));
      list.push(se);
    }
  }
  for (const list of serviceEntriesByHost.values()) list.sort(compareByAge);

  const servicesByHost = new Map<string, ServiceResource>();
  for (const svc of ofKind<'Service', ServiceSpec>(set, 'Service')) {
    const host = `${svc.name}.${svc.namespace}.svc.${CLUSTER_DOMAIN}`;
    if (!servicesByHost.has(host)) servicesByHost.set(host, svc);
  }
  const slicesByHost = new Map<string, EndpointSliceResource[]>();
  for (const slice of ofKind<'EndpointSlice', EndpointSliceSpec>(set, 'EndpointSlice')) {
    const host = `${slice.spec.serviceName}.${slice.namespace}.svc.${CLUSTER_DOMAIN}`;
    let list = slicesByHost.get(host);
    if (!list) slicesByHost.set(host, (list = []));
    list.push(slice);
  }

  const pods = set.resources.filter((r) => r.kind === 'Pod');
  const podLabels =
    pods.length === 0 ? null : new Map(pods.map((p) => [`${p.namespace}/${p.name}`, p.labels]));

  const mesh = ofKind<'MeshConfig', MeshConfigSpec>(set, 'MeshConfig');
  return {
    identity,
    gateways,
    allGateways,
    vsByGateway,
    virtualServices,
    destinationRules,
    serviceEntriesByHost,
    servicesByHost,
    slicesByHost,
    podLabels,
    meshConfig: mergeMeshConfigs(mesh.map((m) => m.spec)),
  };
}

/** Several MeshConfigs merge, first wins per field (model/sluice.ts). */
function mergeMeshConfigs(specs: readonly MeshConfigSpec[]): MeshConfigSpec | null {
  if (specs.length === 0) return null;
  const out: Record<string, unknown> = {};
  for (const s of specs) {
    for (const [k, v] of Object.entries(s)) if (!(k in out) && v !== undefined) out[k] = v;
  }
  return out as MeshConfigSpec;
}
