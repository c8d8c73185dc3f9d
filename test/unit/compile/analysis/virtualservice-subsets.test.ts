import { describe, expect, it } from 'vitest';
import { gateway, httpServer, httpVs, named, res, run } from './fixtures.ts';

const ratings = res('Service', 'ratings', { ports: [{ port: 80 }] });
const dr = res('DestinationRule', 'ratings', {
  host: 'ratings',
  subsets: [{ name: 'v1', labels: { version: 'v1' } }],
});

describe('virtualservice subsets (IST0101 subset, IST0140)', () => {
  it('IST0101 for a subset no DestinationRule defines, short and FQDN hosts alike', () => {
    const ds = run([
      ratings,
      dr,
      httpVs('ok', 'a.example.com', { host: 'ratings', subset: 'v1' }),
      httpVs('fqdn-ok', 'b.example.com', { host: 'ratings.default.svc.cluster.local', subset: 'v1' }),
      httpVs('bogus', 'c.example.com', { host: 'ratings', subset: 'v9' }),
      res('VirtualService', 'mirror-bogus', {
        hosts: ['d.example.com'],
        http: [
          { route: [{ destination: { host: 'ratings' } }], mirror: { host: 'ratings', subset: 'nope' } },
        ],
      }),
    ]);
    expect(named(ds, 'IST0101')).toEqual([
      'IST0101 VirtualService default/bogus',
      'IST0101 VirtualService default/mirror-bogus',
    ]);
    expect(ds.find((d) => d.subject?.name === 'bogus')!.message).toContain('does not define it');
  });

  it('IST0140 when a gateway VirtualService skips the subsets a mesh VirtualService routes its host to', () => {
    const gw = gateway('gw', [httpServer(['t1.com', 't2.com'])], { namespace: 'istio-system' });
    const mesh = res('VirtualService', 'ratings-mesh', {
      hosts: ['ratings'],
      http: [{ route: [{ destination: { host: 'ratings', subset: 'v1' } }] }],
    });
    const ds = run([
      ratings,
      dr,
      gw,
      mesh,
      httpVs('ingress-plain', 't1.com', { host: 'ratings' }, { gateways: ['istio-system/gw'] }),
      httpVs(
        'ingress-subset',
        't2.com',
        { host: 'ratings', subset: 'v1' },
        { gateways: ['istio-system/gw'] },
      ),
    ]);
    expect(named(ds, 'IST0140')).toEqual(['IST0140 VirtualService default/ingress-plain']);
    expect(ds.find((d) => d.istioCode === 'IST0140')!.related).toMatchObject({
      kind: 'VirtualService',
      name: 'ratings-mesh',
    });
  });
});
