import { describe, expect, it } from 'vitest';
import {
  gatewayRef,
  hostsOverlap,
  resourceNameFromHost,
  toFqdn,
} from '../../../../src/compile/analysis/hosts.ts';
import { serverHostsForNamespace } from '../../../../src/compile/hosts.ts';

describe('analysis host helpers (GW-7, GW-8, VS-1, VS-19)', () => {
  it.each([
    ['a.com', 'a.com', true],
    ['a.com', 'b.com', false],
    ['*.a.com', 'x.a.com', true],
    ['*.a.com', 'x.y.a.com', true],
    ['*.a.com', 'a.com', false],
    ['x.a.com', '*.a.com', true],
    ['*.a.com', '*.x.a.com', true],
    ['*', 'anything.com', true],
    ['*', '', false],
  ])('hostsOverlap(%s, %s) is %s', (a, b, want) => {
    expect(hostsOverlap(a, b)).toBe(want);
  });

  it('expands short names against the namespace only', () => {
    expect(toFqdn('default', 'reviews')).toBe('reviews.default.svc.cluster.local');
    expect(toFqdn('default', 'reviews.other')).toBe('reviews.other');
    expect(toFqdn('default', '*')).toBe('*');
    expect(resourceNameFromHost('default', 'reviews.prod.svc.cluster.local')).toBe('prod/reviews');
    expect(resourceNameFromHost('default', 'reviews')).toBe('default/reviews');
  });

  it('resolves VirtualService gateway references', () => {
    expect(gatewayRef('default', 'gw')).toEqual({ namespace: 'default', name: 'gw' });
    expect(gatewayRef('default', 'istio-system/gw')).toEqual({ namespace: 'istio-system', name: 'gw' });
    expect(gatewayRef('default', './gw')).toEqual({ namespace: 'default', name: 'gw' });
    expect(gatewayRef('default', 'gw.istio-system.svc.cluster.local')).toEqual({
      namespace: 'istio-system',
      name: 'gw',
    });
  });

  it('offers server hosts to the namespaces their prefix allows', () => {
    const entries = ['a.com', './b.com', '*/c.com', 'prod/d.com'];
    expect(serverHostsForNamespace(entries, 'istio-system', 'istio-system')).toEqual([
      'a.com',
      'b.com',
      'c.com',
    ]);
    expect(serverHostsForNamespace(entries, 'istio-system', 'prod')).toEqual(['a.com', 'c.com', 'd.com']);
  });
});
