import { describe, expect, it } from 'vitest';
import { findRoute, findTlsServer, findVirtualHost, queryParamsOf } from '../../../src/snapshot/lookup.ts';
import type { Route, RouteTable, TlsServer, VirtualHost } from '../../../src/snapshot/types.ts';
import { requestView } from '../../simulate/compile-yaml.ts';

const vh = (name: string, routes: Route[] = []): VirtualHost => ({ name, routes });

function table(): RouteTable {
  return {
    name: 'http.8080',
    exact: new Map([['a.example.com', vh('a.example.com')]]),
    wildcards: [
      { suffix: '.b.example.com', vhost: vh('*.b.example.com') },
      { suffix: '.example.com', vhost: vh('*.example.com') },
    ],
    catchAll: vh('*'),
  };
}

describe('findVirtualHost', () => {
  it.each([
    ['a.example.com', 'a.example.com'],
    ['x.b.example.com', '*.b.example.com'],
    ['b.example.com', '*.example.com'],
    ['c.example.com', '*.example.com'],
    ['example.com', '*'],
    ['other.io', '*'],
  ])('GW-11 %s → %s (exact > longest suffix > *)', (host, want) => {
    expect(findVirtualHost(table(), host)?.name).toBe(want);
  });

  it('GW-12 no catch-all → null', () => {
    expect(findVirtualHost({ ...table(), catchAll: null }, 'other.io')).toBeNull();
  });

  it('GW-8 a wildcard covers at least one character', () => {
    expect(findVirtualHost({ ...table(), catchAll: null }, '.example.com')).toBeNull();
  });
});

describe('findRoute', () => {
  const route = (name: string, ok: boolean): Route => ({
    name,
    source: null,
    conditions: [{ field: 'uri', expected: 'x', test: () => ok }],
    action: { kind: 'direct', status: 200, body: null },
    requestHeaders: null,
    responseHeaders: null,
  });
  it('VS-4 first route whose conditions all hold wins', () => {
    expect(
      findRoute(vh('h', [route('a', false), route('b', true), route('c', true)]), requestView())?.name,
    ).toBe('b');
    expect(findRoute(vh('h', [route('a', false)]), requestView())).toBeNull();
  });
});

describe('queryParamsOf', () => {
  it('VS-11 parses lazily, once, first value wins, ?key is empty', () => {
    const req = requestView({ query: 'a=1&a=2&flag&b=x%2Fy&=z&&c=' });
    const params = queryParamsOf(req);
    expect(Object.fromEntries(params)).toEqual({ a: '1', flag: '', b: 'x/y', '': 'z', c: '' });
    expect(queryParamsOf(req)).toBe(params);
    expect(req.queryParams).toBe(params);
  });
  it('bad percent-encoding is kept raw', () => {
    expect(queryParamsOf(requestView({ query: 'a=%zz' })).get('a')).toBe('%zz');
  });
});

describe('findTlsServer', () => {
  const server = (name: string, sniHosts: string[]): TlsServer => ({
    server: { gatewayNamespace: 'ns', gatewayName: name, serverIndex: 0, portName: 'https', hosts: sniHosts },
    sniHosts,
    table: { name, exact: new Map(), wildcards: [], catchAll: null },
    credential: null,
  });
  const servers = [
    server('wild', ['*.example.com']),
    server('deep', ['*.a.example.com']),
    server('exact', ['a.example.com']),
  ];
  it.each([
    ['a.example.com', 'exact'],
    ['x.a.example.com', 'deep'],
    ['b.example.com', 'wild'],
    ['B.Example.com', 'wild'],
    ['other.io', null],
    ['', null],
  ])('GW-14 SNI %s → %s (exact > longest wildcard)', (sni, want) => {
    expect(findTlsServer(servers, sni)?.server.gatewayName ?? null).toBe(want);
  });
  it('GW-14 a * server takes unknown SNI and clients without SNI', () => {
    const all = [...servers, server('any', ['*'])];
    expect(findTlsServer(all, 'other.io')?.server.gatewayName).toBe('any');
    expect(findTlsServer(all, '')?.server.gatewayName).toBe('any');
  });
});
