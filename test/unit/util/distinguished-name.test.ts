/**
 * Subject and issuer names as nginx ($ssl_client_s_dn) and Envoy (XFCC Subject) write them, both
 * through OpenSSL's XN_FLAG_RFC2253: each certificate is made by the openssl CLI, and what
 * rfc2253 makes of Node's reading of it must equal `openssl x509 -nameopt RFC2253`.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rfc2253 } from '../../../src/util/distinguished-name.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'sluice-dn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A self-signed certificate with this subject (openssl -subj syntax), and openssl's RFC 2253 form of it. */
function made(subj: string, n: number): { cert: X509Certificate; openssl: string } {
  const pem = path.join(dir, `c${n}.pem`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      path.join(dir, `k${n}.pem`),
    ].concat(['-out', pem, '-days', '1', '-utf8', '-multivalue-rdn', '-subj', subj]),
    { stdio: 'pipe' },
  );
  const printed = execFileSync('openssl', ['x509', '-in', pem, '-noout', '-subject', '-nameopt', 'RFC2253'], {
    encoding: 'utf8',
  });
  return { cert: new X509Certificate(readFileSync(pem)), openssl: printed.trim().replace(/^subject=/, '') };
}

describe('rfc2253', () => {
  it.each([
    ['/C=DE/O=Example/CN=client.example.com'],
    ['/O=Real/CN=evil, O=Trusted'],
    ['/O=Real/CN=a+serialNumber=5/OU=one'],
    ['/OU=a"b\\\\c;d<e>f/CN=x'],
    ['/O=Café Zürich/CN=ünïcode'],
  ])('%s reads as openssl writes it', (subj) => {
    const { cert, openssl } = made(subj, Math.floor(Math.random() * 1e9));
    expect(rfc2253(cert.subject)).toBe(openssl);
  });

  it('the most specific RDN first; a value cannot pose as another RDN', () => {
    expect(rfc2253('C=DE\nO=Example\nCN=client')).toBe('CN=client,O=Example,C=DE');
    expect(rfc2253('O=Real\nCN=evil\\, O=Trusted')).toBe('CN=evil\\, O=Trusted,O=Real');
  });
});
