/**
 * What the Kubernetes provider watches, and which version of each kind: a CRD object is visible
 * through every version its CRD serves, so watching two would see it twice. Discovery picks the
 * newest version the API server serves that sluice reads; a kind the server does not serve (its
 * CRD is not installed) is skipped with a warning.
 */
import { KINDS } from '../../config/kinds/registry.ts';
import type { KubeClient } from './client.ts';

export interface WatchedKind {
  readonly kind: string;
  /** '' for the core group. */
  readonly group: string;
  readonly plural: string;
  /** Versions sluice reads, newest first. */
  readonly versions: readonly string[];
  readonly namespaced: boolean;
}

/** Version strings sort newest first: v1 > v1beta2 > v1beta1 > v1alpha3 (Kubernetes' order). */
function versionRank(v: string): [number, number, number] {
  const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
  if (m === null) return [-1, 0, 0];
  const stage = m[2] === undefined ? 2 : m[2] === 'beta' ? 1 : 0;
  return [Number(m[1]), stage, Number(m[3] ?? 0)];
}

export function newestFirst(versions: readonly string[]): string[] {
  return [...versions].sort((a, b) => {
    const x = versionRank(a);
    const y = versionRank(b);
    return y[1] - x[1] || y[0] - x[0] || y[2] - x[2];
  });
}

const PLURALS: Readonly<Record<string, string>> = {
  Gateway: 'gateways',
  VirtualService: 'virtualservices',
  DestinationRule: 'destinationrules',
  ServiceEntry: 'serviceentries',
  RequestAuthentication: 'requestauthentications',
  AuthorizationPolicy: 'authorizationpolicies',
  Service: 'services',
  EndpointSlice: 'endpointslices',
  Ingress: 'ingresses',
  IngressClass: 'ingressclasses',
  MeshConfig: 'meshconfigs',
  RateLimitPolicy: 'ratelimitpolicies',
  Secret: 'secrets',
  Pod: 'pods',
};

function watched(kind: string): WatchedKind {
  const def = KINDS.find((d) => d.kind === kind);
  const plural = PLURALS[kind];
  if (def === undefined || plural === undefined) throw new Error(`no watch defined for ${kind}`);
  const group = def.apiVersions[0]!.includes('/') ? def.apiVersions[0]!.split('/')[0]! : '';
  const versions = newestFirst(def.apiVersions.map((v) => (v.includes('/') ? v.split('/')[1]! : v)));
  return { kind, group, plural, versions, namespaced: def.namespaced };
}

/** Every kind watched whole (in the watched namespaces). Secrets are watched by name only. */
export const CONFIG_KINDS: readonly WatchedKind[] = [
  'Gateway',
  'VirtualService',
  'DestinationRule',
  'ServiceEntry',
  'RequestAuthentication',
  'AuthorizationPolicy',
  'MeshConfig',
  'RateLimitPolicy',
  'Service',
  'EndpointSlice',
  'Ingress',
  'IngressClass',
].map(watched);

export const SECRET_KIND: WatchedKind = watched('Secret');

/** Services: watched whole among CONFIG_KINDS, and by name for --publish-service. */
export const SERVICE_KIND: WatchedKind = CONFIG_KINDS.find((k) => k.kind === 'Service')!;

/** Pods, for the labels DestinationRule subsets select: watched only while a subset needs them. */
export const POD_KIND: WatchedKind = watched('Pod');

/** Istio's mesh settings: ConfigMap `istio` in the root namespace, key `mesh`. */
export const CONFIGMAP_KIND: WatchedKind = {
  kind: 'ConfigMap',
  group: '',
  plural: 'configmaps',
  versions: ['v1'],
  namespaced: true,
};

export const apiVersionOf = (k: WatchedKind, version: string): string =>
  k.group === '' ? version : `${k.group}/${version}`;

/** The collection's path, in one namespace or all. */
export function collectionPath(k: WatchedKind, version: string, namespace: string | null): string {
  const base = k.group === '' ? `/api/${version}` : `/apis/${k.group}/${version}`;
  return namespace === null || !k.namespaced
    ? `${base}/${k.plural}`
    : `${base}/namespaces/${encodeURIComponent(namespace)}/${k.plural}`;
}

interface GroupList {
  readonly groups?: readonly {
    readonly name: string;
    readonly versions?: readonly { readonly version: string }[];
  }[];
}

interface ResourceList {
  readonly resources?: readonly { readonly name: string; readonly kind: string }[];
}

/** What discovery found for one kind: the version to watch, or why it is skipped. */
export type Served = { readonly version: string } | { readonly skipped: string };

/**
 * The version to watch for each kind: the newest one sluice reads among the versions the
 * server offers for the kind's group and whose resource list holds the kind. Throws when the
 * server cannot be asked (the caller retries); a kind it does not serve is `skipped`.
 */
export async function discoverVersions(
  client: KubeClient,
  kinds: readonly WatchedKind[],
): Promise<Map<WatchedKind, Served>> {
  const groups = await client.request<GroupList>('GET', '/apis');
  const offered = new Map<string, Set<string>>([['', new Set(['v1'])]]);
  for (const g of groups.groups ?? []) offered.set(g.name, new Set((g.versions ?? []).map((v) => v.version)));
  const lists = new Map<string, Promise<ResourceList | null>>();
  const resources = (k: WatchedKind, version: string): Promise<ResourceList | null> => {
    const path = k.group === '' ? `/api/${version}` : `/apis/${k.group}/${version}`;
    let p = lists.get(path);
    if (p === undefined) {
      p = client.request<ResourceList>('GET', path).catch((err: unknown) => {
        if ((err as { statusCode?: number }).statusCode === 404) return null;
        throw err;
      });
      lists.set(path, p);
    }
    return p;
  };
  const out = new Map<WatchedKind, Served>();
  for (const k of kinds) {
    const served = offered.get(k.group);
    let found: string | null = null;
    for (const v of k.versions) {
      if (served === undefined || !served.has(v)) continue;
      const list = await resources(k, v);
      if (list?.resources?.some((r) => r.name === k.plural && r.kind === k.kind)) {
        found = v;
        break;
      }
    }
    out.set(
      k,
      found !== null
        ? { version: found }
        : {
            skipped:
              served === undefined
                ? `the API server does not serve ${k.group} (is its CRD installed?)`
                : `the API server serves ${k.group} ${[...served].join(', ')}, none of which has ${k.plural} in a version sluice reads (${k.versions.join(', ')})`,
          },
    );
  }
  return out;
}
