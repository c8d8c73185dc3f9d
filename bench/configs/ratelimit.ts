/**
 * The rate-limit benchmark's config (bench/ratelimit.ts, bench/micro/rate-limit.bench.ts): one
 * VirtualService to the upstream and, but for `none`, one rule keyed by client address whose
 * limit is never reached, Local or Global (MeshConfig redis on `redisPort`).
 */
export const RATE_LIMIT_BENCH_HOST = 'shop.bench.test';

export type Mode = 'none' | 'local' | 'global' | 'redis-down';

export function rateLimitBenchConfig(port: number, upstream: number, mode: Mode, redisPort: number): string {
  const base = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: bench, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: ${port}, name: http, protocol: HTTP }, hosts: ['*'] }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: primary, namespace: default }
spec:
  hosts: [primary.bench.internal]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { http: ${upstream} } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: bench, namespace: default }
spec:
  hosts: [${RATE_LIMIT_BENCH_HOST}]
  gateways: [istio-system/bench]
  http:
    - route: [{ destination: { host: primary.bench.internal } }]
`;
  if (mode === 'none') return base;
  return `${base}---
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: bench, namespace: default }
spec:
  targetRefs: [{ kind: VirtualService, name: bench }]
  storage: ${mode === 'local' ? 'Local' : 'Global'}
  rules:
    - name: per-client
      key: [{ remoteAddress: {} }]
      limit: { requests: 1000000000, unit: Second }
${
  mode === 'local'
    ? ''
    : `---
apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
  redis: { url: "redis://127.0.0.1:${redisPort}", keyPrefix: "bench:" }
`
}`;
}
