/**
 * compile/crl.ts: CRL files checked against the client CA bundle at compile time (GW-16), so what
 * OpenSSL would do to clients (refuse every one of a CA) is said before a client meets it.
 */
import { describe, expect, it } from 'vitest';
import { checkCrls, parseCrlDer } from '../../../src/compile/crl.ts';
import { makeCa } from '../../../src/tls/self-signed.ts';
import { rsaLeaf, testCa } from '../../support/certs.ts';
import { makeCrl } from '../../support/crl.ts';

const OTHER = makeCa({ commonName: 'second CA' });
const NOW = Date.now();

describe('checkCrls (GW-16)', () => {
  it('one CRL per CA in one file: every CA covered, no findings', () => {
    const crls =
      makeCrl(testCa(), [rsaLeaf(['x'], { clientAuth: true, tag: 'crl-unit' }).certPem]) + makeCrl(OTHER, []);
    expect(checkCrls(crls, testCa().certPem + OTHER.certPem, NOW)).toEqual({ error: null, warnings: [] });
  });

  it('a CA of the bundle without a CRL: its clients will be refused (warning)', () => {
    const found = checkCrls(makeCrl(testCa(), []), testCa().certPem + OTHER.certPem, NOW);
    expect(found.error).toBeNull();
    expect(found.warnings).toEqual([
      expect.stringMatching(/^no CRL from client CA CN=second CA.*are refused/),
    ]);
  });

  it('not yet valid, and the fields read from the DER', () => {
    const later = makeCrl(testCa(), [], {
      lastUpdate: new Date(NOW + 86_400_000),
      nextUpdate: new Date(NOW + 2 * 86_400_000),
    });
    expect(checkCrls(later, testCa().certPem, NOW).warnings).toEqual([
      expect.stringMatching(
        /^the CRL is not valid before .*: until then every client certificate of .* is refused/,
      ),
    ]);
    const der = Buffer.from(later.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    const parsed = parseCrlDer(der);
    if (typeof parsed === 'string') throw new Error(parsed);
    expect(parsed.signatureAlgorithm).toBe('1.2.840.113549.1.1.11');
    expect(Math.abs(parsed.nextUpdateMs! - (NOW + 2 * 86_400_000))).toBeLessThan(2000);
    expect(parseCrlDer(der.subarray(0, der.length - 1))).toBe('not a DER X.509 CRL');
  });
});
