/**
 * Host-name helpers only the analyzers need (pkg/config/analysis/analyzers/util), so findings agree
 * with `istioctl analyze`. Istio host semantics (matching, server host forms) live in ../hosts.ts.
 */

import { CLUSTER_DOMAIN, hostsMatch, isWildcard } from '../hosts.ts';

/**
 * util.ConvertHostToFQDN: a short name (`reviews`) becomes `reviews.<ns>.svc.cluster.local`;
 * wildcards and dotted names are kept. Unlike ../hosts.ts toFqdn (pilot's ResolveShortnameToFQDN)
 * it keeps every `*`-prefixed name and does not special-case IP addresses.
 */
export function toFqdn(namespace: string, host: string): string {
  if (isWildcard(host) || host.includes('.')) return host;
  return `${host}.${namespace}.svc.${CLUSTER_DOMAIN}`;
}

const FQDN_PATTERN = /^(.+)\.(.+)\.svc\.cluster\.local$/;

/** The `namespace/name` a destination host refers to: parsed from a Kubernetes FQDN, else the host in `namespace`. */
export function resourceNameFromHost(namespace: string, host: string): string {
  const m = FQDN_PATTERN.exec(host);
  if (m) return `${m[2]}/${m[1]}`;
  return `${namespace}/${host}`;
}

/** hostsMatch, except that a wildcard never overlaps an empty host. */
export function hostsOverlap(a: string, b: string): boolean {
  if (isWildcard(a) && b.length === 0) return false;
  return hostsMatch(a, b);
}

/**
 * A VirtualService `gateways` entry as `namespace/name`: `ns/name`, `./name`, the legacy
 * `name.ns.svc.cluster.local`, or a bare name in the VirtualService's namespace.
 */
export function gatewayRef(vsNamespace: string, ref: string): { namespace: string; name: string } {
  const slash = ref.indexOf('/');
  if (slash >= 0) {
    const ns = ref.slice(0, slash);
    return { namespace: ns === '.' ? vsNamespace : ns, name: ref.slice(slash + 1) };
  }
  const m = FQDN_PATTERN.exec(ref);
  if (m && m[1] !== undefined && m[2] !== undefined && !m[1].includes('.'))
    return { namespace: m[2], name: m[1] };
  return { namespace: vsNamespace, name: ref };
}

export const MESH_GATEWAY = 'mesh';
