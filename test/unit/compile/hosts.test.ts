import { describe, expect, it } from 'vitest';
import {
  hostSubsetOf,
  hostsMatch,
  intersectHosts,
  serverDnsNames,
  serverHostsForNamespace,
  splitServerHost,
  toFqdn,
} from '../../../src/compile/hosts.ts';

describe('hosts', () => {
  it.each([
    ['*.example.com', 'a.example.com', true],
    ['*.example.com', 'a.b.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*', 'anything.io', true],
    ['*.com', '*.example.com', true],
    ['*.example.com', '*.com', true],
    ['*foo.example.com', 'xfoo.example.com', true],
    ['a.example.com', 'a.example.com', true],
    ['a.example.com', 'b.example.com', false],
  ])('GW-8 %s matches %s: %s', (a, b, want) => {
    expect(hostsMatch(a, b)).toBe(want);
    expect(hostsMatch(b, a)).toBe(want);
  });

  it.each([
    ['a.example.com', '*.example.com', true],
    ['*.example.com', 'a.example.com', false],
    ['*.a.example.com', '*.example.com', true],
    ['*.example.com', '*.a.example.com', false],
    ['*.example.com', '*', true],
    ['*', '*.example.com', false],
  ])('GW-8 %s subset of %s: %s', (a, b, want) => {
    expect(hostSubsetOf(a, b)).toBe(want);
  });

  it.each([
    [['*.example.com'], ['a.example.com'], ['a.example.com']],
    [['a.example.com'], ['*.example.com'], ['a.example.com']],
    [['*'], ['*.example.com'], ['*.example.com']],
    [['*.example.com'], ['example.com'], []],
    [
      ['foo.com', '*.net'],
      ['*.com', 'bar.net'],
      ['foo.com', 'bar.net'],
    ],
    [['*.example.com', 'a.example.com'], ['a.example.com'], ['a.example.com']],
  ])('GW-9 server %j ∩ VS %j names vhosts %j (the more specific)', (server, vs, want) => {
    expect(intersectHosts(server, vs)).toEqual(want);
  });

  it('GW-7 ns/host, ./host and */host scope server hosts to the VirtualService namespace', () => {
    const hosts = ['shop/a.example.com', './b.example.com', '*/c.example.com', 'd.example.com'];
    expect(serverHostsForNamespace(hosts, 'gwns', 'shop')).toEqual([
      'a.example.com',
      'c.example.com',
      'd.example.com',
    ]);
    expect(serverHostsForNamespace(hosts, 'gwns', 'gwns')).toEqual([
      'b.example.com',
      'c.example.com',
      'd.example.com',
    ]);
    expect(serverHostsForNamespace(hosts, 'gwns', 'other')).toEqual(['c.example.com', 'd.example.com']);
    expect(splitServerHost('./x.io', 'gwns')).toEqual({ namespace: 'gwns', host: 'x.io' });
  });

  it('GW-14 server dns names drop the namespace', () => {
    expect(serverDnsNames(['ns/a.io', '*/b.io', 'a.io', '*'])).toEqual(['a.io', 'b.io', '*']);
  });

  it.each([
    ['reviews', 'shop', 'reviews.shop.svc.cluster.local'],
    ['Reviews', 'shop', 'reviews.shop.svc.cluster.local'],
    ['reviews.other', 'shop', 'reviews.other'],
    ['*', 'shop', '*'],
    ['10.0.0.1', 'shop', '10.0.0.1'],
    ['httpbin.org', 'shop', 'httpbin.org'],
  ])('VS-3/VS-19 short name %s in %s → %s', (h, ns, want) => {
    expect(toFqdn(h, ns)).toBe(want);
  });
});
