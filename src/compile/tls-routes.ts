/**
 * GW-5 PASSTHROUGH: VirtualService `tls` routes bound to a port's passthrough servers → an ordered
 * SNI table (first match wins; duplicate sniHosts keep the first, GW-19). The data plane peeks
 * the ClientHello's SNI and pipes the still-encrypted connection to the chosen cluster.
 */
import type { Diagnostic } from '../errors/diagnostic.ts';
import type { TcpDestination, TlsRoute } from '../snapshot/types.ts';
import { resolveDestination, type ClusterContext } from './clusters.ts';
import type { PortPlan, ServerEntry } from './gateways.ts';
import { intersectHosts, serverHostsForNamespace, toFqdn } from './hosts.ts';
import { resolveGatewayRef, selectorMatches, subjectOf, type Indexes } from './indexes.ts';

interface L4MatchFields {
  readonly port?: number;
  readonly gateways?: readonly string[];
  readonly sourceLabels?: Readonly<Record<string, string>>;
  readonly sourceNamespace?: string;
  readonly destinationSubnets?: readonly string[];
}

/**
 * The match fields of `tls`/`tcp` rules decided at compile time for this gateway and port, as for
 * HTTP (VS-6): `gateways` when set is the only source check, else `sourceLabels` and
 * `sourceNamespace` against this gateway's own identity. `destinationSubnets` (the address the
 * client dialled) is not evaluated: such a match never applies (model/unsupported.ts warns at
 * load), rather than catching connections meant for another address.
 */
function l4MatchApplies(
  idx: Indexes,
  vs: VirtualServiceResourceLike,
  m: L4MatchFields,
  gatewayKey: string,
  port: number,
): boolean {
  if (m.port !== undefined && m.port !== 0 && m.port !== port) return false;
  if (m.destinationSubnets !== undefined && m.destinationSubnets.length > 0) return false;
  if (m.gateways && m.gateways.length > 0)
    return m.gateways.some((g) => resolveGatewayRef(g, vs.namespace).key === gatewayKey);
  if (m.sourceLabels && !selectorMatches(m.sourceLabels, idx.identity.labels)) return false;
  return (
    m.sourceNamespace === undefined ||
    m.sourceNamespace === '' ||
    m.sourceNamespace === idx.identity.namespace
  );
}

type VirtualServiceResourceLike = Parameters<typeof subjectOf>[0] & { readonly namespace: string };

export function buildTlsRoutes(
  idx: Indexes,
  clusters: ClusterContext,
  plan: PortPlan,
  diagnostics: Diagnostic[],
): TlsRoute[] {
  const out: TlsRoute[] = [];
  const claimed = new Set<string>();
  for (const entry of plan.servers) {
    if (entry.serving !== 'TLS') continue;
    const mode = entry.server.tls?.mode;
    if (mode !== undefined && mode !== 'PASSTHROUGH') continue;
    const gw = entry.gateway;
    const gatewayKey = `${gw.namespace}/${gw.name}`;
    const port = entry.server.port.number;
    for (const vs of idx.vsByGateway.get(gatewayKey) ?? []) {
      const serverHosts = serverHostsForNamespace(entry.server.hosts, gw.namespace, vs.namespace);
      const vsHosts = vs.spec.hosts.map((h) => toFqdn(h, vs.namespace));
      if (intersectHosts(serverHosts, vsHosts).length === 0) continue;
      (vs.spec.tls ?? []).forEach((rule, i) => {
        const sni: string[] = [];
        for (const m of rule.match) {
          if (!l4MatchApplies(idx, vs, m, gatewayKey, port)) continue;
          for (const h of intersectHosts(
            serverHosts,
            m.sniHosts.map((s) => s.toLowerCase()),
          )) {
            if (claimed.has(h)) {
              diagnostics.push({
                level: 'warning',
                code: 'SLUICE_HOST_CONFLICT',
                subject: subjectOf(vs),
                path: `spec.tls[${i}].match`,
                message: `sniHost ${h} on port ${port} is already routed by an earlier tls rule; this one is ignored (GW-19)`,
              });
              continue;
            }
            claimed.add(h);
            sni.push(h);
          }
        }
        if (sni.length === 0) return;
        const destinations: TcpDestination[] = (rule.route ?? []).map((rd, j) => {
          const r = resolveDestination(
            clusters,
            rd.destination,
            vs.namespace,
            port,
            subjectOf(vs),
            `spec.tls[${i}].route[${j}].destination`,
          );
          return {
            clusterName: r.clusterName,
            cluster: r.cluster,
            weight: rd.weight ?? (rule.route!.length === 1 ? 100 : 0),
          };
        });
        const totalWeight = destinations.reduce((a, d) => a + d.weight, 0);
        out.push({ name: `${vs.namespace}.${vs.name}.tls.${i}`, sniHosts: sni, destinations, totalWeight });
      });
    }
  }
  return out;
}

/**
 * GW-5 TLS + SIMPLE/MUTUAL: after termination the plaintext stream goes where the first
 * VirtualService `tcp` rule bound to this server (port and gateway matching) sends it.
 */
export function buildTcpRoute(idx: Indexes, clusters: ClusterContext, entry: ServerEntry): TlsRoute | null {
  const gw = entry.gateway;
  const gatewayKey = `${gw.namespace}/${gw.name}`;
  const port = entry.server.port.number;
  for (const vs of idx.vsByGateway.get(gatewayKey) ?? []) {
    const serverHosts = serverHostsForNamespace(entry.server.hosts, gw.namespace, vs.namespace);
    const vsHosts = vs.spec.hosts.map((h) => toFqdn(h, vs.namespace));
    if (intersectHosts(serverHosts, vsHosts).length === 0) continue;
    const rules = vs.spec.tcp ?? [];
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      const matches =
        rule.match === undefined ||
        rule.match.length === 0 ||
        rule.match.some((m) => l4MatchApplies(idx, vs, m, gatewayKey, port));
      if (!matches || !rule.route || rule.route.length === 0) continue;
      const destinations: TcpDestination[] = rule.route.map((rd, j) => {
        const r = resolveDestination(
          clusters,
          rd.destination,
          vs.namespace,
          port,
          subjectOf(vs),
          `spec.tcp[${i}].route[${j}].destination`,
        );
        return {
          clusterName: r.clusterName,
          cluster: r.cluster,
          weight: rd.weight ?? (rule.route!.length === 1 ? 100 : 0),
        };
      });
      return {
        name: `${vs.namespace}.${vs.name}.tcp.${i}`,
        sniHosts: [],
        destinations,
        totalWeight: destinations.reduce((a, d) => a + d.weight, 0),
      };
    }
  }
  return null;
}
