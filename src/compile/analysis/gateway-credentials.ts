import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { SecretSpec } from '../../model/kube.ts';
import type { PrivateBytes } from '../../model/private-bytes.ts';
import type { Resource } from '../../model/resource.ts';
import { ACME_ISSUER_ANNOTATION } from '../../model/sluice.ts';
import type { AnalysisContext } from './context.ts';
import { finding, findResource, nameOf, refNotFound, selectorMatches } from './context.ts';

type SecretResource = Resource<'Secret', SecretSpec>;

function decode(p: PrivateBytes | undefined): Buffer | undefined {
  if (!p) return undefined;
  const b = Buffer.from(p.base64, 'base64');
  return b.length === 0 ? undefined : b;
}

/** Why a credential Secret cannot serve TLS, or undefined when it can (never echoes key material). */
export function credentialProblem(secret: SecretResource, nowMs: number): string | undefined {
  const data = secret.spec.data;
  // Istio's ExtractCertInfo order: cert/key, then tls.crt/tls.key.
  const pairs: [string, string][] = [
    ['cert', 'key'],
    ['tls.crt', 'tls.key'],
  ];
  let certKey: string | undefined;
  let cert: Buffer | undefined;
  let key: Buffer | undefined;
  for (const [c, k] of pairs) {
    const cb = decode(data[c]);
    const kb = decode(data[k]);
    if (cb && kb) {
      certKey = c;
      cert = cb;
      key = kb;
      break;
    }
  }
  if (!cert || !key || certKey === undefined) {
    const found = Object.keys(data).sort();
    return `it has neither cert+key nor tls.crt+tls.key (keys found: ${found.length === 0 ? 'none' : found.join(', ')})`;
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    return `${certKey} is not a PEM or DER X.509 certificate`;
  }
  const notBefore = Date.parse(x509.validFrom);
  const notAfter = Date.parse(x509.validTo);
  if (Number.isFinite(notAfter) && nowMs > notAfter)
    return `its certificate expired on ${new Date(notAfter).toISOString()}`;
  if (Number.isFinite(notBefore) && nowMs < notBefore)
    return `its certificate is not valid before ${new Date(notBefore).toISOString()}`;
  const keyName = certKey === 'cert' ? 'key' : 'tls.key';
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    return `${keyName} is not a PEM private key (PKCS#1, PKCS#8 or SEC1)`;
  }
  if (!x509.checkPrivateKey(privateKey)) return `${keyName} does not match the certificate in ${certKey}`;
  return undefined;
}

function credentialRef(name: string, fallbackNamespace: string): { namespace: string; name: string } {
  const slash = name.indexOf('/');
  return slash < 0
    ? { namespace: fallbackNamespace, name }
    : { namespace: name.slice(0, slash), name: name.slice(slash + 1) };
}

/**
 * IST0101 (credentialName names no Secret in the gateway's namespace) and IST0161 (the Secret
 * holds no usable certificate and key: missing keys, unparsable, expired or not yet valid, key
 * not matching), as Istio's gateway.SecretAnalyzer, for the Gateways that select this sluice.
 * Secrets are looked up in the gateway workload's namespace (GW-15). A missing Secret is a warning
 * (it may be applied separately); a present but unusable one is an error.
 */
export function analyzeGatewayCredentials(ctx: AnalysisContext): Diagnostic[] {
  const { identity } = ctx;
  const out: Diagnostic[] = [];
  for (const gw of ctx.gateways) {
    if (!selectorMatches(gw.spec.selector, identity.labels)) continue;
    gw.spec.servers.forEach((server, i) => {
      const tls = server.tls;
      if (!tls) return;
      const names: { name: string; path: string }[] = [];
      if (tls.credentialName)
        names.push({ name: tls.credentialName, path: `spec.servers[${i}].tls.credentialName` });
      (tls.credentialNames ?? []).forEach((n, j) =>
        names.push({ name: n, path: `spec.servers[${i}].tls.credentialNames[${j}]` }),
      );
      for (const { name, path } of names) {
        const ref = credentialRef(name, identity.namespace);
        const secret = findResource<'Secret', SecretSpec>(ctx, 'Secret', ref.namespace, ref.name);
        const issuer = gw.annotations[ACME_ISSUER_ANNOTATION];
        if (!secret && issuer !== undefined && ref.namespace === identity.namespace) {
          // Expected before the first order: serve writes the certificate into --certs-dir.
          out.push(
            finding({
              level: 'info',
              code: 'SLUICE_REF_NOT_FOUND',
              istioCode: 'IST0101',
              resource: gw,
              path,
              message: `credentialName "${name}" has no Secret; ACME issuer "${issuer}" (${ACME_ISSUER_ANNOTATION}) orders it into the certificates directory ${ref.name}/ unless it is there already; until then this server's hosts refuse handshakes`,
            }),
          );
          continue;
        }
        if (!secret) {
          out.push(
            refNotFound({
              resource: gw,
              path,
              message: `credentialName "${name}" not found: no Secret ${ref.namespace}/${ref.name} in the configuration (credential Secrets live in the gateway's namespace ${identity.namespace}); unless the certificates directory holds ${ref.name}/tls.crt and ${ref.name}/tls.key, the server cannot terminate TLS`,
              related: { kind: 'Secret', namespace: ref.namespace, name: ref.name },
            }),
          );
          continue;
        }
        const problem = credentialProblem(secret, ctx.nowMs);
        if (problem === undefined) continue;
        out.push(
          finding({
            level: 'error',
            code: 'SLUICE_TLS_CONFIG',
            istioCode: 'IST0161',
            resource: gw,
            path,
            message: `credential ${nameOf(secret)} is invalid: ${problem}`,
            related: secret,
          }),
        );
      }
    });
  }
  return out;
}
