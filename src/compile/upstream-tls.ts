/**
 * DestinationRule `tls` (DR-8) → what upstream connections need, as Istio builds the upstream TLS
 * context (istio/istio pilot/pkg/networking/core/cluster_tls.go constructUpstreamTLS,
 * setAutoSniAndAutoSanValidation; pilot/pkg/security/model/authentication.go
 * ApplyCustomSDSToClientCommonTLSContext):
 * - SIMPLE verifies the upstream against `caCertificates`, else the OS trust store; MUTUAL also
 *   presents `clientCertificate`/`privateKey`;
 * - `credentialName` instead names a Secret in the gateway's namespace: its chain and key
 *   (MUTUAL) and its CA (`<name>-cacert` first, keys `cacert`/`ca.crt`, GW-15's lookup);
 * - no `sni`: the request's Host is sent (auto SNI) and, with no `subjectAltNames`, checked
 *   against the certificate (auto SAN validation); a ServiceEntry's `subjectAltNames` stand in
 *   for the rule's own when it has none;
 * - `insecureSkipVerify` checks nothing; `caCrl` revokes.
 * A credential that is missing or unusable leaves the TLS context "not ready" (Envoy's
 * NotReadySslSocket): each connection fails with 503 UF, and a warning names what is missing.
 */
import { createHash } from 'node:crypto';
import type { Diagnostic, DiagnosticSubject } from '../errors/diagnostic.ts';
import type { ClientTlsSettings } from '../model/networking.ts';
import type { UpstreamTls } from '../snapshot/types.ts';
import { checkCrls } from './crl.ts';
import { credentialPemsOf, isValidCa, parseCredential, secretCaOf, type SecretLookup } from './tls.ts';

export interface UpstreamTlsInput {
  readonly tls: ClientTlsSettings;
  /** The DestinationRule and field path of the `tls` block (diagnostics). */
  readonly subject: DiagnosticSubject;
  readonly path: string;
  /** A ServiceEntry host's `subjectAltNames` (SE-1); empty otherwise. */
  readonly registrySubjectAltNames: readonly string[];
}

export interface UpstreamTlsContext {
  readonly secrets: SecretLookup;
  readonly diagnostics: Diagnostic[];
  readonly nowMs: number;
}

/** Envoy's reason when a transport socket has no secret yet (tls/ssl_socket.cc NotReadySslSocket). */
export const SECRET_NOT_READY = 'TLS_error: Secret is not supplied by SDS';

/** The resolved settings; null for DISABLE, ISTIO_MUTUAL (warned about elsewhere) or no mode. */
export function resolveUpstreamTls(ctx: UpstreamTlsContext, input: UpstreamTlsInput): UpstreamTls | null {
  const { tls } = input;
  const mode = tls.mode;
  if (mode !== 'SIMPLE' && mode !== 'MUTUAL') return null;
  const skip = tls.insecureSkipVerify === true;
  const problems: string[] = [];
  const warn = (field: string, message: string): void => {
    ctx.diagnostics.push({
      level: 'warning',
      code: 'SLUICE_TLS_CONFIG',
      subject: input.subject,
      path: `${input.path}.${field}`,
      message,
    });
  };
  const fail = (field: string, message: string): void => {
    problems.push(message);
    warn(field, `${message}; connections to this destination fail with 503 UF until it is fixed`);
  };

  let caPem: string | null = null;
  let crlPem: string | null = null;
  let certPem: string | null = null;
  let keyPem: string | null = null;
  let crlFrom = '';
  let crlField = 'caCrl';

  if (tls.credentialName) {
    const name = tls.credentialName;
    if (mode === 'MUTUAL') {
      const secret = ctx.secrets.secret(name);
      const pems = secret === undefined ? null : credentialPemsOf(secret);
      if (pems === null)
        fail(
          'credentialName',
          secret === undefined
            ? `Secret ${name} (the client certificate) is not in the gateway's namespace`
            : `Secret ${name} has no tls.crt/tls.key (or cert/key)`,
        );
      else ({ certPem, keyPem } = pems);
    }
    if (!skip) {
      const found = secretCaOf(ctx.secrets, name);
      if (found === null)
        fail(
          'credentialName',
          `no CA to verify the upstream with: no Secret ${name}-cacert or ${name} with key cacert or ca.crt`,
        );
      else {
        caPem = found.caPem;
        if (found.crl !== null) {
          crlPem = found.crl.pem;
          crlFrom = found.crl.from;
          crlField = 'credentialName';
        }
      }
    }
  } else {
    if (mode === 'MUTUAL' && tls.clientCertificate && tls.privateKey) {
      certPem = ctx.secrets.file(tls.clientCertificate);
      keyPem = ctx.secrets.file(tls.privateKey);
      if (certPem === null)
        fail('clientCertificate', `certificate file ${tls.clientCertificate} could not be read`);
      if (keyPem === null) fail('privateKey', `private key file ${tls.privateKey} could not be read`);
    }
    if (!skip && tls.caCertificates) {
      caPem = ctx.secrets.file(tls.caCertificates);
      if (caPem === null) fail('caCertificates', `CA file ${tls.caCertificates} could not be read`);
    }
    // Istio applies caCrl only with a validation context (not under insecureSkipVerify).
    if (!skip && tls.caCrl) {
      crlPem = ctx.secrets.file(tls.caCrl);
      crlFrom = `CRL file ${tls.caCrl}`;
      if (crlPem === null) fail('caCrl', `CRL file ${tls.caCrl} could not be read`);
    }
  }

  let clientFingerprint: string | null = null;
  if (certPem !== null && keyPem !== null) {
    const c = parseCredential(
      tls.credentialName ?? tls.clientCertificate ?? '',
      '',
      certPem,
      keyPem,
      ctx.nowMs,
    );
    if (typeof c === 'string')
      fail(tls.credentialName ? 'credentialName' : 'clientCertificate', `the client certificate: ${c}`);
    else clientFingerprint = c.fingerprint;
  }
  if (caPem !== null && !isValidCa(caPem)) {
    fail(tls.credentialName ? 'credentialName' : 'caCertificates', 'the CA bundle is not a PEM certificate');
    caPem = null;
  }
  if (crlPem !== null && caPem !== null) {
    const found = checkCrls(crlPem, caPem, ctx.nowMs);
    if (found.error !== null) fail(crlField, `${crlFrom}: ${found.error}`);
    for (const w of found.warnings) warn(crlField, `${crlFrom}: ${w.replaceAll('client', 'upstream')}`);
  }

  const dr = tls.subjectAltNames ?? [];
  const subjectAltNames = dr.length > 0 ? dr : input.registrySubjectAltNames;
  const settings = {
    mode,
    caPem,
    crlPem,
    certPem,
    keyPem,
    clientFingerprint,
    sni: tls.sni ? tls.sni : null,
    // Auto SAN validation (no sni, no SANs in the rule) checks the Host and nothing else; Envoy's
    // per-request SAN list replaces the configured one.
    subjectAltNames: skip || (!tls.sni && dr.length === 0) ? [] : subjectAltNames,
    insecureSkipVerify: skip,
    notReady: problems.length > 0 ? SECRET_NOT_READY : null,
  };
  const h = createHash('sha256').update(JSON.stringify(settings));
  return { ...settings, key: h.digest('hex').slice(0, 16) };
}
