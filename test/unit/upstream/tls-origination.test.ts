import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  certificateNames,
  hostOfAuthority,
  sniFor,
  transportFailureReasonOf,
} from '../../../src/upstream/tls-origination.ts';
import type { UpstreamTls } from '../../../src/snapshot/types.ts';
import { opensslLeaf, rsaLeaf } from '../../support/certs.ts';

const TLS: UpstreamTls = {
  mode: 'SIMPLE',
  caPem: null,
  crlPem: null,
  certPem: null,
  keyPem: null,
  clientFingerprint: null,
  sni: null,
  subjectAltNames: [],
  insecureSkipVerify: false,
  notReady: null,
  key: 'k',
};

describe('auto SNI (Envoy router auto_sni)', () => {
  it.each([
    ['api.example.com', 'api.example.com'],
    ['api.example.com:8443', 'api.example.com'],
    ['[::1]:443', '::1'],
    ['::1', '::1'],
    ['10.0.0.1:80', '10.0.0.1'],
  ])('host of %s is %s', (authority, host) => {
    expect(hostOfAuthority(authority)).toBe(host);
  });

  it('the Host names the SNI unless it is an IP address; a configured sni wins', () => {
    expect(sniFor(TLS, 'api.example.com:8443')).toBe('api.example.com');
    expect(sniFor(TLS, '10.0.0.1:80')).toBeNull();
    expect(sniFor(TLS, '[2001:db8::1]')).toBeNull();
    expect(sniFor({ ...TLS, sni: 'backend.internal' }, 'api.example.com')).toBe('backend.internal');
  });
});

describe('upstream certificate names (Envoy SAN matcher)', () => {
  const dns = new X509Certificate(
    rsaLeaf(['*.example.com', 'exact.example.org', '10.1.2.3'], { tag: 'san-unit' }).certPem,
  );
  const uri = new X509Certificate(
    opensslLeaf({
      key: 'ec',
      cn: 'svc',
      sans: ['URI:spiffe://cluster.local/ns/a/sa/b', 'email:ops@example.com'],
    }).certPem,
  );

  it('DNS SANs: exact, or one label under a wildcard', () => {
    expect(certificateNames(dns, ['exact.example.org'])).toBe(true);
    expect(certificateNames(dns, ['api.example.com'])).toBe(true);
    expect(certificateNames(dns, ['a.b.example.com'])).toBe(false);
    expect(certificateNames(dns, ['example.com'])).toBe(false);
    expect(certificateNames(dns, ['nope.example.net', 'exact.example.org'])).toBe(true);
  });

  it('IP, URI and email SANs match exactly; the subject CN is never read', () => {
    expect(certificateNames(dns, ['10.1.2.3'])).toBe(true);
    expect(certificateNames(dns, ['10.1.2.4'])).toBe(false);
    expect(certificateNames(uri, ['spiffe://cluster.local/ns/a/sa/b'])).toBe(true);
    expect(certificateNames(uri, ['spiffe://cluster.local/ns/a/sa/c'])).toBe(false);
    expect(certificateNames(uri, ['ops@example.com'])).toBe(true);
    expect(certificateNames(uri, ['svc'])).toBe(false);
  });
});

describe("Envoy's transport failure reason", () => {
  it('verification failures are CERTIFICATE_VERIFY_FAILED', () => {
    for (const code of [
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'CERT_HAS_EXPIRED',
      'CERT_REVOKED',
      'SELF_SIGNED_CERT_IN_CHAIN',
    ])
      expect(transportFailureReasonOf({ code })).toBe(
        'TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end',
      );
  });

  it('alerts from the upstream carry BoringSSL’s alert reason number', () => {
    expect(
      transportFailureReasonOf({
        code: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
        message:
          'error:0A000410:SSL routines::sslv3 alert handshake failure:ssl/record/rec_layer_s3.c:916:SSL alert number 40',
      }),
    ).toBe('TLS_error:|268436496:SSL routines:OPENSSL_internal:SSLV3_ALERT_HANDSHAKE_FAILURE:TLS_error_end');
    expect(
      transportFailureReasonOf({
        code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
        message: 'x SSL alert number 116',
      }),
    ).toBe(
      'TLS_error:|268436572:SSL routines:OPENSSL_internal:TLSV1_ALERT_CERTIFICATE_REQUIRED:TLS_error_end',
    );
  });

  it('a plain-text peer is WRONG_VERSION_NUMBER; plain socket errors have no reason', () => {
    expect(
      transportFailureReasonOf({
        code: 'ERR_SSL_WRONG_VERSION_NUMBER',
        message: 'error:0A00010B:SSL routines',
      }),
    ).toBe('TLS_error:|268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end');
    expect(transportFailureReasonOf({ code: 'ECONNREFUSED' })).toBeNull();
    expect(transportFailureReasonOf(null)).toBeNull();
  });
});
