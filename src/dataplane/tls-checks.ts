/**
 * After-handshake checks of a terminated connection against its server's settings (GW-13, GW-17):
 * the negotiated protocol within the server's own bounds (OpenSSL keeps the port-wide bounds
 * when the SNI context switches), the cipher in its list, and the client certificate (verified
 * against the CA, then subjectAltNames, SPKI and certificate hashes; either hash list admits).
 */
import { createHash, X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { SnapshotSource, TlsServer } from '../snapshot/types.ts';
import { sniOf, tlsServerFor, type HandshakeFailure } from './tls-sni.ts';

const VERSION_RANK: Record<string, number> = { TLSv1: 10, 'TLSv1.1': 11, 'TLSv1.2': 12, 'TLSv1.3': 13 };

const DEFAULT_CIPHER_SET = new Set([
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
]);

export function serverOfSocket(source: SnapshotSource, port: number, socket: TLSSocket): TlsServer | null {
  return tlsServerFor(source, port, sniOf(socket));
}

export function checkNegotiated(
  source: SnapshotSource,
  port: number,
  socket: TLSSocket,
): HandshakeFailure | null {
  const server = serverOfSocket(source, port, socket);
  const tls = server?.tls ?? null;
  if (tls === null) return sniOf(socket) === '' ? 'no_sni' : 'unknown_sni';
  const version = socket.getProtocol() ?? '';
  const rank = VERSION_RANK[version] ?? 0;
  if (rank < VERSION_RANK[tls.minVersion]! || rank > VERSION_RANK[tls.maxVersion]!) return 'protocol_version';
  if (rank < 13) {
    const cipher = socket.getCipher()?.name ?? '';
    const allowed = tls.ciphers === null ? DEFAULT_CIPHER_SET : new Set(tls.ciphers.split(':'));
    if (!allowed.has(cipher)) return 'protocol_version';
  }
  return null;
}

export function checkClientCertificate(
  source: SnapshotSource,
  port: number,
  socket: TLSSocket,
): HandshakeFailure | null {
  const server = serverOfSocket(source, port, socket);
  const tls = server?.tls ?? null;
  if (tls === null || tls.mode === 'SIMPLE') return null;
  const peer = socket.getPeerX509Certificate();
  if (peer === undefined) return tls.mode === 'MUTUAL' ? 'client_cert_required' : null;
  if (!socket.authorized) return failureOfVerifyError(socket.authorizationError);
  return matchesPins(peer, tls.subjectAltNames, tls.spkiHashes, tls.certHashes)
    ? null
    : 'client_cert_mismatch';
}

/** OpenSSL verify results about CRLs rather than the certificate (X509_V_ERR_*, as Node names them). */
const CRL_ERRORS = new Set([
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'CRL_SIGNATURE_FAILURE',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'UNABLE_TO_GET_CRL_ISSUER',
  'KEYUSAGE_NO_CRL_SIGN',
  'DIFFERENT_CRL_SCOPE',
  'UNHANDLED_CRITICAL_CRL_EXTENSION',
]);

/**
 * Why a client certificate failed verification (`TLSSocket.authorizationError`): revoked by the
 * CA's CRL, a CRL that cannot vouch for it (expired, missing for a CA of the chain), or otherwise
 * invalid (unknown CA, expired certificate…).
 */
export function failureOfVerifyError(code: string | Error | null | undefined): HandshakeFailure {
  const c = typeof code === 'string' ? code : ((code as { code?: string } | null | undefined)?.code ?? '');
  if (c === 'CERT_REVOKED') return 'client_cert_revoked';
  return CRL_ERRORS.has(c) ? 'client_crl_unusable' : 'client_cert_invalid';
}

/** Why a handshake that never reached `secureConnection` failed (the server's `tlsClientError`). */
export function failureOfClientError(
  source: SnapshotSource,
  port: number,
  socket: TLSSocket,
  code: string,
): HandshakeFailure {
  // MUTUAL: a client certificate that fails verification (revoked, unknown CA…) completes the
  // handshake in OpenSSL and is cut by Node, leaving only the verify result on the socket.
  const verifyError = (socket as { authorizationError?: unknown }).authorizationError;
  if (verifyError) return failureOfVerifyError(verifyError as string);
  // No SNI and no `*` server: the port's default context has no certificate (GW-14).
  if (sniOf(socket) === '' && serverOfSocket(source, port, socket) === null) return 'no_sni';
  return failureOfTlsError(code);
}

/** A handshake OpenSSL refused, by its error code (`ERR_SSL_…`). */
export function failureOfTlsError(code: string): HandshakeFailure {
  if (code.includes('VERSION') || code.includes('PROTOCOL')) return 'protocol_version';
  if (code.includes('PEER_DID_NOT_RETURN_A_CERTIFICATE') || code.includes('CERTIFICATE_REQUIRED'))
    return 'client_cert_required';
  if (code.includes('CERTIFICATE') || code.includes('CERT')) return 'client_cert_invalid';
  return 'other';
}

export function sansOf(cert: X509Certificate): string[] {
  const out: string[] = [];
  for (const part of (cert.subjectAltName ?? '').split(', ')) {
    const c = part.indexOf(':');
    if (c > 0) out.push(part.slice(c + 1));
  }
  return out;
}

/** GW-17: SAN must equal one listed; SPKI or certificate hash lists: either one admits. */
export function matchesPins(
  cert: X509Certificate,
  subjectAltNames: readonly string[],
  spkiHashes: readonly string[],
  certHashes: readonly string[],
): boolean {
  if (subjectAltNames.length > 0) {
    const sans = sansOf(cert);
    if (!subjectAltNames.some((s) => sans.includes(s))) return false;
  }
  if (spkiHashes.length === 0 && certHashes.length === 0) return true;
  if (certHashes.length > 0 && certHashes.includes(createHash('sha256').update(cert.raw).digest('hex')))
    return true;
  if (spkiHashes.length > 0) {
    const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
    if (spkiHashes.includes(createHash('sha256').update(spki).digest('base64'))) return true;
  }
  return false;
}
