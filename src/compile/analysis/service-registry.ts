import type { Resource } from '../../model/resource.ts';
import type { AnalysisContext } from './context.ts';
import { toFqdn } from './hosts.ts';

/** A host known to the mesh, with the ports it declares and the resource that declares it. */
export interface KnownHost {
  readonly host: string;
  readonly ports: readonly { readonly number: number; readonly name?: string; readonly protocol?: string }[];
  readonly source: Resource;
}

/**
 * Hosts of Services and ServiceEntries keyed `scope/fqdn`, scope being a namespace the host is
 * visible from or `*` (Istio's InitServiceEntryHostMap): ServiceEntry `exportTo`, Service
 * `networking.istio.io/exportTo` annotation.
 */
export interface ServiceRegistry {
  readonly byScopedHost: ReadonlyMap<string, KnownHost>;
  readonly wildcards: readonly { readonly scope: string; readonly known: KnownHost }[];
}

const EXPORT_TO_ANNOTATION = 'networking.istio.io/exportTo';

function scoped(scope: string, fqdn: string): string {
  return `${scope}/${fqdn}`;
}

export function buildServiceRegistry(ctx: AnalysisContext): ServiceRegistry {
  const byScopedHost = new Map<string, KnownHost>();
  const wildcards: { scope: string; known: KnownHost }[] = [];
  const add = (scope: string, fqdn: string, known: KnownHost): void => {
    byScopedHost.set(scoped(scope, fqdn), known);
    if (fqdn.startsWith('*')) wildcards.push({ scope, known });
  };

  for (const se of ctx.serviceEntries) {
    const exportTo = se.spec.exportTo ?? [];
    const scopes =
      exportTo.length === 0 || exportTo.includes('*')
        ? ['*']
        : exportTo.map((e) => (e === '.' ? se.namespace : e));
    for (const h of se.spec.hosts) {
      const fqdn = toFqdn(se.namespace, h);
      const known: KnownHost = { host: fqdn, ports: se.spec.ports ?? [], source: se };
      for (const scope of scopes) add(scope, fqdn, known);
    }
  }

  for (const svc of ctx.services) {
    const fqdn = toFqdn(svc.namespace, svc.name);
    const known: KnownHost = {
      host: fqdn,
      ports: svc.spec.ports.map((p) => ({
        number: p.port,
        ...(p.name === undefined ? {} : { name: p.name }),
        ...(p.protocol === undefined ? {} : { protocol: p.protocol }),
      })),
      source: svc,
    };
    const anno = svc.annotations[EXPORT_TO_ANNOTATION];
    const scopes =
      anno === undefined || anno.trim() === ''
        ? ['*']
        : anno
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s !== '')
            .map((s) => (s === '.' ? svc.namespace : s));
    for (const scope of scopes) add(scope, fqdn, known);
  }
  return { byScopedHost, wildcards };
}

/**
 * The Service or ServiceEntry a destination `host` written in `sourceNamespace` resolves to, or
 * undefined (Istio's GetDestinationHost: exported to all, then the namespaces the referring
 * resource's own `exportTo` names (its namespace when unset), then wildcard ServiceEntry hosts).
 */
export function lookupHost(
  registry: ServiceRegistry,
  sourceNamespace: string,
  exportTo: readonly string[] | undefined,
  host: string,
): KnownHost | undefined {
  const fqdn = toFqdn(sourceNamespace, host);
  const all = registry.byScopedHost.get(scoped('*', fqdn));
  if (all) return all;
  const scopes =
    exportTo === undefined || exportTo.length === 0
      ? [sourceNamespace]
      : exportTo.map((e) => (e === '.' ? sourceNamespace : e));
  for (const scope of scopes) {
    const hit = registry.byScopedHost.get(scoped(scope, fqdn));
    if (hit) return hit;
  }
  const bare = host.startsWith('*') ? host.slice(1) : host;
  for (const { scope, known } of registry.wildcards) {
    if (scope !== '*' && scope !== sourceNamespace) continue;
    if (bare.endsWith(known.host.slice(1))) return known;
  }
  return undefined;
}
