import { describe, expect, it } from 'vitest';
import { named, res, run } from './fixtures.ts';

const svc = res('Service', 'db', { ports: [{ port: 443 }] });

describe('destinationrule TLS without CA (IST0128, IST0129) and unknown host (IST0174)', () => {
  it('reports SIMPLE/MUTUAL without caCertificates at destination and port level', () => {
    const ds = run([
      svc,
      res('DestinationRule', 'both', {
        host: 'db',
        trafficPolicy: {
          tls: { mode: 'MUTUAL' },
          portLevelSettings: [{ port: { number: 443 }, tls: { mode: 'SIMPLE' } }],
        },
      }),
      res('DestinationRule', 'with-ca', {
        host: 'db',
        trafficPolicy: { tls: { mode: 'SIMPLE', caCertificates: '/ca.pem' } },
      }),
      res('DestinationRule', 'istio-mutual', {
        host: 'db',
        trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } },
      }),
    ]);
    expect(named(ds, 'IST0128')).toEqual(['IST0128 DestinationRule default/both']);
    expect(named(ds, 'IST0129')).toEqual(['IST0129 DestinationRule default/both']);
    expect(ds.find((d) => d.istioCode === 'IST0129')!.message).toContain('port 443');
  });

  it('credentialName counts as a CA only with a workloadSelector', () => {
    const ds = run([
      svc,
      res('DestinationRule', 'no-selector', {
        host: 'db',
        trafficPolicy: { tls: { mode: 'SIMPLE', credentialName: 'c' } },
      }),
      res('DestinationRule', 'selector', {
        host: 'db',
        workloadSelector: { matchLabels: { app: 'db' } },
        trafficPolicy: { tls: { mode: 'SIMPLE', credentialName: 'c' } },
      }),
    ]);
    expect(named(ds, 'IST0128')).toEqual(['IST0128 DestinationRule default/no-selector']);
  });

  it('IST0174 for a host no Service or ServiceEntry declares; wildcard hosts skipped', () => {
    const ds = run([
      svc,
      res('DestinationRule', 'fake', { host: 'fake-svc.default.svc.cluster.local' }),
      res('DestinationRule', 'real', { host: 'db.default.svc.cluster.local' }),
      res('DestinationRule', 'wild', { host: '*.example.com' }),
    ]);
    expect(named(ds, 'IST0174')).toEqual(['IST0174 DestinationRule default/fake']);
    expect(ds.find((d) => d.istioCode === 'IST0174')!.level).toBe('warning');
  });
});
