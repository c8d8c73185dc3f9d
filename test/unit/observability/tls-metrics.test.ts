/**
 * TLS metrics read at scrape time (issue 5 item 5): counters from the data plane's plain numbers,
 * expiry gauges from the live credentials, and the --workers merge (counters sum, expiry does not).
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { aggregateRegistries, type MetricsJson } from '../../../src/observability/metrics.ts';
import { registerTlsMetrics } from '../../../src/observability/tls-metrics.ts';
import {
  createTlsStats,
  HANDSHAKE_ERROR_REASONS,
  mergeCertificateLists,
  recordHandshake,
  type CertificateInfo,
  type TlsStats,
} from '../../../src/observability/tls-stats.ts';
import type { HandshakeFailure } from '../../../src/dataplane/tls-sni.ts';
import { failureOfTlsError, failureOfVerifyError } from '../../../src/dataplane/tls-checks.ts';
import { parsePrometheus, sumOf } from '../../support/observability.ts';

const NOW = Date.UTC(2030, 0, 1);
const DAY = 86_400;

function cert(
  name: string,
  source: string,
  daysLeft: number,
  servers = ['8443/istio-system/gw/0'],
): CertificateInfo {
  const notAfterMs = NOW + daysLeft * DAY * 1000;
  return {
    name,
    source,
    subject: `CN=${name}`,
    issuer: 'CN=ca',
    dnsNames: [name],
    fingerprint: name.padEnd(64, '0'),
    keyType: 'RSA',
    notBefore: new Date(NOW - DAY * 1000).toISOString(),
    notAfter: new Date(notAfterMs).toISOString(),
    secondsUntilExpiry: daysLeft * DAY,
    servers,
  };
}

function process(stats: TlsStats, certs: CertificateInfo[]): Registry {
  const registry = new Registry();
  registerTlsMetrics(registry, { stats: () => stats, certificates: () => certs, now: () => NOW });
  return registry;
}

describe('TLS metrics', () => {
  it('handshakes, errors by reason (every reason from 0), contexts built, expiry per credential', async () => {
    const stats = createTlsStats();
    recordHandshake(stats, true, null);
    recordHandshake(stats, true, null);
    recordHandshake(stats, false, 'unknown_sni');
    recordHandshake(stats, false, 'client_cert_revoked');
    recordHandshake(stats, false, 'client_cert_revoked');
    stats.contextsBuilt = 3;
    const registry = process(stats, [
      cert('a', 'Secret istio-system/a', 10),
      cert('b', 'file /etc/b.pem', -1),
    ]);
    const samples = parsePrometheus(await registry.metrics());
    expect(sumOf(samples, 'sluice_tls_handshakes_total')).toBe(2);
    expect(sumOf(samples, 'sluice_tls_handshake_errors_total', { reason: 'client_cert_revoked' })).toBe(2);
    expect(sumOf(samples, 'sluice_tls_handshake_errors_total', { reason: 'unknown_sni' })).toBe(1);
    const reasons = samples
      .filter((s) => s.name === 'sluice_tls_handshake_errors_total')
      .map((s) => s.labels['reason']);
    expect(reasons.sort()).toEqual([...HANDSHAKE_ERROR_REASONS].sort());
    expect(sumOf(samples, 'sluice_tls_secure_contexts_built_total')).toBe(3);
    expect(
      sumOf(samples, 'sluice_tls_certificate_expiry_seconds', {
        credential: 'a',
        source: 'Secret istio-system/a',
      }),
    ).toBe(10 * DAY);
    expect(sumOf(samples, 'sluice_tls_certificate_expiry_seconds', { credential: 'b' })).toBe(-DAY);
    expect(sumOf(samples, 'sluice_tls_certificate_not_after_seconds', { credential: 'a' })).toBe(
      NOW / 1000 + 10 * DAY,
    );
  });

  it('a credential gone after a reload leaves the gauge', async () => {
    let certs = [cert('a', 'certs-dir a', 5), cert('b', 'certs-dir b', 6)];
    const registry = new Registry();
    registerTlsMetrics(registry, { stats: createTlsStats, certificates: () => certs, now: () => NOW });
    expect(await registry.metrics()).toMatch(/credential="b"/);
    certs = [cert('a', 'certs-dir a', 5)];
    expect(await registry.metrics()).not.toMatch(/credential="b"/);
  });

  it('--workers: the merged registry sums handshake counters but not the expiry gauges', async () => {
    const one = createTlsStats();
    const two = createTlsStats();
    recordHandshake(one, true, null);
    recordHandshake(two, true, null);
    recordHandshake(two, false, 'no_sni');
    const certs = [cert('a', 'certs-dir a', 30)];
    const workers: MetricsJson[] = [];
    for (const s of [one, two]) workers.push((await process(s, certs).getMetricsAsJSON()) as MetricsJson);
    // The primary registers no TLS metrics of its own, as in serve.ts.
    const merged = await aggregateRegistries(new Registry(), workers);
    const samples = parsePrometheus(await merged.metrics());
    expect(sumOf(samples, 'sluice_tls_handshakes_total')).toBe(2);
    expect(sumOf(samples, 'sluice_tls_handshake_errors_total', { reason: 'no_sni' })).toBe(1);
    expect(sumOf(samples, 'sluice_tls_certificate_expiry_seconds', { credential: 'a' })).toBe(30 * DAY);
    expect(sumOf(samples, 'sluice_tls_certificate_not_after_seconds', { credential: 'a' })).toBe(
      NOW / 1000 + 30 * DAY,
    );
  });

  it('every handshake failure the data plane can report is a listed reason', () => {
    type Unlisted = Exclude<HandshakeFailure, (typeof HANDSHAKE_ERROR_REASONS)[number]>;
    type Unknown = Exclude<(typeof HANDSHAKE_ERROR_REASONS)[number], HandshakeFailure>;
    const same: [Unlisted, Unknown] extends [never, never] ? true : false = true;
    expect(same).toBe(true);
  });

  it('verify results and OpenSSL errors map to reasons', () => {
    expect(failureOfVerifyError('CERT_REVOKED')).toBe('client_cert_revoked');
    expect(failureOfVerifyError('CRL_HAS_EXPIRED')).toBe('client_crl_unusable');
    expect(failureOfVerifyError('UNABLE_TO_GET_CRL')).toBe('client_crl_unusable');
    expect(failureOfVerifyError('UNABLE_TO_VERIFY_LEAF_SIGNATURE')).toBe('client_cert_invalid');
    expect(failureOfTlsError('ERR_SSL_UNSUPPORTED_PROTOCOL')).toBe('protocol_version');
    expect(failureOfTlsError('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE')).toBe('client_cert_required');
    expect(failureOfTlsError('ECONNRESET')).toBe('other');
  });
});

describe('/certs under --workers', () => {
  it('one entry per credential, servers joined, the least time left', () => {
    const a1 = cert('a', 'certs-dir a', 10, ['8443/ns/gw/0']);
    const a2 = {
      ...cert('a', 'certs-dir a', 10, ['8443/ns/gw/0', '9443/ns/gw/1']),
      secondsUntilExpiry: 10 * DAY - 1,
    };
    const b = cert('b', 'certs-dir b', 3);
    const merged = mergeCertificateLists([
      [a1, b],
      [a2, b],
    ]);
    expect(merged.map((c) => c.name)).toEqual(['a', 'b']);
    expect(merged[0]!.servers).toEqual(['8443/ns/gw/0', '9443/ns/gw/1']);
    expect(merged[0]!.secondsUntilExpiry).toBe(10 * DAY - 1);
    expect(merged[1]).toEqual(b);
  });
});
