/**
 * The rate-limit benchmark's config (bench/ratelimit.ts, bench/micro/rate-limit.bench.ts): one
 * VirtualService to the upstream and, but for `none`, one rule keyed by client address whose
 * limit is never reached, Local or Global (MeshConfig redis on `redisPort`).
 */
import type { FilterContext } from '../../src/dataplane/filters/filter.ts';
import { admitRequest, selectRoute } from '../../src/snapshot/route-request.ts';
import type { HttpFilter } from '../../src/snapshot/types.ts';
import { compileBenchYaml, loopbackRequest } from '../lib/compile-yaml.ts';

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

/**
 * A request to the bench's route, admitted and routed as the pipeline hands it to the filters
 * (the micro benchmark and the pipeline's unit test run the rate-limit filter on it).
 */
export function routedBenchRequest(mode: 'local' | 'global'): {
  ctx: FilterContext;
  filters: readonly HttpFilter[];
} {
  const snapshot = compileBenchYaml(rateLimitBenchConfig(8080, 18081, mode, 6379));
  const req = Object.assign(loopbackRequest({ host: RATE_LIMIT_BENCH_HOST }), {
    responseHeadersToAdd: null,
    deferredLimits: null,
    finished: false,
    res: { destroyed: false },
  });
  if (admitRequest(req, snapshot, '/item/42', `${RATE_LIMIT_BENCH_HOST}:8080`, '') !== null)
    throw new Error('refused');
  if (selectRoute(req) !== null) throw new Error('no route');
  return { ctx: req as unknown as FilterContext, filters: req.route?.filters ?? [] };
}
