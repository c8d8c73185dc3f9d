/**
 * TLS counters the data plane bumps and the metrics port reads (plain numbers, no prom-client on
 * the handshake path). Suggested Prometheus names for whoever wires them:
 *   sluice_tls_handshakes_total                      counter  handshakes completed
 *   sluice_tls_handshake_errors_total{reason}        counter  refused handshakes by reason
 *   sluice_tls_certificate_expiry_seconds{credential,source}  gauge  seconds until notAfter
 *   sluice_tls_secure_contexts_built_total           counter  contexts built (cache misses)
 */
export interface TlsStats {
  handshakes: number;
  contextsBuilt: number;
  /** reason → count (unknown_sni, no_sni, no_certificate, client_cert_required, ...). */
  readonly handshakeErrors: Map<string, number>;
}

export function createTlsStats(): TlsStats {
  return { handshakes: 0, contextsBuilt: 0, handshakeErrors: new Map() };
}

export function recordHandshake(stats: TlsStats, ok: boolean, reason: string | null): void {
  if (ok) {
    stats.handshakes += 1;
    return;
  }
  const r = reason ?? 'other';
  stats.handshakeErrors.set(r, (stats.handshakeErrors.get(r) ?? 0) + 1);
}

/** One credential in use, for `/certs` and the expiry gauge. */
export interface CertificateInfo {
  readonly name: string;
  readonly source: string;
  readonly subject: string;
  readonly issuer: string;
  readonly dnsNames: readonly string[];
  readonly fingerprint: string;
  readonly keyType: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly secondsUntilExpiry: number;
  /** `port/gateway-ns/gateway-name/server-index` of each server presenting it. */
  readonly servers: readonly string[];
}
