import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { ServerTlsSettings } from '../../model/networking.ts';
import type { AnalysisContext } from './context.ts';
import { finding, nameOf } from './context.ts';

function sameCertificate(a: ServerTlsSettings, b: ServerTlsSettings): boolean {
  if (a.credentialName && b.credentialName) return a.credentialName === b.credentialName;
  if (!a.credentialName && !b.credentialName && a.serverCertificate && b.serverCertificate) {
    return (
      a.serverCertificate === b.serverCertificate &&
      !!a.privateKey &&
      !!b.privateKey &&
      a.privateKey === b.privateKey
    );
  }
  return false;
}

/** Every label of `x` is in `y` with the same value (an empty `x` is a subset of anything). */
function selectorSubset(
  x: Readonly<Record<string, string>> | undefined,
  y: Readonly<Record<string, string>> | undefined,
): boolean {
  return Object.entries(x ?? {}).every(([k, v]) => (y ?? {})[k] === v);
}

/**
 * IST0138 GatewayDuplicateCertificate (Istio's gateway.CertificateAnalyzer): two Gateways on the
 * same workloads serve the same certificate, so HTTP/2 clients reuse a connection across them and
 * get 404s (pain point 1). A warning on each Gateway whose selector is a subset of the other's.
 */
export function analyzeGatewayDuplicateCertificates(ctx: AnalysisContext): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const gw of ctx.gateways) {
    for (const other of ctx.gateways) {
      if (other === gw || (other.namespace === gw.namespace && other.name === gw.name)) continue;
      if (!selectorSubset(gw.spec.selector, other.spec.selector)) continue;
      const shared = gw.spec.servers.some(
        (s) => s.tls && other.spec.servers.some((o) => o.tls && sameCertificate(s.tls!, o.tls!)),
      );
      if (!shared) continue;
      out.push(
        finding({
          level: 'warning',
          code: 'SLUICE_TLS_CONFIG',
          istioCode: 'IST0138',
          resource: gw,
          message: `serves the same certificate as ${nameOf(other)}; HTTP/2 clients may reuse one connection for both and get 404s for the other's hosts`,
          related: other,
        }),
      );
    }
  }
  return out;
}
