import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { AnalysisContext } from './context.ts';
import { refNotFound } from './context.ts';
import { resourceNameFromHost, toFqdn } from './hosts.ts';
import { mirrorDestinations, routeDestinations } from './virtualservice-destinations.ts';

/**
 * IST0101 for a destination `subset` that no DestinationRule for that host defines (Istio's
 * virtualservice.DestinationRuleAnalyzer). A warning: the DestinationRule may live in another file.
 */
export function analyzeVirtualServiceDestinationSubsets(ctx: AnalysisContext): Diagnostic[] {
  const known = new Set<string>();
  const hostsWithRules = new Set<string>();
  for (const dr of ctx.destinationRules) {
    const name = resourceNameFromHost(dr.namespace, toFqdn(dr.namespace, dr.spec.host));
    hostsWithRules.add(name);
    for (const s of dr.spec.subsets ?? []) known.add(`${name}\u0000${s.name}`);
  }
  const out: Diagnostic[] = [];
  for (const vs of ctx.virtualServices) {
    for (const d of [...routeDestinations(vs.spec), ...mirrorDestinations(vs.spec)]) {
      const subset = d.destination.subset;
      if (!subset || !d.destination.host) continue;
      const name = resourceNameFromHost(vs.namespace, d.destination.host);
      if (known.has(`${name}\u0000${subset}`)) continue;
      const found = hostsWithRules.has(name)
        ? `the DestinationRule for ${name} does not define it`
        : `no DestinationRule for ${name} was found`;
      out.push(
        refNotFound({
          resource: vs,
          path: `${d.path}.subset`,
          message: `${d.mirror ? 'mirror' : 'destination'} subset "${subset}" of host "${d.destination.host}" not found: ${found}; requests routed there get 503 (NC)`,
        }),
      );
    }
  }
  return out;
}
