import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { AnalysisContext } from './context.ts';
import { finding } from './context.ts';

/**
 * IST0134 ServiceEntryAddressesRequired (Istio's serviceentry.ProtocolAddressesAnalyzer): a port
 * with protocol TCP or unset needs `addresses`, since TCP traffic cannot be told apart by host.
 * DNS auto-allocation is not modelled. A warning per port.
 */
export function analyzeServiceEntryAddresses(ctx: AnalysisContext): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const se of ctx.serviceEntries) {
    if ((se.spec.addresses ?? []).length > 0) continue;
    (se.spec.ports ?? []).forEach((p, i) => {
      const protocol = (p.protocol ?? '').toUpperCase();
      if (protocol !== '' && protocol !== 'TCP') return;
      out.push(
        finding({
          level: 'warning',
          code: 'SLUICE_ANALYSIS',
          istioCode: 'IST0134',
          resource: se,
          path: `spec.ports[${i}]`,
          message: `port ${p.number} (${protocol === '' ? 'protocol unset' : 'TCP'}) needs spec.addresses: without an address TCP traffic to hosts [${se.spec.hosts.join(', ')}] cannot be matched`,
        }),
      );
    });
  }
  return out;
}
