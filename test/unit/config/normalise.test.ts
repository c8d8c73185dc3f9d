import { describe, expect, it } from 'vitest';
import { loadResources } from '../../../src/config/index.ts';
import type { GatewaySpec, VirtualServiceSpec } from '../../../src/model/networking.ts';

function one<S>(text: string): { spec: S; namespace: string; creationTimestamp?: string } {
  const r = loadResources([{ file: 'n.yaml', text }], { defaultNamespace: 'shop' });
  expect(r.diagnostics.filter((d) => d.level === 'error')).toEqual([]);
  return r.resources.resources[0] as unknown as { spec: S; namespace: string; creationTimestamp?: string };
}

describe('normalise', () => {
  it('GW-7 lowercases Gateway hosts and upper-cases protocols', () => {
    const g = one<GatewaySpec>(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  servers:
  - port: {number: 80, name: http, protocol: Http}
    hosts: ["./Shop.Example.COM"]
`);
    expect(g.spec.servers[0]!.hosts).toEqual(['./shop.example.com']);
    expect(g.spec.servers[0]!.port.protocol).toBe('HTTP');
  });

  it('lowercases VirtualService hosts, destination hosts, sniHosts and header-match keys; keeps short hosts short', () => {
    const v = one<VirtualServiceSpec>(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: shop
  creationTimestamp: "2024-01-02T03:04:05Z"
spec:
  hosts: [Shop.Example.com]
  gateways: [gw]
  http:
  - match:
    - headers: {X-User: {exact: Bob}}
      withoutHeaders: {X-Debug: {}}
      uri: {}
    route: [{destination: {host: Reviews}}]
  tls:
  - match: [{sniHosts: [SHOP.example.com]}]
    route: [{destination: {host: Backend.Shop.svc.cluster.local}}]
`);
    expect(v.spec.hosts).toEqual(['shop.example.com']);
    const m = v.spec.http![0]!.match![0]!;
    expect(m.headers).toEqual({ 'x-user': { exact: 'Bob' } });
    expect(m.withoutHeaders).toEqual({ 'x-debug': {} });
    expect(m.uri).toBeUndefined();
    expect(v.spec.http![0]!.route![0]!.destination.host).toBe('reviews');
    expect(v.spec.tls![0]!.match[0]!.sniHosts).toEqual(['shop.example.com']);
    expect(v.spec.tls![0]!.route![0]!.destination.host).toBe('backend.shop.svc.cluster.local');
    expect(v.creationTimestamp).toBe('2024-01-02T03:04:05Z');
  });

  it('puts documents without metadata.namespace into the default namespace', () => {
    const v = one<VirtualServiceSpec>(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop}
spec:
  hosts: [a.example.com]
  gateways: [gw]
  http: [{route: [{destination: {host: a}}]}]
`);
    expect(v.namespace).toBe('shop');
  });
});
