import type { Diagnostic } from '../../errors/diagnostic.ts';
import { sortDiagnostics } from '../../errors/diagnostic.ts';
import type { ResourceSet } from '../../model/resource.ts';
import type { GatewayIdentity } from '../../model/sluice.ts';
import { analyzeAuthorizationPolicyNamespaces } from './authorizationpolicy-namespaces.ts';
import { buildAnalysisContext } from './context.ts';
import { analyzeDestinationRuleCa } from './destinationrule-ca.ts';
import { analyzeDestinationRuleHosts } from './destinationrule-hosts.ts';
import { analyzeGatewayConflicts } from './gateway-conflicts.ts';
import { analyzeGatewayCredentials } from './gateway-credentials.ts';
import { analyzeGatewayDuplicateCertificates } from './gateway-duplicate-certificates.ts';
import { analyzeGatewaySelectors } from './gateway-selectors.ts';
import { buildServiceRegistry } from './service-registry.ts';
import { analyzeServiceEntryAddresses } from './serviceentry-addresses.ts';
import { analyzeServiceEntryProtocolConflicts } from './serviceentry-protocol-conflicts.ts';
import { analyzeVirtualServiceDestinationHosts } from './virtualservice-destination-hosts.ts';
import { analyzeVirtualServiceDestinationSubsets } from './virtualservice-destination-subsets.ts';
import { analyzeVirtualServiceGateways } from './virtualservice-gateways.ts';
import { analyzeVirtualServiceIngressSubsets } from './virtualservice-ingress-subsets.ts';
import { analyzeVirtualServiceJwtClaimRoutes } from './virtualservice-jwt-claim-route.ts';
import { analyzeVirtualServiceOverlappingMatches } from './virtualservice-overlapping-matches.ts';

export interface AnalyzeOptions {
  /** Clock for certificate validity checks (an input: analysis reads no clock of its own). */
  readonly nowMs: number;
}

/**
 * `istioctl analyze` style cross-resource findings over the whole set (every Gateway, not only the
 * ones selecting this sluice, as istioctl does), each with its IST code. Pure (the clock is
 * `opts.nowMs`); never throws on user input.
 */
export function analyze(set: ResourceSet, identity: GatewayIdentity, opts: AnalyzeOptions): Diagnostic[] {
  const ctx = buildAnalysisContext(set, identity, opts.nowMs);
  const registry = buildServiceRegistry(ctx);
  return sortDiagnostics([
    ...analyzeGatewaySelectors(ctx),
    ...analyzeGatewayConflicts(ctx),
    ...analyzeGatewayCredentials(ctx),
    ...analyzeGatewayDuplicateCertificates(ctx),
    ...analyzeVirtualServiceGateways(ctx),
    ...analyzeVirtualServiceDestinationHosts(ctx, registry),
    ...analyzeVirtualServiceDestinationSubsets(ctx),
    ...analyzeVirtualServiceIngressSubsets(ctx),
    ...analyzeVirtualServiceJwtClaimRoutes(ctx),
    ...analyzeVirtualServiceOverlappingMatches(ctx),
    ...analyzeDestinationRuleCa(ctx),
    ...analyzeDestinationRuleHosts(ctx, registry),
    ...analyzeServiceEntryAddresses(ctx),
    ...analyzeServiceEntryProtocolConflicts(ctx),
    ...analyzeAuthorizationPolicyNamespaces(ctx),
  ]);
}
