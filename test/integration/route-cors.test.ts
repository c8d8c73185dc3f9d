/**
 * VS-28/VS-29 CORS end to end, as Envoy's CORS filter applies an Istio corsPolicy: preflights
 * answered at the gateway (never reaching the upstream, never blocked by JWT), CORS headers on
 * actual responses whoever answers them, `Vary: Origin`, unmatched preflights forwarded or
 * answered as `unmatchedPreflights` says, and AuthorizationPolicy still deciding first (Istio's
 * filter order; pain point 6).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { closedPort, startEcho, type Upstream } from '../support/upstreams.ts';
import { startTraffic, trafficYaml } from '../support/traffic-config.ts';
import type { TestGateway } from '../support/gateway.ts';
import { makeKey, sign, startJwksServer, type JwksServer, type TestKey } from '../support/jwt.ts';
import { until } from '../support/until.ts';
import { closeAllPools } from '../../src/upstream/pools.ts';

let up: Upstream;
beforeAll(async () => {
  up = await startEcho({ name: 'shop', headers: { vary: 'Accept-Encoding' } });
});
afterAll(() => up.close());

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  await closeAllPools(true);
  up.seen.length = 0;
});

const POLICY = `    corsPolicy:
      allowOrigins:
      - exact: https://app.example.com
      - prefix: https://dev-
      - regex: 'https://[a-z]+\\.partner\\.example'
      allowMethods: [POST, GET]
      allowHeaders: [content-type, x-token]
      exposeHeaders: [x-request-id, x-total]
      maxAge: 24h
      allowCredentials: true
`;

async function start(rules: string, opts: Parameters<typeof trafficYaml>[2] = {}) {
  const dead = await closedPort();
  const started = await startTraffic(trafficYaml({ shop: up.port, dead: dead }, rules, opts));
  cleanups.push(() => started.gw.close());
  return started;
}

const toShop = `    route: [{destination: {host: shop.internal}}]\n`;

async function send(
  gw: TestGateway,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const res = await request(gw.url(path), { method, headers: { host: 'shop.example.com', ...headers } });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

function preflight(gw: TestGateway, origin: string, extra: Record<string, string> = {}) {
  return send(gw, 'OPTIONS', '/api', {
    origin,
    'access-control-request-method': 'PUT',
    'access-control-request-headers': 'content-type,x-custom',
    ...extra,
  });
}

describe('CORS (VS-28, VS-29)', () => {
  it('answers a preflight from an allowed origin at the gateway with the policy', async () => {
    const { gw, log } = await start(`  - ${POLICY.trimStart()}${toShop}`);
    for (const origin of [
      'https://app.example.com',
      'https://dev-42.example.com',
      'https://eu.partner.example',
    ]) {
      const r = await preflight(gw, origin);
      expect(r.status).toBe(200);
      expect(r.body).toBe('');
      expect(r.headers['access-control-allow-origin']).toBe(origin);
      expect(r.headers['access-control-allow-credentials']).toBe('true');
      // Istio joins lists with ','; the requested method is not checked (VS-29).
      expect(r.headers['access-control-allow-methods']).toBe('POST,GET');
      expect(r.headers['access-control-allow-headers']).toBe('content-type,x-token');
      expect(r.headers['access-control-max-age']).toBe('86400');
      expect(r.headers['access-control-expose-headers']).toBeUndefined();
      expect(r.headers['vary']).toBe('Origin');
      expect(r.headers['server']).toBe('istio-envoy');
    }
    expect(up.seen).toHaveLength(0);
    await until(() => log.length === 3);
    expect(log[0]).toEqual({ status: 200, flags: '-', details: 'cors_response' });
  });

  it('origins are case-sensitive, regexes match whole, prefixes are plain prefixes', async () => {
    const { gw } = await start(`  - ${POLICY.trimStart()}${toShop}`);
    for (const origin of [
      'https://APP.example.com',
      'https://app.example.com.evil.com',
      'https://eu.partner.example.evil',
      'http://dev-1',
    ]) {
      const r = await preflight(gw, origin);
      // Unmatched preflights go upstream (unmatchedPreflights FORWARD, the default), untouched.
      expect(r.status, origin).toBe(200);
      expect(JSON.parse(r.body).method).toBe('OPTIONS');
      expect(r.headers['access-control-allow-origin'], origin).toBeUndefined();
    }
    expect(up.seen).toHaveLength(4);
  });

  it('unmatchedPreflights IGNORE answers an unknown origin itself, without allow-origin', async () => {
    const { gw } = await start(`  - ${POLICY.trimStart()}      unmatchedPreflights: IGNORE\n${toShop}`);
    const r = await preflight(gw, 'https://evil.example.com');
    expect(r.status).toBe(200);
    expect(r.body).toBe('');
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
    expect(r.headers['access-control-allow-methods']).toBe('POST,GET');
    expect(up.seen).toHaveLength(0);
  });

  it('`*` in allowMethods/allowHeaders echoes the preflight; a matcher matching "*" allows any origin', async () => {
    const { gw } = await start(`  - corsPolicy:
      allowOrigins: [{exact: "*"}]
      allowMethods: ["*"]
      allowHeaders: ["*"]
${toShop}`);
    const r = await preflight(gw, 'https://anyone.example.org');
    expect(r.status).toBe(200);
    // Echoed, never '*'.
    expect(r.headers['access-control-allow-origin']).toBe('https://anyone.example.org');
    expect(r.headers['access-control-allow-methods']).toBe('PUT');
    expect(r.headers['access-control-allow-headers']).toBe('content-type,x-custom');
    expect(r.headers['access-control-max-age']).toBeUndefined();
    expect(r.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('actual requests: CORS headers on the upstream response, Vary merged with the upstream one', async () => {
    const { gw } = await start(`  - ${POLICY.trimStart()}${toShop}`);
    const ok = await send(gw, 'GET', '/api', { origin: 'https://app.example.com' });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).headers.origin).toBe('https://app.example.com');
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(ok.headers['access-control-allow-credentials']).toBe('true');
    expect(ok.headers['access-control-expose-headers']).toBe('x-request-id,x-total');
    expect(ok.headers['access-control-allow-methods']).toBeUndefined();
    expect(ok.headers['vary']).toBe('Accept-Encoding, Origin');

    const other = await send(gw, 'GET', '/api', { origin: 'https://evil.example.com' });
    expect(other.status).toBe(200);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    expect(other.headers['access-control-allow-credentials']).toBeUndefined();
    expect(other.headers['vary']).toBe('Accept-Encoding, Origin');

    // No Origin: not a CORS request, but the answer still varies on Origin for caches.
    const plain = await send(gw, 'GET', '/api');
    expect(plain.headers['access-control-allow-origin']).toBeUndefined();
    expect(plain.headers['vary']).toBe('Accept-Encoding, Origin');
    // An OPTIONS without Access-Control-Request-Method is an actual request, forwarded.
    const options = await send(gw, 'OPTIONS', '/api', { origin: 'https://app.example.com' });
    expect(JSON.parse(options.body).method).toBe('OPTIONS');
    expect(options.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(up.seen).toHaveLength(4);
  });

  it("the gateway's own answers after CORS carry the headers too (503 UF, direct response); a fault abort does not", async () => {
    const { gw } = await start(`  - match: [{uri: {prefix: /down}}]
${POLICY}    route: [{destination: {host: dead.internal}}]
    retries: {attempts: 0}
  - match: [{uri: {prefix: /direct}}]
${POLICY}    directResponse: {status: 202, body: {string: accepted}}
  - match: [{uri: {prefix: /fault}}]
${POLICY}    fault: {abort: {httpStatus: 500, percentage: {value: 100}}}
${toShop}`);
    const origin = { origin: 'https://app.example.com' };
    const down = await send(gw, 'GET', '/down', origin);
    expect(down.status).toBe(503);
    expect(down.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(down.headers['vary']).toBe('Origin');
    const direct = await send(gw, 'GET', '/direct', origin);
    expect(direct.status).toBe(202);
    expect(direct.body).toBe('accepted');
    expect(direct.headers['access-control-allow-origin']).toBe('https://app.example.com');
    // Istio's order is fault, then CORS: an abort answers before CORS sees the request.
    const fault = await send(gw, 'GET', '/fault', origin);
    expect(fault.status).toBe(500);
    expect(fault.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('a preflight no route matches is 404; a route without corsPolicy forwards it', async () => {
    const { gw } = await start(`  - match: [{uri: {prefix: /api}}]
${POLICY}${toShop}  - match: [{uri: {prefix: /plain}}]
${toShop}`);
    expect(
      (
        await send(gw, 'OPTIONS', '/nowhere', {
          origin: 'https://app.example.com',
          'access-control-request-method': 'GET',
        })
      ).status,
    ).toBe(404);
    const plain = await send(gw, 'OPTIONS', '/plain', {
      origin: 'https://app.example.com',
      'access-control-request-method': 'GET',
    });
    expect(JSON.parse(plain.body).method).toBe('OPTIONS');
    expect(plain.headers['access-control-allow-origin']).toBeUndefined();
    expect(plain.headers['vary']).toBe('Accept-Encoding');
  });
});

describe('CORS with RequestAuthentication and AuthorizationPolicy (Istio filter order)', () => {
  let key: TestKey;
  let jwks: JwksServer;
  beforeAll(async () => {
    key = await makeKey('RS256', 'k1');
    jwks = await startJwksServer(key);
  });
  afterAll(() => jwks.close());

  const authn = () => `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: istio-system}
spec:
  jwtRules: [{issuer: https://id.example.com, jwksUri: "${jwks.url}"}]
`;

  it('a preflight is never blocked by JWT, even carrying a bad token', async () => {
    const { gw } = await start(`  - ${POLICY.trimStart()}${toShop}`, { extra: authn() });
    const r = await preflight(gw, 'https://app.example.com', { authorization: 'Bearer not.a.token' });
    expect(r.status).toBe(200);
    expect(r.headers['access-control-allow-origin']).toBe('https://app.example.com');
    // The same bad token on an actual request is refused by jwt_authn.
    const actual = await send(gw, 'GET', '/api', {
      origin: 'https://app.example.com',
      authorization: 'Bearer not.a.token',
    });
    expect(actual.status).toBe(401);
    expect(up.seen).toHaveLength(0);
  });

  it('AuthorizationPolicy decides before CORS: requiring a principal denies preflights unless OPTIONS is allowed', async () => {
    const requirePrincipal = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: need-jwt, namespace: istio-system}
spec:
  action: ALLOW
  rules:
  - from: [{source: {requestPrincipals: ["*"]}}]
`;
    const denied = await start(`  - ${POLICY.trimStart()}${toShop}`, {
      extra: `${authn()}---\n${requirePrincipal}`,
    });
    const r = await preflight(denied.gw, 'https://app.example.com');
    expect(r.status).toBe(403);
    expect(r.body).toBe('RBAC: access denied');
    await denied.gw.close();

    const allowOptions = `${requirePrincipal}  - to: [{operation: {methods: [OPTIONS]}}]\n`;
    const { gw } = await start(`  - ${POLICY.trimStart()}${toShop}`, {
      extra: `${authn()}---\n${allowOptions}`,
    });
    const ok = await preflight(gw, 'https://app.example.com');
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.example.com');
    // A token-bearing actual request passes both and gets its CORS headers.
    const token = await sign(key, { iss: 'https://id.example.com', sub: 'u1' });
    const actual = await send(gw, 'GET', '/api', {
      origin: 'https://app.example.com',
      authorization: `Bearer ${token}`,
    });
    expect(actual.status).toBe(200);
    expect(actual.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(up.seen).toHaveLength(1);
  });
});
