import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { AnalysisContext } from './context.ts';
import { finding } from './context.ts';
import { lookupHost, type ServiceRegistry } from './service-registry.ts';

/**
 * IST0174: a DestinationRule's host matches no Service or ServiceEntry visible from its namespace,
 * so its policy applies to nothing. Wildcard hosts are meant to cover many services and are
 * skipped. A warning: the Service may be defined elsewhere.
 */
export function analyzeDestinationRuleHosts(ctx: AnalysisContext, registry: ServiceRegistry): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const dr of ctx.destinationRules) {
    const host = dr.spec.host;
    if (!host || host.startsWith('*')) continue;
    if (lookupHost(registry, dr.namespace, undefined, host)) continue;
    out.push(
      finding({
        level: 'warning',
        code: 'SLUICE_REF_NOT_FOUND',
        istioCode: 'IST0174',
        resource: dr,
        path: 'spec.host',
        message: `host "${host}" matches no Service or ServiceEntry visible from namespace ${dr.namespace}; the DestinationRule applies to nothing`,
      }),
    );
  }
  return out;
}
