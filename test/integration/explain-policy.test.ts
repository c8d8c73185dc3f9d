/**
 * `sluice explain` runs the data plane's own filter decisions (item 1 of the security issue): for
 * each case the verdict explain prints is the status a real gateway gives the same request. And
 * a route's own filters run after the route is chosen (the plug point for route filters).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { explainRequest } from '../../src/snapshot/explain.ts';
import { explainPolicy } from '../../src/dataplane/explain-filters.ts';
import type { Route, Snapshot } from '../../src/snapshot/types.ts';
import { compileYaml } from '../simulate/compile-yaml.ts';
import { startGatewayWithSnapshot, type TestGateway } from '../support/gateway.ts';
import { startEcho, type Upstream } from '../support/upstreams.ts';
import { jwksOf, makeKey, sign, type TestKey } from '../support/jwt.ts';
import { closeAllPools } from '../../src/upstream/pools.ts';

const ISS = 'https://id.example.com';
let key: TestKey;
let upstream: Upstream;
let gw: TestGateway | null = null;
beforeAll(async () => {
  key = await makeKey('ES256', 'k1');
  upstream = await startEcho();
});
afterAll(() => upstream.close());
afterEach(async () => {
  await gw?.close();
  gw = null;
  await closeAllPools(true);
});

function config(): Snapshot {
  const c = compileYaml(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: up, namespace: default}
spec:
  hosts: [up.internal]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: ${upstream.port}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: default}
spec:
  hosts: [a.example.com]
  gateways: [istio-system/gw]
  http:
  - name: admins
    match: [{headers: {"@request.auth.claims.role": {exact: admin}}}]
    route: [{destination: {host: up.internal}}]
  - name: rest
    match: [{uri: {prefix: /api}}]
    route: [{destination: {host: up.internal}}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: istio-system}
spec:
  jwtRules: [{issuer: "${ISS}", jwks: '${jwksOf(key)}'}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: istio-system}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: need-jwt, namespace: istio-system}
spec:
  rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]
`);
  expect(c.messages.filter((m) => m.startsWith('error'))).toEqual([]);
  return c.snapshot;
}

async function both(
  snapshot: Snapshot,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ explained: number; served: number; lines: readonly string[] }> {
  const r = await explainRequest(
    snapshot,
    { port: 8080, authority: 'a.example.com', path, headers },
    explainPolicy(snapshot),
  );
  gw ??= await startGatewayWithSnapshot(snapshot);
  const res = await request(gw.url(path), { headers: { host: 'a.example.com', ...headers } });
  await res.body.dump();
  return { explained: r.localReply?.status ?? 200, served: res.statusCode, lines: r.lines };
}

describe('explain and the data plane decide alike for policy', () => {
  test('no token: ALLOW requestPrincipals ["*"] denies', async () => {
    const r = await both(config(), '/api/x');
    expect(r.lines).toContain('jwt_authn: no token, allowed as unauthenticated');
    expect(r.lines).toContain('rbac: no DENY policy matches');
    expect(r.lines).toContain('rbac: ALLOW policies exist and none matches → 403');
    expect([r.explained, r.served]).toEqual([403, 403]);
  });

  test('a valid token: allowed, and its claims choose the route', async () => {
    const t = await sign(key, { iss: ISS, sub: 'alice', claims: { role: 'admin' } });
    const s = config();
    const r = await both(s, '/api/x', { authorization: `Bearer ${t}` });
    expect(r.lines).toContain(
      `jwt_authn: token of issuer ${ISS} verified (RequestAuthentication istio-system/jwt spec.jwtRules[0]), principal ${ISS}/alice`,
    );
    expect(r.lines).toContain('rbac: allowed by ALLOW policy istio-system/need-jwt rule[0]');
    expect(r.lines.some((l) => l.startsWith('match admins'))).toBe(true);
    expect([r.explained, r.served]).toEqual([200, 200]);
  });

  test('DENY wins, and a bad token is 401', async () => {
    const t = await sign(key, { iss: ISS, sub: 'alice' });
    const s = config();
    const d = await both(s, '/admin/x', { authorization: `Bearer ${t}` });
    expect(d.lines).toContain('rbac: denied by DENY policy istio-system/deny-admin rule[0] → 403');
    expect([d.explained, d.served]).toEqual([403, 403]);
    const bad = await both(s, '/api/x', { authorization: 'Bearer abc.def.ghi' });
    expect([bad.explained, bad.served]).toEqual([401, 401]);
  });
});

describe('route filters', () => {
  test('a filter on a route runs after the route is chosen, not for other routes', async () => {
    const s = config();
    const table = s.listeners.get(8080)!.httpTable!;
    // Keep only the route-level check: a DENY-all RBAC on the `rest` route.
    const vhost = table.exact.get('a.example.com')!;
    const routes: Route[] = vhost.routes.map((r) =>
      r.name === 'rest'
        ? {
            ...r,
            filters: [
              {
                kind: 'rbac',
                action: 'DENY',
                policies: [{ namespace: 't', name: 'route-deny', rules: [{ index: 0, test: () => true }] }],
                shadow: [],
              },
            ],
          }
        : r,
    );
    const snapshot: Snapshot = {
      ...s,
      listeners: new Map([
        [
          8080,
          {
            ...s.listeners.get(8080)!,
            httpTable: {
              ...table,
              filters: undefined,
              exact: new Map([['a.example.com', { ...vhost, routes }]]),
            },
          },
        ],
      ]),
    };
    const denied = await both(snapshot, '/api/x');
    expect(denied.lines).toContain('rbac: denied by DENY policy t/route-deny rule[0] → 403');
    expect([denied.explained, denied.served]).toEqual([403, 403]);
    const r = await both(snapshot, '/nowhere');
    expect([r.explained, r.served]).toEqual([404, 404]);
  });
});
