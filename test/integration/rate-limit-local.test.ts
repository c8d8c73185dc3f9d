/**
 * RateLimitPolicy with Local storage end to end: a real gateway in-process, a real upstream that
 * counts what reaches it. Envoy's 429 (Retry-After, x-envoy-ratelimited, flag RL), the response
 * header modes, every key kind, to/when, exempt clients, shadow mode, and where each target
 * places the filter (Gateway before or after authorization, a VirtualService, one named route).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startEcho, type Upstream } from '../support/upstreams.ts';
import { startGatewayFromYaml, type TestGateway } from '../support/gateway.ts';
import { trafficYaml, type Logged } from '../support/traffic-config.ts';
import { makeHmacKey, sign } from '../support/jwt.ts';
import { until } from '../support/until.ts';
import type { RequestContext } from '../../src/dataplane/request-context.ts';
import { closeAllPools } from '../../src/upstream/pools.ts';
import { Registry } from 'prom-client';
import { createRateLimitMetrics } from '../../src/observability/ratelimit-metrics.ts';
import { explainRequest } from '../../src/snapshot/explain.ts';
import { explainPolicy } from '../../src/dataplane/explain-filters.ts';
import { compileYaml } from '../simulate/compile-yaml.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  await closeAllPools(true);
});

interface Decision {
  readonly policy: string;
  readonly rule: string;
  readonly result: string;
}

interface Started {
  readonly gw: TestGateway;
  readonly up: Upstream;
  readonly log: Logged[];
  readonly decisions: Decision[];
}

const ROUTE = `  - route: [{destination: {host: shop.internal}}]\n`;

function policy(spec: string, name = 'limits', namespace = 'default'): string {
  return `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: ${name}, namespace: ${namespace}}
spec:
${spec}`;
}

async function start(
  http: string,
  extra: string,
  mesh?: string,
  opts: { delayMs?: number; registry?: Registry } = {},
): Promise<Started> {
  const up = await startEcho({
    name: 'shop',
    ...(opts.delayMs !== undefined ? { delayMs: opts.delayMs } : {}),
  });
  cleanups.push(() => up.close());
  const log: Logged[] = [];
  const decisions: Decision[] = [];
  const gw = await startGatewayFromYaml(
    trafficYaml({ shop: up.port }, http, { extra, ...(mesh ? { mesh } : {}) }),
    {
      onRequestDone: (ctx: RequestContext) =>
        log.push({ status: ctx.status, flags: ctx.responseFlags, details: ctx.responseDetails }),
      rateLimit: {
        observer: opts.registry
          ? createRateLimitMetrics(opts.registry)
          : {
              decision: (policy, rule, result) => decisions.push({ policy, rule, result }),
              redisLatency: () => undefined,
              breaker: () => undefined,
            },
      },
    },
  );
  cleanups.push(() => gw.close());
  return { gw, up, log, decisions };
}

async function get(
  gw: TestGateway,
  path = '/',
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const res = await request(gw.url(path), { method, headers: { host: 'shop.example.com', ...headers } });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

async function statuses(gw: TestGateway, n: number, path = '/', headers: Record<string, string> = {}) {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await get(gw, path, headers)).status);
  return out;
}

const vsTarget = `  targetRefs: [{group: networking.istio.io, kind: VirtualService, name: shop}]\n`;

describe('RateLimitPolicy, Local storage', () => {
  it('over the limit: 429 with Retry-After, x-envoy-ratelimited and flag RL; the upstream never sees it', async () => {
    const { gw, up, log, decisions } = await start(
      ROUTE,
      policy(`${vsTarget}  rules:
  - name: all
    algorithm: FixedWindow
    limit: {requests: 3, unit: Day}
`),
    );
    expect(await statuses(gw, 3)).toEqual([200, 200, 200]);
    const r = await get(gw);
    expect(r.status).toBe(429);
    expect(r.body).toBe('');
    expect(r.headers['x-envoy-ratelimited']).toBe('true');
    const retry = Number(r.headers['retry-after']);
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(86_400);
    expect(r.headers['server']).toBe('istio-envoy');
    expect(up.seen).toHaveLength(3);
    expect(log.at(-1)).toEqual({ status: 429, flags: 'RL', details: 'request_rate_limited' });
    expect(decisions.map((d) => d.result)).toEqual(['ok', 'ok', 'ok', 'over_limit']);
    expect(decisions[0]).toEqual({ policy: 'default/limits', rule: 'all', result: 'ok' });
  });

  it('responseHeaders Draft: RateLimit-Policy and RateLimit on admitted and refused responses', async () => {
    const { gw } = await start(
      ROUTE,
      policy(`${vsTarget}  responseHeaders: Draft
  rules:
  - name: per-day
    algorithm: FixedWindow
    limit: {requests: 2, unit: Day}
`),
    );
    const a = await get(gw);
    expect(a.headers['ratelimit-policy']).toBe('"per-day";q=2;w=86400');
    expect(a.headers['ratelimit']).toMatch(/^"per-day";r=1;t=\d+$/);
    await get(gw);
    const c = await get(gw);
    expect(c.status).toBe(429);
    expect(c.headers['ratelimit']).toMatch(/^"per-day";r=0;t=\d+$/);
    expect(c.headers['retry-after']).toBeDefined();
  });

  it('responseHeaders XRateLimit: the X-RateLimit-* trio Envoy sends', async () => {
    const { gw } = await start(
      ROUTE,
      policy(`${vsTarget}  responseHeaders: XRateLimit
  rules:
  - name: per-second
    limit: {requests: 5, unit: Second, burst: 10}
`),
    );
    const a = await get(gw);
    expect(a.status).toBe(200);
    expect(a.headers['x-ratelimit-limit']).toBe('10, 5;w=1');
    expect(a.headers['x-ratelimit-remaining']).toBe('9');
    expect(Number(a.headers['x-ratelimit-reset'])).toBeGreaterThanOrEqual(0);
  });

  it('responseHeaders None (default): no rate-limit headers on admitted responses', async () => {
    const { gw } = await start(
      ROUTE,
      policy(`${vsTarget}  rules:\n  - name: r\n    limit: {requests: 5, unit: Minute}\n`),
    );
    const a = await get(gw);
    expect(a.status).toBe(200);
    expect(Object.keys(a.headers).filter((h) => h.includes('ratelimit'))).toEqual([]);
  });

  it('requestHeader key: one bucket per value; a request without the header is not counted', async () => {
    const { gw } = await start(
      ROUTE,
      policy(`${vsTarget}  rules:
  - name: per-user
    key: [{requestHeader: {name: X-User}}]
    algorithm: FixedWindow
    limit: {requests: 1, unit: Day}
`),
    );
    expect(await statuses(gw, 2, '/', { 'x-user': 'a' })).toEqual([200, 429]);
    expect(await statuses(gw, 2, '/', { 'x-user': 'b' })).toEqual([200, 429]);
    expect(await statuses(gw, 3)).toEqual([200, 200, 200]);
  });

  it('remoteAddress key: the client IP after trusted-proxy handling (numTrustedProxies)', async () => {
    const { gw } = await start(
      ROUTE,
      policy(`${vsTarget}  rules:
  - name: per-ip
    key: [{remoteAddress: {}}]
    algorithm: FixedWindow
    limit: {requests: 1, unit: Day}
`),
      `  gatewayTopology: {numTrustedProxies: 1}\n`,
    );
    expect(await statuses(gw, 2, '/', { 'x-forwarded-for': '203.0.113.7' })).toEqual([200, 429]);
    expect(await statuses(gw, 1, '/', { 'x-forwarded-for': '203.0.113.8' })).toEqual([200]);
  });

  it('path, host and constant keys', async () => {
    const { gw } = await start(
      ROUTE,
      policy(`${vsTarget}  rules:
  - name: per-path
    key: [{host: {}}, {path: {}}, {constant: shop}]
    algorithm: SlidingWindow
    limit: {requests: 1, unit: Minute}
`),
    );
    expect(await statuses(gw, 2, '/a?x=1')).toEqual([200, 429]);
    // The query is not part of the path key.
    expect(await statuses(gw, 1, '/a?x=2')).toEqual([429]);
    expect(await statuses(gw, 2, '/b')).toEqual([200, 429]);
  });

  it('routeName key: one bucket per chosen route', async () => {
    const { gw } = await start(
      `  - name: one
    match: [{uri: {prefix: /one}}]
    route: [{destination: {host: shop.internal}}]
  - name: two
    route: [{destination: {host: shop.internal}}]
`,
      policy(`${vsTarget}  rules:
  - name: per-route
    key: [{routeName: {}}]
    algorithm: FixedWindow
    limit: {requests: 1, unit: Day}
`),
    );
    expect(await statuses(gw, 2, '/one')).toEqual([200, 429]);
    expect(await statuses(gw, 2, '/two')).toEqual([200, 429]);
  });

  it('requestAuthClaim key: one bucket per JWT subject (AfterAuth), a request without a token is not counted', async () => {
    const key = makeHmacKey('k1');
    const jwks = JSON.stringify({ keys: [key.jwk] });
    const { gw } = await start(
      ROUTE,
      `${policy(`${vsTarget}  rules:
  - name: per-sub
    when: [{key: "request.auth.claims[iss]", values: ["https://id.example.com"]}]
    key: [{requestAuthClaim: sub}]
    algorithm: FixedWindow
    limit: {requests: 1, unit: Day}
`)}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: istio-system}
spec:
  jwtRules:
  - issuer: https://id.example.com
    jwks: '${jwks}'
`,
    );
    const alice = await sign(key, { iss: 'https://id.example.com', sub: 'alice' });
    const bob = await sign(key, { iss: 'https://id.example.com', sub: 'bob' });
    expect(await statuses(gw, 2, '/', { authorization: `Bearer ${alice}` })).toEqual([200, 429]);
    expect(await statuses(gw, 2, '/', { authorization: `Bearer ${bob}` })).toEqual([200, 429]);
    expect(await statuses(gw, 2)).toEqual([200, 200]);
  });

  it('to/when: only the requests they match are counted', async () => {
    const { gw } = await start(
      ROUTE,
      policy(`${vsTarget}  rules:
  - name: writes
    to: [{operation: {methods: [POST], paths: ["/v1/*"]}}]
    algorithm: FixedWindow
    limit: {requests: 1, unit: Day}
`),
    );
    expect((await get(gw, '/v1/x', {}, 'POST')).status).toBe(200);
    expect((await get(gw, '/v1/x', {}, 'POST')).status).toBe(429);
    expect(await statuses(gw, 2, '/v1/x')).toEqual([200, 200]);
    expect((await get(gw, '/v2/x', {}, 'POST')).status).toBe(200);
  });

  it('exempt clients are never counted', async () => {
    const { gw, decisions } = await start(
      ROUTE,
      policy(`${vsTarget}  rules:
  - name: all
    algorithm: FixedWindow
    limit: {requests: 1, unit: Day}
    exempt: {remoteIpBlocks: ["127.0.0.0/8"]}
`),
    );
    expect(await statuses(gw, 4)).toEqual([200, 200, 200, 200]);
    expect(decisions.map((d) => d.result)).toEqual(['exempt', 'exempt', 'exempt', 'exempt']);
  });

  it('shadowMode: counted and reported over the limit, never refused', async () => {
    const { gw, decisions, up } = await start(
      ROUTE,
      policy(`${vsTarget}  responseHeaders: Draft
  rules:
  - name: shadow
    shadowMode: true
    algorithm: FixedWindow
    limit: {requests: 2, unit: Day}
`),
    );
    const r = await Promise.all([1, 2, 3, 4].map(() => get(gw)));
    expect(r.map((x) => x.status)).toEqual([200, 200, 200, 200]);
    expect(up.seen).toHaveLength(4);
    expect(decisions.map((d) => d.result).sort()).toEqual([
      'ok',
      'ok',
      'shadow_over_limit',
      'shadow_over_limit',
    ]);
    // A shadow rule does not speak in the response headers.
    expect(r[0]!.headers['ratelimit']).toBeUndefined();
  });

  it('a shadow rule and an enforced rule: the enforced one refuses, and a refused request counts in neither', async () => {
    const { gw, decisions } = await start(
      ROUTE,
      policy(`${vsTarget}  rules:
  - name: enforced
    algorithm: FixedWindow
    limit: {requests: 1, unit: Day}
  - name: watched
    shadowMode: true
    algorithm: FixedWindow
    limit: {requests: 1, unit: Day}
`),
    );
    expect(await statuses(gw, 3)).toEqual([200, 429, 429]);
    expect(decisions.filter((d) => d.rule === 'watched').map((d) => d.result)).toEqual([
      'ok',
      'shadow_over_limit',
      'shadow_over_limit',
    ]);
  });

  it('sectionName limits only the named http route', async () => {
    const { gw } = await start(
      `  - name: checkout
    match: [{uri: {prefix: /checkout}}]
    route: [{destination: {host: shop.internal}}]
  - name: rest
    route: [{destination: {host: shop.internal}}]
`,
      policy(`  targetRefs: [{kind: VirtualService, name: shop, sectionName: checkout}]
  rules:
  - name: r
    algorithm: FixedWindow
    limit: {requests: 1, unit: Day}
`),
    );
    expect(await statuses(gw, 2, '/checkout')).toEqual([200, 429]);
    expect(await statuses(gw, 3, '/other')).toEqual([200, 200, 200]);
  });

  it('a Gateway target counts every request of its servers, unrouted ones too', async () => {
    const { gw } = await start(
      ROUTE,
      policy(
        `  targetRefs: [{kind: Gateway, name: gw}]
  rules:
  - name: r
    algorithm: FixedWindow
    limit: {requests: 2, unit: Day}
`,
        'gw-limits',
        'istio-system',
      ),
    );
    const other = await request(gw.url('/'), { headers: { host: 'unknown.example.com' } });
    await other.body.text();
    expect(other.statusCode).toBe(404);
    expect(await statuses(gw, 2)).toEqual([200, 429]);
  });

  it('phase: AfterAuth runs after authorization (403 stays 403), BeforeAuth before it (429 first)', async () => {
    const deny = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: istio-system}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/private"]}}]}]
`;
    const limits = (phase: string): string =>
      policy(
        `  targetRefs: [{kind: Gateway, name: gw}]
  phase: ${phase}
  rules:
  - name: r
    algorithm: FixedWindow
    limit: {requests: 1, unit: Day}
`,
        'gw-limits',
        'istio-system',
      );
    const after = await start(ROUTE, `${limits('AfterAuth')}---\n${deny}`);
    // Denied requests never reach the limit, so they do not spend it.
    expect(await statuses(after.gw, 3, '/private')).toEqual([403, 403, 403]);
    expect(await statuses(after.gw, 2, '/')).toEqual([200, 429]);
    const before = await start(ROUTE, `${limits('BeforeAuth')}---\n${deny}`);
    expect(await statuses(before.gw, 3, '/private')).toEqual([403, 429, 429]);
  });

  it('inFlight: at most N of one bucket served at once (limit-connections); each one ending frees its place', async () => {
    const { gw, up } = await start(
      ROUTE,
      policy(`${vsTarget}  rules:
  - name: conns
    key: [{requestHeader: {name: x-user}}]
    limit: {inFlight: 2}
`),
      undefined,
      { delayMs: 300 },
    );
    const burst = await Promise.all([1, 2, 3, 4].map(() => get(gw, '/', { 'x-user': 'a' })));
    expect(burst.map((r) => r.status).sort()).toEqual([200, 200, 429, 429]);
    const refused = burst.find((r) => r.status === 429)!;
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.headers['x-envoy-ratelimited']).toBe('true');
    // Another key has its own places; and once the first ones ended, 'a' has its places back.
    const again = await Promise.all([
      get(gw, '/', { 'x-user': 'a' }),
      get(gw, '/', { 'x-user': 'a' }),
      get(gw, '/', { 'x-user': 'b' }),
    ]);
    expect(again.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(up.seen).toHaveLength(5);
  });

  it('inFlight: a client that leaves mid-request frees its place', async () => {
    const { gw } = await start(
      ROUTE,
      policy(`${vsTarget}  rules:
  - name: conns
    limit: {inFlight: 1}
`),
      undefined,
      { delayMs: 2000 },
    );
    const ac = new AbortController();
    const gone = request(gw.url('/'), { headers: { host: 'shop.example.com' }, signal: ac.signal }).catch(
      () => null,
    );
    await until(async () => (await get(gw)).status === 429, { what: 'the place taken' });
    ac.abort();
    await gone;
    await until(async () => (await get(gw)).status !== 429, { timeoutMs: 5000, what: 'the place freed' });
  });

  it('decisions are counted in sluice_ratelimit_decisions_total by policy, rule and result', async () => {
    const registry = new Registry();
    const { gw } = await start(
      ROUTE,
      policy(`${vsTarget}  rules:
  - name: all
    algorithm: FixedWindow
    limit: {requests: 1, unit: Day}
  - name: watched
    shadowMode: true
    exempt: {remoteIpBlocks: ["10.0.0.0/8"]}
    algorithm: FixedWindow
    limit: {requests: 1, unit: Day}
`),
      undefined,
      { registry },
    );
    await statuses(gw, 3);
    const text = await registry.metrics();
    expect(text).toContain(
      'sluice_ratelimit_decisions_total{policy="default/limits",rule="all",result="ok"} 1',
    );
    expect(text).toContain(
      'sluice_ratelimit_decisions_total{policy="default/limits",rule="all",result="over_limit"} 2',
    );
    expect(text).toContain(
      'sluice_ratelimit_decisions_total{policy="default/limits",rule="watched",result="ok"} 1',
    );
    expect(text).toContain(
      'sluice_ratelimit_decisions_total{policy="default/limits",rule="watched",result="shadow_over_limit"} 2',
    );
    expect(text).toContain('sluice_ratelimit_breaker_state 0');
  });

  it('explain says which rules and buckets a request would count against, and why others do not', async () => {
    const c = compileYaml(
      trafficYaml({ shop: 1 }, ROUTE, {
        extra: policy(`${vsTarget}  rules:
  - name: per-user
    key: [{requestHeader: {name: x-user}}, {constant: api}]
    algorithm: FixedWindow
    limit: {requests: 10, unit: Minute}
  - name: writes
    to: [{operation: {methods: [POST]}}]
    limit: {requests: 5, unit: Second, burst: 20}
  - name: conns
    limit: {inFlight: 3}
    exempt: {remoteIpBlocks: ["127.0.0.0/8"]}
`),
      }),
    );
    expect(c.messages.filter((m) => m.startsWith('error'))).toEqual([]);
    const r = await explainRequest(
      c.snapshot,
      { port: 8080, authority: 'shop.example.com', path: '/x', headers: { 'x-user': 'alice' } },
      explainPolicy(c.snapshot),
    );
    expect(r.lines).toContain(
      'rate_limit: default/limits/per-user (FixedWindow 10 per 60s, Local): counted in bucket requestHeader x-user="alice" constant api="api"; explain does not consult the store',
    );
    expect(r.lines).toContain(
      'rate_limit: default/limits/writes (TokenBucket 5 per 1s, burst 20, Local): to/when do not match; not counted',
    );
    expect(r.lines).toContain(
      'rate_limit: default/limits/conns (at most 3 in flight, Local): client 127.0.0.1 is exempt',
    );
    const none = await explainRequest(
      c.snapshot,
      { port: 8080, authority: 'shop.example.com', path: '/x' },
      explainPolicy(c.snapshot),
    );
    expect(none.lines).toContain(
      'rate_limit: default/limits/per-user (FixedWindow 10 per 60s, Local): no requestHeader x-user on this request; not counted',
    );
  });
});
