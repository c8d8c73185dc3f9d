/**
 * The request pipeline end to end: a real gateway on loopback, a real upstream, real signed
 * tokens with a JWKS server, real authorization servers. Checks what the client gets (status,
 * body, headers), what the upstream sees (never a denied request; no token unless asked), and
 * what the access log records (response flags and details).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import http2 from 'node:http2';
import { request } from 'undici';
import { startGatewayFromYaml, sendRaw, type TestGateway } from '../support/gateway.ts';
import { startEcho, type Upstream } from '../support/upstreams.ts';
import { makeKey, sign, startJwksServer, type JwksServer, type TestKey } from '../support/jwt.ts';
import { startGrpcAuthz, startHttpAuthz, type HttpAuthzServer } from '../support/ext-authz.ts';
import type { RequestContext } from '../../src/dataplane/request-context.ts';
import { closeAllPools } from '../../src/upstream/pools.ts';

const ISS = 'https://id.example.com';

let upstream: Upstream;
let key: TestKey;
let jwks: JwksServer;
beforeAll(async () => {
  upstream = await startEcho({ name: 'api' });
  key = await makeKey('RS256', 'k1');
  jwks = await startJwksServer(key);
});
afterAll(async () => {
  await upstream.close();
  await jwks.close();
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  await closeAllPools(true);
  upstream.seen.length = 0;
});

function gatewayYaml(extra: string, mesh = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.internal]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: ${upstream.port}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  gateways: [istio-system/gw]
  http:
  - match: [{uri: {prefix: /api/}}]
    route: [{destination: {host: api.internal}}]
  - match: [{uri: {prefix: /admin}}]
    route: [{destination: {host: api.internal}}]
  - match: [{uri: {prefix: /public}}]
    route: [{destination: {host: api.internal}}]
${mesh ? `---\napiVersion: sluice.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh, namespace: istio-system}\nspec:\n${mesh}\n` : ''}---
${extra}`;
}

interface Logged {
  status: number;
  flags: string;
  details: string;
}

async function start(yaml: string): Promise<{ gw: TestGateway; log: Logged[] }> {
  const log: Logged[] = [];
  const gw = await startGatewayFromYaml(yaml, {
    onRequestDone: (ctx) => {
      const c = ctx as RequestContext;
      log.push({ status: c.status, flags: c.responseFlags, details: c.responseDetails });
    },
  });
  cleanups.push(() => gw.close());
  return { gw, log };
}

async function get(
  gw: TestGateway,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
  body?: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  const res = await request(gw.url(path), {
    method,
    headers: { host: 'api.example.com', ...headers },
    ...(body !== undefined ? { body } : {}),
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

const REQUIRE_JWT = `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: istio-system}
spec:
  jwtRules:
  - issuer: ${'${ISS}'}
    jwksUri: ${'${JWKS}'}
    audiences: [api]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: istio-system}
spec:
  rules:
  - from: [{source: {requestPrincipals: ["*"]}}]
  - to: [{operation: {paths: ["/public*"]}}]`;

function requireJwt(): string {
  return REQUIRE_JWT.replace('${ISS}', ISS).replace('${JWKS}', jwks.url);
}

/** requireJwt() with the `sub` claim sent upstream as x-user. */
function claimHeaderYaml(): string {
  return gatewayYaml(
    requireJwt().replace(
      '    audiences: [api]',
      '    audiences: [api]\n    outputClaimToHeaders: [{header: x-user, claim: sub}]',
    ),
  );
}

