/**
 * custom-http-errors and default-backend on natively served Ingresses, against real loopback
 * upstreams: an app that answers the status its path names (with a body of its own), and an
 * error-page backend that records what it got and answers X-Code as its status, as ingress-nginx's
 * custom-error-pages image does. What is checked is ingress-nginx's (nginx.tmpl CUSTOM_ERRORS,
 * controller.go): only listed statuses are replaced, the upstream's body never reaches the client,
 * the default backend gets the client's method and headers for `/` (query kept) with X-Code,
 * X-Format, X-Original-URI, X-Namespace, X-Ingress-Name, X-Service-Name, X-Service-Port and
 * X-Request-ID, and its answer (status included) is what the client sees.
 */
import { connect as http2Connect } from 'node:http2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../src/errors/diagnostic.ts';
import type { RequestContext } from '../../src/dataplane/request-context.ts';
import { closeAllPools } from '../../src/upstream/pools.ts';
import type { Registry } from 'prom-client';
import { until } from '../support/until.ts';
import { metered, startGatewayWithSnapshot, type TestGateway } from '../support/gateway.ts';
import {
  compileIngressYaml,
  ingressYaml,
  path,
  sendIngress as send,
  serviceYaml,
} from '../support/ingress.ts';
import { closedPort, startEcho, type Upstream } from '../support/upstreams.ts';

