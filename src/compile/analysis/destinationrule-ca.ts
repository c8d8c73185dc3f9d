import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { ClientTlsSettings } from '../../model/networking.ts';
import type { AnalysisContext } from './context.ts';
import { finding } from './context.ts';

function unverified(tls: ClientTlsSettings | undefined, hasWorkloadSelector: boolean): boolean {
  if (!tls || (tls.mode !== 'SIMPLE' && tls.mode !== 'MUTUAL')) return false;
  if (tls.caCertificates) return false;
  // A credentialName on a DestinationRule scoped by workloadSelector supplies the CA (Istio's rule).
  if (tls.credentialName && hasWorkloadSelector) return false;
  return true;
}

/** What the upstream certificate is checked against instead (DR-8). */
function checkedAgainst(tls: ClientTlsSettings): string {
  if (tls.insecureSkipVerify) return 'nothing (insecureSkipVerify)';
  if (tls.credentialName) return `the CA of credential ${tls.credentialName}`;
  return 'the OS trust store';
}

/**
 * IST0128 (traffic policy) and IST0129 (port level): TLS mode SIMPLE or MUTUAL without
 * caCertificates (Istio's destinationrule.CaCertificateAnalyzer). Warnings that say what the
 * server certificate is checked against instead.
 */
export function analyzeDestinationRuleCa(ctx: AnalysisContext): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const dr of ctx.destinationRules) {
    const selected = !!dr.spec.workloadSelector;
    const policy = dr.spec.trafficPolicy;
    if (unverified(policy?.tls, selected)) {
      out.push(
        finding({
          level: 'warning',
          code: 'SLUICE_TLS_CONFIG',
          istioCode: 'IST0128',
          resource: dr,
          path: 'spec.trafficPolicy.tls',
          message: `TLS mode ${policy!.tls!.mode} for host ${dr.spec.host} has no caCertificates: the server certificate is checked against ${checkedAgainst(policy!.tls!)}`,
        }),
      );
    }
    (policy?.portLevelSettings ?? []).forEach((p, i) => {
      if (!unverified(p.tls, selected)) return;
      out.push(
        finding({
          level: 'warning',
          code: 'SLUICE_TLS_CONFIG',
          istioCode: 'IST0129',
          resource: dr,
          path: `spec.trafficPolicy.portLevelSettings[${i}].tls`,
          message: `TLS mode ${p.tls!.mode} for host ${dr.spec.host} port ${p.port?.number ?? '?'} has no caCertificates: the server certificate is checked against ${checkedAgainst(p.tls!)}`,
        }),
      );
    });
  }
  return out;
}
