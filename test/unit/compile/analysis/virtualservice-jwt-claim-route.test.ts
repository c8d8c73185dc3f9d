import { describe, expect, it } from 'vitest';
import { gateway, httpServer, named, res, run } from './fixtures.ts';

const gw = gateway('foo-gateway', [httpServer(['foo.com'])]);
const vs = res('VirtualService', 'foo', {
  hosts: ['foo.com'],
  gateways: ['foo-gateway'],
  http: [
    {
      match: [{ uri: { prefix: '/' }, headers: { '@request.auth.claims.foo': { exact: 'foo' } } }],
      route: [{ destination: { host: 'x.example.com' } }],
    },
  ],
});

describe('JWT claim routing without RequestAuthentication (IST0149; VS-9)', () => {
  it('warns when no RequestAuthentication selects this gateway', () => {
    const ds = run([gw, vs]);
    expect(named(ds, 'IST0149')).toEqual(['IST0149 VirtualService default/foo']);
    const d = ds.find((x) => x.istioCode === 'IST0149')!;
    expect(d.level).toBe('warning');
    expect(d.message).toContain('@request.auth.claims.foo');
  });

  it('is satisfied by a RequestAuthentication in the root or gateway namespace selecting it', () => {
    const ra = res(
      'RequestAuthentication',
      'jwt',
      { selector: { matchLabels: { istio: 'ingressgateway' } }, jwtRules: [{ issuer: 'x' }] },
      { namespace: 'istio-system' },
    );
    expect(named(run([gw, vs, ra]), 'IST0149')).toEqual([]);
  });

  it('ignores a RequestAuthentication that selects other workloads or lives elsewhere', () => {
    const other = res(
      'RequestAuthentication',
      'jwt',
      { selector: { matchLabels: { app: 'x' } }, jwtRules: [{ issuer: 'x' }] },
      { namespace: 'istio-system' },
    );
    const elsewhere = res(
      'RequestAuthentication',
      'jwt2',
      { jwtRules: [{ issuer: 'x' }] },
      { namespace: 'default' },
    );
    expect(named(run([gw, vs, other, elsewhere]), 'IST0149')).toEqual(['IST0149 VirtualService default/foo']);
  });

  it('ignores Gateways that do not select this sluice and missing Gateways', () => {
    const egress = gateway('foo-gateway', [httpServer(['foo.com'])], {
      selector: { istio: 'egressgateway' },
    });
    expect(named(run([egress, vs]), 'IST0149')).toEqual([]);
    expect(named(run([vs]), 'IST0149')).toEqual([]);
  });
});
