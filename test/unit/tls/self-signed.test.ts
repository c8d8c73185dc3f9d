import { X509Certificate, createPrivateKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { makeCa, makeServerCert } from '../../../src/tls/self-signed.ts';

describe('development certificates', () => {
  it('makes a CA and a leaf it signed, with the requested names and a matching key', () => {
    const ca = makeCa();
    const leaf = makeServerCert(ca, ['shop.example.com', '*.example.com', '127.0.0.1']);
    const caCert = new X509Certificate(ca.certPem);
    const cert = new X509Certificate(leaf.certPem);
    expect(caCert.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkHost('shop.example.com')).toBe('shop.example.com');
    // checkHost returns the SAN that matched.
    expect(cert.checkHost('a.example.com')).toBe('*.example.com');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('other.test')).toBeUndefined();
    expect(cert.checkPrivateKey(createPrivateKey(leaf.keyPem))).toBe(true);
  });
});
