import { describe, expect, it } from 'vitest';
import { gateway, httpServer, named, res, run } from './fixtures.ts';

function vs(name: string, hosts: string[], gateways: string[], namespace = 'default') {
  return res(
    'VirtualService',
    name,
    { hosts, gateways, http: [{ route: [{ destination: { host: 'x.example.com' } }] }] },
    { namespace },
  );
}

describe('virtualservice gateways (IST0101, IST0132; VS-1, GW-7)', () => {
  it('reports a missing Gateway once, as IST0101 naming the Gateway', () => {
    const ds = run([vs('bogus', ['*'], ['nope'])]);
    expect(named(ds, 'IST0101')).toContain('IST0101 VirtualService default/bogus');
    expect(named(ds, 'IST0132')).toEqual([]);
    const d = ds.find((x) => x.istioCode === 'IST0101' && x.subject?.name === 'bogus')!;
    expect(d.related).toMatchObject({ kind: 'Gateway', namespace: 'default', name: 'nope' });
  });

  it('ignores mesh and resolves ns/name, ./name and the legacy FQDN form', () => {
    const gw = gateway('gw', [httpServer(['a.example.com'])], { namespace: 'istio-system' });
    const ds = run([
      gw,
      vs('full', ['a.example.com'], ['istio-system/gw', 'mesh']),
      vs('dot', ['a.example.com'], ['./gw'], 'istio-system'),
      vs('legacy', ['a.example.com'], ['gw.istio-system.svc.cluster.local']),
    ]);
    expect(ds.filter((d) => d.path?.startsWith('spec.gateways'))).toEqual([]);
    expect(named(ds, 'IST0132')).toEqual([]);
  });

  it('IST0132 when no VirtualService host is served by the Gateway, wildcards considered', () => {
    const gw = gateway('gw', [httpServer(['*.testing-02.com', 'web.other.com'])], {
      namespace: 'istio-system',
    });
    const ds = run([
      gw,
      vs('wild-ok', ['web.testing-02.com'], ['istio-system/gw']),
      vs('exact-ok', ['web.other.com', 'nope.com'], ['istio-system/gw']),
      vs('wrong', ['web.wrong.com', 'users.other.com'], ['istio-system/gw']),
    ]);
    expect(named(ds, 'IST0132')).toEqual(['IST0132 VirtualService default/wrong']);
    const d = ds.find((x) => x.istioCode === 'IST0132')!;
    expect(d.level).toBe('warning');
    expect(d.code).toBe('SLUICE_HOST_NOT_IN_GATEWAY');
    expect(d.related).toMatchObject({ kind: 'Gateway', namespace: 'istio-system', name: 'gw' });
  });

  it('IST0132 honours the namespace part of server hosts (GW-7)', () => {
    const dot = gateway('dot', [httpServer(['./t.com'])], { namespace: 'istio-system' });
    const star = gateway('star', [httpServer(['*/t.com'])], { namespace: 'istio-system' });
    const all = gateway('all', [httpServer(['*/*'])], { namespace: 'istio-system' });
    const ds = run([
      dot,
      star,
      all,
      vs('same-ns', ['t.com'], ['istio-system/dot'], 'istio-system'),
      vs('other-ns', ['t.com'], ['istio-system/dot']),
      vs('star', ['t.com'], ['istio-system/star']),
      vs('all', ['t.com'], ['istio-system/all']),
    ]);
    expect(named(ds, 'IST0132')).toEqual(['IST0132 VirtualService default/other-ns']);
  });
});
