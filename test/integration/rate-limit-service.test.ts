/**
 * storage Service (issue 12 item 6): sluice asks an Envoy rate limit service over gRPC
 * (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`), here a loopback server that
 * implements that API: descriptors built from the rule's keys with Envoy's entry keys, the
 * policy's limit as the override, the service's verdict as 429, and failureMode when it does not
 * answer in time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startEcho } from '../support/upstreams.ts';
import { startGatewayFromYaml, type TestGateway } from '../support/gateway.ts';
import { trafficYaml, type Logged } from '../support/traffic-config.ts';
import { startRateLimitService, type RateLimitServiceServer } from '../support/rate-limit-service.ts';
import type { RequestContext } from '../../src/dataplane/request-context.ts';
import { closeAllPools } from '../../src/upstream/pools.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
  await closeAllPools(true);
});

const ROUTE = `  - route: [{destination: {host: shop.internal}}]\n`;

async function start(
  rls: RateLimitServiceServer,
  rules: string,
  failureMode = 'Open',
): Promise<{ gw: TestGateway; log: Logged[] }> {
  const up = await startEcho({ name: 'shop' });
  cleanups.push(() => up.close());
  const log: Logged[] = [];
  const gw = await startGatewayFromYaml(
    trafficYaml({ shop: up.port, rls: rls.port }, ROUTE, {
      extra: `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: limits, namespace: default}
spec:
  targetRefs: [{kind: VirtualService, name: shop}]
  storage: Service
  service: {host: rls.internal, port: 80, domain: edge, timeout: 500ms}
  failureMode: ${failureMode}
  rules:
${rules}`,
    }),
    {
      onRequestDone: (ctx: RequestContext) =>
        log.push({ status: ctx.status, flags: ctx.responseFlags, details: ctx.responseDetails }),
    },
  );
  cleanups.push(() => gw.close());
  return { gw, log };
}

async function get(gw: TestGateway, headers: Record<string, string> = {}) {
  const t0 = performance.now();
  const res = await request(gw.url('/'), { headers: { host: 'shop.example.com', ...headers } });
  await res.body.text();
  return { status: res.statusCode, headers: res.headers, ms: performance.now() - t0 };
}

async function rls(defaultLimit: number): Promise<RateLimitServiceServer> {
  const s = await startRateLimitService(defaultLimit);
  cleanups.push(() => s.close());
  return s;
}

describe('storage Service: Envoy rate limit service over gRPC', () => {
  it('sends one descriptor per rule with Envoy entry keys, and the service decides with its own limit', async () => {
    const server = await rls(2);
    const { gw, log } = await start(
      server,
      `  - name: per-user
    key: [{constant: api}, {requestHeader: {name: x-user}}]
  - name: everyone
`,
    );
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await get(gw, { 'x-user': 'alice' }));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(replies[2]!.headers['retry-after']).toBe('30');
    expect(replies[2]!.headers['x-envoy-ratelimited']).toBe('true');
    expect(log.at(-1)).toEqual({ status: 429, flags: 'RL', details: 'request_rate_limited' });
    expect(server.requests[0]).toEqual({
      domain: 'edge',
      descriptors: [
        {
          entries: [
            { key: 'generic_key', value: 'api' },
            { key: 'x-user', value: 'alice' },
          ],
        },
        { entries: [{ key: 'generic_key', value: 'everyone' }] },
      ],
    });
  });

  it('a limit in the policy goes as the descriptor limit override', async () => {
    const server = await rls(1000);
    const { gw } = await start(
      server,
      `  - name: per-ip
    key: [{remoteAddress: {}}]
    limit: {requests: 1, unit: Minute}
`,
    );
    expect([(await get(gw)).status, (await get(gw)).status]).toEqual([200, 429]);
    expect(server.requests[0]!.descriptors).toEqual([
      { entries: [{ key: 'remote_address', value: '127.0.0.1' }], limit: { requestsPerUnit: 1, unit: 2 } },
    ]);
  });

  it('a service that does not answer in time: failureMode Open limits locally (the override), Closed answers 500 RLSE', async () => {
    const server = await rls(1000);
    server.mode = 'hang';
    const open = await start(server, `  - name: r\n    limit: {requests: 2, unit: Hour}\n`);
    const o = [];
    for (let i = 0; i < 3; i++) o.push(await get(open.gw));
    expect(o.map((r) => r.status)).toEqual([200, 200, 429]);
    for (const r of o) expect(r.ms).toBeLessThan(2000);
    server.mode = 'unavailable';
    const closed = await start(server, `  - name: r\n    limit: {requests: 2, unit: Hour}\n`, 'Closed');
    expect((await get(closed.gw)).status).toBe(500);
    expect(closed.log.at(-1)).toEqual({ status: 500, flags: 'RLSE', details: 'rate_limiter_error' });
  });

  it('failureMode Open without a limit in the policy admits while the service cannot answer', async () => {
    const server = await rls(1);
    server.mode = 'unavailable';
    const { gw } = await start(server, `  - name: r\n`);
    expect([(await get(gw)).status, (await get(gw)).status, (await get(gw)).status]).toEqual([200, 200, 200]);
  });
});
