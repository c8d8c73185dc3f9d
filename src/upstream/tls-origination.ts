/**
 * TLS to upstreams (DR-8): the options a connection is made with, the upstream certificate's
 * names checked as Envoy checks them, and TLS failures named as Envoy names them in
 * `transport failure reason` (tls/ssl_socket.cc drainErrorQueue: `TLS_error:|<code>:<lib>:
 * <func>:<reason>:TLS_error_end`, codes as BoringSSL packs them).
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import {
  createSecureContext,
  getCACertificates,
  type ConnectionOptions,
  type PeerCertificate,
  type SecureContext,
} from 'node:tls';
import type { UpstreamTls } from '../snapshot/types.ts';

/** Secure contexts by settings key: built once per distinct settings, never per connection. */
const contexts = new Map<string, SecureContext>();
let systemCa: string[] | null = null;

/**
 * Tests: what stands in for the operating system's CA store (a test CA beside it), or null for
 * the real one again. Contexts built on the old store are dropped.
 */
export function setSystemCaForTests(pems: readonly string[] | null): void {
  systemCa = pems === null ? null : [...pems];
  contexts.clear();
}

function secureContextOf(tls: UpstreamTls): SecureContext {
  let ctx = contexts.get(tls.key);
  if (ctx === undefined) {
    // Envoy's "system" CA is the operating system's store, not Node's bundled Mozilla list.
    const ca = tls.caPem ?? (systemCa ??= getCACertificates('system'));
    ctx = createSecureContext({
      ca,
      ...(tls.certPem !== null && tls.keyPem !== null ? { cert: tls.certPem, key: tls.keyPem } : {}),
      // Node then checks every CA of the chain (CRL_CHECK_ALL), as Envoy does by default.
      ...(tls.crlPem !== null ? { crl: tls.crlPem } : {}),
      // Envoy's upstream defaults (cluster_tls.go defaultUpstreamCommonTLSContext).
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
    });
    if (contexts.size >= 256) contexts.delete(contexts.keys().next().value!);
    contexts.set(tls.key, ctx);
  }
  return ctx;
}

/**
 * Envoy's auto SNI (router.cc): the host of the upstream Host header, port dropped; none for an
 * IP address. Also the name auto SAN validation checks.
 */
export function hostOfAuthority(authority: string): string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return end < 0 ? authority : authority.slice(1, end);
  }
  const colon = authority.lastIndexOf(':');
  // More than one colon and no brackets: a bare IPv6 address.
  if (colon >= 0 && authority.indexOf(':') === colon) return authority.slice(0, colon);
  return authority;
}

/** The SNI a request to this cluster sends: the configured one, else the Host's (not an IP). */
export function sniFor(tls: UpstreamTls, authority: string): string | null {
  if (tls.sni !== null) return tls.sni;
  const host = hostOfAuthority(authority);
  return host === '' || isIP(host) !== 0 ? null : host;
}

const VERIFY_FAILED = 'TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED';
const SAN_MISMATCH = VERIFY_FAILED + ':verify cert failed: verify SAN list:TLS_error_end';

interface TlsFailureError extends Error {
  code: string;
  transportFailureReason: string;
}

function sanMismatch(names: readonly string[]): TlsFailureError {
  const err = new Error(`upstream certificate names none of ${names.join(', ')}`) as TlsFailureError;
  err.code = 'ERR_TLS_CERT_ALTNAME_INVALID';
  err.transportFailureReason = SAN_MISMATCH;
  return err;
}

/**
 * Whether the certificate carries one of `names` as Envoy's SAN matcher reads it
 * (default_validator.cc): DNS SANs match exactly or by a leading `*.` label; URI, IP and email
 * SANs match exactly; the subject CN is not read.
 */
