/**
 * Host-name helpers with the semantics of Istio's analyzers (pkg/config/analysis/analyzers/util,
 * pkg/config/host/name.go), so findings agree with `istioctl analyze`.
 */

export const CLUSTER_DOMAIN = 'svc.cluster.local';

function isWildcard(host: string): boolean {
  return host.startsWith('*');
}

/** A short name (`reviews`) becomes `reviews.<ns>.svc.cluster.local`; wildcards and dotted names are kept. */
export function toFqdn(namespace: string, host: string): string {
  if (isWildcard(host) || host.includes('.')) return host;
  return `${host}.${namespace}.${CLUSTER_DOMAIN}`;
}

const FQDN_PATTERN = /^(.+)\.(.+)\.svc\.cluster\.local$/;

/** The `namespace/name` a destination host refers to: parsed from a Kubernetes FQDN, else the host in `namespace`. */
export function resourceNameFromHost(namespace: string, host: string): string {
  const m = FQDN_PATTERN.exec(host);
  if (m) return `${m[2]}/${m[1]}`;
  return `${namespace}/${host}`;
}

/** Whether two host names overlap, wildcards included (`*.a.com` overlaps `b.a.com` and `*.b.a.com`; `*` overlaps all). */
export function hostsOverlap(a: string, b: string): boolean {
  const aw = isWildcard(a);
  const bw = isWildcard(b);
  if (aw && b.length === 0) return false;
  if (aw && bw)
    return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
  if (aw) return b.endsWith(a.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/** A Gateway server host `[ns/]dnsName` split; `.` becomes the Gateway's namespace, a bare name means any namespace. */
export function parseServerHost(
  entry: string,
  gatewayNamespace: string,
): { namespace: string; host: string } {
  const slash = entry.indexOf('/');
  if (slash < 0) return { namespace: '*', host: entry };
  const ns = entry.slice(0, slash);
  return { namespace: ns === '.' ? gatewayNamespace : ns, host: entry.slice(slash + 1) };
}

/** The server hosts a VirtualService in `vsNamespace` may bind to. */
export function serverHostsFor(
  entries: readonly string[],
  gatewayNamespace: string,
  vsNamespace: string,
): string[] {
  const out: string[] = [];
  for (const e of entries) {
    const { namespace, host } = parseServerHost(e, gatewayNamespace);
    if (namespace === '*' || namespace === vsNamespace) out.push(host);
  }
  return out;
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
