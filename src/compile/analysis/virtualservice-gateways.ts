import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { GatewaySpec } from '../../model/networking.ts';
import type { AnalysisContext } from './context.ts';
import { finding, findResource, nameOf, refNotFound } from './context.ts';
import { serverHostsForNamespace } from '../hosts.ts';
import { EGRESS_PROXY_GATEWAY } from '../indexes.ts';
import { gatewayRef, hostsOverlap, MESH_GATEWAY } from './hosts.ts';

/**
 * IST0101 (a `gateways` entry names no Gateway) and IST0132 (none of the VirtualService's hosts is
 * served by that Gateway to the VirtualService's namespace), as Istio's virtualservice.GatewayAnalyzer.
 * Every Gateway in the set counts, not only those selecting this sluice. For a missing Gateway
 * only IST0101 is reported (istioctl adds an IST0132 that says nothing more).
 */
export function analyzeVirtualServiceGateways(ctx: AnalysisContext): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const vs of ctx.virtualServices) {
    (vs.spec.gateways ?? []).forEach((ref, i) => {
      if (ref === MESH_GATEWAY || ref === EGRESS_PROXY_GATEWAY) return;
      const { namespace, name } = gatewayRef(vs.namespace, ref);
      const gw = findResource<'Gateway', GatewaySpec>(ctx, 'Gateway', namespace, name);
      const path = `spec.gateways[${i}]`;
      if (!gw) {
        out.push(
          refNotFound({
            resource: vs,
            path,
            message: `Gateway ${namespace}/${name} not found; the rules are not served through it`,
            related: { kind: 'Gateway', namespace, name },
          }),
        );
        return;
      }
      const serverHosts = gw.spec.servers.flatMap((s) =>
        serverHostsForNamespace(s.hosts, gw.namespace, vs.namespace),
      );
      const bound = serverHosts.some((gh) => vs.spec.hosts.some((vh) => hostsOverlap(gh, vh)));
      if (bound) return;
      const offered = gw.spec.servers.flatMap((s) => s.hosts);
      out.push(
        finding({
          level: 'warning',
          code: 'SLUICE_HOST_NOT_IN_GATEWAY',
          istioCode: 'IST0132',
          resource: vs,
          path,
          message: `none of the hosts [${vs.spec.hosts.join(', ')}] is served by ${nameOf(gw)} to namespace ${vs.namespace} (its server hosts: [${offered.join(', ')}]); the VirtualService is not bound to it`,
          related: gw,
        }),
      );
    });
  }
  return out;
}
