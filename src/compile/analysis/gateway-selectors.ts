import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { AnalysisContext } from './context.ts';
import { formatSelector, refNotFound, selectorMatches } from './context.ts';

/**
 * IST0101 for a Gateway selector that matches no gateway workload (Istio's gateway analyzers check
 * it against Pods). The only workload sluice knows is itself, so this reports Gateways that do not
 * select this sluice: their servers are not served here, which is intended for Gateways meant for
 * another gateway and a typo otherwise. A warning.
 */
export function analyzeGatewaySelectors(ctx: AnalysisContext): Diagnostic[] {
  const { identity } = ctx;
  const out: Diagnostic[] = [];
  for (const gw of ctx.gateways) {
    if (selectorMatches(gw.spec.selector, identity.labels)) continue;
    out.push(
      refNotFound({
        resource: gw,
        path: 'spec.selector',
        message: `selector ${formatSelector(gw.spec.selector)} does not match this gateway (namespace ${identity.namespace}, labels ${formatSelector(identity.labels) || '<none>'}); its servers are not served here`,
      }),
    );
  }
  return out;
}