export function certificateNames(cert: X509Certificate, names: readonly string[]): boolean {
  let uris: string[] | null = null;
  for (const name of names) {
    if (isIP(name) !== 0) {
      if (cert.checkIP(name) !== undefined) return true;
    } else if (name.includes('://') || name.startsWith('spiffe:')) {
      uris ??= uriSans(cert);
      if (uris.includes(name)) return true;
    } else if (name.includes('@')) {
      if (cert.checkEmail(name, { subject: 'never' }) !== undefined) return true;
    } else if (
      cert.checkHost(name, { subject: 'never', wildcards: true, partialWildcards: false }) !== undefined
    )
      return true;
  }
  return false;
}

function uriSans(cert: X509Certificate): string[] {
  const out: string[] = [];
  for (const part of (cert.subjectAltName ?? '').split(', '))
    if (part.startsWith('URI:')) out.push(part.slice(4).replace(/^"(.*)"$/, '$1'));
  return out;
}

/**
 * tls.connect options for one pool: the settings' secure context, the SNI, and the name check.
 * `expected` are the names the certificate must carry (auto SAN: the Host's host); empty = none.
 */
export function connectOptionsFor(
  tls: UpstreamTls,
  servername: string | null,
  expected: readonly string[],
): ConnectionOptions {
  const skip = tls.insecureSkipVerify;
  return {
    secureContext: secureContextOf(tls),
    ...(servername !== null ? { servername } : {}),
    rejectUnauthorized: !skip,
    checkServerIdentity:
      skip || expected.length === 0
        ? noIdentityCheck
        : (_host: string, peer: PeerCertificate): Error | undefined =>
            certificateNames(new X509Certificate(peer.raw), expected) ? undefined : sanMismatch(expected),
  };
}

function noIdentityCheck(): undefined {
  return undefined;
}

/** An error every connection attempt of a not-ready TLS context fails with (DR-8). */
export function notReadyError(reason: string): TlsFailureError {
  const err = new Error(reason) as TlsFailureError;
  err.code = 'ERR_SLUICE_TLS_NOT_READY';
  err.transportFailureReason = reason;
  return err;
}

/** X.509 verification results Node reports by OpenSSL's name (X509_V_ERR_* without the prefix). */
const VERIFY_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

/** BoringSSL's reason numbers for the handshake failures an upstream most often causes. */
const BORINGSSL_REASONS: Readonly<Record<string, number>> = {
  WRONG_VERSION_NUMBER: 247,
  CERTIFICATE_VERIFY_FAILED: 125,
  HTTP_REQUEST: 156,
  UNSUPPORTED_PROTOCOL: 241,
  NO_SHARED_CIPHER: 184,
  PACKET_LENGTH_TOO_LONG: 197,
};
/** ERR_LIB_SSL << 24, as BoringSSL packs error codes. */
const SSL_LIB = 268435456;

/**
 * Envoy's `transport failure reason` for a TLS failure of an upstream connection, or null when
 * `err` is not one (a refused or reset TCP connection has none).
 */
export function transportFailureReasonOf(err: unknown): string | null {
  const e = err as { code?: unknown; message?: unknown; transportFailureReason?: unknown } | null;
  if (e === null || typeof e !== 'object') return null;
  if (typeof e.transportFailureReason === 'string') return e.transportFailureReason;
  const code = typeof e.code === 'string' ? e.code : '';
  if (VERIFY_CODES.has(code)) return VERIFY_FAILED + ':TLS_error_end';
  if (!code.startsWith('ERR_SSL_')) return null;
  // OpenSSL names TLS 1.3's alerts TLSV13_*, BoringSSL TLSV1_*; alert reasons are 1000 + alert.
  const reason = code.slice(8).replace(/^TLSV13_/, 'TLSV1_');
  const message = typeof e.message === 'string' ? e.message : '';
  const alert = /SSL alert number (\d+)/.exec(message);
  const known = BORINGSSL_REASONS[reason];
  const n =
    alert !== null
      ? SSL_LIB + 1000 + Number(alert[1])
      : known !== undefined
        ? SSL_LIB + known
        : parseInt(/error:([0-9A-Fa-f]{8}):/.exec(message)?.[1] ?? '0', 16);
  return `TLS_error:|${n}:SSL routines:OPENSSL_internal:${reason}:TLS_error_end`;
}