describe('JWT + AuthorizationPolicy (RA-3, RA-4, AP-2)', () => {
  test('no token: 403 RBAC (not 401); a public path passes without one', async () => {
    const { gw, log } = await start(gatewayYaml(requireJwt()));
    const r = await get(gw, '/api/x');
    expect(r.status).toBe(403);
    expect(r.text).toBe('RBAC: access denied');
    expect(r.headers['content-type']).toBe('text/plain');
    expect(log.at(-1)).toEqual({
      status: 403,
      flags: '-',
      details: 'rbac_access_denied_matched_policy[none]',
    });
    expect((await get(gw, '/public/readme')).status).toBe(200);
    expect(upstream.seen.map((s) => s.url)).toEqual(['/public/readme']);
  });

  test('a valid token passes; the upstream never sees it', async () => {
    const { gw } = await start(gatewayYaml(requireJwt()));
    const t = await sign(key, { iss: ISS, sub: 'alice', aud: 'api' });
    const r = await get(gw, '/api/orders', { authorization: `Bearer ${t}` });
    expect(r.status).toBe(200);
    expect(upstream.seen[0]!.headers.authorization).toBeUndefined();
  });

  test('bad tokens: 401 with the reason and WWW-Authenticate; wrong audience 403', async () => {
    const { gw, log } = await start(gatewayYaml(requireJwt()));
    const expired = await sign(key, { iss: ISS, sub: 's', aud: 'api', expiresIn: -3600 });
    const r = await get(gw, '/api/x?q=1', { authorization: `Bearer ${expired}` });
    expect(r.status).toBe(401);
    expect(r.text).toBe('Jwt is expired');
    expect(r.headers['www-authenticate']).toBe(
      'Bearer realm="http://api.example.com/api/x", error="invalid_token"',
    );
    expect(log.at(-1)!.details).toBe('jwt_authn_access_denied{Jwt_is_expired}');
    const wrongAud = await sign(key, { iss: ISS, sub: 's', aud: 'other' });
    const w = await get(gw, '/api/x', { authorization: `Bearer ${wrongAud}` });
    expect(w.status).toBe(403);
    expect(w.text).toBe('Audiences in Jwt are not allowed');
    // A bad token on a public path is still refused: RequestAuthentication rejects invalid tokens everywhere.
    expect((await get(gw, '/public/x', { authorization: 'Bearer not.a.jwt' })).status).toBe(401);
    expect(upstream.seen).toEqual([]);
  });

  test('an unauthorised request to a path no route matches is 403, not 404', async () => {
    const { gw } = await start(gatewayYaml(requireJwt()));
    expect((await get(gw, '/nowhere')).status).toBe(403);
    const t = await sign(key, { iss: ISS, sub: 's', aud: 'api' });
    expect((await get(gw, '/nowhere', { authorization: `Bearer ${t}` })).status).toBe(404);
  });

  test('claims reach route matching (VS-9 @request.auth.claims)', async () => {
    const admins = await startEcho({ name: 'admins' });
    cleanups.push(() => admins.close());
    const yaml =
      gatewayYaml(requireJwt()).replace(
        `  http:
  - match: [{uri: {prefix: /api/}}]`,
        `  http:
  - match: [{uri: {prefix: /api/}, headers: {"@request.auth.claims.role": {exact: admin}}}]
    route: [{destination: {host: admins.internal}}]
  - match: [{uri: {prefix: /api/}}]`,
      ) +
      `
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: admins, namespace: default}
spec:
  hosts: [admins.internal]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: ${admins.port}}}]`;
    const { gw } = await start(yaml);
    const admin = await sign(key, { iss: ISS, sub: 'a', aud: 'api', claims: { role: 'admin' } });
    const user = await sign(key, { iss: ISS, sub: 'u', aud: 'api', claims: { role: 'user' } });
    expect(JSON.parse((await get(gw, '/api/x', { authorization: `Bearer ${admin}` })).text).name).toBe(
      'admins',
    );
    expect(JSON.parse((await get(gw, '/api/x', { authorization: `Bearer ${user}` })).text).name).toBe('api');
  });

  test('claim headers are set for the upstream and a forged one never passes', async () => {
    const { gw } = await start(claimHeaderYaml());
    const t = await sign(key, { iss: ISS, sub: 'alice', aud: 'api' });
    await get(gw, '/api/x', { authorization: `Bearer ${t}`, 'x-user': 'mallory' });
    await get(gw, '/public/x', { 'x-user': 'mallory' });
    expect(upstream.seen.map((s) => s.headers['x-user'])).toEqual(['alice', undefined]);
  });

  test('over HTTP/2 too: the token is stripped and claim headers replace forged ones', async () => {
    const { gw } = await start(claimHeaderYaml());
    const t = await sign(key, { iss: ISS, sub: 'alice', aud: 'api' });
    const session = http2.connect(`http://127.0.0.1:${gw.port()}`);
    cleanups.push(() => new Promise<void>((r) => session.close(() => r())));
    const status = await new Promise<number>((resolve, reject) => {
      const s = session.request({
        ':path': '/api/x',
        ':authority': 'api.example.com',
        authorization: `Bearer ${t}`,
        'x-user': 'mallory',
      });
      s.on('response', (h) => resolve(Number(h[':status'])));
      s.on('error', reject);
      s.resume();
      s.end();
    });
    expect(status).toBe(200);
    expect(upstream.seen[0]!.headers.authorization).toBeUndefined();
    expect(upstream.seen[0]!.headers['x-user']).toBe('alice');
  });

  test('deny-all spec: {} refuses everything, even unrouted hosts', async () => {
    const { gw } = await start(
      gatewayYaml(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: istio-system}
spec: {}`),
    );
    expect((await get(gw, '/api/x')).status).toBe(403);
    expect((await get(gw, '/api/x', { host: 'unknown.example.com' })).status).toBe(403);
    expect(upstream.seen).toEqual([]);
  });
});

describe('AP-9 path tricks against DENY and ALLOW rules: no bypass under any normalisation', () => {
  const tricks = [
    '/admin',
    '//admin',
    '/./admin',
    '/%2e%2e/admin',
    '/public/../admin',
    '/ADMIN',
    '/admin/',
    '/%61dmin',
    '/%2Fadmin',
    '/admin;x=1',
    '/public\\..\\admin',
    '/public/%2e%2e%2fadmin',
  ];
  const deny = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: istio-system}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin", "/admin/*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-listed, namespace: istio-system}
spec:
  rules: [{to: [{operation: {paths: ["/public/*", "/api/*"]}}]}]`;

  for (const mode of ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES']) {
    test(`pathNormalization ${mode}`, async () => {
      const { gw } = await start(gatewayYaml(deny, `  pathNormalization: {normalization: ${mode}}`));
      for (const p of tricks) {
        const r = await sendRaw(gw.port(), `GET ${p} HTTP/1.1\r\nHost: api.example.com\r\n\r\n`);
        const reached = upstream.seen.splice(0);
        // Whatever reached the upstream is exactly what the policies saw, and it is on the allowlist.
        for (const s of reached) {
          expect(s.url === '/admin' || s.url.startsWith('/admin/')).toBe(false);
          expect(/^\/(public|api)\//.test(s.url)).toBe(true);
          // Normalised once, before policy: the upstream gets the path the policies judged, with
          // no dot segment or encoded dot left to resolve differently (NONE forwards it as sent).
          if (mode !== 'NONE') expect(s.url).not.toMatch(/(^|\/)\.\.?(\/|$)|%2e|\\/i);
        }
        expect([200, 400, 403, 404]).toContain(r.status);
        if (mode !== 'NONE' && (p === '/%2e%2e/admin' || p === '/public/../admin' || p === '/%61dmin'))
          expect(r.status).toBe(403);
      }
    });
  }
});

describe('CUSTOM external authorization (AP-1)', () => {
  let authz: HttpAuthzServer;
  beforeAll(async () => {
    authz = await startHttpAuthz(() => ({ status: 200 }));
  });
  afterAll(() => authz.close());

  function customYaml(provider: string, kind = 'envoyExtAuthzHttp', port = authz.port): string {
    return gatewayYaml(
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: istio-system}
spec:
  action: CUSTOM
  provider: {name: authz}
  rules: [{to: [{operation: {paths: ["/api/*"]}}]}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: authz, namespace: istio-system}
spec:
  hosts: [authz.internal]
  ports: [{number: ${port}, name: http, protocol: ${kind === 'envoyExtAuthzGrpc' ? 'GRPC' : 'HTTP'}}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]`,
      `  extensionProviders:
  - name: authz
    ${kind}:
      service: authz.internal
      port: ${port}
${provider
  .split('\n')
  .filter((l) => l !== '')
  .map((l) => '      ' + l)
  .join('\n')}`,
    );
  }

  test('allowed: headersToUpstreamOnAllow reach the upstream, headersToDownstreamOnAllow the client', async () => {
    authz.decide = () => ({ status: 200, headers: { 'x-auth-user': 'alice', 'x-session': 'refresh' } });
    const { gw } = await start(
      customYaml('headersToUpstreamOnAllow: [x-auth-user]\nheadersToDownstreamOnAllow: [x-session]'),
    );
    const r = await get(gw, '/api/orders', { 'x-auth-user': 'forged' });
    expect(r.status).toBe(200);
    expect(r.headers['x-session']).toBe('refresh');
    expect(upstream.seen[0]!.headers['x-auth-user']).toBe('alice');
  });

  test('denied: the authorizer status, body and headers; UAEX; the upstream sees nothing', async () => {
    authz.decide = () => ({
      status: 302,
      headers: { location: 'https://login.example.com/' },
      body: 'login first',
    });
    const { gw, log } = await start(customYaml(''));
    const r = await get(gw, '/api/orders');
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe('https://login.example.com/');
    expect(r.text).toBe('login first');
    expect(log.at(-1)).toEqual({ status: 302, flags: 'UAEX', details: 'ext_authz_denied' });
    expect(upstream.seen).toEqual([]);
    // Paths no CUSTOM rule matches are not checked.
    expect((await get(gw, '/public/x')).status).toBe(200);
  });

  test('authorizer errors: statusOnError (default 403), or through under failOpen', async () => {
    authz.decide = () => ({ status: 200, delayMs: 2_000 });
    const strict = await start(customYaml('timeout: 200ms'));
    const r = await get(strict.gw, '/api/x');
    expect(r.status).toBe(403);
    expect(strict.log.at(-1)).toEqual({ status: 403, flags: 'UAEX', details: 'ext_authz_error' });
    const custom = await start(customYaml('timeout: 200ms\nstatusOnError: "503"'));
    expect((await get(custom.gw, '/api/x')).status).toBe(503);
    const open = await start(customYaml('timeout: 200ms\nfailOpen: true'));
    expect((await get(open.gw, '/api/x')).status).toBe(200);
    authz.decide = () => ({ status: 500 });
    expect((await get(strict.gw, '/api/x')).status).toBe(403);
  });

  test('includeRequestBodyInCheck: the authorizer sees the body, the upstream still gets all of it', async () => {
    authz.decide = (c) => ({ status: c.body.includes('"ok":true') ? 200 : 403 });
    const { gw } = await start(
      customYaml('includeRequestBodyInCheck: {maxRequestBytes: 64, allowPartialMessage: true}'),
    );
    const big = JSON.stringify({ ok: true, pad: 'x'.repeat(5000) });
    const r = await get(gw, '/api/upload', { 'content-type': 'application/json' }, 'POST', big);
    expect(r.status).toBe(200);
    expect(upstream.seen[0]!.body).toBe(big);
    expect(authz.checks.at(-1)!.body.length).toBeLessThanOrEqual(64);
    expect((await get(gw, '/api/upload', {}, 'POST', '{"ok":false}')).status).toBe(403);
  });

  test('gRPC provider: OK passes with its headers, a denial answers with its status', async () => {
    const grpc = await startGrpcAuthz((c) =>
      c.attributes.request?.http?.headers?.['x-let-me'] === 'in'
        ? {
            response: {
              status: { code: 0 },
              okResponse: { headers: [{ header: { key: 'x-user-id', value: '7' } }] },
            },
          }
        : {
            response: { status: { code: 7 }, deniedResponse: { status: { code: 401 }, body: 'who are you' } },
          },
    );
    cleanups.push(() => grpc.close());
    const { gw } = await start(customYaml('', 'envoyExtAuthzGrpc', grpc.port));
    const ok = await get(gw, '/api/x', { 'x-let-me': 'in' });
    expect(ok.status).toBe(200);
    expect(upstream.seen[0]!.headers['x-user-id']).toBe('7');
    const no = await get(gw, '/api/x');
    expect(no.status).toBe(401);
    expect(no.text).toBe('who are you');
  });
});
