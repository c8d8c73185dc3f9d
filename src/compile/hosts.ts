/**
 * Istio host-name semantics in one place (istio/istio pkg/config/host/{name,names}.go).
 * Hosts here are lowercased DNS names, `*`, or names with a leftmost `*` (`*.example.com`,
 * `*foo.example.com`); a wildcard's `*` stands for one or more characters (GW-8).
 */

export const CLUSTER_DOMAIN = 'cluster.local';

export function isWildcard(host: string): boolean {
  return host.length > 0 && host.charCodeAt(0) === 42; // '*'
}

/** Name.Matches: true when either name covers the other (GW-8). */
export function hostsMatch(a: string, b: string): boolean {
  const aw = isWildcard(a);
  const bw = isWildcard(b);
  if (aw) {
    if (bw) return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
    return b.endsWith(a.slice(1));
  }
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/** Name.SubsetOf: every name `a` covers is also covered by `b`. */
export function hostSubsetOf(a: string, b: string): boolean {
  const aw = isWildcard(a);
  const bw = isWildcard(b);
  if (aw) {
    if (!bw) return false;
    if (a.length < b.length) return false;
    return a.slice(1).endsWith(b.slice(1));
  }
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/**
 * Names.Intersection: for each pair that overlaps, the more specific of the two (GW-9), in the
 * order of `a`, without duplicates. Server `*.example.com` ∩ VS `a.example.com` = `a.example.com`.
 */
export function intersectHosts(a: readonly string[], b: readonly string[]): string[] {
  const out: string[] = [];
  for (const x of a) {
    for (const y of b) {
      let pick: string | null = null;
      if (hostSubsetOf(x, y)) pick = x;
      else if (hostSubsetOf(y, x)) pick = y;
      if (pick !== null && !out.includes(pick)) out.push(pick);
    }
  }
  return out;
}

/** A Gateway server host `[ns/]dnsName` split; `./x` resolves to the Gateway's namespace (GW-7). */
export function splitServerHost(
  entry: string,
  gatewayNamespace: string,
): { namespace: string; host: string } {
  const slash = entry.indexOf('/');
  if (slash < 0) return { namespace: '*', host: entry };
  const ns = entry.slice(0, slash);
  return { namespace: ns === '.' ? gatewayNamespace : ns, host: entry.slice(slash + 1) };
}

/** The server's dnsNames without namespaces (SNI names, redirect hosts). */
export function serverDnsNames(hosts: readonly string[]): string[] {
  const out: string[] = [];
  for (const h of hosts) {
    const slash = h.indexOf('/');
    const name = slash < 0 ? h : h.slice(slash + 1);
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/**
 * NamesForNamespace: the server hosts a VirtualService in `vsNamespace` may bind to (GW-7):
 * bare and `*\/` entries always, `ns/` entries only for that namespace, `./` for the Gateway's.
 */
export function serverHostsForNamespace(
  hosts: readonly string[],
  gatewayNamespace: string,
  vsNamespace: string,
): string[] {
  const out: string[] = [];
  for (const entry of hosts) {
    const { namespace, host } = splitServerHost(entry, gatewayNamespace);
    if (namespace !== '*' && namespace !== vsNamespace) continue;
    out.push(host);
  }
  return out;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

function isIpAddress(s: string): boolean {
  return IPV4.test(s) || s.includes(':');
}

/**
 * ResolveShortnameToFQDN (VS-3, VS-19): a name without a dot becomes `<name>.<ns>.svc.cluster.local`;
 * `*`, IP addresses and dotted names are kept.
 */
export function toFqdn(host: string, namespace: string): string {
  const h = host.toLowerCase();
  if (h === '' || h === '*' || isIpAddress(h) || h.includes('.')) return h;
  return `${h}.${namespace}.svc.${CLUSTER_DOMAIN}`;
}

/** `name.ns.svc.cluster.local` → ns, else null. */
export function namespaceOfServiceHost(host: string): string | null {
  const suffix = `.svc.${CLUSTER_DOMAIN}`;
  if (!host.endsWith(suffix)) return null;
  const parts = host.slice(0, -suffix.length).split('.');
  return parts.length === 2 ? (parts[1] ?? null) : null;
}
