import { describe, expect, it } from 'vitest';
import { httpVs, named, res, run } from './fixtures.ts';

const reviews = res('Service', 'reviews', { ports: [{ name: 'tcp', port: 42 }] });
const twoPorts = res('Service', 'two', {
  ports: [
    { name: 'http', port: 80 },
    { name: 'https', port: 443 },
  ],
});

describe('virtualservice destination hosts (IST0101, IST0112; VS-19)', () => {
  it('accepts short names and FQDNs of a Service, and ServiceEntry hosts, wildcard ones included', () => {
    const ds = run([
      reviews,
      res('ServiceEntry', 'eu', { hosts: ['*.eu.bookinfo.com'] }),
      res('ServiceEntry', 'ext', { hosts: ['external.org'] }),
      httpVs('a', 'a.example.com', { host: 'reviews' }),
      httpVs('b', 'b.example.com', { host: 'reviews.default.svc.cluster.local' }),
      httpVs('c', 'c.example.com', { host: 'x.eu.bookinfo.com' }),
      httpVs('d', 'd.example.com', { host: 'external.org' }),
    ]);
    expect(named(ds, 'IST0101')).toEqual([]);
  });

  it('reports an unknown destination and mirror host as a warning naming the host', () => {
    const ds = run([
      reviews,
      httpVs('bogus', 'a.example.com', { host: 'reviews-bogus' }),
      res('VirtualService', 'mirror', {
        hosts: ['m.example.com'],
        http: [{ route: [{ destination: { host: 'reviews' } }], mirror: { host: 'nope' } }],
      }),
    ]);
    expect(named(ds, 'IST0101')).toEqual([
      'IST0101 VirtualService default/bogus',
      'IST0101 VirtualService default/mirror',
    ]);
    const bogus = ds.find((d) => d.subject?.name === 'bogus')!;
    expect(bogus.level).toBe('warning');
    expect(bogus.code).toBe('SLUICE_REF_NOT_FOUND');
    expect(bogus.path).toBe('spec.http[0].route[0].destination.host');
    expect(bogus.message).toContain('"reviews-bogus"');
  });

  it('respects ServiceEntry exportTo and the Service exportTo annotation', () => {
    const ds = run([
      res(
        'ServiceEntry',
        'private',
        { hosts: ['other.bookinfo.com'], exportTo: ['.'] },
        { namespace: 'other' },
      ),
      res(
        'ServiceEntry',
        'shared',
        { hosts: ['abc.bookinfo.com'], exportTo: ['default'] },
        { namespace: 'other' },
      ),
      res(
        'Service',
        'details',
        { ports: [{ port: 9080 }] },
        { annotations: { 'networking.istio.io/exportTo': 'banana' } },
      ),
      httpVs('to-private', 'a.example.com', { host: 'other.bookinfo.com' }),
      httpVs('to-shared', 'b.example.com', { host: 'abc.bookinfo.com' }),
      res(
        'VirtualService',
        'from-istio-system',
        { hosts: ['d'], http: [{ route: [{ destination: { host: 'details.default.svc.cluster.local' } }] }] },
        { namespace: 'istio-system' },
      ),
      res(
        'VirtualService',
        'from-banana',
        { hosts: ['d'], http: [{ route: [{ destination: { host: 'details.default.svc.cluster.local' } }] }] },
        { namespace: 'banana' },
      ),
    ]);
    expect(named(ds, 'IST0101').sort()).toEqual([
      'IST0101 VirtualService default/to-private',
      'IST0101 VirtualService istio-system/from-istio-system',
    ]);
  });

  it('looks a host up in the namespaces the VirtualService exportTo names (Istio semantics)', () => {
    const hello = res(
      'Service',
      'hello',
      { ports: [{ port: 9080 }] },
      { namespace: 'hello', annotations: { 'networking.istio.io/exportTo': 'hello1,.' } },
    );
    const ds = run([
      hello,
      res(
        'VirtualService',
        'ok',
        { hosts: ['hello'], http: [{ route: [{ destination: { host: 'hello.hello.svc.cluster.local' } }] }] },
        { namespace: 'hello1' },
      ),
      res(
        'VirtualService',
        'bogus',
        {
          hosts: ['hello'],
          exportTo: ['bogus'],
          http: [{ route: [{ destination: { host: 'hello.hello.svc.cluster.local' } }] }],
        },
        { namespace: 'hello' },
      ),
    ]);
    expect(named(ds, 'IST0101')).toEqual(['IST0101 VirtualService hello/bogus']);
  });

  it('IST0112: a Service with several ports needs destination.port, an error naming both resources', () => {
    const ds = run([
      twoPorts,
      httpVs('missing', 'a.example.com', { host: 'two' }),
      httpVs('present', 'b.example.com', { host: 'two', port: { number: 80 } }),
    ]);
    expect(named(ds, 'IST0112')).toEqual(['IST0112 VirtualService default/missing']);
    const d = ds.find((x) => x.istioCode === 'IST0112')!;
    expect(d.level).toBe('error');
    expect(d.related).toMatchObject({ kind: 'Service', namespace: 'default', name: 'two' });
    expect(d.message).toContain('[80, 443]');
  });

  it('IST0101 host:port: a port the Service does not declare', () => {
    const ds = run([reviews, httpVs('badport', 'a.example.com', { host: 'reviews', port: { number: 999 } })]);
    expect(named(ds, 'IST0101')).toEqual(['IST0101 VirtualService default/badport']);
    expect(ds.find((d) => d.istioCode === 'IST0101')!.message).toContain('reviews:999');
  });
});