let app: Upstream;
let pages: Upstream;
beforeAll(async () => {
  // /status/NNN answers NNN with the app's own body (and a challenge on 401).
  app = await startEcho({
    name: 'app',
    handle: (req, res) => {
      // Answers at once, before the request body has arrived.
      if (req.url === '/early')
        return void res.writeHead(503, { 'content-type': 'text/plain' }).end('app early 503');
      req.resume();
      req.on('end', () => {
        const m = /^\/status\/(\d{3})/.exec(req.url ?? '');
        const status = m === null ? 200 : Number(m[1]);
        if (req.url === '/slow') return void setTimeout(() => res.end('late'), 3000);
        res.writeHead(status, {
          'content-type': 'text/plain',
          ...(status === 401 ? { 'www-authenticate': 'Basic realm="app"' } : {}),
        });
        res.end(`app body ${status}`);
      });
    },
  });
  // Answers X-Code as its status (200 without one), the request it got as JSON.
  pages = await startEcho({
    name: 'pages',
    handle: (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const code = Number(req.headers['x-code'] ?? 200);
        res.writeHead(code, { 'content-type': 'application/json', 'x-from': 'pages' });
        res.end(
          JSON.stringify({
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      });
    },
  });
});
afterAll(async () => {
  await app.close();
  await pages.close();
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  await closeAllPools(true);
  app.seen.length = 0;
  pages.seen.length = 0;
});

/** A Service with no ready endpoints. */
function emptyService(name: string): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: default}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}-1, namespace: default, labels: {kubernetes.io/service-name: ${name}}}
addressType: IPv4
endpoints: []
ports: [{name: http, port: 80}]
`;
}

async function serve(
  annotations: Record<string, string>,
  services: { app?: string; pages?: string } = {},
): Promise<TestGateway & { done: RequestContext[]; registry: Registry; warnings: string[] }> {
  const yaml = [
    ingressYaml({ name: 'web', annotations, paths: [path('/', 'Prefix', 'app')] }),
    services.app ?? serviceYaml('app', app.port),
    services.pages ?? serviceYaml('pages', pages.port),
  ].join('---\n');
  const { snapshot, diagnostics } = compileIngressYaml(yaml);
  const errors = diagnostics.filter((d) => d.level === 'error');
  if (errors.length > 0) throw new Error(errors.map(formatDiagnostic).join('\n'));
  const m = metered();
  const gw = await startGatewayWithSnapshot(snapshot, { onRequestDone: m.onRequestDone });
  cleanups.push(() => gw.close());
  return {
    ...gw,
    done: m.done,
    registry: m.registry,
    warnings: diagnostics.filter((d) => d.level === 'warning').map(formatDiagnostic),
  };
}

/** The context of the gateway's `n`th finished request (1-based), once it is done. */
function finished(gw: { done: RequestContext[] }, n: number): Promise<RequestContext> {
  return until(() => gw.done[n - 1], { what: `request ${n} finished` });
}

interface PageRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

const ERRORS = { 'custom-http-errors': '404,503', 'default-backend': 'pages' };

describe('custom-http-errors with default-backend', () => {
  it("replaces a listed upstream status with the default backend's answer to a request for / carrying the X-* headers", async () => {
    const gw = await serve(ERRORS);
    const r = await send(gw, '/status/503?q=1', {
      headers: { accept: 'application/json', 'x-code': '200', 'x-original-uri': '/spoofed' },
    });
    expect(r.status).toBe(503);
    expect(r.headers['x-from']).toBe('pages');
    expect(r.text).not.toContain('app body');
    const got = JSON.parse(r.text) as PageRequest;
    expect(got.method).toBe('GET');
    expect(got.url).toBe('/?q=1');
    expect(got.headers).toMatchObject({
      host: 'demo.example.com',
      'x-code': '503',
      'x-format': 'application/json',
      'x-original-uri': '/status/503?q=1',
      'x-namespace': 'default',
      'x-ingress-name': 'web',
      'x-service-name': 'app',
      'x-service-port': '80',
      'x-forwarded-for': '127.0.0.1',
    });
    // The same request id the app got.
    expect(app.seen).toHaveLength(1);
    expect(got.headers['x-request-id']).toBe(app.seen[0]!.headers['x-request-id']);
    // The log and metrics name the default backend, which answered.
    const ctx = await finished(gw, 1);
    expect(ctx.clusterName).toBe('outbound|80||pages.default.svc.cluster.local');
    expect(ctx.upstreamHost?.hostPort).toBe(`127.0.0.1:${pages.port}`);
    expect(ctx.status).toBe(503);
    expect(ctx.responseDetails).toBe('custom_http_errors{503}');
    const counted = (await gw.registry.getMetricsAsJSON()).find((m) => m.name === 'istio_requests_total');
    expect(counted?.values.map((v) => v.labels)).toEqual([
      expect.objectContaining({
        destination_service: 'pages.default.svc.cluster.local',
        response_code: '503',
      }),
    ]);
  });

  it('passes statuses that are not listed through with the upstream body', async () => {
    const gw = await serve(ERRORS);
    const r = await send(gw, '/status/500');
    expect(r.status).toBe(500);
    expect(r.text).toBe('app body 500');
    expect(pages.seen).toHaveLength(0);
    const ok = await send(gw, '/status/200');
    expect(ok.text).toBe('app body 200');
    expect((await finished(gw, 2)).clusterName).toBe('outbound|80||app.default.svc.cluster.local');
  });

  it("keeps the client's method, sends no body, and omits X-Format without an Accept header", async () => {
    const gw = await serve(ERRORS);
    const r = await send(gw, '/status/404', { method: 'POST', body: 'payload' });
    expect(r.status).toBe(404);
    const got = JSON.parse(r.text) as PageRequest;
    expect(got.method).toBe('POST');
    expect(got.body).toBe('');
    expect(got.headers['x-format']).toBeUndefined();
    expect(app.seen[0]!.method).toBe('POST');
  });

  it('answers with the page even when the upstream refuses before the request body has arrived', async () => {
    const gw = await serve(ERRORS);
    const body = Buffer.alloc(900 * 1024, 'x');
    const r = await send(gw, '/early', { method: 'POST', body });
    expect(r.status).toBe(503);
    expect(r.headers['x-from']).toBe('pages');
  });

  it("keeps the upstream's WWW-Authenticate on an intercepted 401, as nginx does", async () => {
    const gw = await serve({ 'custom-http-errors': '401', 'default-backend': 'pages' });
    const r = await send(gw, '/status/401');
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Basic realm="app"');
    expect(r.headers['x-from']).toBe('pages');
  });

  it("replaces an upstream failure by nginx's status for it (502 for a refused connection)", async () => {
    const down = await closedPort();
    const gw = await serve(
      { 'custom-http-errors': '502', 'default-backend': 'pages', 'proxy-next-upstream': 'off' },
      { app: serviceYaml('app', down) },
    );
    const r = await send(gw, '/x');
    expect(r.status).toBe(502);
    const got = JSON.parse(r.text) as PageRequest;
    expect(got.headers['x-code']).toBe('502');
    expect(got.headers['x-original-uri']).toBe('/x');
    const ctx = await finished(gw, 1);
    expect(ctx.responseFlags).toBe('UF');
    expect(ctx.clusterName).toBe('outbound|80||pages.default.svc.cluster.local');
  });

  it('replaces a read timeout as 504', async () => {
    const gw = await serve({
      'custom-http-errors': '504',
      'default-backend': 'pages',
      'proxy-read-timeout': '1',
    });
    const r = await send(gw, '/slow');
    expect(r.status).toBe(504);
    expect((JSON.parse(r.text) as PageRequest).headers['x-code']).toBe('504');
    expect((await finished(gw, 1)).responseFlags).toBe('UT');
  });

  it("leaves a failure whose nginx status is not listed to sluice's own reply", async () => {
    const down = await closedPort();
    const gw = await serve(
      { 'custom-http-errors': '503', 'default-backend': 'pages', 'proxy-next-upstream': 'off' },
      { app: serviceYaml('app', down) },
    );
    const r = await send(gw, '/x');
    expect(r.status).toBe(503);
    expect(r.text).toMatch(/^upstream connect error/);
    expect(pages.seen).toHaveLength(0);
  });

  it("answers the default backend's own failure with the gateway's failure reply, never intercepted again", async () => {
    const down = await closedPort();
    const gw = await serve(
      { 'custom-http-errors': '503', 'default-backend': 'pages' },
      { pages: serviceYaml('pages', down) },
    );
    const r = await send(gw, '/status/503');
    expect(r.status).toBe(503);
    expect(r.text).toMatch(/^upstream connect error/);
    expect(r.text).not.toContain('app body');
    const ctx = await finished(gw, 1);
    expect(ctx.clusterName).toBe('outbound|80||pages.default.svc.cluster.local');
    // Retried as the route's policy says (error timeout, 3 tries), then failed.
    expect(ctx.responseFlags).toBe('UF,URX');
    expect(ctx.attempts).toBe(3);
  });

  it("answers 404 when the default backend has no endpoints (ingress-nginx's built-in default server)", async () => {
    const gw = await serve(ERRORS, { pages: emptyService('pages') });
    const r = await send(gw, '/status/503');
    expect(r.status).toBe(404);
    expect(r.text).toBe('');
  });

  it('answers 404 for listed statuses without a default-backend, with a warning saying so', async () => {
    const gw = await serve({ 'custom-http-errors': '503' });
    expect(gw.warnings.join('\n')).toMatch(/no default-backend: listed statuses are answered 404/);
    expect((await send(gw, '/status/503')).status).toBe(404);
    expect((await send(gw, '/status/500')).text).toBe('app body 500');
  });

  it('with disable-proxy-intercept-errors passes upstream answers but still replaces failures', async () => {
    const gw = await serve({ ...ERRORS, 'disable-proxy-intercept-errors': 'true' });
    const r = await send(gw, '/status/503');
    expect(r.text).toBe('app body 503');
    expect(pages.seen).toHaveLength(0);
  });

  it("replaces the route's own refusals too (proxy-body-size 413, whitelist-source-range 403), nothing reaching the app", async () => {
    const gw = await serve({
      ...ERRORS,
      'custom-http-errors': '403,413',
      'proxy-body-size': '4',
    });
    const big = await send(gw, '/upload', { method: 'PUT', body: 'too large' });
    expect(big.status).toBe(413);
    const got = JSON.parse(big.text) as PageRequest;
    expect(got).toMatchObject({ method: 'PUT', url: '/', body: '' });
    expect(got.headers).toMatchObject({ 'x-code': '413', 'x-original-uri': '/upload' });
    expect(app.seen).toHaveLength(0);
    await gw.close();
    const closed = await serve({
      ...ERRORS,
      'custom-http-errors': '403',
      'whitelist-source-range': '10.0.0.0/8',
    });
    const denied = await send(closed, '/x');
    expect(denied.status).toBe(403);
    expect(denied.headers['x-from']).toBe('pages');
    expect(app.seen).toHaveLength(0);
  });

  it("replaces basic auth's 401 keeping its challenge, and limit-rpm's 503, nothing reaching the app", async () => {
    const users = `apiVersion: v1\nkind: Secret\nmetadata: {name: users, namespace: default}\ndata: {auth: ${Buffer.from('u:{PLAIN}p').toString('base64')}}\n`;
    const gw = await serve(
      {
        ...ERRORS,
        'custom-http-errors': '401,503',
        'auth-type': 'basic',
        'auth-secret': 'users',
        'auth-realm': 'Staff only',
        'limit-rpm': '1',
        'limit-burst-multiplier': '1',
      },
      { pages: [serviceYaml('pages', pages.port), users].join('---\n') },
    );
    // Counted, then refused by basic auth, until the limit refuses first (the third, as
    // ingress-limits.test.ts finds for the same limit).
    expect((await send(gw, '/x')).status).toBe(401);
    const denied = await send(gw, '/x');
    expect(denied.status).toBe(401);
    expect(denied.headers['x-from']).toBe('pages');
    expect(denied.headers['www-authenticate']).toBe('Basic realm="Staff only"');
    expect((JSON.parse(denied.text) as PageRequest).headers['x-code']).toBe('401');
    const limited = await send(gw, '/x');
    expect(limited.status).toBe(503);
    expect(limited.headers['x-from']).toBe('pages');
    expect((JSON.parse(limited.text) as PageRequest).headers['x-code']).toBe('503');
    expect(app.seen).toHaveLength(0);
  });

  it('does the same for HTTP/2 clients', async () => {
    const gw = await serve(ERRORS);
    const r = await h2Get(gw.url('/status/404?h2=1'), { accept: 'text/html' });
    expect(r.status).toBe(404);
    const got = JSON.parse(r.body) as PageRequest;
    expect(got.url).toBe('/?h2=1');
    expect(got.headers['x-original-uri']).toBe('/status/404?h2=1');
    expect(got.headers['x-format']).toBe('text/html');
    const passed = await h2Get(gw.url('/status/500'), {});
    expect(passed).toMatchObject({ status: 500, body: 'app body 500' });
  });
});

describe('default-backend alone', () => {
  it('serves the request itself while the Service has no endpoints, with X-Code 503', async () => {
    const gw = await serve({ 'default-backend': 'pages' }, { app: emptyService('app') });
    const r = await send(gw, '/some/path?q=2', { method: 'POST', body: 'payload' });
    expect(r.status).toBe(503);
    const got = JSON.parse(r.text) as PageRequest;
    expect(got).toMatchObject({ method: 'POST', url: '/some/path?q=2', body: 'payload' });
    expect(got.headers).toMatchObject({
      'x-code': '503',
      'x-namespace': 'default',
      'x-ingress-name': 'web',
      'x-service-name': 'app',
      'x-service-port': '80',
    });
    expect(got.headers['x-original-uri']).toBeUndefined();
    expect((await finished(gw, 1)).clusterName).toBe('outbound|80||pages.default.svc.cluster.local');
  });

  it('changes nothing while the Service has endpoints: its errors pass through', async () => {
    const gw = await serve({ 'default-backend': 'pages' });
    const r = await send(gw, '/status/503');
    expect(r.text).toBe('app body 503');
    expect(pages.seen).toHaveLength(0);
  });

  it("gives the route's 503 when the default backend has no endpoints either", async () => {
    const gw = await serve(
      { 'default-backend': 'pages' },
      { app: emptyService('app'), pages: emptyService('pages') },
    );
    const r = await send(gw, '/x');
    expect(r.status).toBe(503);
    expect(r.text).toBe('no healthy upstream');
  });

  it('warns when the Service is not in the config, and serves without it', async () => {
    const gw = await serve({ 'default-backend': 'nowhere' });
    expect(gw.warnings.join('\n')).toMatch(/Service default\/nowhere is not in the config/);
    expect((await send(gw, '/status/200')).text).toBe('app body 200');
  });
});

function h2Get(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const s = http2Connect(u.origin);
    s.on('error', reject);
    const st = s.request({ ':path': u.pathname + u.search, ':authority': 'demo.example.com', ...headers });
    let status = 0;
    const chunks: Buffer[] = [];
    st.on('response', (h) => (status = Number(h[':status'])));
    st.on('data', (c: Buffer) => chunks.push(c));
    st.on('end', () => {
      s.close();
      resolve({ status, body: Buffer.concat(chunks).toString() });
    });
    st.on('error', reject);
    st.end();
  });
}
