import { beforeAll, describe, expect, it } from 'vitest';
import { makeCa, makeServerCert, type PemPair } from '../../../../src/tls/self-signed.ts';
import { privateBytes } from '../../../../src/model/private-bytes.ts';
import { gateway, named, res, run } from './fixtures.ts';

const NOW = Date.parse('2026-06-01T00:00:00Z');

function b64(s: string): ReturnType<typeof privateBytes> {
  return privateBytes(Buffer.from(s).toString('base64'));
}

function secret(name: string, data: Record<string, string>, namespace = 'istio-system') {
  return res(
    'Secret',
    name,
    {
      type: 'kubernetes.io/tls',
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
    },
    { namespace },
  );
}

function tlsGateway(name: string, credentialName: string, selector?: Record<string, string>) {
  return gateway(
    name,
    [
      {
        port: { number: 443, name: 'https', protocol: 'HTTPS' },
        hosts: [`${name}.example.com`],
        tls: { mode: 'SIMPLE', credentialName },
      },
    ],
    selector ? { selector } : {},
  );
}

describe('gateway credentials (IST0101 credentialName, IST0161; GW-15)', () => {
  let good: PemPair;
  let expired: PemPair;
  let other: PemPair;
  beforeAll(() => {
    const ca = makeCa({ now: new Date('2026-01-01T00:00:00Z') });
    good = makeServerCert(ca, ['a.example.com'], { now: new Date('2026-01-01T00:00:00Z'), days: 365 });
    expired = makeServerCert(ca, ['a.example.com'], { now: new Date('2025-01-01T00:00:00Z'), days: 30 });
    other = makeServerCert(ca, ['b.example.com'], { now: new Date('2026-01-01T00:00:00Z'), days: 365 });
  });

  it('accepts a valid Secret in the gateway namespace under tls.crt/tls.key or cert/key', () => {
    const ds = run(
      [
        secret('tls', { 'tls.crt': good.certPem, 'tls.key': good.keyPem }),
        secret('generic', { cert: good.certPem, key: good.keyPem }),
        tlsGateway('a', 'tls'),
        tlsGateway('b', 'generic'),
      ],
      NOW,
    );
    expect(ds).toEqual([]);
  });

  it('warns (IST0101) when the Secret is missing, or only in another namespace', () => {
    const ds = run(
      [
        secret('elsewhere', { 'tls.crt': good.certPem, 'tls.key': good.keyPem }, 'default'),
        tlsGateway('a', 'nope'),
        tlsGateway('b', 'elsewhere'),
      ],
      NOW,
    );
    expect(named(ds, 'IST0101')).toEqual(['IST0101 Gateway default/a', 'IST0101 Gateway default/b']);
    expect(ds.every((d) => d.level === 'warning')).toBe(true);
    expect(ds[1]!.related).toMatchObject({ kind: 'Secret', namespace: 'istio-system', name: 'elsewhere' });
  });

  it('a Gateway annotated with an ACME issuer gets an info, not a warning, for its not-yet-issued credential', () => {
    const annotated = {
      ...tlsGateway('a', 'shop'),
      annotations: { 'sluice.dev/acme-issuer': 'letsencrypt' },
    };
    const ds = run([annotated, tlsGateway('b', 'nope')], NOW);
    const byGateway = Object.fromEntries(ds.map((d) => [d.subject?.name, d]));
    expect(byGateway['a']).toMatchObject({ level: 'info', code: 'SLUICE_REF_NOT_FOUND' });
    expect(byGateway['a']!.message).toContain('ACME issuer "letsencrypt"');
    expect(byGateway['b']).toMatchObject({ level: 'warning', code: 'SLUICE_REF_NOT_FOUND' });
  });

  it('IST0161 errors for missing keys, garbage, expired certificates and mismatched keys, never echoing data', () => {
    const ds = run(
      [
        secret('missing-key', { 'tls.cert': 'hush' }),
        secret('garbage', { 'tls.crt': 'hush hush', 'tls.key': 'secret secret' }),
        secret('expired', { 'tls.crt': expired.certPem, 'tls.key': expired.keyPem }),
        secret('mismatch', { 'tls.crt': good.certPem, 'tls.key': other.keyPem }),
        tlsGateway('missing-key', 'missing-key'),
        tlsGateway('garbage', 'garbage'),
        tlsGateway('expired', 'expired'),
        tlsGateway('mismatch', 'mismatch'),
      ],
      NOW,
    );
    expect(named(ds, 'IST0161')).toEqual([
      'IST0161 Gateway default/missing-key',
      'IST0161 Gateway default/garbage',
      'IST0161 Gateway default/expired',
      'IST0161 Gateway default/mismatch',
    ]);
    expect(ds.every((d) => d.level === 'error' && d.code === 'SLUICE_TLS_CONFIG')).toBe(true);
    const text = ds.map((d) => d.message).join('\n');
    expect(text).toContain('keys found: tls.cert');
    expect(text).toContain('expired on 2025-01-31');
    expect(text).toContain('does not match');
    expect(text).not.toContain('hush');
    expect(text).not.toContain('PRIVATE KEY');
  });

  it('checks only Gateways that select this sluice', () => {
    const ds = run([tlsGateway('custom', 'nope', { istio: 'custom-gateway' })], NOW);
    expect(named(ds, 'IST0101')).toEqual(['IST0101 Gateway default/custom']);
    expect(ds[0]!.path).toBe('spec.selector');
  });

  it('IST0138 warns when two Gateways on the same workload share a certificate', () => {
    const ds = run(
      [
        secret('tls', { 'tls.crt': good.certPem, 'tls.key': good.keyPem }),
        tlsGateway('one', 'tls'),
        tlsGateway('two', 'tls'),
      ],
      NOW,
    );
    expect(named(ds, 'IST0138')).toEqual(['IST0138 Gateway default/one', 'IST0138 Gateway default/two']);
  });
});
