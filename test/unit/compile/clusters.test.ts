import { describe, expect, it } from 'vitest';
import type { Cluster } from '../../../src/snapshot/types.ts';
import { compileYaml, routeOf, vsYaml } from '../../simulate/compile-yaml.ts';

function clusterOf(
  http: string,
  extra: string,
  identity = {},
): { cluster: Cluster | null; name: string; messages: readonly string[] } {
  const c = compileYaml(vsYaml(http, { extra }), identity);
  const r = routeOf(c.snapshot, 8080, 'a.example.com', '/');
  if (!r || r.action.kind !== 'forward') throw new Error(`no forward route:\n${c.messages.join('\n')}`);
  const d = r.action.destinations[0]!;
  return { cluster: d.cluster, name: d.clusterName, messages: c.messages };
}

const SE_STATIC = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts: [ext.example.org]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]
  resolution: STATIC
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}}
  - {address: 10.0.0.2, ports: {http: 9999}, labels: {version: v2}}`;

const SVC = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- addresses: [10.1.0.1]
  conditions: {ready: true}
- addresses: [10.1.0.2]
  conditions: {ready: false}
ports: [{name: http, port: 8080}]`;

/** The cluster of Service `web` under a DestinationRule with this `trafficPolicy` (a flow mapping). */
function withPolicy(trafficPolicy: string): Cluster {
  const dr = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: default}
