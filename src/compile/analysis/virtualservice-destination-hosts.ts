import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { AnalysisContext } from './context.ts';
import { finding, nameOf, refNotFound } from './context.ts';
import { lookupHost, type KnownHost, type ServiceRegistry } from './service-registry.ts';
import { mirrorDestinations, routeDestinations, type DestinationAt } from './virtualservice-destinations.ts';

/**
 * IST0101 (destination or mirror host, or host:port, unknown) and IST0112 (several ports, none
 * chosen), as Istio's virtualservice.DestinationHostAnalyzer. Unknown hosts are warnings: a file
 * checked alone routinely names Services defined elsewhere.
 */
export function analyzeVirtualServiceDestinationHosts(
  ctx: AnalysisContext,
  registry: ServiceRegistry,
): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const vs of ctx.virtualServices) {
    const all: DestinationAt[] = [...routeDestinations(vs.spec), ...mirrorDestinations(vs.spec)];
    for (const d of all) {
      const host = d.destination.host;
      if (!host) continue;
      const known = lookupHost(registry, vs.namespace, vs.spec.exportTo, host);
      const what = d.mirror ? 'mirror host' : 'destination host';
      if (!known) {
        const visibility =
          vs.spec.exportTo && vs.spec.exportTo.length > 0
            ? `exported to the namespaces this VirtualService names in exportTo (${vs.spec.exportTo.join(', ')})`
            : `visible from namespace ${vs.namespace}`;
        out.push(
          refNotFound({
            resource: vs,
            path: `${d.path}.host`,
            message: `${what} "${host}" matches no Service or ServiceEntry ${visibility}; sluice resolves it by DNS at request time (Istio would ${d.mirror ? 'mirror nothing there' : 'answer 503 NC'})`,
          }),
        );
        continue;
      }
      out.push(...checkPorts(vs, d, known, what));
    }
  }
  return out;
}

function checkPorts(
  vs: AnalysisContext['virtualServices'][number],
  d: DestinationAt,
  known: KnownHost,
  what: string,
): Diagnostic[] {
  const ports = known.ports.map((p) => p.number);
  const port = d.destination.port?.number;
  if (port === undefined) {
    if (ports.length <= 1) return [];
    return [
      finding({
        level: 'error',
        code: 'SLUICE_ANALYSIS',
        istioCode: 'IST0112',
        resource: vs,
        path: d.path,
        message: `${what} "${d.destination.host}" (${nameOf(known.source)}) exposes several ports [${ports.join(', ')}]; destination.port.number is required to choose one`,
        related: known.source,
      }),
    ];
  }
  if (ports.includes(port)) return [];
  return [
    refNotFound({
      resource: vs,
      path: `${d.path}.port.number`,
      message: `${what} "${d.destination.host}:${port}" not found: ${nameOf(known.source)} declares ports [${ports.join(', ')}]`,
      related: known.source,
    }),
  ];
}
