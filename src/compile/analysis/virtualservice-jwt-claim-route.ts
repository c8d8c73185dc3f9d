import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { GatewaySpec } from '../../model/networking.ts';
import type { AnalysisContext } from './context.ts';
import { finding, findResource, formatSelector, nameOf, selectorMatches } from './context.ts';
import { gatewayRef, MESH_GATEWAY } from './hosts.ts';
import { selectPolicy } from '../policy-selection.ts';

const JWT_CLAIM_PREFIX = '@request.auth.claims';

function claimKey(vs: AnalysisContext['virtualServices'][number]): string | undefined {
  for (const rule of vs.spec.http ?? []) {
    for (const m of rule.match ?? []) {
      for (const k of [...Object.keys(m.headers ?? {}), ...Object.keys(m.withoutHeaders ?? {})]) {
        if (k.startsWith(JWT_CLAIM_PREFIX)) return k;
      }
    }
  }
  return undefined;
}

/**
 * IST0149 (Istio's virtualservice.JWTClaimRouteAnalyzer): a VirtualService matches on a JWT claim
 * through a Gateway that selects this sluice, but no RequestAuthentication in the root namespace or
 * the gateway's namespace selects it, so no claims are ever available and the rule never matches.
 * The "pod" Istio checks is this sluice instance (its labels and namespace). A warning: the
 * RequestAuthentication may be applied from another file.
 */
export function analyzeVirtualServiceJwtClaimRoutes(ctx: AnalysisContext): Diagnostic[] {
  const { identity } = ctx;
  const covered = ctx.requestAuthentications.some((ra) => selectPolicy(ra, identity).verdict === 'selected');
  if (covered) return [];
  const out: Diagnostic[] = [];
  for (const vs of ctx.virtualServices) {
    const key = claimKey(vs);
    if (key === undefined) continue;
    (vs.spec.gateways ?? []).forEach((ref, i) => {
      if (ref === MESH_GATEWAY) return;
      const { namespace, name } = gatewayRef(vs.namespace, ref);
      const gw = findResource<'Gateway', GatewaySpec>(ctx, 'Gateway', namespace, name);
      if (!gw || !selectorMatches(gw.spec.selector, identity.labels)) return;
      out.push(
        finding({
          level: 'warning',
          code: 'SLUICE_REF_NOT_FOUND',
          istioCode: 'IST0149',
          resource: vs,
          path: `spec.gateways[${i}]`,
          message: `routes on JWT claim "${key}" through ${nameOf(gw)}, but no RequestAuthentication in ${identity.rootNamespace} or ${identity.namespace} selects this gateway (labels ${formatSelector(identity.labels)}); without one no claims are validated and the rule never matches`,
          related: gw,
        }),
      );
    });
  }
  return out;
}