spec:
  host: web
  trafficPolicy: ${trafficPolicy}`;
  return clusterOf('  - route: [{destination: {host: web}}]', `${SVC}\n---\n${dr}`).cluster!;
}

describe('clusters', () => {
  it('VS-19 port = destination port, else the only service port, else the server port', () => {
    expect(clusterOf('  - route: [{destination: {host: web, port: {number: 80}}}]', SVC).name).toBe(
      'outbound|80||web.default.svc.cluster.local',
    );
    expect(clusterOf('  - route: [{destination: {host: web}}]', SVC).name).toBe(
      'outbound|80||web.default.svc.cluster.local',
    );
    const multi = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ports: [{name: http, port: 80}, {name: grpc, port: 8080}]`;
    expect(clusterOf('  - route: [{destination: {host: web}}]', multi).name).toBe(
      'outbound|8080||web.default.svc.cluster.local',
    );
  });

  it('VS-19 unknown port or subset of a known host → null cluster (503 NC)', () => {
    expect(clusterOf('  - route: [{destination: {host: web, port: {number: 81}}}]', SVC).cluster).toBeNull();
    const r = clusterOf('  - route: [{destination: {host: web, subset: v9}}]', SVC);
    expect(r.cluster).toBeNull();
    expect(r.name).toBe('outbound|80|v9|web.default.svc.cluster.local');
  });

  it('a host outside the registry is resolved by DNS (sluice; Istio gives 503 NC)', () => {
    const { cluster } = clusterOf('  - route: [{destination: {host: nowhere}}]', SVC);
    expect(cluster?.endpoints).toEqual({
      kind: 'dns',
      // No port on the destination and none known: the Gateway server's port (VS-19).
      endpoints: [{ address: 'nowhere.default.svc.cluster.local', port: 8080, weight: 1, labels: {} }],
      roundRobin: false,
    });
  });

  it('SE-2/SE-3 STATIC endpoints with port name → target port maps and labels', () => {
    const { cluster } = clusterOf('  - route: [{destination: {host: ext.example.org}}]', SE_STATIC);
    expect(cluster?.endpoints).toEqual({
      kind: 'static',
      endpoints: [
        { address: '10.0.0.1', port: 8080, weight: 1, labels: { version: 'v1' } },
        { address: '10.0.0.2', port: 9999, weight: 1, labels: { version: 'v2' } },
      ],
    });
  });

  it('SE-2 DNS without endpoints resolves the hosts themselves', () => {
    const se = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts: [httpbin.org]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS`;
    const { cluster } = clusterOf('  - route: [{destination: {host: httpbin.org}}]', se);
    expect(cluster?.name).toBe('outbound|443||httpbin.org');
    expect(cluster?.endpoints).toEqual({
      kind: 'dns',
      roundRobin: false,
      endpoints: [{ address: 'httpbin.org', port: 443, weight: 1, labels: {} }],
    });
  });

  it('SE-2 NONE is not forwarded yet (null cluster, warning)', () => {
    const se = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts: [none.example.org]
  ports: [{number: 80, name: http, protocol: HTTP}]`;
    const r = clusterOf('  - route: [{destination: {host: none.example.org}}]', se);
    expect(r.cluster).toBeNull();
    expect(r.messages.some((m) => m.includes('resolution NONE') && m.includes('SLUICE_NO_ENDPOINTS'))).toBe(
      true,
    );
  });

  it('Service + EndpointSlices: ready endpoints, port by name', () => {
    const { cluster } = clusterOf('  - route: [{destination: {host: web}}]', SVC);
    expect(cluster?.endpoints).toEqual({
      kind: 'static',
      endpoints: [{ address: '10.1.0.1', port: 8080, weight: 1, labels: {} }],
    });
  });

  it('a Service without EndpointSlices is reached by its cluster DNS name', () => {
    const svc = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ports: [{name: http, port: 80}]`;
    const { cluster } = clusterOf('  - route: [{destination: {host: web}}]', svc);
    expect(cluster?.endpoints).toEqual({
      kind: 'dns',
      roundRobin: false,
      endpoints: [{ address: 'web.default.svc.cluster.local', port: 80, weight: 1, labels: {} }],
    });
  });

  it('DR-2 subset labels select ServiceEntry endpoints; DR-4 subset lb overrides', () => {
    const dr = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ext, namespace: default}
spec:
  host: ext.example.org
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
  subsets:
  - name: v2
    labels: {version: v2}
    trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  - name: v1
    labels: {version: v1}`;
    const v2 = clusterOf(
      '  - route: [{destination: {host: ext.example.org, subset: v2}}]',
      `${SE_STATIC}\n---\n${dr}`,
    ).cluster;
    expect(v2?.endpoints.endpoints.map((e) => e.address)).toEqual(['10.0.0.2']);
    expect(v2?.lb).toBe('ROUND_ROBIN');
    const v1 = clusterOf(
      '  - route: [{destination: {host: ext.example.org, subset: v1}}]',
      `${SE_STATIC}\n---\n${dr}`,
    ).cluster;
    expect(v1?.lb).toBe('RANDOM');
    expect(v1?.name).toBe('outbound|80|v1|ext.example.org');
  });

  it('DR-4/DR-6 defaults: LEAST_REQUEST, connect 10 s, idle 1 h, no caps', () => {
    const { cluster } = clusterOf('  - route: [{destination: {host: web}}]', SVC);
    expect(cluster).toMatchObject({
      lb: 'LEAST_REQUEST',
      connectTimeoutMs: 10_000,
      idleTimeoutMs: 3_600_000,
      maxRequestsPerConnection: 0,
      maxConnections: Infinity,
      maxPendingRequests: Infinity,
      maxRequests: Infinity,
    });
  });

  it('DR-3/DR-6 connection pool and port-level settings', () => {
    const dr = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: default}
spec:
  host: web
  trafficPolicy:
    loadBalancer: {simple: LEAST_CONN}
    connectionPool:
      tcp: {maxConnections: 10, connectTimeout: 2s}
      http: {http1MaxPendingRequests: 5, http2MaxRequests: 50, maxRequestsPerConnection: 1, idleTimeout: 30s}
    portLevelSettings:
    - port: {number: 81}
      loadBalancer: {simple: ROUND_ROBIN}`;
    const { cluster } = clusterOf('  - route: [{destination: {host: web}}]', `${SVC}\n---\n${dr}`);
    expect(cluster).toMatchObject({
      lb: 'LEAST_REQUEST',
      connectTimeoutMs: 2000,
      idleTimeoutMs: 30_000,
      maxRequestsPerConnection: 1,
      maxConnections: 10,
      maxPendingRequests: 5,
      maxRequests: 50,
    });
  });

  it('DR-7 legacy consecutiveErrors counts gateway errors only, as Istio maps it; the newer fields override', () => {
    const outlierOf = (od: string): Cluster['outlier'] => withPolicy(`{outlierDetection: ${od}}`).outlier;
    expect(outlierOf('{consecutiveErrors: 3}')).toMatchObject({ consecutive5xx: 0, consecutiveGateway: 3 });
    expect(outlierOf('{consecutiveErrors: 3, consecutive5xxErrors: 2}')).toMatchObject({
      consecutive5xx: 2,
      consecutiveGateway: 3,
    });
    expect(outlierOf('{consecutiveErrors: 3, consecutiveGatewayErrors: 0}')).toMatchObject({
      consecutive5xx: 0,
      consecutiveGateway: 0,
    });
    expect(outlierOf('{interval: 1s}')).toMatchObject({ consecutive5xx: 5, consecutiveGateway: 0 });
  });

  it('DR-4 warmup: Envoy slow start on ROUND_ROBIN and LEAST_REQUEST only; warmup wins over warmupDurationSecs', () => {
    const warmupOf = (lb: string): Cluster['warmup'] => withPolicy(`{loadBalancer: ${lb}}`).warmup;
    expect(
      warmupOf('{simple: ROUND_ROBIN, warmup: {duration: 30s, minimumPercent: 5, aggression: 2}}'),
    ).toEqual({
      windowMs: 30_000,
      aggression: 2,
      minWeight: 0.05,
    });
    expect(warmupOf('{warmupDurationSecs: 20s}')).toEqual({
      windowMs: 20_000,
      aggression: 1,
      minWeight: 0.1,
    });
    expect(warmupOf('{warmupDurationSecs: 20s, warmup: {duration: 5s}}')?.windowMs).toBe(5000);
    expect(warmupOf('{simple: RANDOM, warmup: {duration: 5s}}')).toBeUndefined();
    expect(warmupOf('{consistentHash: {httpHeaderName: x}, warmup: {duration: 5s}}')).toBeUndefined();
  });

  it('DR-1 the gateway namespace DR wins over the service namespace DR; exact before wildcard', () => {
    const drs = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: in-svc-ns, namespace: default}
spec: {host: web.default.svc.cluster.local, trafficPolicy: {loadBalancer: {simple: RANDOM}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: in-gw-ns, namespace: istio-system}
spec: {host: web.default.svc.cluster.local, trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: wild, namespace: istio-system}
spec: {host: "*.default.svc.cluster.local", trafficPolicy: {loadBalancer: {simple: RANDOM}}}`;
    expect(clusterOf('  - route: [{destination: {host: web}}]', `${SVC}\n---\n${drs}`).cluster?.lb).toBe(
      'ROUND_ROBIN',
    );
  });

  it('cluster key changes with settings and stays the same for equal ones', () => {
    const a = clusterOf('  - route: [{destination: {host: web}}]', SVC).cluster?.key;
    const b = clusterOf('  - route: [{destination: {host: web}}]', SVC).cluster?.key;
    const dr = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: default}
spec: {host: web, trafficPolicy: {loadBalancer: {simple: RANDOM}}}`;
    const c = clusterOf('  - route: [{destination: {host: web}}]', `${SVC}\n---\n${dr}`).cluster?.key;
    expect(a).toBe(b);
    expect(a).not.toBe(c);
  });
});

describe('clusters: ExternalName', () => {
  it('an ExternalName Service is reached through its external name', () => {
    const svc = `apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec:
  type: ExternalName
  externalName: api.example.net
  ports: [{name: https, port: 443}]`;
    const { cluster } = clusterOf('  - route: [{destination: {host: ext}}]', svc);
    expect(cluster?.name).toBe('outbound|443||ext.default.svc.cluster.local');
    expect(cluster?.endpoints).toEqual({
      kind: 'dns',
      roundRobin: false,
      endpoints: [{ address: 'api.example.net', port: 443, weight: 1, labels: {} }],
    });
  });
});
