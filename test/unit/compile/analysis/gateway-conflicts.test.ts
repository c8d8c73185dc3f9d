import { describe, expect, it } from 'vitest';
import { gateway, httpServer, named, run } from './fixtures.ts';

describe('gateway conflicts (IST0145, IST0101 selector; GW-19)', () => {
  it('reports both Gateways when one selector, port and host are declared twice, as errors', () => {
    const ds = run([
      gateway('beta', [httpServer(['foo.bar'], 80, 'tcp', 'TCP')]),
      gateway('alpha', [httpServer(['foo.bar'], 80)]),
    ]);
    expect(named(ds, 'IST0145')).toEqual(['IST0145 Gateway default/beta', 'IST0145 Gateway default/alpha']);
    const d = ds.find((x) => x.istioCode === 'IST0145')!;
    expect(d.level).toBe('error');
    expect(d.code).toBe('SLUICE_PORT_CONFLICT');
    expect(d.related).toMatchObject({ kind: 'Gateway', name: 'alpha' });
    expect(d.message).toContain('Gateway default/alpha');
  });

  it('uses SLUICE_HOST_CONFLICT when the protocols agree, and matches wildcards', () => {
    const ds = run([
      gateway('a', [httpServer(['*.example.com'], 443, 'https', 'HTTPS')]),
      gateway('b', [httpServer(['shop.example.com'], 443, 'https', 'HTTPS')]),
    ]);
    expect(ds.filter((d) => d.istioCode === 'IST0145').map((d) => d.code)).toEqual([
      'SLUICE_HOST_CONFLICT',
      'SLUICE_HOST_CONFLICT',
    ]);
  });

  it('only warns when both servers are plaintext HTTP, which Istio merges (GW-19)', () => {
    const ds = run([
      gateway('bookinfo', [httpServer(['*'], 80)]),
      gateway('httpbin', [httpServer(['*'], 80)]),
    ]);
    expect(named(ds, 'IST0145')).toEqual([
      'IST0145 Gateway default/bookinfo',
      'IST0145 Gateway default/httpbin',
    ]);
    expect(ds.filter((d) => d.istioCode === 'IST0145').map((d) => d.level)).toEqual(['warning', 'warning']);
  });

  it('does not report different ports, different selectors or different hosts', () => {
    const ds = run([
      gateway('a', [httpServer(['foo.bar'], 80)]),
      gateway('b', [httpServer(['foo.bar'], 8080)]),
      gateway('c', [httpServer(['foo.bar'], 81)], { selector: { istio: 'egressgateway' } }),
      gateway('d', [httpServer(['foo.bar'], 81)]),
      gateway('e', [httpServer(['other.bar'], 80)]),
    ]);
    expect(named(ds, 'IST0145')).toEqual([]);
  });

  it('warns (IST0101) about a Gateway whose selector does not select this sluice', () => {
    const ds = run([gateway('egress', [httpServer(['a.com'])], { selector: { istio: 'egressgateway' } })]);
    expect(named(ds, 'IST0101')).toEqual(['IST0101 Gateway default/egress']);
    expect(ds[0]!.level).toBe('warning');
    expect(ds[0]!.message).toContain('istio=egressgateway');
  });
});
