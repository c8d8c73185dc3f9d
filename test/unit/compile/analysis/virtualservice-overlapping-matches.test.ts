import { describe, expect, it } from 'vitest';
import { named, res, run } from './fixtures.ts';

const dest = [{ destination: { host: 'x.example.com' } }];

function vs(name: string, http: unknown[], extra: Record<string, unknown> = {}) {
  return res('VirtualService', name, { hosts: ['a.example.com'], http, ...extra });
}

describe('unreachable rules and ineffective matches (IST0130, IST0131; VS-4)', () => {
  it('IST0130 for a rule after a rule without matches', () => {
    const ds = run([vs('catch-all-first', [{ route: dest }, { route: dest }])]);
    expect(named(ds, 'IST0130')).toEqual(['IST0130 VirtualService default/catch-all-first']);
    expect(ds.find((d) => d.istioCode === 'IST0130')!.path).toBe('spec.http[1]');
  });

  it('IST0131 for a duplicate match (names ignored) and IST0130 when all its matches are duplicates', () => {
    const ds = run([
      vs('dup', [
        { name: 'first', match: [{ name: 'a', uri: { prefix: '/api' } }], route: dest },
        { name: 'second', match: [{ uri: { prefix: '/api' } }], route: dest },
      ]),
      vs('almost', [
        { match: [{ uri: { prefix: '/api' } }], route: dest },
        { match: [{ uri: { prefix: '/api' } }, { uri: { prefix: '/potato' } }], route: dest },
      ]),
    ]);
    expect(named(ds, 'IST0130')).toEqual(['IST0130 VirtualService default/dup']);
    expect(named(ds, 'IST0131')).toEqual([
      'IST0131 VirtualService default/dup',
      'IST0131 VirtualService default/almost',
    ]);
    expect(ds.find((d) => d.istioCode === 'IST0131')!.level).toBe('info');
  });

  it('IST0131 for a longer prefix after a shorter one with the same method (GET when unset)', () => {
    const ds = run([
      vs('overlap', [
        { match: [{ uri: { prefix: '/api/v1/product' } }], route: dest },
        { match: [{ uri: { prefix: '/api/v1/products' }, method: { exact: 'GET' } }], route: dest },
      ]),
      vs('other-method', [
        { match: [{ uri: { prefix: '/api/v1/prod' }, method: { exact: 'GET' } }], route: dest },
        { match: [{ uri: { prefix: '/api/v1/products' }, method: { exact: 'POST' } }], route: dest },
      ]),
      vs('exact-after-prefix', [
        { match: [{ uri: { prefix: '/' } }, { uri: { exact: '/' }, method: { exact: 'GET' } }], route: dest },
      ]),
    ]);
    expect(named(ds, 'IST0131')).toEqual(['IST0131 VirtualService default/overlap']);
  });

  it('checks tcp and tls rules for duplicates too', () => {
    const ds = run([
      res('VirtualService', 'tcp', {
        hosts: ['*'],
        gateways: ['gw'],
        tcp: [
          { match: [{ port: 31400 }], route: dest },
          { match: [{ port: 31400 }], route: dest },
        ],
      }),
      res('VirtualService', 'tls', {
        hosts: ['a.example.com'],
        tls: [
          { match: [{ sniHosts: ['a.example.com'] }], route: dest },
          { match: [{ sniHosts: ['a.example.com'] }], route: dest },
        ],
      }),
    ]);
    expect(named(ds, 'IST0130')).toEqual([
      'IST0130 VirtualService default/tcp',
      'IST0130 VirtualService default/tls',
    ]);
  });
});
