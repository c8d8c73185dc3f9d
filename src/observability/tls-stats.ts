/**
 * TLS counters the data plane bumps and the metrics port reads (plain numbers, no prom-client on
 * the handshake path; observability/tls-metrics.ts turns them into metrics at scrape time):
 *   sluice_tls_handshakes_total                      counter  handshakes completed
 *   sluice_tls_handshake_errors_total{reason}        counter  refused handshakes by reason
 *   sluice_tls_certificate_expiry_seconds{credential,source}  gauge  seconds until notAfter
 *   sluice_tls_certificate_not_after_seconds{credential,source}  gauge  notAfter, Unix seconds
 *   sluice_tls_secure_contexts_built_total           counter  contexts built (cache misses)
 */
export interface TlsStats {
  handshakes: number;
  contextsBuilt: number;
  /** reason → count (one of HANDSHAKE_ERROR_REASONS). */
  readonly handshakeErrors: Map<string, number>;
}

/**
 * Every reason a handshake is refused for (dataplane/tls-sni.ts HandshakeFailure; a unit test
 * keeps the two equal). The error counter starts each at 0 so rate() works from the first scrape.
 */
export const HANDSHAKE_ERROR_REASONS = [
  'unknown_sni',
  'no_sni',
  'no_certificate',
  'client_cert_required',
  'client_cert_invalid',
  'client_cert_revoked',
  'client_crl_unusable',
  'client_cert_mismatch',
  'protocol_version',
  'other',
] as const;

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
  /** SHA-256 of the leaf certificate DER, hex. */
  readonly fingerprint: string;
  readonly keyType: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly secondsUntilExpiry: number;
  /** `port/gateway-ns/gateway-name/server-index` of each server presenting it. */
  readonly servers: readonly string[];
}

/**
 * Several processes' lists (--workers) as one: a credential (name + fingerprint) once, with the
 * servers of every list and the smallest time left. Workers serve one snapshot version, so the
 * lists are normally equal; during a reload the union shows old and new side by side.
 */
export function mergeCertificateLists(lists: readonly (readonly CertificateInfo[])[]): CertificateInfo[] {
  const byKey = new Map<string, CertificateInfo>();
  for (const list of lists) {
    for (const c of list) {
      const key = `${c.name}|${c.fingerprint}`;
      const seen = byKey.get(key);
      byKey.set(
        key,
        seen === undefined
          ? { ...c, servers: [...c.servers] }
          : {
              ...seen,
              secondsUntilExpiry: Math.min(seen.secondsUntilExpiry, c.secondsUntilExpiry),
              servers: [...new Set([...seen.servers, ...c.servers])],
            },
      );
    }
  }
  return [...byKey.values()].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : a.fingerprint < b.fingerprint ? -1 : 1,
  );
}
