import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { AnalysisContext } from './context.ts';
import { finding, nameOf } from './context.ts';
import { MESH_GATEWAY, toFqdn } from './hosts.ts';

/**
 * IST0140 IngressRouteRulesNotAffected (Istio's DestinationHostAnalyzer.analyzeSubset): a
 * gateway-bound VirtualService routes to a host without a subset while a mesh VirtualService for
 * that host splits it into subsets. The gateway sends straight to the host, so the mesh
 * VirtualService's subset routing does not apply to ingress traffic.
 */
export function analyzeVirtualServiceIngressSubsets(ctx: AnalysisContext): Diagnostic[] {
  // host (FQDN) → VirtualServices that route that same host of theirs to a subset
  const subsetRouted = new Map<string, (typeof ctx.virtualServices)[number][]>();
  for (const vs of ctx.virtualServices) {
    const own = new Set(vs.spec.hosts.map((h) => toFqdn(vs.namespace, h)));
    for (const rule of vs.spec.http ?? []) {
      for (const rd of rule.route ?? []) {
        const d = rd.destination;
        if (!d?.subset || !d.host) continue;
        const fqdn = toFqdn(vs.namespace, d.host);
        if (!own.has(fqdn)) continue;
        const list = subsetRouted.get(fqdn) ?? [];
        if (!list.includes(vs)) list.push(vs);
        subsetRouted.set(fqdn, list);
      }
    }
  }
  const out: Diagnostic[] = [];
  for (const vs of ctx.virtualServices) {
    const gateways = vs.spec.gateways ?? [];
    if (gateways.length === 0 || gateways.every((g) => g === MESH_GATEWAY)) continue;
    (vs.spec.http ?? []).forEach((rule, i) => {
      (rule.route ?? []).forEach((rd, j) => {
        const d = rd.destination;
        if (!d?.host || d.subset) return;
        for (const other of subsetRouted.get(toFqdn(vs.namespace, d.host)) ?? []) {
          out.push(
            finding({
              level: 'warning',
              code: 'SLUICE_ANALYSIS',
              istioCode: 'IST0140',
              resource: vs,
              path: `spec.http[${i}].route[${j}].destination.host`,
              message: `routes gateway traffic to "${d.host}" without a subset, so the subset routing of ${nameOf(other)} for that host has no effect on these requests`,
              related: other,
            }),
          );
        }
      });
    });
  }
  return out;
}
