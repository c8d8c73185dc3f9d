/**
 * The ext_authz clients (AP-1 CUSTOM) against real authorization servers on loopback, HTTP and
 * gRPC: what the check carries, and how allow, deny and every kind of authorizer failure come
 * back. The provider is compiled from MeshConfig YAML and reached through a ServiceEntry.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { compileYaml } from '../simulate/compile-yaml.ts';
import { callAuthorizer, decideExtAuthz } from '../../src/dataplane/filters/ext-authz.ts';
import type { CheckInput } from '../../src/dataplane/filters/ext-authz-check.ts';
import type { ExtAuthzFilter, PolicyRequest } from '../../src/snapshot/types.ts';
import { closeAllPools } from '../../src/upstream/pools.ts';
import {
  GRPC_PERMISSION_DENIED,
  GRPC_UNAVAILABLE,
  startGrpcAuthz,
  startHttpAuthz,
  type GrpcAuthzServer,
  type HttpAuthzServer,
} from '../support/ext-authz.ts';

function filterFor(
  kind: 'envoyExtAuthzHttp' | 'envoyExtAuthzGrpc',
  port: number,
  provider: string,
): ExtAuthzFilter {
  const c = compileYaml(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh, namespace: istio-system}
spec:
  extensionProviders:
  - name: authz
    ${kind}:
      service: authz.auth.svc.cluster.local
      port: ${port}
${provider
  .split('\n')
  .map((l) => '      ' + l)
  .join('\n')}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: authz, namespace: istio-system}
spec:
  hosts: [authz.auth.svc.cluster.local]
  ports: [{number: ${port}, name: http, protocol: ${kind === 'envoyExtAuthzGrpc' ? 'GRPC' : 'HTTP'}}]
  resolution: STATIC
  location: MESH_INTERNAL
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: istio-system}
spec:
  action: CUSTOM
  provider: {name: authz}
  rules:
  - to: [{operation: {paths: ["/api/*"]}}]
`);
  expect(c.messages.filter((m) => m.startsWith('error'))).toEqual([]);
  return c.snapshot.listeners.get(8080)!.httpTable!.filters![0] as ExtAuthzFilter;
}

function request(p: Partial<PolicyRequest> = {}): PolicyRequest {
  return {
    method: 'POST',
    scheme: 'http',
    authority: 'shop.example.com',
    host: 'shop.example.com',
    path: '/api/orders',
    query: 'id=7',
    headers: { authorization: 'Bearer abc', 'x-user': 'alice', 'x-other': 'no', cookie: 'c=1' },
    port: 8080,
    queryParams: null,
    claims: null,
    peerIp: '192.0.2.10',
    remoteIp: '192.0.2.10',
    localIp: '127.0.0.1',
    sni: '',
    peerPrincipal: null,
    auth: null,
    ...p,
  };
}

function input(req: PolicyRequest, body: Buffer | null = null): CheckInput {
  return { req, requestId: 'rid-1', protocol: 'HTTP/1.1', body, bodyComplete: true, startTimeMs: Date.now() };
}

afterEach(() => closeAllPools(true));

describe('which requests are checked', () => {
  test('only those a CUSTOM rule matches', () => {
    const f = filterFor('envoyExtAuthzHttp', 9, '');
    expect(decideExtAuthz(f, request({ path: '/api/x' })).kind).toBe('check');
    expect(decideExtAuthz(f, request({ path: '/public' })).kind).toBe('skip');
  });
});

describe('HTTP authorizer', () => {
  let server: HttpAuthzServer;
  beforeAll(async () => {
    server = await startHttpAuthz(() => ({ status: 200 }));
  });
  afterAll(() => server.close());

  test('the check keeps method and Host, prefixes the path, sends only the configured headers', async () => {
    const f = filterFor(
      'envoyExtAuthzHttp',
      server.port,
      `pathPrefix: /check
includeRequestHeadersInCheck: [x-user]
includeAdditionalHeadersInCheck: {x-gateway: sluice}`,
    );
    server.decide = () => ({ status: 200 });
    server.checks.length = 0;
    const a = await callAuthorizer(f, input(request()));
    expect(a.kind).toBe('allow');
    const c = server.checks[0]!;
    expect(c.method).toBe('POST');
    expect(c.url).toBe('/check/api/orders?id=7');
    expect(c.headers.host).toBe('shop.example.com');
    expect(c.headers.authorization).toBe('Bearer abc');
    expect(c.headers['x-user']).toBe('alice');
    expect(c.headers['x-gateway']).toBe('sluice');
    expect(c.headers['x-other']).toBeUndefined();
    expect(c.headers.cookie).toBeUndefined();
  });

  test('allow: headersToUpstreamOnAllow and headersToDownstreamOnAllow are picked from the answer', async () => {
    const f = filterFor(
      'envoyExtAuthzHttp',
      server.port,
      `headersToUpstreamOnAllow: [x-auth-user, "x-auth-*"]
headersToDownstreamOnAllow: [set-cookie]`,
    );
    server.decide = () => ({
      status: 200,
      headers: { 'x-auth-user': 'alice', 'x-auth-role': 'admin', 'set-cookie': 's=1', 'x-secret': 'no' },
    });
    const a = await callAuthorizer(f, input(request()));
    expect(a).toEqual({
      kind: 'allow',
      edits: {
        remove: [],
        set: [
          ['x-auth-user', 'alice'],
          ['x-auth-role', 'admin'],
        ],
      },
      responseHeaders: ['set-cookie', 's=1'],
    });
  });

  test('deny: the authorizer status, body and (filtered) headers go to the client', async () => {
    const f = filterFor(
      'envoyExtAuthzHttp',
      server.port,
      'headersToDownstreamOnDeny: [location, "x-deny-*"]',
    );
    server.decide = () => ({
      status: 302,
      headers: { location: 'https://login.example.com/', 'x-deny-reason': 'nologin', 'x-internal': 'no' },
      body: 'go log in',
    });
    const a = await callAuthorizer(f, input(request()));
    expect(a.kind).toBe('deny');
    if (a.kind !== 'deny') return;
    expect(a.status).toBe(302);
    expect(a.body.toString()).toBe('go log in');
    expect(a.headers).toEqual(['location', 'https://login.example.com/', 'x-deny-reason', 'nologin']);
  });

  test('without headersToDownstreamOnDeny every authorizer header reaches the client', async () => {
    const f = filterFor('envoyExtAuthzHttp', server.port, '');
    server.decide = () => ({ status: 401, headers: { 'www-authenticate': 'Basic realm="x"' }, body: 'no' });
    const a = await callAuthorizer(f, input(request()));
    expect(a.kind === 'deny' && a.headers).toContain('www-authenticate');
  });

  test('errors: 5xx, timeout, refused connection', async () => {
    server.decide = () => ({ status: 503, body: 'broken' });
    expect(
      (await callAuthorizer(filterFor('envoyExtAuthzHttp', server.port, ''), input(request()))).kind,
    ).toBe('error');
    server.decide = () => ({ status: 200, delayMs: 2_000 });
    const slow = filterFor('envoyExtAuthzHttp', server.port, 'timeout: 200ms');
    const t0 = Date.now();
    expect((await callAuthorizer(slow, input(request()))).kind).toBe('error');
    expect(Date.now() - t0).toBeLessThan(1_500);
    const closed = await startHttpAuthz(() => ({ status: 200 }));
    const port = closed.port;
    await closed.close();
    expect((await callAuthorizer(filterFor('envoyExtAuthzHttp', port, ''), input(request()))).kind).toBe(
      'error',
    );
  });

  test('includeRequestBodyInCheck sends the body', async () => {
    const f = filterFor(
      'envoyExtAuthzHttp',
      server.port,
      'includeRequestBodyInCheck: {maxRequestBytes: 1024}',
    );
    server.decide = () => ({ status: 200 });
    server.checks.length = 0;
    await callAuthorizer(f, input(request(), Buffer.from('{"order":7}')));
    expect(server.checks[0]!.body).toBe('{"order":7}');
    expect(server.checks[0]!.headers['content-length']).toBe('11');
  });
});

describe('gRPC authorizer (envoy.service.auth.v3.Authorization/Check)', () => {
  let server: GrpcAuthzServer;
  beforeAll(async () => {
    server = await startGrpcAuthz(() => ({ response: { status: { code: 0 } } }));
  });
  afterAll(() => server.close());

  test('the CheckRequest carries the request attributes', async () => {
    const f = filterFor('envoyExtAuthzGrpc', server.port, 'includeRequestBodyInCheck: {maxRequestBytes: 64}');
    server.checks.length = 0;
    server.decide = () => ({ response: { status: { code: 0 } } });
    const a = await callAuthorizer(f, input(request({ sni: 'shop.example.com' }), Buffer.from('hello')));
    expect(a.kind).toBe('allow');
    const http = server.checks[0]!.attributes.request!.http!;
    expect(http.method).toBe('POST');
    expect(http.path).toBe('/api/orders?id=7');
    expect(http.host).toBe('shop.example.com');
    expect(http.id).toBe('rid-1');
    expect(http.body).toBe('hello');
    expect(http.headers!['x-user']).toBe('alice');
    expect(http.headers![':method']).toBe('POST');
    expect(server.checks[0]!.attributes.source!.address!.socketAddress!.address).toBe('192.0.2.10');
    expect(server.checks[0]!.attributes.tlsSession!.sni).toBe('shop.example.com');
  });

  test('OK with ok_response headers: set, remove, response headers', async () => {
    const f = filterFor('envoyExtAuthzGrpc', server.port, '');
    server.decide = () => ({
      response: {
        status: { code: 0 },
        okResponse: {
          headers: [{ header: { key: 'x-user-id', value: '42' } }],
          headersToRemove: ['Authorization'],
          responseHeadersToAdd: [{ header: { key: 'x-checked', value: 'yes' } }],
        },
      },
    });
    expect(await callAuthorizer(f, input(request()))).toEqual({
      kind: 'allow',
      edits: { set: [['x-user-id', '42']], remove: ['authorization'] },
      responseHeaders: ['x-checked', 'yes'],
    });
  });

  test('denied: the denied_response status, headers and body; 403 when it gives none', async () => {
    const f = filterFor('envoyExtAuthzGrpc', server.port, '');
    server.decide = () => ({
      response: {
        status: { code: GRPC_PERMISSION_DENIED },
        deniedResponse: {
          status: { code: 429 },
          headers: [{ header: { key: 'retry-after', value: '5' } }],
          body: 'slow down',
        },
      },
    });
    expect(await callAuthorizer(f, input(request()))).toEqual({
      kind: 'deny',
      status: 429,
      headers: ['retry-after', '5'],
      body: Buffer.from('slow down'),
    });
    server.decide = () => ({ response: { status: { code: GRPC_PERMISSION_DENIED } } });
    const a = await callAuthorizer(f, input(request()));
    expect(a.kind === 'deny' && a.status).toBe(403);
  });

  test('a failed call (UNAVAILABLE, deadline) is an error, not a denial', async () => {
    server.decide = () => ({ error: GRPC_UNAVAILABLE });
    expect(
      (await callAuthorizer(filterFor('envoyExtAuthzGrpc', server.port, ''), input(request()))).kind,
    ).toBe('error');
    server.decide = () => ({ response: { status: { code: 0 } }, delayMs: 2_000 });
    const t0 = Date.now();
    const a = await callAuthorizer(
      filterFor('envoyExtAuthzGrpc', server.port, 'timeout: 200ms'),
      input(request()),
    );
    expect(a.kind).toBe('error');
    expect(Date.now() - t0).toBeLessThan(1_500);
  });
});
