/**
 * `sluice explain` for a route's fault, CORS and mirrors: the same decisions the data plane
 * makes, in words, and for certain outcomes the same status a real gateway gives.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { explainRequest } from '../../src/snapshot/explain.ts';
import { explainPolicy } from '../../src/dataplane/explain-filters.ts';
import { routeRows } from '../../src/snapshot/dump.ts';
import type { Snapshot } from '../../src/snapshot/types.ts';
import { compileYaml } from '../simulate/compile-yaml.ts';
import { startGatewayWithSnapshot, type TestGateway } from '../support/gateway.ts';
import { startEcho, type Upstream } from '../support/upstreams.ts';
import { trafficYaml } from '../support/traffic-config.ts';
import { closeAllPools } from '../../src/upstream/pools.ts';

let upstream: Upstream;
let gw: TestGateway | null = null;
let snapshot: Snapshot;
beforeAll(async () => {
  upstream = await startEcho();
  const c = compileYaml(
    trafficYaml(
      { shop: upstream.port, mirror: upstream.port },
      `  - match: [{uri: {prefix: /teapot}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: shop.internal}}]
  - match: [{uri: {prefix: /sometimes}}]
    fault:
      delay: {fixedDelay: 2s, percentage: {value: 10}}
      abort: {grpcStatus: UNAVAILABLE, percentage: {value: 1}}
    route: [{destination: {host: shop.internal}}]
  - match: [{uri: {prefix: /api}}]
    corsPolicy: {allowOrigins: [{exact: https://app.example.com}], allowMethods: [GET]}
    route: [{destination: {host: shop.internal}}]
    mirror: {host: mirror.internal}
    mirrorPercentage: {value: 10}
`,
    ),
  );
  expect(c.messages.filter((m) => m.startsWith('error'))).toEqual([]);
  snapshot = c.snapshot;
});
afterAll(() => upstream.close());
afterEach(async () => {
  await gw?.close();
  gw = null;
  await closeAllPools(true);
});

function explain(path: string) {
  return explainRequest(
    snapshot,
    { port: 8080, authority: 'shop.example.com', path },
    explainPolicy(snapshot),
  );
}

async function both(method: string, path: string, headers: Record<string, string> = {}) {
  const r = await explainRequest(
    snapshot,
    { port: 8080, authority: 'shop.example.com', path, method, headers },
    explainPolicy(snapshot),
  );
  gw ??= await startGatewayWithSnapshot(snapshot);
  const res = await request(gw.url(path), { method, headers: { host: 'shop.example.com', ...headers } });
  await res.body.dump();
  return { explained: r.localReply?.status ?? 200, served: res.statusCode, lines: r.lines };
}

describe('explain: route filters and mirrors', () => {
  test('a certain abort is the answer, as served', async () => {
    const r = await both('GET', '/teapot');
    expect(r.lines).toContain('fault: abort 418 for 100% (FI)');
    expect(r.lines).toContain('→ 418 FI fault_filter_abort');
    expect([r.explained, r.served]).toEqual([418, 418]);
  });

  test('a fault left to chance is described with its odds, and explain goes on', async () => {
    const r = await explain('/sometimes');
    expect(r.lines).toContain(
      'fault: delay 2000 ms for 10% of requests (DI), then abort grpc-status 14 for 1% (FI); explain assumes the request goes on',
    );
    expect(r.localReply).toBeNull();
  });

  test('a CORS preflight from an allowed origin is answered by the gateway', async () => {
    const h = { origin: 'https://app.example.com', 'access-control-request-method': 'GET' };
    const r = await both('OPTIONS', '/api', h);
    expect(r.lines).toContain('cors: preflight from https://app.example.com answered here → 200');
    expect([r.explained, r.served]).toEqual([200, 200]);
    expect(upstream.seen.filter((s) => s.method === 'OPTIONS')).toHaveLength(0);
    const other = await both('OPTIONS', '/api', { ...h, origin: 'https://evil.example.com' });
    expect(other.lines).toContain(
      'cors: preflight from https://evil.example.com: origin not allowed, forwarded upstream (unmatchedPreflights FORWARD)',
    );
    const actual = await both('GET', '/api', { origin: 'https://app.example.com' });
    expect(actual.lines).toContain(
      'cors: origin https://app.example.com allowed: access-control-allow-origin https://app.example.com on the response',
    );
  });

  test('mirrors are part of the action, in explain and in `sluice routes`', async () => {
    const r = await explain('/api');
    expect(r.lines).toContain(
      'action forward outbound|80||shop.internal; mirror outbound|80||mirror.internal 10%',
    );
    const row = routeRows(snapshot, 8080).find((x) => x.route === 'default.shop.2.0')!;
    expect(row.destinations).toEqual([
      'outbound|80||shop.internal',
      'mirror outbound|80||mirror.internal 10%',
    ]);
  });
});
