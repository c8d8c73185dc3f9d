/**
 * The address --publish-service publishes, per Service type, as ingress-nginx's
 * statusAddressFromService reads it.
 */
import { describe, expect, it } from 'vitest';
import { serviceAddresses } from '../../../../src/providers/kubernetes/ingress-status.ts';
import type { KubeObject } from '../../../../src/providers/kubernetes/client.ts';

const svc = (spec: Record<string, unknown>, status?: Record<string, unknown>): KubeObject => ({
  metadata: { name: 'sluice', namespace: 'istio-system' },
  spec,
  ...(status !== undefined ? { status } : {}),
});

describe('serviceAddresses', () => {
  it("a LoadBalancer's status ingress (IP or hostname) and its externalIPs", () => {
    expect(
      serviceAddresses(
        svc(
          { type: 'LoadBalancer', clusterIP: '10.0.0.9', externalIPs: ['192.0.2.4'] },
          { loadBalancer: { ingress: [{ ip: '203.0.113.7' }, { hostname: 'lb.example.com' }] } },
        ),
      ),
    ).toEqual([{ ip: '203.0.113.7' }, { hostname: 'lb.example.com' }, { ip: '192.0.2.4' }]);
    // Not provisioned yet: nothing, not the cluster IP.
    expect(serviceAddresses(svc({ type: 'LoadBalancer', clusterIP: '10.0.0.9' }))).toEqual([]);
  });

  it("a NodePort's externalIPs, else its cluster IP; a ClusterIP's cluster IP; an ExternalName's name", () => {
    expect(
      serviceAddresses(svc({ type: 'NodePort', clusterIP: '10.0.0.9', externalIPs: ['192.0.2.4'] })),
    ).toEqual([{ ip: '192.0.2.4' }]);
    expect(serviceAddresses(svc({ type: 'NodePort', clusterIP: '10.0.0.9' }))).toEqual([{ ip: '10.0.0.9' }]);
    expect(serviceAddresses(svc({ clusterIP: 'fd00::9' }))).toEqual([{ ip: 'fd00::9' }]);
    expect(serviceAddresses(svc({ clusterIP: 'None' }))).toEqual([]);
    expect(serviceAddresses(svc({ type: 'ExternalName', externalName: 'edge.example.com' }))).toEqual([
      { hostname: 'edge.example.com' },
    ]);
    expect(serviceAddresses(undefined)).toEqual([]);
  });
});
